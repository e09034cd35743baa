package web_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
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
	"trove/internal/testutil"
	"trove/storage"
	"trove/web"
)

const (
	testApp      = "yz1Jn-0pSnekg58etEQO4A"
	allScopes    = "s3cret-all-scopes"
	ingestSecret = "s3cret-ingest-only"
)

func testRegistry() *auth.Registry {
	return authtest.NewRegistry([]auth.App{{Name: "demo", AppKey: testApp}},
		authtest.Token{Secret: allScopes, Name: "all", Scopes: auth.ScopeIngest | auth.ScopeExport | auth.ScopeAdmin, Apps: []string{"*"}},
		authtest.Token{Secret: ingestSecret, Name: "ingest-only", Scopes: auth.ScopeIngest, Apps: []string{testApp}})
}

type testServer struct {
	*web.Server
	url string
	log *testutil.SyncBuffer
}

// startServer serves h on 127.0.0.1:0 until the test ends.
func startServer(t *testing.T, cfg web.Config, h web.Handlers) *testServer {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	if cfg.MaxRequestBytes == 0 {
		cfg.MaxRequestBytes = 1 << 20
	}
	logs := &testutil.SyncBuffer{}
	srv := web.New(cfg, testRegistry(), h, slog.New(slog.NewJSONHandler(logs, nil)))
	addr, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-ctx.Done():
			t.Errorf("Serve did not return after Shutdown")
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs)
		}
	})
	return &testServer{Server: srv, url: "http://" + addr, log: logs}
}

var client = &http.Client{Timeout: 10 * time.Second}

type response struct {
	status int
	header http.Header
	body   []byte
	close  bool // the server said Connection: close
}

func do(t *testing.T, method, url string, body io.Reader, header map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return response{resp.StatusCode, resp.Header, b, resp.Close}
}

// errorBody is the JSON body of every error answer.
type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
	Field   string `json:"field"`
}

func decodeError(t *testing.T, r response) errorBody {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type = %q; want application/json", ct)
	}
	var e errorBody
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("error body %q is not JSON: %v", r.body, err)
	}
	if e.Error == "" || e.Message == "" {
		t.Errorf("error body %s; want both \"error\" and \"message\"", r.body)
	}
	return e
}

// recorder builds Handlers whose every field records that it was called,
// with the request's token, and answers 200. Fields are filled by
// reflection, so a handler added to web.Handlers is covered at once.
type recorder struct {
	mu    sync.Mutex
	calls []call
}

type call struct {
	handler string
	path    string
	token   *auth.Token
}

func (rec *recorder) handlers(t *testing.T) web.Handlers {
	var h web.Handlers
	v := reflect.ValueOf(&h).Elem()
	for i := range v.NumField() {
		name := v.Type().Field(i).Name
		fn := func(ctx *fasthttp.RequestCtx) error {
			rec.mu.Lock()
			defer rec.mu.Unlock()
			rec.calls = append(rec.calls, call{name, string(ctx.Path()), auth.TokenOf(ctx)})
			return nil
		}
		f := v.Field(i)
		if f.Type() != reflect.TypeOf(fn) {
			t.Fatalf("web.Handlers.%s is a %s; this test only knows func(*fasthttp.RequestCtx) error", name, f.Type())
		}
		f.Set(reflect.ValueOf(fn))
	}
	return h
}

func (rec *recorder) take() []call {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	c := rec.calls
	rec.calls = nil
	return c
}

