package ingest

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"

	"trove/apierr"
	"trove/auth"
	"trove/internal/authtest"
	"trove/internal/compresstest"
)

// recordingSink is a fake eventSink that copies what it is given, since a
// Batch's slices are borrowed, and marks the messageIds in dups as
// duplicates.
type recordingSink struct {
	dups map[string]bool
	err  error

	mu struct {
		sync.Mutex
		calls    int
		stored   []string // stored forms
		apps     []string // each stored event's app
		rejected []Rejection
	}
}

func (s *recordingSink) AppendEvents(b *Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.calls++
	if s.err != nil {
		return s.err
	}
	for i := range b.Events {
		e := &b.Events[i]
		if s.dups[string(e.MessageID)] {
			e.Duplicate = true
			continue
		}
		s.mu.stored = append(s.mu.stored, string(b.appendStored(nil, e, uint64(len(s.mu.stored)))))
		s.mu.apps = append(s.mu.apps, e.AppKey)
	}
	for _, r := range b.Rejected {
		r.Raw = bytes.Clone(r.Raw)
		s.mu.rejected = append(s.mu.rejected, r)
	}
	return nil
}

func (s *recordingSink) snapshot() (calls int, stored, apps []string, rejected []Rejection) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.calls, append([]string(nil), s.mu.stored...), append([]string(nil), s.mu.apps...), append([]Rejection(nil), s.mu.rejected...)
}

// Test credentials: demo takes events with its appKey alone; locked needs
// a token, which ingestToken is for it and otherToken is not.
const (
	lockedAppKey = "locked-app-key-0000001"
	ingestToken  = "s3cret-ingest"
	otherToken   = "s3cret-other"
)

func testRegistry() *auth.Registry {
	return authtest.NewRegistry([]auth.App{{Name: "demo", AppKey: testAppKey}, {Name: "locked", AppKey: lockedAppKey, RequireToken: true}},
		authtest.Token{Secret: ingestToken, Name: "ingest", Scopes: auth.ScopeIngest, Apps: []string{lockedAppKey}},
		authtest.Token{Secret: otherToken, Name: "other", Scopes: auth.ScopeIngest, Apps: []string{testAppKey}})
}

// testServer serves the events endpoints of any number of Handlers, each
// under its own path, on 127.0.0.1:0, behind the smallest stand-in for
// web/: credentials, then the error-to-status mapping. One server serves a
// whole test, since shutting one down takes a tick of fasthttp's 100 ms
// poll.
type testServer struct {
	addr     string
	handlers sync.Map // path → *Handler
	n        atomic.Int64
}

