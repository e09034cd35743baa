package httpbody

import (
	"bytes"
	"errors"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"trove/apierr"
)

// FuzzDecompress feeds arbitrary bytes, and arbitrary bytes compressed, to
// each Content-Encoding with a small limit: decompress never panics, never
// returns more than the limit, and fails only with a request error (400,
// 413 or 415), so that a hostile body costs at most the limit.
func FuzzDecompress(f *testing.F) {
	f.Add([]byte(testEvent(0)), uint8(0), uint16(1024), true)
	f.Add(bytes.Repeat([]byte{'a'}, 4096), uint8(1), uint16(100), true) // a small bomb
	f.Add([]byte("\x1f\x8b\x08\x00garbage"), uint8(0), uint16(64), false)
	f.Add([]byte("\x28\xb5\x2f\xfdgarbage"), uint8(1), uint16(64), false)
	f.Fuzz(func(t *testing.T, data []byte, enc uint8, limit uint16, compress bool) {
		encodings := []string{"gzip", "zstd", "deflate", "br"}
		e := encodings[int(enc)%len(encodings)]
		body := data
		if compress {
			var buf bytes.Buffer
			switch e {
			case "gzip":
				w := gzip.NewWriter(&buf)
				w.Write(data)
				w.Close()
				body = buf.Bytes()
			case "zstd":
				w, _ := zstd.NewWriter(&buf)
				w.Write(data)
				w.Close()
				body = buf.Bytes()
			}
		}
		out, err := Decompress(nil, []byte(e), body, int(limit))
		if err != nil {
			var re *apierr.Error
			if !errors.As(err, &re) {
				t.Fatalf("%s: error %T %v; want a *Error", e, err, err)
			}
			if e == "br" && !errors.Is(err, apierr.Unsupported) {
				t.Fatalf("br: %v; want unsupported media type", err)
			}
			return
		}
		if len(out) > int(limit) {
			t.Fatalf("%s: %d bytes out of a %d limit", e, len(out), limit)
		}
		if compress && (e == "gzip" || e == "zstd") && !bytes.Equal(out, data) {
			t.Fatalf("%s round trip: got %d bytes, want %d", e, len(out), len(data))
		}
	})
}