// TestEveryRouteRequiresAuth checks the route table, then sends requests
// without, and with bad, credentials to every route that is not public.
func TestEveryRouteRequiresAuth(t *testing.T) {
	rec := &recorder{}
	srv := startServer(t, web.Config{}, rec.handlers(t))
	public := map[string]bool{"GET /healthz": true, "GET /readyz": true, "GET /metrics": true, "GET /openapi.yaml": true,
		"GET /": true, "GET /console/": true} // the console's files hold no data
	seen := map[string]bool{}
	for _, r := range srv.Routes() {
		key := r.Method + " " + r.Path
		if seen[key] {
			t.Errorf("%s is in the route table twice", key)
		}
		seen[key] = true
		if r.Handler == nil {
			t.Errorf("%s has no handler", key)
		}
		if public[key] {
			if r.Access != web.Public {
				t.Errorf("%s: Access = %v; want Public", key, r.Access)
			}
			continue
		}
		if r.Access == web.Public {
			t.Errorf("%s is Public; only %v may be", key, public)
		}
		if r.Scope == 0 {
			t.Errorf("%s has no Scope; a token for it would need none", key)
		}
	}
	for k := range public {
		if !seen[k] {
			t.Errorf("%s is not in the route table", k)
		}
	}

	for _, r := range srv.Routes() {
		if r.Access == web.Public {
			continue
		}
		key := r.Method + " " + r.Path
		path := r.Path
		if strings.HasSuffix(path, "/") {
			path += "0123456789ab" // a prefix route: one segment more (an id)
		}
		url := srv.url + path + "?appKey=" + testApp
		t.Run(key, func(t *testing.T) {
			// No credentials: a Scoped route refuses; an AppKey route
			// hands the request on, with no token, for the handler to
			// check the appKey of each event.
			resp := do(t, r.Method, url, nil, nil)
			calls := rec.take()
			if r.Access == web.AppKey || r.Access == web.WriteKey {
				if len(calls) != 1 || calls[0].token != nil {
					t.Errorf("without credentials: handler calls %+v; want one, with no token", calls)
				}
			} else {
				if resp.status != http.StatusUnauthorized {
					t.Errorf("without credentials: status %d; want 401", resp.status)
				}
				if e := decodeError(t, resp); e.Error != "unauthorized" {
					t.Errorf("without credentials: error %q; want \"unauthorized\"", e.Error)
				}
				if len(calls) != 0 {
					t.Errorf("without credentials: handler called %+v; want no call", calls)
				}
			}

			// Bad credentials are refused everywhere, before the handler.
			for _, authz := range []string{"Bearer wrong-secret", "Basic !!!", "Token " + allScopes, "Bearer"} {
				resp := do(t, r.Method, url, nil, map[string]string{"Authorization": authz})
				if resp.status != http.StatusUnauthorized {
					t.Errorf("Authorization %q: status %d; want 401", authz, resp.status)
				}
				decodeError(t, resp)
				if calls := rec.take(); len(calls) != 0 {
					t.Errorf("Authorization %q: handler called %+v; want no call", authz, calls)
				}
			}

			// A token without the route's scope is forbidden.
			if r.Scope&^auth.ScopeIngest != 0 {
				resp := do(t, r.Method, url, nil, map[string]string{"Authorization": "Bearer " + ingestSecret})
				if resp.status != http.StatusForbidden {
					t.Errorf("token without %s scope: status %d; want 403", r.Scope, resp.status)
				}
				if calls := rec.take(); len(calls) != 0 {
					t.Errorf("token without %s scope: handler called %+v; want no call", r.Scope, calls)
				}
			}

			// A token with every scope reaches the handler, which sees it.
			resp = do(t, r.Method, url, nil, map[string]string{"Authorization": "Bearer " + allScopes})
			if resp.status != http.StatusOK {
				t.Errorf("with a token: status %d (%s); want 200", resp.status, resp.body)
			}
			calls = rec.take()
			if len(calls) != 1 || calls[0].token == nil || calls[0].token.Name != "all" || calls[0].path != path {
				t.Errorf("with a token: handler calls %+v; want one for %s with token \"all\"", calls, r.Path)
			}
		})
	}
}

// fieldError is an error that names the field at fault.
type fieldError struct {
	kind  error
	field string
}

func (e *fieldError) Error() string      { return "bad " + e.field }
func (e *fieldError) Unwrap() error      { return e.kind }
func (e *fieldError) ErrorField() string { return e.field }

