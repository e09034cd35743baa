package ingest

import (
	"bytes"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"

	"trove/apierr"
	"trove/auth"
	"trove/httpbody"
	"trove/schema"
)

// Result is the answer to an Events API request.
type Result struct {
	Accepted   int         `json:"accepted"`
	Duplicates int         `json:"duplicates"`
	Rejected   int         `json:"rejected"`
	Errors     []ItemError `json:"errors"`
	// Warnings names the events stored although they break their contract
	// (schema_mode "warn").
	Warnings []ItemError `json:"warnings,omitempty"`
	// Validated is set for ?validate=1, which stores nothing.
	Validated bool `json:"validated,omitempty"`
}

// ItemError names one rejected event: by index in a JSON array, or by
// 1-based line in an NDJSON body.
type ItemError struct {
	Index     *int   `json:"index,omitempty"`
	Line      *int   `json:"line,omitempty"`
	MessageID string `json:"messageId,omitempty"`
	Field     string `json:"field"`
	Message   string `json:"message"`
}

// maxItemErrors caps the errors listed in one answer; the quarantine keeps
// every rejected event all the same.
const maxItemErrors = 100

// eventSink stores a validated batch: it marks duplicates, stores the
// other events and the rejections atomically and durably, and returns only
// once they are durable. It must not retain b or its slices.
type eventSink interface {
	AppendEvents(b *Batch) error
}

// A suppressor names an app's users deleted with suppress=1, whose events
// are refused (StoreSink).
type suppressor interface {
	Suppressed(appKey string) map[string]bool
}

// Handler serves POST /v1/events.
type Handler struct {
	cfg  Config
	reg  *auth.Registry
	sink eventSink
	now  func() time.Time
	// limiter, when set, charges events to their apps' rates (limit.go).
	limiter Limiter
	// suppressed is the sink's, when it is a suppressor.
	suppressed func(appKey string) map[string]bool
	// contracts, when set, are the apps' schema contracts (contracts.go).
	contracts *schema.Registry
	// replayMu lets one quarantine replay run at a time (replay.go).
	replayMu sync.Mutex
}

// NewHandler returns a Handler that stores through sink.
func NewHandler(cfg Config, reg *auth.Registry, sink eventSink) *Handler {
	h := &Handler{cfg: cfg, reg: reg, sink: sink, now: time.Now}
	if s, ok := sink.(suppressor); ok {
		h.suppressed = s.Suppressed
	}
	return h
}

// SetClock replaces the clock that stamps receivedAt and measures the
// dedup window and clock skew (tests that simulate time passing).
func (h *Handler) SetClock(now func() time.Time) { h.now = now }

// Events handles POST /v1/events.
func (h *Handler) Events(ctx *fasthttp.RequestCtx) error {
	ndjson, err := parseContentType(ctx.Request.Header.ContentType())
	if err != nil {
		return err
	}
	// The buffers are given back as soon as they are done with, not at
	// the end: what a request holds at once is what web's body memory
	// budget charges it (web/bodymem.go).
	var (
		body Body
		b    *Batch
	)
	release := func() {
		body.Release()
		if b != nil {
			putBatch(b)
			b = nil
		}
	}
	defer func() { release() }()
	if err := body.read(ctx, h.cfg.MaxRequestBytes, httpbody.LimitKey); err != nil {
		return err
	}

	b = newBatch(&h.cfg, h.now(), clientIP(ctx))
	b.suppressed = h.suppressed
	b.NDJSON = ndjson
	if err := Decode(b, body.Bytes()); err != nil {
		return err
	}
	if err := h.authorize(ctx, b); err != nil {
		return err
	}
	validate := ctx.QueryArgs().GetBool("validate")
	h.applyContracts(b, !validate)
	res := &Result{Accepted: len(b.Events), Rejected: len(b.Rejected)}
	res.Validated = validate
	if !validate && (len(b.Events) > 0 || len(b.Rejected) > 0) {
		if err := h.takeTokens(b); err != nil {
			return err
		}
		if err := h.sink.AppendEvents(b); err != nil {
			return err
		}
		res.Duplicates = countStored(b)
		res.Accepted -= res.Duplicates
	}
	res.Errors = itemErrors(b, b.Rejected)
	res.Warnings = warnings(b)
	if len(b.Events) == 0 {
		return noEventError(b, res)
	}
	// res holds copies only: the body and the batch go before the answer
	// is encoded and written.
	release()
	return Answer(ctx, fasthttp.StatusAccepted, res)
}

// noEventError is the answer to a request of which no event is valid: 413
// when every event was refused for its size, else 400, naming the first
// refused event (or that there was none).
func noEventError(b *Batch, res *Result) error {
	kind, first := apierr.Invalid, ItemError{Message: "the request holds no event"}
	if len(res.Errors) > 0 {
		first = res.Errors[0]
		kind = apierr.TooLarge
		for _, r := range b.Rejected {
			if r.Code != "too_large" {
				kind = apierr.Invalid
			}
		}
	}
	return batchError(kind, first, res)
}

