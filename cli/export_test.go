package cli

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/goccy/go-json"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// fakeServer imitates /v1/export/{events,profiles}: NDJSON lines,
// X-Trove-Watermark, zstd or gzip as Accept-Encoding asks, JSON errors for
// bad parameters, and, with abort set, a stream cut off after half the
// lines by closing the connection without the terminating chunk.
type fakeServer struct {
	*httptest.Server
	lines     []string
	watermark uint64
	abort     bool

	mu   sync.Mutex
	reqs []*http.Request
}

func newFakeServer(t *testing.T, n int) *fakeServer {
	t.Helper()
	f := &fakeServer{watermark: 42}
	for i := range n {
		f.lines = append(f.lines, `{"type":"event","event":"e`+strconv.Itoa(i%7)+`","userId":"u`+strconv.Itoa(i)+`","eventTime":"2026-11-01T00:00:00Z","attributes":{"pad":"`+strings.Repeat("x", i%50)+`"}}`)
	}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeServer) lastRequest(t *testing.T) *http.Request {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) == 0 {
		t.Fatal("the server got no request")
	}
	return f.reqs[len(f.reqs)-1]
}

func writeAPIError(w http.ResponseWriter, status int, field, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]string{"error": "invalid", "message": msg, "field": field})
	w.Write(b)
}

func (f *fakeServer) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.reqs = append(f.reqs, r.Clone(context.Background()))
	f.mu.Unlock()
	if r.URL.Path != "/v1/export/events" && r.URL.Path != "/v1/export/profiles" {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	if q.Get("appKey") == "" {
		writeAPIError(w, 400, "appKey", "appKey is required")
		return
	}
	if q.Get("appKey") == "secret" && r.Header.Get("Authorization") != "Bearer t0k" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(401)
		w.Write([]byte(`{"error":"unauthorized","message":"a token with export scope is required"}`))
		return
	}
	lines := f.lines
	for _, p := range []string{"since", "until", "limit"} {
		if v := q.Get(p); v != "" {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				writeAPIError(w, 400, p, p+" must be a non-negative integer, got "+strconv.Quote(v))
				return
			}
			if p == "limit" && n < uint64(len(lines)) {
				lines = lines[:n]
			}
		}
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("X-Trove-Watermark", strconv.FormatUint(f.watermark, 10))
	var body io.Writer = w
	var closer func() error
	switch ae := r.Header.Get("Accept-Encoding"); {
	case strings.Contains(ae, "zstd"):
		w.Header().Set("Content-Encoding", "zstd")
		e, _ := zstd.NewWriter(w)
		body, closer = e, e.Close
	case strings.Contains(ae, "gzip"):
		w.Header().Set("Content-Encoding", "gzip")
		g := gzip.NewWriter(w)
		body, closer = g, g.Close
	}
	w.WriteHeader(200)
	if f.abort {
		for _, l := range lines[:len(lines)/2] {
			io.WriteString(body, l+"\n")
		}
		if fl, ok := body.(interface{ Flush() error }); ok {
			fl.Flush()
		}
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			panic(err)
		}
		conn.Close() // no terminating chunk: the client sees an unexpected EOF
		return
	}
	for _, l := range lines {
		io.WriteString(body, l+"\n")
	}
	if closer != nil {
		closer()
	}
}

// exportRun runs Export and returns the exit status, stdout and stderr.
func exportRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Export(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func (f *fakeServer) want() string { return strings.Join(f.lines, "\n") + "\n" }

// onlyFile checks that dir holds exactly name: no temporary files left.
func onlyFile(t *testing.T, dir, name string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) != 1 || names[0] != name {
		t.Fatalf("directory holds %q, want only %q", names, name)
	}
}