func TestErrorBodies(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		code   string
		field  string
		header map[string]string // response headers that must be set
	}{
		{name: "unauthenticated", err: fmt.Errorf("%w: unknown token", auth.ErrUnauthenticated), status: 401, code: "unauthorized"},
		{name: "forbidden", err: fmt.Errorf("%w: not your app", auth.ErrForbidden), status: 403, code: "forbidden"},
		{name: "too large", err: apierr.New(apierr.TooLarge, "", "too big"), status: 413, code: "payload_too_large"},
		{name: "media type", err: apierr.New(apierr.Unsupported, "Content-Type", "no"),
			status: 415, code: "unsupported_media_type", field: "Content-Type"},
		{name: "invalid request", err: apierr.New(apierr.Invalid, "userId", "userId is required"),
			status: 400, code: "invalid_request", field: "userId"},
		{name: "invalid export parameter", err: apierr.New(apierr.Invalid, "since", "since must be a non-negative integer"),
			status: 400, code: "invalid_request", field: "since"},
		{name: "any error with a field", err: &fieldError{kind: apierr.Invalid, field: "limit"}, status: 400, code: "invalid_request", field: "limit"},
		{name: "code word of the error", err: &apierr.Error{Kind: apierr.Invalid, Code: "invalid_profile", Field: "gender", Message: "gender must be one of"},
			status: 400, code: "invalid_profile", field: "gender"},
		{name: "conflict", err: apierr.New(apierr.Conflict, "name", "an app named \"a\" already exists"), status: 409, code: "conflict", field: "name"},
		{name: "not found", err: apierr.New(apierr.NotFound, "id", "no token has id \"x\""), status: 404, code: "not_found", field: "id"},
		{name: "unavailable", err: apierr.New(apierr.Unavailable, "", "not now"), status: 503, code: "unavailable", header: map[string]string{"Retry-After": "1"}},
		{name: "store closed", err: fmt.Errorf("cannot store events: %w", storage.ErrClosed), status: 503, code: "unavailable",
			header: map[string]string{"Retry-After": "1"}},
		{name: "shutting down", err: web.ErrShuttingDown, status: 503, code: "unavailable", header: map[string]string{"Retry-After": "1"}},
		{name: "bodies in memory", err: fmt.Errorf("%w: the request's share did not come free", web.ErrBodyMemory), status: 503, code: "busy", header: map[string]string{"Retry-After": "1"}},
		{name: "unexpected", err: errors.New("disk on fire at /secret/path"), status: 500, code: "internal"},
	}
	batchErr := &apierr.Error{Kind: apierr.Invalid, Code: "invalid_event", Field: "event", Message: "event is required",
		Details: map[string]any{"accepted": 0, "duplicates": 0, "rejected": 1,
			"errors": []map[string]any{{"index": 0, "field": "event", "message": "event is required"}}}}
	h := web.Handlers{Events: func(ctx *fasthttp.RequestCtx) error {
		c := string(ctx.QueryArgs().Peek("case"))
		if c == "batch" {
			return batchErr
		}
		i, err := strconv.Atoi(c)
		if err != nil {
			panic(err)
		}
		return tests[i].err
	}}
	srv := startServer(t, web.Config{}, h)
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := do(t, "POST", srv.url+"/v1/events?case="+strconv.Itoa(i), strings.NewReader("{}"), nil)
			if resp.status != tc.status {
				t.Errorf("status %d; want %d", resp.status, tc.status)
			}
			e := decodeError(t, resp)
			if e.Error != tc.code {
				t.Errorf("error %q; want %q", e.Error, tc.code)
			}
			if e.Field != tc.field {
				t.Errorf("field %q; want %q", e.Field, tc.field)
			}
			if tc.status == 500 && strings.Contains(e.Message, "secret") {
				t.Errorf("message %q leaks the internal error", e.Message)
			}
			if tc.status != 500 && e.Message != tc.err.Error() {
				t.Errorf("message %q; want %q", e.Message, tc.err.Error())
			}
			// After a 413 the rest of the body may still be on the wire.
			if wantClose := tc.status == 413; resp.close != wantClose {
				t.Errorf("Connection: close is %v; want %v", resp.close, wantClose)
			}
			for k, v := range tc.header {
				if got := resp.header.Get(k); got != v {
					t.Errorf("header %s = %q; want %q", k, got, v)
				}
			}
		})
	}
	// The body of a batch with no valid event carries the batch's answer.
	t.Run("batch details", func(t *testing.T) {
		resp := do(t, "POST", srv.url+"/v1/events?case=batch", strings.NewReader("{}"), nil)
		var got struct {
			Error    string `json:"error"`
			Field    string `json:"field"`
			Accepted *int   `json:"accepted"`
			Rejected int    `json:"rejected"`
			Errors   []struct {
				Index *int   `json:"index"`
				Field string `json:"field"`
			} `json:"errors"`
		}
		if err := json.Unmarshal(resp.body, &got); err != nil {
			t.Fatalf("body %q: %v", resp.body, err)
		}
		if resp.status != 400 || got.Error != "invalid_event" || got.Field != "event" || got.Accepted == nil || *got.Accepted != 0 ||
			got.Rejected != 1 || len(got.Errors) != 1 || got.Errors[0].Index == nil || *got.Errors[0].Index != 0 || got.Errors[0].Field != "event" {
			t.Errorf("got %d %s; want 400 with error invalid_event, field event, accepted 0, rejected 1 and errors[0] naming index 0", resp.status, resp.body)
		}
	})
}

