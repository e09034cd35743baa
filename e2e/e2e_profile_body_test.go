package e2e

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// TestE2EProfilesBodies sends User Profiles API bodies in every
// Content-Encoding the Events API takes, and bodies over the limit, sized
// or chunked, as sent or once decompressed: each answers as an event body
// would (202, 413, 415).
func TestE2EProfilesBodies(t *testing.T) {
	t.Parallel()
	const limit = 64 << 10
	cfg := strings.Replace(testConfig, `log_level = "debug"`, "log_level = \"debug\"\n[ingest]\nmax_request_bytes = 65536", 1)
	addr := startServer(t, cfg).addr
	url := "http://" + addr + "/users/profile"
	profile := func(user string, pad int) []byte {
		return []byte(`{"appKey":"` + demoApp + `","user_profiles":[{"customer_id":"` + user + `","custom-pad":"` + strings.Repeat("p", pad) + `"}]}`)
	}
	encoders := map[string]func(io.Writer) io.WriteCloser{
		"gzip": func(w io.Writer) io.WriteCloser { return gzip.NewWriter(w) },
		"zstd": func(w io.Writer) io.WriteCloser { z, _ := zstd.NewWriter(w); return z },
		"deflate": func(w io.Writer) io.WriteCloser {
			z, _ := flate.NewWriter(w, flate.DefaultCompression)
			return z
		},
	}
	compress := func(enc string, b []byte) []byte {
		var out bytes.Buffer
		w := encoders[enc](&out)
		w.Write(b)
		w.Close()
		return out.Bytes()
	}
	// chunked hides the length, so the body arrives as a stream.
	chunked := func(b []byte) io.Reader { return io.MultiReader(bytes.NewReader(b)) }
	auth := "Authorization: Bearer " + backendSecret
	for _, enc := range []string{"gzip", "zstd", "deflate"} {
		r := request(t, "POST", url, bytes.NewReader(compress(enc, profile("u-"+enc, 10))), jsonType, auth, "Content-Encoding: "+enc)
		if r.status != http.StatusAccepted {
			t.Errorf("a %s profile body: %d %s; want 202", enc, r.status, r.body)
		}
		if status, p := getProfile(t, addr, "userId=u-"+enc); status != http.StatusOK || p == nil {
			t.Errorf("the profile sent with %s: %d; want it stored", enc, status)
		}
	}
	// A body that compresses badly, over the limit as sent, chunked: cut
	// at the limit, it is a 413, not a broken gzip stream.
	noise := make([]byte, 2*limit)
	for i := range noise {
		noise[i] = byte(i*7919 + i>>3)
	}
	big := compress("gzip", append(profile("u-big", 0), noise...))
	for _, c := range []struct {
		name string
		body io.Reader
		enc  string
		want int
	}{
		{"sized, over the limit", bytes.NewReader(profile("u-x", 2*limit)), "", http.StatusRequestEntityTooLarge},
		{"chunked, over the limit", chunked(profile("u-x", 2*limit)), "", http.StatusRequestEntityTooLarge},
		{"chunked gzip, over the limit as sent", chunked(big), "gzip", http.StatusRequestEntityTooLarge},
		{"gzip, over the limit once decompressed", bytes.NewReader(compress("gzip", profile("u-x", 4*limit))), "gzip", http.StatusRequestEntityTooLarge},
		{"zstd, over the limit once decompressed", chunked(compress("zstd", profile("u-x", 4*limit))), "zstd", http.StatusRequestEntityTooLarge},
		{"br", bytes.NewReader(profile("u-x", 1)), "br", http.StatusUnsupportedMediaType},
		{"gzip that is not", bytes.NewReader(profile("u-x", 1)), "gzip", http.StatusBadRequest},
	} {
		h := []string{jsonType, auth}
		if c.enc != "" {
			h = append(h, "Content-Encoding: "+c.enc)
		}
		r := request(t, "POST", url, c.body, h...)
		a := decodeAnswer(t, r, c.want)
		if c.want == http.StatusRequestEntityTooLarge && !strings.Contains(a.Message, "over the limit") {
			t.Errorf("%s: message %q; want it to say the body is over the limit", c.name, a.Message)
		}
		if c.want == http.StatusUnsupportedMediaType && a.Field != "Content-Encoding" {
			t.Errorf("%s: field %q; want Content-Encoding", c.name, a.Field)
		}
	}
}
