package web_test

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"

	"trove/internal/testutil"
	"trove/web"
)

// logLines decodes the server's JSON log lines.
func logLines(t *testing.T, log string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		var l map[string]any
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("log line %q is not JSON: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out
}

// withID returns the lines that name request id.
func withID(lines []map[string]any, id string) []map[string]any {
	var out []map[string]any
	for _, l := range lines {
		if l["request_id"] == id {
			out = append(out, l)
		}
	}
	return out
}

// TestRequestLog5xxLoggedOnce checks that a 500's error is logged once, by
// writeError with the request id, and that the request line names the
// request without repeating the error; a 4xx line carries its error.
func TestRequestLog5xxLoggedOnce(t *testing.T) {
	srv := startServer(t, web.Config{}, web.Handlers{
		Events: func(ctx *fasthttp.RequestCtx) error {
			return errors.New("disk on fire")
		},
	})
	resp := do(t, "POST", srv.url+"/v1/events", strings.NewReader("{}"), map[string]string{"X-Request-Id": "r-500"})
	if resp.status != http.StatusInternalServerError || resp.header.Get("X-Request-Id") != "r-500" {
		t.Fatalf("status %d, X-Request-Id %q; want 500, r-500", resp.status, resp.header.Get("X-Request-Id"))
	}
	lines := withID(logLines(t, srv.log.String()), "r-500")
	if len(lines) != 2 {
		t.Fatalf("%d lines name the request; want 2 (the error, the request): %v", len(lines), lines)
	}
	if lines[0]["msg"] != "request failed" || lines[0]["level"] != "ERROR" || lines[0]["err"] != "disk on fire" {
		t.Errorf("first line %v; want the error, once", lines[0])
	}
	if l := lines[1]; l["msg"] != "request" || l["level"] != "WARN" || l["status"] != float64(500) || l["err"] != nil {
		t.Errorf("request line %v; want WARN, status 500, no err", l)
	}
	if n := strings.Count(srv.log.String(), "disk on fire"); n != 1 {
		t.Errorf("the error is in the log %d times; want 1", n)
	}

	resp = do(t, "POST", srv.url+"/v1/events", strings.NewReader("{}"), map[string]string{"Authorization": "Bearer nope", "X-Request-Id": "r-401"})
	if resp.status != http.StatusUnauthorized {
		t.Fatalf("status %d; want 401", resp.status)
	}
	lines = withID(logLines(t, srv.log.String()), "r-401")
	if len(lines) != 1 || lines[0]["level"] != "INFO" || lines[0]["err"] == nil || lines[0]["token"] != nil {
		t.Errorf("401 lines %v; want one INFO line with err and no token", lines)
	}
	if strings.Contains(srv.log.String(), "Bearer nope") {
		t.Errorf("the log holds the credentials")
	}
}

// TestRequestLogProbesAtDebug checks that health, readiness and metrics
// requests do not log at info, and that /metrics answers in the
// Prometheus text format with the server's own series appended.
func TestRequestLogProbesAtDebug(t *testing.T) {
	srv := startServer(t, web.Config{Metrics: func(w io.Writer) {
		io.WriteString(w, "trove_test_store_series 42\n")
	}}, web.Handlers{})
	srv.SetReady(true)
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if resp := do(t, "GET", srv.url+p, nil, nil); resp.status != http.StatusOK {
			t.Fatalf("GET %s: status %d; want 200", p, resp.status)
		}
	}
	for _, l := range logLines(t, srv.log.String()) {
		if l["msg"] == "request" {
			t.Errorf("a probe logged at info: %v", l)
		}
	}
	resp := do(t, "GET", srv.url+"/metrics", nil, nil)
	body := string(resp.body)
	for _, want := range []string{
		"trove_test_store_series 42\n",
		`trove_http_requests_total{method="GET",route="/healthz",code="200"} `,
		`trove_http_request_duration_seconds_count{method="GET",route="/readyz"} `,
		"go_goroutines ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if ct := resp.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("/metrics Content-Type %q; want text/plain; version=0.0.4", ct)
	}
}

// TestRequestLogStreamEnd checks that a streamed body that reports its end
// (OnDone) is logged when it ends, with its size and the error that broke
// it off.
func TestRequestLogStreamEnd(t *testing.T) {
	body := &doneBody{r: strings.NewReader(strings.Repeat("line\n", 1000)), fail: errors.New("store went away")}
	srv := startServer(t, web.Config{}, web.Handlers{ExportEvents: func(ctx *fasthttp.RequestCtx) error {
		ctx.SetBodyStream(body, -1)
		return nil
	}})
	req, _ := http.NewRequest("GET", srv.url+"/v1/export/events", nil)
	req.Header.Set("Authorization", "Bearer "+allScopes)
	req.Header.Set("X-Request-Id", "r-stream")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Errorf("read the whole body (%d bytes) without an error; want a broken transfer", len(got))
	}
	var lines []map[string]any
	testutil.WaitFor(t, 10*time.Second, func() error {
		if lines = withID(logLines(t, srv.log.String()), "r-stream"); len(lines) == 0 {
			return errors.New("no log line for the stream")
		}
		return nil
	})
	if len(lines) != 1 {
		t.Fatalf("%d lines for the stream; want 1: %v", len(lines), lines)
	}
	l := lines[0]
	if l["level"] != "WARN" || l["bytes_out"] != float64(5000) || !strings.Contains(l["err"].(string), "store went away") || l["token"] != "all" {
		t.Errorf("stream line %v; want WARN, bytes_out 5000, the error, token all", l)
	}
}

// doneBody is a streamed body that can report its end, as export's do.
type doneBody struct {
	r    io.Reader
	fail error
	fn   func(int64, error)
}

func (b *doneBody) OnDone(fn func(int64, error)) { b.fn = fn }
func (b *doneBody) SupportsBodyWriteTo() bool    { return true }
func (b *doneBody) Read(p []byte) (int, error)   { return b.r.Read(p) }
func (b *doneBody) WriteTo(w io.Writer) (int64, error) {
	n, err := io.Copy(w, b.r)
	if err == nil {
		err = b.fail
	}
	b.fn(n, err)
	return n, err
}