func TestPanicBecomes500(t *testing.T) {
	var calls atomic.Int32
	srv := startServer(t, web.Config{}, web.Handlers{Events: func(ctx *fasthttp.RequestCtx) error {
		calls.Add(1)
		ctx.SetBodyString("half an answer")
		var m map[string]int
		m["boom"] = 1 // a nil-map write: a real runtime panic
		return nil
	}})
	for i := range 3 {
		resp := do(t, "POST", srv.url+"/v1/events", strings.NewReader("{}"), nil)
		if resp.status != http.StatusInternalServerError {
			t.Fatalf("request %d: status %d; want 500", i, resp.status)
		}
		e := decodeError(t, resp)
		if e.Error != "internal" || strings.Contains(e.Message, "nil map") {
			t.Errorf("request %d: body %s; want error \"internal\" and no panic text", i, resp.body)
		}
		if resp := do(t, "GET", srv.url+"/healthz", nil, nil); resp.status != http.StatusOK {
			t.Fatalf("after a panic, /healthz answers %d; want 200", resp.status)
		}
	}
	if calls.Load() != 3 {
		t.Errorf("handler ran %d times; want 3", calls.Load())
	}
	if log := srv.log.String(); !strings.Contains(log, "BUG: handler panicked") || !strings.Contains(log, "nil map") {
		t.Errorf("server log does not record the panic:\n%s", log)
	}
}

