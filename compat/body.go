package compat

import (
	"bytes"
	"encoding/base64"
	"net/url"

	"github.com/valyala/fasthttp"

	"trove/ingest"
)

// Payload is the JSON a request carries, read by ReadPayload. Bytes is
// valid until Release.
type Payload struct {
	body *ingest.Body
	b    []byte
}

// Bytes returns the JSON text.
func (p *Payload) Bytes() []byte { return p.b }

// Release returns the payload's buffers.
func (p *Payload) Release() {
	if p.body != nil {
		p.body.Release()
	}
	*p = Payload{}
}

// ReadPayload reads the JSON a request carries, the ways these SDKs send
// it: a JSON body (Content-Encoding gzip, zstd or deflate, or PostHog's
// ?compression=gzip-js); a form body or a query string whose member data
// holds the JSON, as sent or in base64 (Mixpanel's, and posthog-js'
// older form). Only the GET query is read for GET.
func (c *Core) ReadPayload(ctx *fasthttp.RequestCtx) (*Payload, error) {
	if string(ctx.Method()) == fasthttp.MethodGet {
		return fromData(ctx.QueryArgs().Peek("data"))
	}
	if len(ctx.Request.Header.ContentEncoding()) == 0 {
		switch string(ctx.QueryArgs().Peek("compression")) {
		case "gzip", "gzip-js":
			ctx.Request.Header.Set("Content-Encoding", "gzip")
		}
	}
	mt := ingest.MediaType(ctx)
	switch mt {
	case "", "application/json", "text/plain", "application/x-www-form-urlencoded":
	default:
		return nil, ingest.UnsupportedType(ctx, "application/json or application/x-www-form-urlencoded")
	}
	body, err := ingest.ReadBodyAnyType(ctx, c.cfg.MaxRequestBytes, "ingest.max_request_bytes")
	if err != nil {
		return nil, err
	}
	raw := bytes.TrimSpace(body.Bytes())
	if len(raw) > 0 && (raw[0] == '{' || raw[0] == '[') {
		return &Payload{body: body, b: raw}, nil
	}
	if mt == "application/x-www-form-urlencoded" || bytes.HasPrefix(raw, []byte("data=")) {
		defer body.Release()
		q, err := url.ParseQuery(string(raw))
		if err != nil {
			return nil, ingest.Invalid("data", "the form body is not valid: %v", err)
		}
		return fromData([]byte(q.Get("data")))
	}
	body.Release()
	return nil, ingest.Invalid("", "the body must be JSON, or a form with data=")
}

// fromData decodes the value of data=: JSON, or JSON in base64 (standard
// or URL-safe alphabet, padded or not).
func fromData(data []byte) (*Payload, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, ingest.Invalid("data", "data is required: the JSON of the message(s), as sent or in base64")
	}
	if data[0] == '{' || data[0] == '[' {
		return &Payload{b: bytes.Clone(data)}, nil
	}
	// A '+' of standard base64 in a query that was not escaped arrives as a space.
	data = bytes.ReplaceAll(data, []byte(" "), []byte("+"))
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if dec, err := enc.DecodeString(string(data)); err == nil {
			dec = bytes.TrimSpace(dec)
			if len(dec) > 0 && (dec[0] == '{' || dec[0] == '[') {
				return &Payload{b: dec}, nil
			}
		}
	}
	return nil, ingest.Invalid("data", "data must be JSON or base64 of JSON")
}