func newTestServer(t *testing.T, reg *auth.Registry) *testServer {
	t.Helper()
	ts := &testServer{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.addr = ln.Addr().String()
	srv := &fasthttp.Server{
		StreamRequestBody: true,
		Handler: func(ctx *fasthttp.RequestCtx) {
			err := func() error {
				h, ok := ts.handlers.Load(string(ctx.Path()))
				if !ok {
					return errors.New("no handler at " + string(ctx.Path()))
				}
				if secret, ok, err := auth.Credential(ctx.Request.Header.Peek("Authorization")); err != nil {
					return err
				} else if ok {
					tok, err := reg.Authenticate(secret)
					if err != nil {
						return err
					}
					auth.WithToken(ctx, tok)
				}
				return h.(*Handler).Events(ctx)
			}()
			if err != nil {
				writeTestError(ctx, err)
			}
		},
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		http.DefaultClient.CloseIdleConnections()
		if err := srv.Shutdown(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		// Shutdown misses a listener that Serve has not taken yet (a test
		// that sends nothing ends that fast); closing it ends Serve.
		ln.Close()
		if err := <-done; err != nil && !errors.Is(err, net.ErrClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return ts
}

// url serves a new Handler with cfg and sink, on the fixed test clock, and
// returns its URL.
func (ts *testServer) url(cfg Config, reg *auth.Registry, sink eventSink) string {
	h := NewHandler(cfg, reg, sink)
	h.now = func() time.Time { return testNow }
	path := "/v1/events/" + strconv.FormatInt(ts.n.Add(1), 10)
	ts.handlers.Store(path, h)
	return "http://" + ts.addr + path
}

func writeTestError(ctx *fasthttp.RequestCtx, err error) {
	status := fasthttp.StatusInternalServerError
	switch {
	case errors.Is(err, auth.ErrUnauthenticated):
		status = fasthttp.StatusUnauthorized
	case errors.Is(err, auth.ErrForbidden):
		status = fasthttp.StatusForbidden
	case errors.Is(err, apierr.TooLarge):
		status = fasthttp.StatusRequestEntityTooLarge
		ctx.SetConnectionClose() // the rest of the body may be on the wire
	case errors.Is(err, apierr.Unsupported):
		status = fasthttp.StatusUnsupportedMediaType
	case errors.Is(err, apierr.Invalid):
		status = fasthttp.StatusBadRequest
	}
	body := map[string]any{"message": err.Error()}
	var re *apierr.Error
	if errors.As(err, &re) {
		if re.Field != "" {
			body["field"] = re.Field
		}
		for _, k := range []string{"accepted", "rejected", "errors"} {
			if v, ok := re.Details[k]; ok {
				body[k] = v
			}
		}
	}
	out, _ := json.Marshal(body)
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(out)
}

// answer is a decoded response body, success or error.
type answer struct {
	Accepted   int         `json:"accepted"`
	Duplicates int         `json:"duplicates"`
	Rejected   int         `json:"rejected"`
	Errors     []ItemError `json:"errors"`
	Validated  bool        `json:"validated"`
	Message    string      `json:"message"`
	Field      string      `json:"field"`
}

// request is one call to the events endpoint.
type request struct {
	contentType string // "application/json" when empty
	encoding    string
	token       string
	query       string
	body        []byte
	chunked     bool // no Content-Length
}

func post(t *testing.T, url string, r request) (int, []byte) {
	t.Helper()
	var body io.Reader = bytes.NewReader(r.body)
	if r.chunked {
		body = io.MultiReader(body) // hides the length
	}
	req, err := http.NewRequest("POST", url+r.query, body)
	if err != nil {
		t.Fatal(err)
	}
	ct := r.contentType
	if ct == "" {
		ct = "application/json"
	}
	req.Header.Set("Content-Type", ct)
	if r.encoding != "" {
		req.Header.Set("Content-Encoding", r.encoding)
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("response Content-Type %q; want application/json", ct)
	}
	return resp.StatusCode, out
}

func TestHandler(t *testing.T) {
	ev := testEvent()
	bad := testEvent(with("messageId", `"m-bad"`), with("event", `""`))
	tests := []struct {
		name       string
		cfg        func(*Config)
		sinkErr    error
		dups       []string
		req        request
		wantStatus int
		wantBody   string // exact, when set
		wantMsg    string // a substring of the body
		wantAnswer *answer
		wantStored []string // stored forms; nil to skip
		wantCalls  int      // sink calls
		wantQuar   []string // quarantined "app/field"
	}{
		{
			name:       "one event",
			req:        request{body: []byte(ev)},
			wantStatus: 202,
			wantBody:   `{"accepted":1,"duplicates":0,"rejected":0,"errors":[]}`,
			wantStored: []string{`{"type":"event","event":"Signed Up","userId":"u1","eventTime":"2026-11-01T11:59:00Z","appKey":"` + testAppKey +
				`","context":{"ip":"127.0.0.1"},` + testReceivedAt + `,"messageId":"trv-0000000000000000"}`},
			wantCalls: 1,
		},
		{
			name:       "mixed batch stores the valid ones and names the bad one",
			req:        request{body: []byte(`[` + ev + `,` + bad + `,` + ev + `]`)},
			wantStatus: 202,
			wantBody:   `{"accepted":2,"duplicates":0,"rejected":1,"errors":[{"index":1,"messageId":"m-bad","field":"event","message":"event must be 1 to 255 characters, got 0"}]}`,
			wantCalls:  1,
			wantQuar:   []string{testAppKey + "/event"},
		},
		{
			name: "NDJSON names lines",
			req: request{contentType: "application/x-ndjson",
				body: []byte(ev + "\n\n" + bad + "\r\n" + ev)},
			wantStatus: 202,
			wantBody:   `{"accepted":2,"duplicates":0,"rejected":1,"errors":[{"line":3,"messageId":"m-bad","field":"event","message":"event must be 1 to 255 characters, got 0"}]}`,
			wantCalls:  1,
			wantQuar:   []string{testAppKey + "/event"},
		},
		{
			name: "duplicates counted apart",
			dups: []string{"m-dup"},
			req: request{body: []byte(`[` + testEvent(with("messageId", `"m-dup"`)) + `,` +
				testEvent(with("messageId", `"m-new"`)) + `]`)},
			wantStatus: 202,
			wantBody:   `{"accepted":1,"duplicates":1,"rejected":0,"errors":[]}`,
			wantCalls:  1,
		},
		{
			name:       "all invalid is a 400 with every error, quarantined",
			req:        request{body: []byte(`[` + bad + `,` + testEvent(without("userId")) + `]`)},
			wantStatus: 400,
			wantAnswer: &answer{Rejected: 2, Field: "event", Message: "event must be 1 to 255 characters, got 0", Errors: []ItemError{
				{Index: ptr(0), MessageID: "m-bad", Field: "event", Message: "event must be 1 to 255 characters, got 0"},
				{Index: ptr(1), Field: "userId", Message: "userId is required"},
			}},
			wantCalls: 1,
			wantQuar:  []string{testAppKey + "/event", testAppKey + "/userId"},
		},
		{
			name:       "a single bad event is a 400",
			req:        request{body: []byte(bad)},
			wantStatus: 400,
			wantAnswer: &answer{Rejected: 1, Field: "event", Message: "event must be 1 to 255 characters, got 0", Errors: []ItemError{
				{Index: ptr(0), MessageID: "m-bad", Field: "event", Message: "event must be 1 to 255 characters, got 0"},
			}},
			wantCalls: 1,
			wantQuar:  []string{testAppKey + "/event"},
		},
		{
			name:       "all too large is a 413",
			cfg:        func(c *Config) { c.MaxEventBytes = 50 },
			req:        request{body: []byte(`[` + ev + `,` + ev + `]`)},
			wantStatus: 413,
			wantCalls:  1,
		},
		{
			name:       "errors listed up to 100",
			req:        request{body: []byte(`[` + ev + strings.Repeat(`,`+bad, 150) + `]`)},
			wantStatus: 202,
			wantAnswer: &answer{Accepted: 1, Rejected: 150},
			wantCalls:  1,
		},
		{
			name:       "bad event with an unknown app is quarantined under the request's app",
			req:        request{body: []byte(`[` + ev + `,` + testEvent(with("appKey", `"nobody"`), without("userId")) + `]`)},
			wantStatus: 202,
			wantAnswer: &answer{Accepted: 1, Rejected: 1},
			wantCalls:  1,
			wantQuar:   []string{testAppKey + "/userId"},
		},
		{
			name:       "empty body",
			req:        request{},
			wantStatus: 400,
		},
		{
			name:       "truncated array",
			req:        request{body: []byte(`[` + ev + `,{"type"`)},
			wantStatus: 400,
		},
		{
			name:       "text/html",
			req:        request{contentType: "text/html", body: []byte(ev)},
			wantStatus: 415,
			wantAnswer: &answer{Field: "Content-Type"},
		},
		{
			name:       "text/plain read as JSON",
			req:        request{contentType: "text/plain;charset=UTF-8", body: []byte(ev)},
			wantStatus: 202,
			wantCalls:  1,
		},
		{
			name:       "br",
			req:        request{encoding: "br", body: []byte(ev)},
			wantStatus: 415,
			wantAnswer: &answer{Field: "Content-Encoding"},
		},
		{
			name:       "identity",
			req:        request{encoding: "identity", body: []byte(ev)},
			wantStatus: 202,
			wantCalls:  1,
		},
		{
			name:       "gzip",
			req:        request{encoding: "gzip", body: compresstest.Compress(t, "gzip", []byte(`[`+ev+`,`+ev+`]`))},
			wantStatus: 202,
			wantBody:   `{"accepted":2,"duplicates":0,"rejected":0,"errors":[]}`,
			wantCalls:  1,
		},
		{
			name:       "zstd",
			req:        request{encoding: "zstd", body: compresstest.Compress(t, "zstd", []byte(ev))},
			wantStatus: 202,
			wantCalls:  1,
		},
		{
			name:       "deflate",
			req:        request{encoding: "deflate", body: compresstest.Compress(t, "zlib", []byte(ev))},
			wantStatus: 202,
			wantCalls:  1,
		},
		{
			name:       "corrupt gzip",
			req:        request{encoding: "gzip", body: []byte("\x1f\x8b\x08\x00garbage")},
			wantStatus: 400,
			wantMsg:    "body is not valid gzip",
		},
		{
			name:       "Content-Length over the limit",
			cfg:        func(c *Config) { c.MaxRequestBytes = 1024 },
			req:        request{body: []byte(`[` + strings.Repeat(ev+`,`, 20) + ev + `]`)},
			wantStatus: 413,
			wantMsg:    "request body is 2521 bytes, over the limit of 1024 (ingest.max_request_bytes)",
		},
		{
			name:       "chunked body over the limit",
			cfg:        func(c *Config) { c.MaxRequestBytes = 1024 },
			req:        request{chunked: true, body: []byte(`[` + strings.Repeat(ev+`,`, 20) + ev + `]`)},
			wantStatus: 413,
			wantMsg:    "request body is over the limit of 1024 bytes (ingest.max_request_bytes)",
		},
		{
			name:       "chunked body under the limit",
			req:        request{chunked: true, body: []byte(ev)},
			wantStatus: 202,
			wantCalls:  1,
		},
		{
			name:       "gzip body over the limit once decompressed",
			cfg:        func(c *Config) { c.MaxRequestBytes = 1024 },
			req:        request{encoding: "gzip", body: compresstest.Compress(t, "gzip", []byte(`[`+strings.Repeat(ev+`,`, 20)+ev+`]`))},
			wantStatus: 413,
			wantMsg:    "decompressed request body is over the limit of 1024 bytes",
		},
		{
			name:       "unknown appKey",
			req:        request{body: []byte(testEvent(with("appKey", `"nobody"`)))},
			wantStatus: 401,
			wantMsg:    `unknown appKey \"nobody\"`,
		},
		{
			name:       "unknown appKey beside a known one",
			req:        request{body: []byte(`[` + ev + `,` + testEvent(with("appKey", `"nobody"`)) + `]`)},
			wantStatus: 401,
		},
		{
			name:       "all invalid, unknown appKey",
			req:        request{body: []byte(testEvent(with("appKey", `"nobody"`), without("userId")))},
			wantStatus: 401,
		},
		{
			name:       "app that requires a token, none sent",
			req:        request{body: []byte(testEvent(with("appKey", `"`+lockedAppKey+`"`)))},
			wantStatus: 401,
			wantMsg:    "needs a token",
		},
		{
			name:       "app that requires a token, token sent",
			req:        request{token: ingestToken, body: []byte(testEvent(with("appKey", `"`+lockedAppKey+`"`)))},
			wantStatus: 202,
			wantCalls:  1,
		},
		{
			name:       "token for another app",
			req:        request{token: otherToken, body: []byte(testEvent(with("appKey", `"`+lockedAppKey+`"`)))},
			wantStatus: 403,
		},
		{
			name:       "bad event naming an app the request may not send to",
			req:        request{body: []byte(`[` + ev + `,` + testEvent(with("appKey", `"`+lockedAppKey+`"`), without("type")) + `]`)},
			wantStatus: 401,
		},
		{
			name:       "batch mixing apps, token covers one",
			req:        request{token: otherToken, body: []byte(`[` + ev + `,` + testEvent(with("appKey", `"`+lockedAppKey+`"`)) + `]`)},
			wantStatus: 403,
		},
		{
			name:       "unknown token",
			req:        request{token: "wrong", body: []byte(ev)},
			wantStatus: 401,
		},
		{
			name:       "validate stores nothing",
			req:        request{query: "?validate=1", body: []byte(`[` + ev + `,` + bad + `]`)},
			wantStatus: 202,
			wantBody:   `{"accepted":1,"duplicates":0,"rejected":1,"errors":[{"index":1,"messageId":"m-bad","field":"event","message":"event must be 1 to 255 characters, got 0"}],"validated":true}`,
		},
		{
			name:       "validate, all invalid",
			req:        request{query: "?validate=1", body: []byte(bad)},
			wantStatus: 400,
		},
		{
			name:       "sink failure",
			sinkErr:    errors.New("disk on fire"),
			req:        request{body: []byte(ev)},
			wantStatus: 500,
			wantCalls:  1,
		},
	}
	reg := testRegistry()
	ts := newTestServer(t, reg)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			sink := &recordingSink{err: tt.sinkErr, dups: map[string]bool{}}
			for _, d := range tt.dups {
				sink.dups[d] = true
			}
			url := ts.url(cfg, reg, sink)
			status, body := post(t, url, tt.req)
			if status != tt.wantStatus {
				t.Fatalf("status %d; want %d; body %s", status, tt.wantStatus, body)
			}
			if !strings.Contains(string(body), tt.wantMsg) {
				t.Fatalf("body %s; want it to hold %q", body, tt.wantMsg)
			}
			if tt.wantBody != "" && string(body) != tt.wantBody {
				t.Fatalf("body\ngot  %s\nwant %s", body, tt.wantBody)
			}
			if tt.wantAnswer != nil {
				var got answer
				if err := json.Unmarshal(body, &got); err != nil {
					t.Fatalf("cannot decode %s: %v", body, err)
				}
				w := *tt.wantAnswer
				if got.Accepted != w.Accepted || got.Rejected != w.Rejected || got.Duplicates != w.Duplicates || got.Field != w.Field ||
					(w.Message != "" && got.Message != w.Message) || (w.Errors != nil && !sameErrors(got.Errors, w.Errors)) {
					t.Fatalf("answer %s; want %+v", body, w)
				}
				if n := min(w.Rejected, maxItemErrors); len(got.Errors) != n {
					t.Fatalf("answer lists %d errors; want %d", len(got.Errors), n)
				}
			}
			calls, stored, _, rejected := sink.snapshot()
			if calls != tt.wantCalls {
				t.Fatalf("sink called %d times; want %d", calls, tt.wantCalls)
			}
			for _, s := range stored {
				checkStored(t, []byte(s))
			}
			if tt.wantStored != nil && !slices.Equal(stored, tt.wantStored) {
				t.Fatalf("stored\ngot  %q\nwant %q", stored, tt.wantStored)
			}
			if tt.wantQuar != nil {
				var got []string
				for _, r := range rejected {
					got = append(got, r.AppKey+"/"+r.Field)
				}
				if !slices.Equal(got, tt.wantQuar) {
					t.Fatalf("quarantined %q; want %q", got, tt.wantQuar)
				}
			}
		})
	}
}

// TestHandlerSequence sends requests in a row on one connection, so that
// each reuses the pooled buffers and batch of the one before: what the sink
// recorded from the first must stay intact, and the first body sent again
// must be stored exactly as the first time.
func TestHandlerSequence(t *testing.T) {
	sink := &recordingSink{}
	reg := testRegistry()
	url := newTestServer(t, reg).url(DefaultConfig(), reg, sink)
	first := []byte(`[` + testEvent(with("event", `"first"`), with("messageId", `"m-1"`)) + `,` +
		testEvent(with("event", `""`), with("messageId", `"m-2"`)) + `]`)
	second := compresstest.Compress(t, "gzip", []byte(`[`+testEvent(with("event", `"second one, longer"`), with("context", `{"userAgent":"UA"}`),
		with("sentAt", `"2026-11-01T10:00:00Z"`))+`,`+testEvent(with("appKey", `"nobody"`), without("type"))+`]`))
	send := func(body []byte, enc string) {
		t.Helper()
		if status, answer := post(t, url, request{body: body, encoding: enc}); status != 202 {
			t.Fatalf("status %d: %s", status, answer)
		}
	}
	send(first, "")
	_, stored1, _, rejected1 := sink.snapshot()
	send(second, "gzip")
	send(first, "")
	_, stored, apps, rejected := sink.snapshot()
	if len(stored) != 3 || stored[0] != stored1[0] || stored[2] != stored1[0] ||
		!strings.Contains(stored[0], `"event":"first"`) || !strings.Contains(stored[1], `"second one, longer"`) {
		t.Fatalf("stored %q; want the first request's event, the second's, then the first's again, identical", stored)
	}
	if !slices.Equal(apps, []string{testAppKey, testAppKey, testAppKey}) {
		t.Fatalf("stored under apps %q; want %s each time", apps, testAppKey)
	}
	if len(rejected) != 3 || string(rejected[0].Raw) != string(rejected1[0].Raw) || rejected[0].MessageID != "m-2" ||
		rejected[1].Field != "type" || rejected[1].AppKey != testAppKey || string(rejected[2].Raw) != string(rejected1[0].Raw) {
		t.Fatalf("rejected %+v; want the first request's rejection intact, and again", rejected)
	}
}

func TestParseContentType(t *testing.T) {
	tests := []struct {
		in         string
		wantNDJSON bool
		wantErr    bool
	}{
		{in: ""},
		{in: "application/json"},
		{in: "application/json; charset=utf-8"},
		{in: "APPLICATION/JSON"},
		{in: "text/plain"},
		{in: "text/plain;charset=UTF-8"},
		{in: "application/x-ndjson", wantNDJSON: true},
		{in: " application/x-ndjson ; charset=utf-8", wantNDJSON: true},
		{in: "application/ndjson", wantNDJSON: true},
		{in: "application/jsonl", wantNDJSON: true},
		{in: "application/x-jsonlines", wantNDJSON: true},
		{in: "text/html", wantErr: true},
		{in: "application/xml", wantErr: true},
		{in: "multipart/form-data; boundary=x", wantErr: true},
		{in: "application/x-www-form-urlencoded", wantErr: true},
		{in: "application/jsonx", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			ndjson, err := parseContentType([]byte(tt.in))
			if tt.wantErr {
				var re *apierr.Error
				if !errors.As(err, &re) || !errors.Is(err, apierr.Unsupported) || re.Field != "Content-Type" {
					t.Fatalf("err = %v; want apierr.Unsupported on Content-Type", err)
				}
				return
			}
			if err != nil || ndjson != tt.wantNDJSON {
				t.Fatalf("got %v, %v; want %v, nil", ndjson, err, tt.wantNDJSON)
			}
		})
	}
}

func ptr(n int) *int { return &n }

func sameErrors(got, want []ItemError) bool {
	if len(got) != len(want) {
		return false
	}
	s := func(e ItemError) string {
		f := func(p *int) string {
			if p == nil {
				return "-"
			}
			return strconv.Itoa(*p)
		}
		return f(e.Index) + "|" + f(e.Line) + "|" + e.MessageID + "|" + e.Field + "|" + e.Message
	}
	for i := range got {
		if s(got[i]) != s(want[i]) {
			return false
		}
	}
	return true
}