func TestCORS(t *testing.T) {
	srv := startServer(t, web.Config{CORSOrigins: []string{"*"}}, web.Handlers{
		Events: func(ctx *fasthttp.RequestCtx) error {
			return apierr.New(apierr.Invalid, "type", "type is required")
		},
	})
	t.Run("preflight", func(t *testing.T) {
		resp := do(t, "OPTIONS", srv.url+"/v1/events", nil, map[string]string{
			"Origin":                         "https://shop.example",
			"Access-Control-Request-Method":  "POST",
			"Access-Control-Request-Headers": "content-type, content-encoding",
		})
		if resp.status != http.StatusNoContent {
			t.Errorf("status %d; want 204", resp.status)
		}
		if len(resp.body) != 0 {
			t.Errorf("body %q; want none", resp.body)
		}
		want := map[string][]string{
			"Access-Control-Allow-Origin":   {"https://shop.example"},
			"Access-Control-Allow-Methods":  {"POST", "OPTIONS"},
			"Access-Control-Allow-Headers":  {"Content-Type", "Content-Encoding", "Authorization"},
			"Access-Control-Expose-Headers": {"Retry-After", "X-Request-Id"},
			"Vary":                          {"Origin"},
		}
		for k, parts := range want {
			got := resp.header.Get(k)
			for _, p := range parts {
				if !strings.Contains(got, p) {
					t.Errorf("%s = %q; want it to contain %q", k, got, p)
				}
			}
		}
		if got := resp.header.Get("Access-Control-Allow-Credentials"); got != "" {
			t.Errorf("Access-Control-Allow-Credentials = %q; want none, ever", got)
		}
	})
	t.Run("error answers carry CORS headers", func(t *testing.T) {
		resp := do(t, "POST", srv.url+"/v1/events", strings.NewReader("{}"), map[string]string{"Origin": "https://shop.example"})
		if resp.status != http.StatusBadRequest {
			t.Errorf("status %d; want 400", resp.status)
		}
		if got := resp.header.Get("Access-Control-Allow-Origin"); got != "https://shop.example" {
			t.Errorf("Access-Control-Allow-Origin = %q; want the origin, so that a script can read the error", got)
		}
		if got := resp.header.Get("Access-Control-Expose-Headers"); !strings.Contains(got, "Retry-After") {
			t.Errorf("Access-Control-Expose-Headers = %q; want Retry-After", got)
		}
	})
	t.Run("no origin, no CORS headers", func(t *testing.T) {
		resp := do(t, "POST", srv.url+"/v1/events", strings.NewReader("{}"), nil)
		if got := resp.header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("Access-Control-Allow-Origin = %q; want none", got)
		}
	})

	limited := startServer(t, web.Config{CORSOrigins: []string{"https://shop.example"}}, web.Handlers{})
	for _, tc := range []struct {
		origin, want string
	}{
		{"https://shop.example", "https://shop.example"},
		{"https://SHOP.example", "https://SHOP.example"},
		{"https://evil.example", ""},
	} {
		t.Run("configured origins/"+tc.origin, func(t *testing.T) {
			resp := do(t, "OPTIONS", limited.url+"/v1/events", nil, map[string]string{"Origin": tc.origin, "Access-Control-Request-Method": "POST"})
			if got := resp.header.Get("Access-Control-Allow-Origin"); got != tc.want {
				t.Errorf("Access-Control-Allow-Origin = %q; want %q", got, tc.want)
			}
		})
	}
}

func TestNotFound(t *testing.T) {
	srv := startServer(t, web.Config{}, web.Handlers{})
	for _, tc := range []struct{ method, path string }{
		{"GET", "/nope"},
		{"GET", "/v1/events/"},
		{"GET", "/console/no-such-file.js"},
		{"GET", "/console/.hidden.js"},
		{"POST", "/nope"},                             // "/" (the console) is no prefix route
		{"DELETE", "/admin/tokens/0123456789ab/more"}, // a prefix route takes one segment
		{"DELETE", "/admin/tokensx"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			resp := do(t, tc.method, srv.url+tc.path, nil, nil)
			if resp.status != http.StatusNotFound {
				t.Errorf("status %d; want 404", resp.status)
			}
			if e := decodeError(t, resp); e.Error != "not_found" {
				t.Errorf("error %q; want \"not_found\"", e.Error)
			}
		})
	}
}

func TestMethodNotAllowed(t *testing.T) {
	srv := startServer(t, web.Config{}, web.Handlers{})
	for _, tc := range []struct{ method, path, allow string }{
		{"POST", "/v1/export/events", "GET, OPTIONS"},
		{"GET", "/v1/events", "POST, OPTIONS"},
		{"DELETE", "/healthz", "GET, OPTIONS"},
		{"GET", "/admin/tokens/0123456789ab", "DELETE, OPTIONS"},
		{"DELETE", "/admin/tokens", "POST, GET, OPTIONS"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			resp := do(t, tc.method, srv.url+tc.path, nil, nil)
			if resp.status != http.StatusMethodNotAllowed {
				t.Errorf("status %d; want 405", resp.status)
			}
			if got := resp.header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow = %q; want %q", got, tc.allow)
			}
			if e := decodeError(t, resp); e.Error != "method_not_allowed" {
				t.Errorf("error %q; want \"method_not_allowed\"", e.Error)
			}
		})
	}
}

