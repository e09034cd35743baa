package ingest

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"

	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"

	"trove/apierr"
	"trove/httpbody"
)

// This file is the API that other wire protocols (package segment) use to
// store events exactly as POST /v1/events does: the same body limits and
// decompressors, the same validation, stored form, clock-skew rule,
// quarantine, messageId dedup, sink and metrics. They translate their
// messages into Trove events and hand them over one by one.

// Body is a request body read with ReadBody. Bytes is valid until Release.
type Body struct {
	raw, dec *bodyBuffer
	b        []byte
}

// Bytes returns the (decompressed) body.
func (b *Body) Bytes() []byte { return b.b }

// Release returns the body's buffers to their pool.
func (b *Body) Release() {
	if b.raw != nil {
		putBodyBuffer(b.raw)
	}
	if b.dec != nil {
		putBodyBuffer(b.dec)
	}
	*b = Body{}
}

// ReadBody reads ctx's body, at most limit bytes before and after
// decompression (Content-Encoding gzip, zstd or deflate), and checks that
// its Content-Type is JSON (or absent, or text/plain). what names the
// limit in errors (e.g. "ingest.max_request_bytes").
func ReadBody(ctx *fasthttp.RequestCtx, limit int, what string) (*Body, error) {
	ndjson, err := parseContentType(ctx.Request.Header.ContentType())
	if err != nil {
		return nil, err
	}
	if ndjson {
		return nil, &apierr.Error{Kind: apierr.Unsupported, Field: "Content-Type", Message: "Content-Type " + strconv.Quote(string(ctx.Request.Header.ContentType())) + " is not supported here: use application/json"}
	}
	return ReadBodyAnyType(ctx, limit, what)
}

// MediaType returns ctx's Content-Type without its parameters, in lower
// case ("" when absent).
func MediaType(ctx *fasthttp.RequestCtx) string {
	mt := ctx.Request.Header.ContentType()
	if i := bytes.IndexByte(mt, ';'); i >= 0 {
		mt = mt[:i]
	}
	return string(bytes.ToLower(bytes.TrimSpace(mt)))
}

// UnsupportedType is the 415 of a Content-Type a protocol does not take;
// takes lists what it does take.
func UnsupportedType(ctx *fasthttp.RequestCtx, takes string) error {
	return &apierr.Error{Kind: apierr.Unsupported, Field: "Content-Type",
		Message: "Content-Type " + strconv.Quote(string(ctx.Request.Header.ContentType())) + " is not supported here: use " + takes}
}

// ReadBodyAnyType is ReadBody without the check of Content-Type, for
// protocols whose clients label their bodies in their own ways (the caller
// checks it).
func ReadBodyAnyType(ctx *fasthttp.RequestCtx, limit int, what string) (*Body, error) {
	b := &Body{}
	if err := b.read(ctx, limit, what); err != nil {
		b.Release()
		return nil, err
	}
	return b, nil
}

// read reads ctx's body through httpbody.Read, with a pooled buffer for
// a streamed body and one for a body to decode; key names limit in
// errors. The buffer as sent goes back to its pool as soon as the body is
// decoded from it.
func (b *Body) read(ctx *fasthttp.RequestCtx, limit int, key string) error {
	var bufs httpbody.Buffers
	if ctx.RequestBodyStream() != nil {
		b.raw = getBodyBuffer()
		bufs.Raw = b.raw.b
	}
	if httpbody.Encoded(ctx) {
		b.dec = getBodyBuffer()
		bufs.Dec = b.dec.b
	}
	body, err := httpbody.Read(ctx, &bufs, limit, key)
	b.b = body
	if b.raw != nil {
		b.raw.b = bufs.Raw
	}
	if b.dec != nil {
		b.dec.b = bufs.Dec
	}
	if err == nil && bufs.Encoded && b.raw != nil {
		putBodyBuffer(b.raw)
		b.raw = nil
	}
	return err
}

// NewBatch returns an empty Batch for a request from ip, received now. Each
// event may be slack bytes larger than ingest.max_event_bytes, for what a
// translation adds to a message. Hand it to Store, then to ReleaseBatch.
func (h *Handler) NewBatch(ip string, slack int) *Batch {
	cfg := h.cfg
	cfg.MaxEventBytes += slack
	b := newBatch(&cfg, h.now(), ip)
	b.suppressed = h.suppressed
	return b
}