func TestExportPlainFile(t *testing.T) {
	f := newFakeServer(t, 500)
	dir := t.TempDir()
	out := filepath.Join(dir, "events.ndjson")
	code, stdout, stderr := exportRun(t, "events", "--server", f.URL, "--app", "demo", "-o", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if stdout != "" {
		t.Errorf("stdout = %q, want nothing", stdout)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != f.want() {
		t.Errorf("file holds %d bytes, want the %d lines of the server", len(got), len(f.lines))
	}
	onlyFile(t, dir, "events.ndjson")
	if ae := f.lastRequest(t).Header.Get("Accept-Encoding"); ae != "zstd" {
		t.Errorf("Accept-Encoding = %q, want zstd (decompressed on the fly)", ae)
	}
	want := "exported 500 events (" + strconv.Itoa(len(got)) + " bytes) to " + out +
		"; watermark 42 — continue with: trove export events --server " + f.URL + " --app demo --since 42\n"
	if stderr != want {
		t.Errorf("stderr =\n%q\nwant\n%q", stderr, want)
	}
}

func TestExportCompressedFiles(t *testing.T) {
	f := newFakeServer(t, 300)
	for _, tc := range []struct {
		name, enc string
		magic     []byte
		decode    func(io.Reader) (io.Reader, error)
	}{
		{"out.ndjson.zst", "zstd", []byte{0x28, 0xb5, 0x2f, 0xfd}, func(r io.Reader) (io.Reader, error) { return zstd.NewReader(r) }},
		{"out.zst", "zstd", []byte{0x28, 0xb5, 0x2f, 0xfd}, func(r io.Reader) (io.Reader, error) { return zstd.NewReader(r) }},
		{"out.ndjson.gz", "gzip", []byte{0x1f, 0x8b}, func(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) }},
		{"out.gz", "gzip", []byte{0x1f, 0x8b}, func(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, tc.name)
			code, _, stderr := exportRun(t, "events", "--server", f.URL, "--app", "demo", "-o", out)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if ae := f.lastRequest(t).Header.Get("Accept-Encoding"); ae != tc.enc {
				t.Errorf("Accept-Encoding = %q, want %q", ae, tc.enc)
			}
			raw, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(raw, tc.magic) {
				t.Fatalf("%s does not start with the %s magic: % x", tc.name, tc.enc, raw[:min(8, len(raw))])
			}
			r, err := tc.decode(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			plain, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if string(plain) != f.want() {
				t.Errorf("%s decodes to %d bytes, not the server's lines", tc.name, len(plain))
			}
			onlyFile(t, dir, tc.name)
			if !strings.Contains(stderr, "exported 300 events ("+strconv.Itoa(len(raw))+" bytes) to "+out+"; watermark 42") {
				t.Errorf("stderr = %q", stderr)
			}
		})
	}
}

func TestExportStdout(t *testing.T) {
	f := newFakeServer(t, 20)
	for _, args := range [][]string{{}, {"-o", "-"}} {
		code, stdout, stderr := exportRun(t, append([]string{"events", "-server", f.URL, "-app", "demo"}, args...)...)
		if code != 0 {
			t.Fatalf("%q: exit %d: %s", args, code, stderr)
		}
		if stdout != f.want() {
			t.Errorf("%q: stdout = %q", args, stdout)
		}
		if !strings.HasPrefix(stderr, "exported 20 events ("+strconv.Itoa(len(stdout))+" bytes) to stdout; watermark 42") {
			t.Errorf("%q: stderr = %q", args, stderr)
		}
	}
}

func TestExportParamsPassedThrough(t *testing.T) {
	f := newFakeServer(t, 10)
	code, _, stderr := exportRun(t, "events", "--server", f.URL, "--app", "demo", "--token", "t0k",
		"--since", "7", "--until", "40", "--from", "2026-11-01", "--to", "2026-11-02T00:00:00Z",
		"--event", "a,b", "--user", "u 1", "--limit", "100")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	r := f.lastRequest(t)
	want := url.Values{"appKey": {"demo"}, "since": {"7"}, "until": {"40"}, "from": {"2026-11-01"},
		"to": {"2026-11-02T00:00:00Z"}, "event": {"a,b"}, "userId": {"u 1"}, "limit": {"100"}}
	if got := r.URL.Query(); got.Encode() != want.Encode() {
		t.Errorf("query = %v, want %v", got, want)
	}
	if r.URL.Path != "/v1/export/events" {
		t.Errorf("path = %q", r.URL.Path)
	}
	if a := r.Header.Get("Authorization"); a != "Bearer t0k" {
		t.Errorf("Authorization = %q", a)
	}
	// until 40 is below the watermark 42: the next pull starts at 40.
	if !strings.Contains(stderr, "continue with: trove export events --server "+f.URL+" --app demo --from 2026-11-01 --to 2026-11-02T00:00:00Z --event a,b --user 'u 1' --since 40\n") {
		t.Errorf("stderr = %q", stderr)
	}
	if strings.Contains(stderr, "t0k") {
		t.Errorf("stderr shows the token: %q", stderr)
	}

	code, _, stderr = exportRun(t, "profiles", "--server", f.URL, "--app", "demo", "--since", "9", "--updated-since", "2026-01-01")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	r = f.lastRequest(t)
	if r.URL.Path != "/v1/export/profiles" || r.URL.Query().Encode() != "appKey=demo&since=9&updatedSince=2026-01-01" {
		t.Errorf("profiles request = %s", r.URL)
	}
	if !strings.Contains(stderr, "exported 10 profiles") || !strings.Contains(stderr, "continue with: trove export profiles --server "+f.URL+" --app demo --updated-since 2026-01-01 --since 42\n") {
		t.Errorf("stderr = %q", stderr)
	}
}

func TestExportTokenFromEnv(t *testing.T) {
	f := newFakeServer(t, 3)
	t.Setenv("TROVE_TOKEN", "t0k")
	code, _, stderr := exportRun(t, "events", "--server", f.URL, "--app", "secret")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if a := f.lastRequest(t).Header.Get("Authorization"); a != "Bearer t0k" {
		t.Errorf("Authorization = %q", a)
	}
	// -h lists the flags and never shows the token.
	code, stdout, stderr := exportRun(t, "events", "-h")
	if all := stdout + stderr; code != 0 || strings.Contains(all, "t0k") || !strings.Contains(all, "-until") || strings.Contains(all, "-updated-since") {
		t.Errorf("-h: exit %d, output %q", code, stdout+stderr)
	}
}

func TestExportServerError(t *testing.T) {
	f := newFakeServer(t, 3)
	dir := t.TempDir()
	out := filepath.Join(dir, "x.ndjson")
	code, stdout, stderr := exportRun(t, "events", "--server", f.URL, "--app", "demo", "--since", "abc", "-o", out)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if want := "trove export: since must be a non-negative integer, got \"abc\" (field since)\n"; stderr != want {
		t.Errorf("stderr = %q, want %q", stderr, want)
	}
	if stdout != "" {
		t.Errorf("stdout = %q", stdout)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("a failed export left %d files", len(ents))
	}
	// No field: just the message.
	code, _, stderr = exportRun(t, "events", "--server", f.URL, "--app", "secret")
	if code != 1 || stderr != "trove export: a token with export scope is required\n" {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestExportAborted(t *testing.T) {
	f := newFakeServer(t, 2000)
	f.abort = true
	for _, name := range []string{"events.ndjson", "events.ndjson.zst", "events.ndjson.gz"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, name)
			code, _, stderr := exportRun(t, "events", "--server", f.URL, "--app", "demo", "--since", "5", "-o", out)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("a broken transfer left %v", ents)
			}
			for _, want := range []string{"trove export: the export was incomplete", "unexpected EOF", "nothing was written to " + out,
				"trove export events --server " + f.URL + " --app demo --since 5 -o " + out} {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr)
				}
			}
			if strings.Contains(stderr, "exported") {
				t.Errorf("stderr reports success:\n%s", stderr)
			}
		})
	}
	// To stdout the partial bytes are out already: say so.
	code, _, stderr := exportRun(t, "events", "--server", f.URL, "--app", "demo")
	if code != 1 || !strings.Contains(stderr, "stdout got a partial export") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestExportUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	code, _, stderr := exportRun(t, "events", "--server", "http://"+addr, "--app", "demo", "-o", filepath.Join(dir, "x.ndjson"))
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, want := range []string{"cannot reach the server at http://" + addr, "Is `trove serve` running there?", "--server"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q: %s", want, stderr)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left %v", ents)
	}
}

func TestExportBadUsage(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"things", "--app", "demo"},
		{"events"},
		{"events", "--app", "demo", "--nope"},
		{"profiles", "--app", "demo", "--from", "2026-01-01"},
		{"events", "--app", "demo", "extra"},
	} {
		code, stdout, stderr := exportRun(t, args...)
		if code != 2 {
			t.Errorf("%q: exit %d, want 2 (stdout %q, stderr %q)", args, code, stdout, stderr)
		}
		if stderr == "" {
			t.Errorf("%q: nothing on stderr", args)
		}
	}
	if code, stdout, _ := exportRun(t, "--help"); code != 0 || !strings.Contains(stdout, "Usage: trove export") {
		t.Errorf("--help: exit %d, stdout %q", code, stdout)
	}
}