func TestHealth(t *testing.T) {
	srv := startServer(t, web.Config{}, web.Handlers{})
	if resp := do(t, "GET", srv.url+"/healthz", nil, nil); resp.status != http.StatusOK {
		t.Errorf("/healthz: status %d; want 200", resp.status)
	}
	if resp := do(t, "GET", srv.url+"/readyz", nil, nil); resp.status != http.StatusServiceUnavailable {
		t.Errorf("/readyz before SetReady: status %d; want 503", resp.status)
	}
	srv.SetReady(true)
	if resp := do(t, "GET", srv.url+"/readyz", nil, nil); resp.status != http.StatusOK {
		t.Errorf("/readyz after SetReady(true): status %d; want 200", resp.status)
	}
	// Health checks take no credentials, and bad ones do not matter.
	if resp := do(t, "GET", srv.url+"/healthz", nil, map[string]string{"Authorization": "Bearer wrong"}); resp.status != http.StatusOK {
		t.Errorf("/healthz with a bad token: status %d; want 200", resp.status)
	}
}

// ingestRoutes are the routes that web pages of other origins may call
// (SPEC section 3): the Events API and the SDK-compatible endpoints.
var ingestRoutes = map[string]bool{
	"POST /v1/events":   true,
	"POST /v1/batch":    true,
	"POST /v1/track":    true,
	"POST /v1/identify": true,
	"POST /v1/page":     true,
	"POST /v1/screen":   true,
	"POST /v1/alias":    true,
	"POST /v1/group":    true,
	"GET /cluster-info": true,
	"POST /batch":       true,
	"POST /2/httpapi":   true,
	"POST /identify":    true,
	"POST /capture":     true,
	"POST /i/v0/e":      true,
	"POST /e":           true,
	"GET /track":        true,
	"POST /track":       true,
	"GET /engage":       true,
	"POST /engage":      true,
	"GET /import":       true,
	"POST /import":      true,
}

