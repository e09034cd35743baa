package admin

import (
	"github.com/valyala/fasthttp"
)

// Sinks returns the handler of GET /admin/sinks: status, called for each
// request, gives what it answers (sinks.Manager.Status).
func Sinks(status func() any) func(ctx *fasthttp.RequestCtx) error {
	return func(ctx *fasthttp.RequestCtx) error {
		return writeJSON(ctx, fasthttp.StatusOK, status())
	}
}
