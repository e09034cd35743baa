package web

import (
	_ "embed"

	"github.com/valyala/fasthttp"
)

// openAPI is the OpenAPI 3.1 description of every route of the table.
// web/openapi_test.go checks that it validates and matches Routes.
//
//go:embed openapi.yaml
var openAPI []byte

// OpenAPI returns the OpenAPI 3.1 document served at GET /openapi.yaml.
// The slice is shared: callers must not modify it.
func OpenAPI() []byte { return openAPI }

// openapi serves GET /openapi.yaml.
func (s *Server) openapi(ctx *fasthttp.RequestCtx) error {
	ctx.SetContentType("application/yaml")
	ctx.SetBody(openAPI)
	return nil
}