// TestCORSEveryRoute sends, to every route of the route table, what a web
// page of a foreign origin makes a browser send: a preflight, then the
// request itself with credentials. Only the ingest routes answer with CORS
// headers; the others give a preflight no Access-Control-Allow-Origin and
// refuse a cross-site write before the handler; none ever sends
// Access-Control-Allow-Credentials.
func TestCORSEveryRoute(t *testing.T) {
	rec := &recorder{}
	srv := startServer(t, web.Config{CORSOrigins: []string{"*"}}, rec.handlers(t))
	const evil = "https://evil.example"
	seen := map[string]bool{}
	var ingestN, writesRefused, readsHidden int
	for _, r := range srv.Routes() {
		key := r.Method + " " + r.Path
		seen[key] = true
		path := r.Path
		if strings.HasSuffix(path, "/") && path != "/" {
			path += "0123456789ab"
		}
		url := srv.url + path + "?appKey=" + testApp
		ingest := ingestRoutes[key]
		unsafe := r.Method != "GET" && r.Method != "HEAD"
		switch {
		case ingest:
			ingestN++
		case unsafe:
			writesRefused++
		default:
			readsHidden++
		}
		t.Run(key, func(t *testing.T) {
			noCredentialsHeader := func(what string, resp response) {
				t.Helper()
				if got := resp.header.Get("Access-Control-Allow-Credentials"); got != "" {
					t.Errorf("%s: Access-Control-Allow-Credentials = %q; want none, on every route", what, got)
				}
			}
			noCORS := func(what string, resp response) {
				t.Helper()
				for k := range resp.header {
					if strings.HasPrefix(strings.ToLower(k), "access-control-") {
						t.Errorf("%s: %s = %q; want no CORS header: this route answers no cross-origin request", what, k, resp.header.Get(k))
					}
				}
			}

			pre := do(t, "OPTIONS", url, nil, map[string]string{
				"Origin":                         evil,
				"Access-Control-Request-Method":  r.Method,
				"Access-Control-Request-Headers": "content-type, authorization",
			})
			noCredentialsHeader("preflight", pre)
			if pre.status != http.StatusNoContent || !strings.Contains(pre.header.Get("Allow"), r.Method) {
				t.Errorf("preflight: status %d, Allow %q; want 204 naming %s", pre.status, pre.header.Get("Allow"), r.Method)
			}
			if ingest {
				if got := pre.header.Get("Access-Control-Allow-Origin"); got != evil {
					t.Errorf("preflight: Access-Control-Allow-Origin = %q; want %q (an ingest route, cors_origins = [\"*\"])", got, evil)
				}
				if got := pre.header.Get("Access-Control-Allow-Methods"); !strings.Contains(got, r.Method) {
					t.Errorf("preflight: Access-Control-Allow-Methods = %q; want it to name %s", got, r.Method)
				}
			} else {
				noCORS("preflight", pre)
			}

			// What the browser sends next (or, for a simple request such as
			// a form post, without a preflight), with the credentials it
			// holds.
			resp := do(t, r.Method, url, nil, map[string]string{
				"Origin":         evil,
				"Sec-Fetch-Site": "cross-site",
				"Authorization":  "Bearer " + allScopes,
			})
			calls := rec.take()
			noCredentialsHeader("request", resp)
			switch {
			case ingest:
				if resp.status != http.StatusOK || len(calls) != 1 {
					t.Errorf("request: status %d, handler calls %+v; want 200 from the handler", resp.status, calls)
				}
				if got := resp.header.Get("Access-Control-Allow-Origin"); got != evil {
					t.Errorf("request: Access-Control-Allow-Origin = %q; want %q", got, evil)
				}
			case unsafe:
				if resp.status != http.StatusForbidden || len(calls) != 0 {
					t.Errorf("request: status %d (%s), handler calls %+v; want 403 before the handler", resp.status, resp.body, calls)
				}
				noCORS("request", resp)
			default:
				// A read: its answer reaches the browser, which hides it from
				// the page for want of Access-Control-Allow-Origin.
				noCORS("request", resp)
			}

			if unsafe && !ingest {
				// A browser that sends Origin but not Sec-Fetch-Site.
				resp := do(t, r.Method, url, nil, map[string]string{"Origin": evil, "Authorization": "Bearer " + allScopes})
				if calls := rec.take(); resp.status != http.StatusForbidden || len(calls) != 0 {
					t.Errorf("request with Origin only: status %d, handler calls %+v; want 403 before the handler", resp.status, calls)
				}
				// The console's own requests, and clients that are no
				// browser, pass.
				for _, h := range []map[string]string{
					{"Origin": srv.url, "Sec-Fetch-Site": "same-origin"},
					{"Origin": srv.url},
					{},
				} {
					h["Authorization"] = "Bearer " + allScopes
					resp := do(t, r.Method, url, nil, h)
					if calls := rec.take(); resp.status != http.StatusOK || len(calls) != 1 {
						t.Errorf("request with %v: status %d (%s), handler calls %+v; want 200 from the handler", h, resp.status, resp.body, calls)
					}
					noCORS("same-origin request", resp)
				}
			}
		})
	}
	for k := range ingestRoutes {
		if !seen[k] {
			t.Errorf("ingest route %s is not in the route table", k)
		}
	}

	// Paths that no route takes: no preflight answer either.
	if resp := do(t, "OPTIONS", srv.url+"/no/such/path", nil, map[string]string{"Origin": evil, "Access-Control-Request-Method": "POST"}); resp.status != http.StatusNotFound ||
		resp.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("OPTIONS on an unknown path: status %d, Access-Control-Allow-Origin %q; want 404 and none", resp.status, resp.header.Get("Access-Control-Allow-Origin"))
	}
	if !t.Failed() {
		t.Logf("CORS: origin=%s routes=%d ingest_with_cors=%d writes_refused_403=%d reads_without_cors=%d credentials_headers=0 mismatches=0",
			evil, len(seen), ingestN, writesRefused, readsHidden)
	}
}
