package web

import (
	"errors"
	"log/slog"

	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"

	"trove/admin"
	"trove/auth"
	"trove/compat"
	"trove/export"
	"trove/ingest"
	"trove/profile"
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

// statusOf maps an error to its HTTP status and code word. It is the only
// place that does.
func statusOf(err error) (int, string) {
	switch {
	case errors.Is(err, auth.ErrUnauthenticated):
		return fasthttp.StatusUnauthorized, "unauthorized"
	case errors.Is(err, auth.ErrForbidden):
		return fasthttp.StatusForbidden, "forbidden"
	case errors.Is(err, ingest.ErrTooLarge):
		return fasthttp.StatusRequestEntityTooLarge, "payload_too_large"
	case errors.Is(err, ingest.ErrUnsupportedMediaType):
		return fasthttp.StatusUnsupportedMediaType, "unsupported_media_type"
	case errors.Is(err, ingest.ErrInvalid):
		var re *ingest.RequestError
		if errors.As(err, &re) && re.Result != nil {
			return fasthttp.StatusBadRequest, "invalid_event"
		}
		return fasthttp.StatusBadRequest, "invalid_request"
	case errors.Is(err, export.ErrInvalid):
		return fasthttp.StatusBadRequest, "invalid_request"
	case errors.Is(err, profile.ErrInvalid):
		return fasthttp.StatusBadRequest, "invalid_profile"
	case errors.Is(err, profile.ErrConflict):
		return fasthttp.StatusConflict, "conflict"
	case errors.Is(err, profile.ErrNotFound):
		return fasthttp.StatusNotFound, "not_found"
	case errors.Is(err, profile.ErrTooLarge):
		return fasthttp.StatusRequestEntityTooLarge, "payload_too_large"
	case errors.Is(err, profile.ErrUnsupportedMediaType):
		return fasthttp.StatusUnsupportedMediaType, "unsupported_media_type"
	case errors.Is(err, admin.ErrInvalid):
		return fasthttp.StatusBadRequest, "invalid_request"
	case errors.Is(err, admin.ErrNotFound):
		return fasthttp.StatusNotFound, "not_found"
	case errors.Is(err, admin.ErrConflict):
		return fasthttp.StatusConflict, "conflict"
	case errors.Is(err, admin.ErrTooLarge):
		return fasthttp.StatusRequestEntityTooLarge, "payload_too_large"
	case errors.Is(err, ErrNotFound):
		return fasthttp.StatusNotFound, "not_found"
	case errors.Is(err, ErrMethodNotAllowed):
		return fasthttp.StatusMethodNotAllowed, "method_not_allowed"
	case errors.Is(err, ErrRateLimited):
		return fasthttp.StatusTooManyRequests, "rate_limited"
	case errors.Is(err, ErrOverBurst), errors.Is(err, ErrBodyTooLarge):
		return fasthttp.StatusRequestEntityTooLarge, "payload_too_large"
	case errors.Is(err, storage.ErrDiskFull):
		return fasthttp.StatusServiceUnavailable, "disk_full"
	case errors.Is(err, ErrBodyMemory):
		return fasthttp.StatusServiceUnavailable, "busy"
	case errors.Is(err, storage.ErrClosed), errors.Is(err, ErrShuttingDown):
		return fasthttp.StatusServiceUnavailable, "unavailable"
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
	var d interface{ ErrorDetails() any }
	if errors.As(err, &d) {
		if det := d.ErrorDetails(); det != nil {
			// Merge the details' members (accepted, rejected, errors…).
			if b, err := json.Marshal(det); err == nil {
				var m map[string]any
				if json.Unmarshal(b, &m) == nil {
					for k, v := range m {
						if _, taken := body[k]; !taken {
							body[k] = v
						}
					}
				}
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