// authorize checks the credentials against every app in the batch, and
// picks the app that events without a usable appKey are quarantined under.
func (h *Handler) authorize(ctx *fasthttp.RequestCtx, b *Batch) error {
	tok := auth.TokenOf(ctx)
	fallback := ""
	for _, app := range b.apps {
		if _, ok := h.reg.App(app); !ok {
			// An unknown appKey on a rejected event is that event's fault,
			// unless it is the only app the request names.
			if !h.onlyOnRejected(b, app) {
				return h.reg.Authorize(tok, app, auth.ScopeIngest)
			}
			continue
		}
		if err := h.reg.Authorize(tok, app, auth.ScopeIngest); err != nil {
			return err
		}
		if fallback == "" {
			fallback = app
		}
	}
	if fallback == "" && tok != nil {
		fallback, _ = tok.OnlyApp()
	}
	if len(b.Events) == 0 && fallback == "" && len(b.Rejected) > 0 && len(b.apps) > 0 {
		// Every event is invalid and none names a known app: answer as for
		// credentials, since nothing identifies whose events these are.
		return h.reg.Authorize(tok, b.apps[0], auth.ScopeIngest)
	}
	for i := range b.Rejected {
		r := &b.Rejected[i]
		if _, ok := h.reg.App(r.AppKey); !ok || h.reg.Authorize(tok, r.AppKey, auth.ScopeIngest) != nil {
			r.AppKey = fallback
		}
	}
	return nil
}

// onlyOnRejected reports whether app appears only on rejected events.
func (h *Handler) onlyOnRejected(b *Batch, app string) bool {
	for i := range b.Events {
		if b.Events[i].AppKey == app {
			return false
		}
	}
	return true
}

// itemErrors lists rs (b's rejections or warnings) as the answer names them.
func itemErrors(b *Batch, rs []Rejection) []ItemError {
	out := make([]ItemError, 0, min(len(rs), maxItemErrors))
	for i := range rs {
		if i == maxItemErrors {
			break
		}
		r := &rs[i]
		e := ItemError{MessageID: r.MessageID, Field: r.Field, Message: r.Message}
		n := r.Index
		if b.NDJSON {
			e.Line = &n
		} else {
			e.Index = &n
		}
		out = append(out, e)
	}
	return out
}

// parseContentType reports whether the body is NDJSON. JSON is the default
// for a missing type, and text/plain is read as JSON because browsers'
// sendBeacon cannot set a type without a CORS preflight.
func parseContentType(ct []byte) (ndjson bool, err error) {
	mt := ct
	if i := bytes.IndexByte(mt, ';'); i >= 0 {
		mt = mt[:i]
	}
	switch string(bytes.ToLower(bytes.TrimSpace(mt))) {
	case "", "application/json", "text/plain":
		return false, nil
	case "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines":
		return true, nil
	}
	return false, &apierr.Error{Kind: apierr.Unsupported, Field: "Content-Type",
		Message: "Content-Type " + strconv.Quote(string(ct)) + " is not supported: use application/json or application/x-ndjson"}
}

// clientIP is the connection's remote address, without the port.
func clientIP(ctx *fasthttp.RequestCtx) string {
	return ctx.RemoteIP().String()
}

// Decode splits body into events and adds each to b. A body that is not
// JSON at all (or, for NDJSON, has no line) fails as a whole; problems
// with single events become Rejections.
func Decode(b *Batch, body []byte) error {
	if b.NDJSON {
		line := 0
		for len(body) > 0 {
			line++
			i := bytes.IndexByte(body, '\n')
			var l []byte
			if i < 0 {
				l, body = body, nil
			} else {
				l, body = body[:i], body[i+1:]
			}
			l = bytes.TrimSpace(l)
			if len(l) == 0 {
				continue
			}
			b.add(line, l, false /* valid */)
		}
		if len(b.Events)+len(b.Rejected) == 0 {
			return invalid("", "the NDJSON body holds no event")
		}
		return nil
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return invalid("", "the request body is empty: send an event object or an array of them")
	}
	switch body[0] {
	case '{':
		b.add(0, body, false /* valid */)
		return nil
	case '[':
		// The body's depth is checked before anything recursive sees it,
		// but not in a pass of its own: json.Valid skips iteratively
		// (goccy/go-json, capped at 10,000 levels), and a valid array is
		// one level deeper than its deepest element, which the scan of
		// each element finds. Only an invalid body needs the depth pass,
		// to say which of the two it is.
		if !validJSON(body) {
			if _, ok := nestingDepth(body, maxDepth+1); !ok {
				return bodyTooDeep()
			}
			return invalid("", "the body is not valid JSON: "+syntaxError(body))
		}
		events, rejected, buf := len(b.Events), len(b.Rejected), len(b.buf)
		// forEachElement, but an object or array is split and checked in
		// the same pass that finds its end.
		i := skipSpace(body, 1)
		for n := 0; i < len(body) && body[i] != ']'; n++ {
			if c := body[i]; c == '{' || c == '[' {
				var sc eventScan
				sc, b.members = scanEvent(body, i, maxDepth, false, b.members[:0])
				if !sc.ok {
					// The body is deeper than maxDepth+1: refused whole,
					// as if it had been checked first.
					b.Events, b.Rejected, b.buf = b.Events[:events], b.Rejected[:rejected], b.buf[:buf]
					return bodyTooDeep()
				}
				b.addScanned(n, body[i:sc.end], true /* valid */, sc)
				i = sc.end
			} else {
				ve := valueEnd(body, i)
				b.add(n, body[i:ve], true /* valid */)
				i = ve
			}
			i = skipSpace(body, i)
			if i < len(body) && body[i] == ',' {
				i = skipSpace(body, i+1)
			}
		}
		if len(b.Events)+len(b.Rejected) == 0 {
			return invalid("", "the array holds no event")
		}
		return nil
	}
	return invalid("", "the body must be a JSON object or array of events, or NDJSON with Content-Type: application/x-ndjson")
}

// bodyTooDeep is the answer to an array body nested deeper than maxDepth+1.
func bodyTooDeep() error {
	return invalid("attributes", "the body is nested deeper than 32 levels")
}

// syntaxError describes where body stops being JSON.
func syntaxError(body []byte) string {
	var v any
	err := json.Unmarshal(body, &v)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return se.Error()
	}
	if err != nil {
		return err.Error()
	}
	return "malformed"
}
