package httpbody

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"trove/apierr"
	"trove/internal/compresstest"
)

// TestRead is the rule table of Read, the one reader every API's body
// goes through: limits as declared, as sent and once decoded, the key
// named in the message, and each Content-Encoding.
func TestRead(t *testing.T) {
	body := []byte(strings.Repeat(testEvent(0)+"\n", 20))
	const key = "some.limit"
	tests := []struct {
		name     string
		encoding string // Content-Encoding sent
		comp     string // compressor, "" for none
		body     []byte
		limit    int
		stream   bool // sent as a body stream, not a whole body
		declared int  // Content-Length declared above the body's, 0 for none
		kind     error
		msg      string // in the error's message
		encoded  bool
	}{
		{name: "plain", body: body, limit: len(body)},
		{name: "identity", encoding: "identity", body: body, limit: len(body)},
		{name: "plain stream", body: body, limit: len(body), stream: true},
		{name: "gzip", encoding: "gzip", comp: "gzip", body: body, limit: len(body), encoded: true},
		{name: "zstd stream", encoding: "zstd", comp: "zstd", body: body, limit: len(body), stream: true, encoded: true},
		{name: "deflate", encoding: "deflate", comp: "zlib", body: body, limit: len(body), encoded: true},
		{name: "over the limit as sent", body: body, limit: len(body) - 1, kind: apierr.TooLarge, msg: "request body is over the limit of " + strconv.Itoa(len(body)-1) + " bytes (some.limit)"},
		{name: "stream cut at the limit", body: body, limit: len(body) - 1, stream: true, kind: apierr.TooLarge, msg: "request body is over the limit"},
		{name: "declared over the limit", body: body, limit: len(body), declared: len(body) + 1, kind: apierr.TooLarge, msg: "request body is " + strconv.Itoa(len(body)+1) + " bytes, over the limit of " + strconv.Itoa(len(body)) + " (some.limit)"},
		{name: "over the limit once decoded", encoding: "gzip", comp: "gzip", body: body, limit: len(body) - 1, kind: apierr.TooLarge, msg: "decompressed request body is over the limit of " + strconv.Itoa(len(body)-1) + " bytes (some.limit)"},
		{name: "unknown encoding", encoding: "br", body: body, limit: len(body), kind: apierr.Unsupported, msg: `Content-Encoding "br" is not supported`},
		{name: "broken gzip", encoding: "gzip", body: body, limit: len(body), kind: apierr.Invalid, msg: "not valid gzip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sent := tt.body
			if tt.comp != "" {
				sent = compresstest.Compress(t, tt.comp, tt.body)
			}
			var ctx fasthttp.RequestCtx
			if tt.encoding != "" {
				ctx.Request.Header.Set("Content-Encoding", tt.encoding)
			}
			if tt.stream {
				ctx.Request.SetBodyStream(bytes.NewReader(sent), -1)
			} else {
				ctx.Request.SetBody(sent)
			}
			if tt.declared > 0 {
				ctx.Request.Header.SetContentLength(tt.declared)
			}
			var bufs Buffers
			got, err := Read(&ctx, &bufs, tt.limit, key)
			if tt.kind != nil {
				if !errors.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.msg) {
					t.Fatalf("Read: %v; want a %v error saying %q", err, tt.kind, tt.msg)
				}
				return
			}
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if !bytes.Equal(got, tt.body) {
				t.Fatalf("Read returned %d bytes that differ from the %d sent", len(got), len(tt.body))
			}
			if bufs.Encoded != tt.encoded {
				t.Fatalf("Encoded = %v; want %v", bufs.Encoded, tt.encoded)
			}
		})
	}
}
