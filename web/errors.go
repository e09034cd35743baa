package web

import (
	"errors"
	"log/slog"

	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"

	"trove/apierr"
	"trove/compat"
	"trove/storage"
)

// ErrNotFound is the error for unknown routes.
var ErrNotFound = errors.New("web: not found")

// ErrMethodNotAllowed is the error for a known path with another method.
var ErrMethodNotAllowed = errors.New("web: method not allowed")

// ErrBodyTooLarge refuses a declared body over Config.MaxRequestBytes
// before any of it is read (HTTP 413).
var ErrBodyTooLarge = errors.New("web: request body too large")

// ErrShuttingDown is returned while the server drains.
var ErrShuttingDown = errors.New("web: shutting down")

// errorStatuses gives each kind of error its HTTP status and default code
// word; statusOf takes the first row err matches. It is the only place
// that maps errors to statuses: auth and the domain packages return
// *apierr.Error values, whose Kind is one of apierr's sentinels; the rows
// after them are web's and storage's own sentinels.
var errorStatuses = []struct {
	err    error
	status int
	code   string
}{
	{apierr.Unauthorized, fasthttp.StatusUnauthorized, "unauthorized"},
	{apierr.Forbidden, fasthttp.StatusForbidden, "forbidden"},
	{apierr.TooLarge, fasthttp.StatusRequestEntityTooLarge, "payload_too_large"},
	{apierr.Unsupported, fasthttp.StatusUnsupportedMediaType, "unsupported_media_type"},
	{apierr.Invalid, fasthttp.StatusBadRequest, "invalid_request"},
	{apierr.Conflict, fasthttp.StatusConflict, "conflict"},
	{apierr.NotFound, fasthttp.StatusNotFound, "not_found"},
	{apierr.Unavailable, fasthttp.StatusServiceUnavailable, "unavailable"},
	{ErrNotFound, fasthttp.StatusNotFound, "not_found"},
	{ErrMethodNotAllowed, fasthttp.StatusMethodNotAllowed, "method_not_allowed"},
	{ErrRateLimited, fasthttp.StatusTooManyRequests, "rate_limited"},
	{ErrOverBurst, fasthttp.StatusRequestEntityTooLarge, "payload_too_large"},
	{ErrBodyTooLarge, fasthttp.StatusRequestEntityTooLarge, "payload_too_large"},
	{storage.ErrDiskFull, fasthttp.StatusServiceUnavailable, "disk_full"},
	{ErrBodyMemory, fasthttp.StatusServiceUnavailable, "busy"},
	{storage.ErrClosed, fasthttp.StatusServiceUnavailable, "unavailable"},
	{ErrShuttingDown, fasthttp.StatusServiceUnavailable, "unavailable"},
}

// statusOf maps an error to its HTTP status and code word: the row of
// errorStatuses it matches, with the Code of an *apierr.Error of that
// kind in place of the row's code word when it sets one.
func statusOf(err error) (int, string) {
	for _, row := range errorStatuses {
		if !errors.Is(err, row.err) {
			continue
		}
		var ae *apierr.Error
		if errors.As(err, &ae) && ae.Code != "" && errors.Is(ae, row.err) {
			return row.status, ae.Code
		}
		return row.status, row.code
	}
	return fasthttp.StatusInternalServerError, "internal"
}

// writeError writes err as a JSON error body:
// {"error":code,"message":…,"field":…} plus the details the error carries.
func writeError(ctx *fasthttp.RequestCtx, log *slog.Logger, err error) {
	status, code := statusOf(err)
	msg := err.Error()
	ctx.SetUserValue(errKey{}, err) // for the request's log line (log.go)
	if status == fasthttp.StatusInternalServerError {
		log.Error("request failed", "request_id", string(ctx.Response.Header.Peek(HeaderRequestID)),
			"method", string(ctx.Method()), "path", string(ctx.Path()), "err", err)
		msg = "internal error; the server log has the details"
	}
	body := map[string]any{"error": code, "message": msg}
	var f interface{ ErrorField() string }
	if errors.As(err, &f) && f.ErrorField() != "" {
		body["field"] = f.ErrorField()
	}
	var d interface{ ErrorDetails() map[string]any }
	if errors.As(err, &d) {
		// The details' members (accepted, rejected, errors…) never
		// replace the ones above.
		for k, v := range d.ErrorDetails() {
			if _, taken := body[k]; !taken {
				body[k] = v
			}
		}
	}
	if f, ok := ctx.UserValue(compat.ErrorBodyKey).(compat.ErrorBodyFunc); ok {
		f(status, body)
	}
	if ra, ok := retryAfterHeader(err); ok {
		ctx.Response.Header.Set("Retry-After", ra)
	} else if status == fasthttp.StatusServiceUnavailable {
		ctx.Response.Header.Set("Retry-After", "1")
	}
	if status == fasthttp.StatusRequestEntityTooLarge {
		// The rest of the body may still be on the wire.
		ctx.SetConnectionClose()
	}
	out, _ := json.Marshal(body)
	ctx.Response.ResetBody()
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(out)
}