// ClientIP is the connection's remote address, without the port.
func ClientIP(ctx *fasthttp.RequestCtx) string { return clientIP(ctx) }

// ReleaseBatch returns b to its pool; nothing may refer to its slices
// afterwards.
func ReleaseBatch(b *Batch) { putBatch(b) }

// Add validates event, a Trove event as JSON text that the caller knows to
// be valid JSON, and adds it to b as an Event (true) or a Rejection
// (false), as POST /v1/events would. b keeps slices of event until it is
// released.
func (b *Batch) Add(idx int, event []byte) bool {
	n := len(b.Events)
	b.add(idx, event, true /* valid */)
	return len(b.Events) > n
}

// Reject adds a rejection: an item the caller refused before translating
// it. code is "invalid_event" or "too_large". b keeps raw until released.
func (b *Batch) Reject(idx int, appKey, messageID, field, code, message string, raw []byte) {
	b.reject(idx, []byte(appKey), []byte(messageID), field, code, message, raw)
}

// Drop turns b.Events[i] into a rejection with the given reason and raw
// text (the item as its sender sent it).
func (b *Batch) Drop(i int, field, message string, raw []byte) {
	e := b.Events[i]
	r := Rejection{Index: e.Index, AppKey: e.AppKey, Field: field, Code: "invalid_event", Message: message, Raw: raw}
	if e.MessageID != nil {
		r.MessageID = string(e.MessageID)
	}
	b.Rejected = append(b.Rejected, r)
	b.Events = slices.Delete(b.Events, i, i+1)
}

// Store stores b's events and quarantines its rejections through the
// handler's sink, in one durable write, counts them, and returns the
// answer. Authorization and rate limits are the caller's: Store checks
// neither. Rejections are sorted by index first.
func (h *Handler) Store(b *Batch) (*Result, error) {
	h.applyContracts(b, true /* count */)
	slices.SortStableFunc(b.Rejected, func(x, y Rejection) int { return x.Index - y.Index })
	res := &Result{Accepted: len(b.Events), Rejected: len(b.Rejected)}
	if len(b.Events) > 0 || len(b.Rejected) > 0 {
		if err := h.sink.AppendEvents(b); err != nil {
			return nil, err
		}
		res.Duplicates = countStored(b)
		res.Accepted -= res.Duplicates
	}
	res.Errors = itemErrors(b, b.Rejected)
	res.Warnings = warnings(b)
	return res, nil
}

// ForEachMember calls fn with the raw key (without quotes, escapes not
// decoded) and raw value of each member of the valid JSON object obj; it
// fails when obj is not an object. Both slices alias obj.
func ForEachMember(obj []byte, fn func(key, val []byte) error) error {
	return forEachMember(obj, fn)
}

// ForEachElement calls fn with each element of the valid JSON array arr.
func ForEachElement(arr []byte, fn func(i int, elem []byte) error) error {
	return forEachElement(arr, fn)
}

// JSONString returns the value of the JSON string raw, or false when raw
// is not a string. Without escapes it aliases raw.
func JSONString(raw []byte) ([]byte, bool) { return jsonString(raw) }

// AppendQuoted appends s as a JSON string.
func AppendQuoted(dst []byte, s string) []byte { return appendQuoted(dst, s) }

// ValidJSON reports whether b is valid JSON nested at most depth levels;
// when it is not, the string says why.
func ValidJSON(b []byte, depth int) (bool, string) {
	if _, ok := nestingDepth(b, depth); !ok {
		return false, "the body is nested deeper than " + strconv.Itoa(depth) + " levels"
	}
	if !validJSON(b) {
		return false, "the body is not valid JSON: " + syntaxError(b)
	}
	return true, ""
}

// KindOf names the JSON type of a raw value, for error messages.
func KindOf(raw []byte) string { return kindOf(raw) }

// Invalid returns a 400 request error naming field.
func Invalid(field, format string, args ...any) error {
	return invalid(field, fmt.Sprintf(format, args...))
}

// Answer writes v as the JSON body of a response with status: the answer
// of every ingest endpoint (Events API, replay, and the SDK-compatible
// ones).
func Answer(ctx *fasthttp.RequestCtx, status int, v any) error {
	out, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("cannot encode answer: %w", err)
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(out)
	return nil
}
