package e2e

// The OpenAPI document (web/openapi.yaml) checked against the real server:
// every route driven with good and bad requests through an HTTP client
// whose transport validates each answer (status, headers, content type,
// body) with kin-openapi, and a final check that every documented answer
// was seen at least once, so that neither the document nor this test can
// quietly fall behind the server.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/goccy/go-json"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"trove/server"
	"trove/web"
)

// oaChecker validates answers against the document and remembers which
// documented answers it saw.
type oaChecker struct {
	t      *testing.T
	doc    *openapi3.T
	router routers.Router

	mu   sync.Mutex
	seen map[string]bool // "METHOD /path STATUS"
}

func newOAChecker(t *testing.T) *oaChecker {
	t.Helper()
	doc := loadOpenAPI(t)
	// Match paths on any host: the test server listens on a random port.
	doc.Servers = nil
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatalf("cannot build a router from web/openapi.yaml: %v", err)
	}
	return &oaChecker{t: t, doc: doc, router: router, seen: map[string]bool{}}
}

// client returns an HTTP client whose every answer c checks. Compression
// is left to the requests, so that Content-Encoding reaches the checks.
func (c *oaChecker) client() *http.Client {
	return &http.Client{
		Timeout:   30 * time.Second,
		Transport: &oaTransport{c: c, base: &http.Transport{DisableCompression: true}},
	}
}

type oaTransport struct {
	c    *oaChecker
	base *http.Transport
}

func (tr *oaTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := tr.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if err := tr.c.check(req, resp); err != nil {
		tr.c.t.Errorf("%s %s → %d: %v", req.Method, req.URL.RequestURI(), resp.StatusCode, err)
	}
	return resp, nil
}

// check validates resp, the answer to req. It may read resp.Body, and then
// puts back what it read.
func (c *oaChecker) check(req *http.Request, resp *http.Response) error {
	if resp.Header.Get("X-Request-Id") == "" {
		return errors.New("no X-Request-Id header")
	}
	route, params, err := c.router.FindRoute(req)
	switch {
	case errors.Is(err, routers.ErrMethodNotAllowed):
		c.markSeen("* " + req.URL.Path + " 405")
		if resp.StatusCode != http.StatusMethodNotAllowed {
			return fmt.Errorf("the document has no %s operation on this path, but the server answered %d, not 405", req.Method, resp.StatusCode)
		}
		return c.checkComponentResponse(resp, "MethodNotAllowed")
	case errors.Is(err, routers.ErrPathNotFound):
		c.markSeen("* unknown 404")
		if resp.StatusCode != http.StatusNotFound {
			return fmt.Errorf("the document has no such path, but the server answered %d, not 404", resp.StatusCode)
		}
		return c.checkComponentResponse(resp, "NotFound")
	case err != nil:
		return fmt.Errorf("cannot route the request in the document: %w", err)
	}
	key := route.Method + " " + route.Path
	c.markSeen(key + " " + strconv.Itoa(resp.StatusCode))

	ref := route.Operation.Responses.Status(resp.StatusCode)
	if ref == nil {
		return fmt.Errorf("%s does not document status %d", key, resp.StatusCode)
	}
	ct := resp.Header.Get("Content-Type")
	var media *openapi3.MediaType
	if len(ref.Value.Content) > 0 {
		if media = ref.Value.Content.Get(ct); media == nil {
			return fmt.Errorf("%s %d: Content-Type %q is not documented", key, resp.StatusCode, ct)
		}
	}
	lineSchema, _ := mediaExtension(media, "x-trove-line-schema")
	// Stream bodies (NDJSON, archives, compressed) are not one document:
	// kin-openapi checks their status and headers, and NDJSON lines are
	// checked one by one below.
	streamed := lineSchema != "" || resp.Header.Get("Content-Encoding") != "" ||
		(media != nil && (media.Schema == nil || media.Schema.Value.ContentMediaType != ""))
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true, ExcludeResponseBody: streamed},
	}
	input.Options.WithCustomSchemaErrorFunc(shortSchemaError)
	var body []byte
	// The live stream never ends, and a backup is as large as the store:
	// their bodies are left to the caller.
	op := route.Operation.OperationID
	readBody := resp.StatusCode != http.StatusOK || (op != "streamEvents" && op != "backup")
	if readBody {
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("cannot read the body: %w", err)
		}
		input.SetBodyBytes(body)
	}
	if err := openapi3filter.ValidateResponse(context.Background(), input); err != nil {
		return fmt.Errorf("does not match web/openapi.yaml: %w", err)
	}
	if lineSchema != "" && readBody {
		return c.checkLines(resp.Header.Get("Content-Encoding"), body, lineSchema)
	}
	return nil
}

// shortSchemaError leaves the schema out of the message: it is in the
// document, and would bury the reason.
func shortSchemaError(err *openapi3.SchemaError) string {
	return "at /" + strings.Join(err.JSONPointer(), "/") + ": " + err.Reason
}

func mediaExtension(m *openapi3.MediaType, name string) (string, bool) {
	if m == nil {
		return "", false
	}
	s, ok := m.Extensions[name].(string)
	return s, ok
}

// checkLines checks each line of an NDJSON body, decompressed, against the
// component schema name.
func (c *oaChecker) checkLines(encoding string, body []byte, name string) error {
	ref := c.doc.Components.Schemas[name]
	if ref == nil {
		return fmt.Errorf("x-trove-line-schema %q is not a component schema", name)
	}
	var r io.Reader = bytes.NewReader(body)
	switch encoding {
	case "":
	case "gzip":
		zr, err := gzip.NewReader(r)
		if err != nil {
			return fmt.Errorf("Content-Encoding gzip, but: %w", err)
		}
		r = zr
	case "zstd":
		zr, err := zstd.NewReader(r)
		if err != nil {
			return err
		}
		defer zr.Close()
		r = zr
	default:
		return fmt.Errorf("unexpected Content-Encoding %q", encoding)
	}
	plain, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("cannot decompress the %s body: %w", encoding, err)
	}
	if len(plain) > 0 && plain[len(plain)-1] != '\n' {
		return errors.New("the NDJSON body does not end with a newline")
	}
	n := 0
	for line := range bytes.Lines(plain) {
		n++
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var v any
		if err := json.Unmarshal(line, &v); err != nil {
			return fmt.Errorf("line %d is not JSON: %v", n, err)
		}
		if err := ref.Value.VisitJSON(v, openapi3.EnableJSONSchema2020(), openapi3.VisitAsResponse(), openapi3.MultiErrors(), openapi3.SetSchemaErrorMessageCustomizer(shortSchemaError)); err != nil {
			return fmt.Errorf("line %d does not match %s: %v\n\t%s", n, name, err, line)
		}
	}
	return nil
}

// checkComponentResponse checks resp against components.responses[name]:
// its required headers and its JSON body.
func (c *oaChecker) checkComponentResponse(resp *http.Response, name string) error {
	ref := c.doc.Components.Responses[name]
	if ref == nil {
		return fmt.Errorf("components.responses.%s is missing", name)
	}
	for h, hr := range ref.Value.Headers {
		if hr.Value.Required && resp.Header.Get(h) == "" {
			return fmt.Errorf("no %s header (components.responses.%s)", h, name)
		}
	}
	media := ref.Value.Content.Get(resp.Header.Get("Content-Type"))
	if media == nil {
		return fmt.Errorf("Content-Type %q is not that of components.responses.%s", resp.Header.Get("Content-Type"), name)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return err
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("the body is not JSON: %v", err)
	}
	if err := media.Schema.Value.VisitJSON(v, openapi3.EnableJSONSchema2020(), openapi3.VisitAsResponse(), openapi3.MultiErrors(), openapi3.SetSchemaErrorMessageCustomizer(shortSchemaError)); err != nil {
		return fmt.Errorf("the body does not match components.responses.%s: %v", name, err)
	}
	return nil
}

func (c *oaChecker) markSeen(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen[key] = true
}

// unseen returns the documented answers ("METHOD /path STATUS") that no
// request got, less those in skip.
func (c *oaChecker) unseen(skip map[string]string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for p, item := range c.doc.Paths.Map() {
		for method, op := range item.Operations() {
			for code := range op.Responses.Map() {
				key := method + " " + p + " " + code
				if _, ok := skip[key]; !ok && !c.seen[key] {
					out = append(out, key)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// oaSession sends requests to one server through a checking client.
type oaSession struct {
	t      *testing.T
	addr   string
	client *http.Client
}

type oaResponse struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request; header holds "Name: value" pairs.
func (s *oaSession) do(method, path string, body []byte, header ...string) oaResponse {
	s.t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://"+s.addr+path, r)
	if err != nil {
		s.t.Fatal(err)
	}
	for _, h := range header {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return oaResponse{resp.StatusCode, resp.Header, b}
}

// want sends one request and fails unless it gets status.
func (s *oaSession) want(status int, method, path string, body []byte, header ...string) oaResponse {
	s.t.Helper()
	r := s.do(method, path, body, header...)
	if r.status != status {
		s.t.Errorf("%s %s: status %d (%.300s); want %d", method, path, r.status, r.body, status)
	}
	return r
}

const (
	oaBackend = "Authorization: Bearer " + backendSecret
	oaOther   = "Authorization: Bearer " + otherSecret
	oaIngest  = "Authorization: Bearer " + ingestSecret
	oaAdmin   = "Authorization: Bearer " + adminSecret
	oaBadTok  = "Authorization: Bearer no-such-token"
	oaJSON    = "Content-Type: application/json"
)

// oaNotTriggered lists the documented answers this test does not provoke,
// each with the reason.
var oaNotTriggered = map[string]string{
	// The SDK-compatible endpoints share package compat's key resolution,
	// body reading, rate limit and storage: 403, 413, 415, 429 and 503 are
	// the same errors as on the Segment endpoints, tested here, and their
	// bodies are checked in sdk_compat_test.go.
	"GET /v1/users/profile 503":                       "reads fail only when the store is closed, i.e. during shutdown",
	"GET /v1/export/events 503":                       "as above",
	"GET /v1/export/profiles 503":                     "as above",
	"GET /v1/export/rejected 503":                     "as above",
	"GET /v1/stream/events 503":                       "as above",
	"POST /admin/backup 503":                          "a backup is refused only while the store closes",
	"POST /admin/tokens 413":                          "the same limit and code as POST /admin/apps 413, which is tested",
	"DELETE /admin/tokens/{id} 503":                   "revocation is refused only when writes are; POST /admin/apps 503 covers the gate",
	"PUT /admin/apps/{appKey}/schemas/{event} 503":    "refused only when writes are; POST /admin/apps 503 covers the gate",
	"DELETE /admin/apps/{appKey}/schemas/{event} 503": "as above",
	"POST /admin/quarantine/replay 503":               "as above",
}

func init() {
	for _, op := range []string{"POST /batch", "POST /2/httpapi", "POST /identify", "POST /capture", "POST /i/v0/e", "POST /e",
		"GET /track", "POST /track", "GET /engage", "POST /engage", "GET /import", "POST /import"} {
		for _, code := range []string{"403", "413", "415", "429", "503"} {
			oaNotTriggered[op+" "+code] = "the same plumbing (package compat) and errors as the Segment endpoints, whose answers are provoked"
		}
	}
}

// TestOpenAPIE2E drives every route of the real server, with good and bad
// requests, and checks every answer against web/openapi.yaml.
func TestOpenAPIE2E(t *testing.T) {
	c := newOAChecker(t)
	addr := startServer(t, testConfig).addr
	s := &oaSession{t: t, addr: addr, client: c.client()}

	// Operations.
	s.want(200, "GET", "/healthz", nil)
	s.want(200, "GET", "/readyz", nil)
	s.want(200, "GET", "/metrics", nil)
	if r := s.want(200, "GET", "/openapi.yaml", nil); !bytes.Equal(r.body, web.OpenAPI()) {
		t.Errorf("GET /openapi.yaml is not the embedded document")
	}
	s.want(204, "OPTIONS", "/v1/events", nil, "Origin: https://example.com", "Access-Control-Request-Method: POST")
	s.want(405, "PUT", "/v1/events", nil)
	s.want(405, "DELETE", "/admin/apps", nil, oaAdmin)
	s.want(404, "GET", "/no/such/path", nil)

	// The web console: its files, and the overview it shows.
	if r := s.want(200, "GET", "/", nil); !bytes.Contains(r.body, []byte("/console/app.js")) {
		t.Errorf("GET /: %.200s; want the console's page", r.body)
	}
	s.want(200, "GET", "/console/app.js", nil)
	s.want(200, "GET", "/console/style.css", nil)
	s.want(404, "GET", "/console/no-such-file.js", nil)
	s.want(200, "GET", "/admin/overview", nil, oaAdmin)
	s.want(401, "GET", "/admin/overview", nil, oaBadTok)
	s.want(403, "GET", "/admin/overview", nil, oaBackend)
	s.want(200, "GET", "/admin/sinks", nil, oaAdmin)
	s.want(401, "GET", "/admin/sinks", nil, oaBadTok)
	s.want(403, "GET", "/admin/sinks", nil, oaBackend)

	// Schema contracts and the quarantine replay.
	sp := "/admin/apps/" + demoApp + "/schemas"
	for _, h := range []struct {
		status int
		header string
	}{{401, oaBadTok}, {403, oaBackend}} {
		s.want(h.status, "GET", sp, nil, h.header)
		s.want(h.status, "GET", sp+"/E", nil, h.header)
		s.want(h.status, "PUT", sp+"/E", []byte(`{}`), h.header, oaJSON)
		s.want(h.status, "DELETE", sp+"/E", nil, h.header)
		s.want(h.status, "POST", "/admin/quarantine/replay?appKey="+demoApp, nil, h.header)
	}
	s.want(404, "GET", "/admin/apps/no-such-app-key/schemas", nil, oaAdmin)
	s.want(404, "PUT", "/admin/apps/no-such-app-key/schemas/E", []byte(`{}`), oaAdmin, oaJSON)
	s.want(400, "PUT", sp+"/E", []byte(`{"type":7}`), oaAdmin, oaJSON)
	s.want(413, "PUT", sp+"/E", bytes.Repeat([]byte(" "), 1<<20+1), oaAdmin, oaJSON)
	s.want(404, "GET", sp+"/E", nil, oaAdmin)
	s.want(200, "PUT", sp+"/E", []byte(`{"type":"object"}`), oaAdmin, oaJSON)
	s.want(200, "GET", sp+"/E", nil, oaAdmin)
	s.want(200, "GET", sp, nil, oaAdmin)
	s.want(200, "DELETE", sp+"/E", nil, oaAdmin)
	s.want(404, "DELETE", sp+"/E", nil, oaAdmin)
	s.want(200, "POST", "/admin/quarantine/replay?appKey="+demoApp, nil, oaAdmin)
	s.want(400, "POST", "/admin/quarantine/replay", nil, oaAdmin)

	// Events API.
	s.want(202, "POST", "/v1/events", []byte(seedExample), oaJSON)
	batch := "[" + event("signup", "oa-1") + "," + event("purchase", "oa-2") + `,{"type":"event","appKey":"` + demoApp + `"}]`
	if r := s.want(202, "POST", "/v1/events", []byte(batch), oaJSON, oaBackend); !bytes.Contains(r.body, []byte(`"rejected":1`)) {
		t.Errorf("a batch with one bad event: %s; want it rejected", r.body)
	}
	s.want(202, "POST", "/v1/events", []byte(event("signup", "oa-1")), oaJSON, "Authorization: Basic "+base64Std(backendSecret+":"))
	nd := event("view", "oa-3") + "\n" + `{"type":"nope"}` + "\n"
	s.want(202, "POST", "/v1/events", []byte(nd), "Content-Type: application/x-ndjson")
	s.want(202, "POST", "/v1/events?validate=1", []byte(event("view", "oa-4")), oaJSON)
	s.want(400, "POST", "/v1/events", []byte(`{"type":"event","appKey":"`+demoApp+`"}`), oaJSON)
	s.want(400, "POST", "/v1/events", []byte(`not json`), oaJSON)
	s.want(401, "POST", "/v1/events", []byte(strings.ReplaceAll(seedExample, demoApp, "no-such-app")), oaJSON)
	s.want(401, "POST", "/v1/events", []byte(seedExample), oaJSON, oaBadTok)
	s.want(403, "POST", "/v1/events", []byte(seedExample), oaJSON, oaOther)
	s.want(415, "POST", "/v1/events", []byte(seedExample), "Content-Type: text/xml")
	s.want(415, "POST", "/v1/events", []byte(seedExample), oaJSON, "Content-Encoding: br")
	big := `{"type":"event","event":"big","userId":"u1","eventTime":"2020-06-03T17:03:48Z","appKey":"` + demoApp +
		`","attributes":{"blob":"` + strings.Repeat("x", 40<<10) + `"}}`
	s.want(413, "POST", "/v1/events", []byte(big), oaJSON)

	// User Profiles API.
	profiles := `{"appKey":"` + demoApp + `","user_profiles":[
	  {"customer_id":"user123","user_alias":{"alias_label":"facebook","alias_id":"fb123409"},
	   "first_name":"John","last_name":"Doe","date_of_first_use":"2016-04-12T17:27:20+00:00",
	   "date_of_birth":"1994-07-06","gender":"F","custom-ltv":35,"custom-purchase":{"inc":30},
	   "custom-subscription":"premium","custom-tags":["whale","high-spender"]},
	  {"pyze_id":"ca1ab028-185d-4833-a3af-5b5d46b62771","date_of_last_use":"2018-06-20T08:17:00+00:00",
	   "email_id":"jane.doe@gmail.com","custom-tags":{"remove":["whale"]}}]}`
	s.want(202, "POST", "/users/profile", []byte(profiles), oaJSON, oaBackend)
	s.want(202, "POST", "/v1/users/profile", []byte(`{"user_profiles":[{"userId":"u2","city":"Oslo"}]}`), oaJSON, oaBackend, "Idempotency-Key: oa-k1")
	if r := s.want(202, "POST", "/v1/users/profile", []byte(`{"user_profiles":[{"userId":"u2","city":"Oslo"}]}`), oaJSON, oaBackend, "Idempotency-Key: oa-k1"); r.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("a replayed Idempotency-Key: Idempotent-Replayed %q; want true", r.header.Get("Idempotent-Replayed"))
	}
	for _, p := range []string{"/users/profile", "/v1/users/profile"} {
		s.want(400, "POST", p, []byte(`{"user_profiles":[{"userId":"u3","gender":"X"}]}`), oaJSON, oaBackend)
		s.want(409, "POST", p, []byte(`{"user_profiles":[{"userId":"u4","user_alias":{"alias_label":"facebook","alias_id":"fb123409"}}]}`), oaJSON, oaBackend)
		s.want(401, "POST", p, []byte(profiles), oaJSON)
		s.want(403, "POST", p, []byte(profiles), oaJSON, oaOther)
		s.want(415, "POST", p, []byte(profiles), "Content-Type: text/xml", oaBackend)
		// A small gzip body that inflates past the 5 MiB limit: the server
		// reads all of it before refusing, so the client is not cut off
		// while it still writes.
		s.want(413, "POST", p, oaGzip(t, bytes.Repeat([]byte(" "), 5<<20+1)), oaJSON, "Content-Encoding: gzip", oaBackend)
	}
	s.want(200, "GET", "/v1/users/profile?appKey="+demoApp+"&userId=user123", nil, oaBackend)
	s.want(200, "GET", "/v1/users/profile?appKey="+demoApp+"&alias_label=facebook&alias_id=fb123409", nil, oaBackend)
	s.want(200, "GET", "/v1/users/profile?appKey="+demoApp+"&pyze_id=ca1ab028-185d-4833-a3af-5b5d46b62771", nil, oaBackend)
	s.want(404, "GET", "/v1/users/profile?appKey="+demoApp+"&userId=nobody", nil, oaBackend)
	s.want(400, "GET", "/v1/users/profile?appKey="+demoApp+"&pyze_id=not-a-uuid", nil, oaBackend)
	s.want(401, "GET", "/v1/users/profile?appKey="+demoApp+"&userId=user123", nil)
	s.want(403, "GET", "/v1/users/profile?appKey="+demoApp+"&userId=user123", nil, oaIngest)

	// Right to be forgotten.
	s.want(200, "DELETE", "/v1/users/profile?appKey="+demoApp+"&userId=user123", nil, oaAdmin)
	s.want(200, "DELETE", "/v1/users/profile?appKey="+demoApp+"&userId=never-seen", nil, oaAdmin)
	s.want(400, "DELETE", "/v1/users/profile?appKey="+demoApp, nil, oaAdmin)
	s.want(401, "DELETE", "/v1/users/profile?appKey="+demoApp+"&userId=u2", nil)
	s.want(403, "DELETE", "/v1/users/profile?appKey="+demoApp+"&userId=u2", nil, oaBackend)

	// Exports.
	ev := "/v1/export/events?appKey=" + demoApp
	r := s.want(200, "GET", ev, nil, oaBackend)
	if len(bytes.TrimSpace(r.body)) == 0 {
		t.Errorf("GET %s: an empty export; want the events sent above", ev)
	}
	s.want(200, "GET", ev, nil, oaBackend, "Accept-Encoding: zstd")
	s.want(200, "GET", ev+"&download=1&from=2020-06-01&to=2020-06-05", nil, oaBackend, "Accept-Encoding: gzip")
	s.want(200, "GET", ev+"&since=1&limit=2&event=signup,view&userId=u1", nil, oaBackend)
	s.want(400, "GET", ev+"&from=yesterday", nil, oaBackend)
	s.want(400, "GET", ev+"&color=red", nil, oaBackend)
	s.want(400, "GET", "/v1/export/events", nil, oaBackend)
	s.want(401, "GET", ev, nil)
	s.want(401, "GET", ev, nil, oaBadTok)
	s.want(403, "GET", ev, nil, oaOther)

	pr := "/v1/export/profiles?appKey=" + demoApp
	s.want(200, "GET", pr, nil, oaBackend)
	s.want(200, "GET", pr+"&updatedSince=2020-01-01&since=0", nil, oaBackend, "Accept-Encoding: zstd")
	s.want(400, "GET", pr+"&since=-1", nil, oaBackend)
	s.want(401, "GET", pr, nil)
	s.want(403, "GET", pr, nil, oaOther)

	rj := "/v1/export/rejected?appKey=" + demoApp
	if r := s.want(200, "GET", rj, nil, oaBackend); len(bytes.TrimSpace(r.body)) == 0 {
		t.Errorf("GET %s: an empty quarantine; want the events rejected above", rj)
	}
	s.want(200, "GET", rj, nil, oaBackend, "Accept-Encoding: gzip")
	s.want(400, "GET", rj+"&since=x", nil, oaBackend)
	s.want(401, "GET", rj, nil)
	s.want(403, "GET", rj, nil, oaIngest)

	st := "/v1/stream/events?appKey=" + demoApp
	oaStreamFirstLine(t, s, st)
	s.want(400, "GET", st+"&since=99999999", nil, oaBackend)
	s.want(401, "GET", st, nil)
	s.want(403, "GET", st, nil, oaOther)

	// Admin API.
	var app struct{ AppKey string }
	if r := s.want(201, "POST", "/admin/apps", []byte(`{"name":"oa-app"}`), oaJSON, oaAdmin); json.Unmarshal(r.body, &app) != nil || app.AppKey == "" {
		t.Errorf("POST /admin/apps: %s; want an appKey", r.body)
	}
	s.want(409, "POST", "/admin/apps", []byte(`{"name":"oa-app"}`), oaJSON, oaAdmin)
	s.want(400, "POST", "/admin/apps", []byte(`{"name":""}`), oaJSON, oaAdmin)
	s.want(413, "POST", "/admin/apps", []byte(`{"name":"`+strings.Repeat("a", 70<<10)+`"}`), oaJSON, oaAdmin)
	s.want(401, "POST", "/admin/apps", []byte(`{"name":"x"}`), oaJSON)
	s.want(403, "POST", "/admin/apps", []byte(`{"name":"x"}`), oaJSON, oaBackend)
	s.want(200, "GET", "/admin/apps", nil, oaAdmin)
	s.want(401, "GET", "/admin/apps", nil, oaBadTok)
	s.want(403, "GET", "/admin/apps", nil, oaBackend)

	var tok struct{ ID, Token string }
	body := `{"name":"oa-token","scopes":["ingest","export"],"apps":["` + app.AppKey + `"]}`
	if r := s.want(201, "POST", "/admin/tokens", []byte(body), oaJSON, oaAdmin); json.Unmarshal(r.body, &tok) != nil || tok.ID == "" || tok.Token == "" {
		t.Errorf("POST /admin/tokens: %s; want an id and a token", r.body)
	}
	s.want(400, "POST", "/admin/tokens", []byte(`{"name":"t","scopes":["root"],"apps":["*"]}`), oaJSON, oaAdmin)
	s.want(401, "POST", "/admin/tokens", []byte(body), oaJSON)
	s.want(403, "POST", "/admin/tokens", []byte(body), oaJSON, oaBackend)
	s.want(200, "GET", "/admin/tokens", nil, oaAdmin)
	s.want(401, "GET", "/admin/tokens", nil)
	s.want(403, "GET", "/admin/tokens", nil, oaBackend)
	// A new token works, then is refused once revoked.
	s.want(200, "GET", "/v1/export/events?appKey="+app.AppKey, nil, "Authorization: Bearer "+tok.Token)
	s.want(403, "DELETE", "/admin/tokens/"+tok.ID, nil, oaBackend)
	s.want(401, "DELETE", "/admin/tokens/"+tok.ID, nil)
	s.want(200, "DELETE", "/admin/tokens/"+tok.ID, nil, oaAdmin)
	s.want(404, "DELETE", "/admin/tokens/"+tok.ID, nil, oaAdmin)
	s.want(401, "GET", "/v1/export/events?appKey="+app.AppKey, nil, "Authorization: Bearer "+tok.Token)
	var list struct {
		Tokens []struct{ ID, Source string }
	}
	json.Unmarshal(s.want(200, "GET", "/admin/tokens", nil, oaAdmin).body, &list)
	for _, tk := range list.Tokens {
		if tk.Source == "config" {
			s.want(409, "DELETE", "/admin/tokens/"+tk.ID, nil, oaAdmin)
			break
		}
	}

	oaBackup(t, s)
	s.want(401, "POST", "/admin/backup", nil)
	s.want(403, "POST", "/admin/backup", nil, oaBackend)

	oaSegment(t, c, s)
	oaRateLimited(t, c)
	oaDiskFull(t, c)

	// The Amplitude, Mixpanel and PostHog endpoints: 200, 400 and 401 of
	// each (the other answers come from the same plumbing, oaNotTriggered).
	ampEv := `{"api_key":"` + demoApp + `","events":[{"event_type":"a","user_id":"oa-u","insert_id":"oa-amp"}]}`
	s.want(200, "POST", "/2/httpapi", []byte(ampEv), oaJSON)
	s.want(400, "POST", "/2/httpapi", []byte(`{"api_key":"`+demoApp+`"}`), oaJSON)
	s.want(401, "POST", "/2/httpapi", []byte(`{"api_key":"nope","events":[]}`), oaJSON)
	s.want(200, "POST", "/batch", []byte(ampEv), oaJSON)
	s.want(400, "POST", "/batch", []byte(`{"api_key":"`+demoApp+`","batch":{}}`), oaJSON)
	s.want(401, "POST", "/batch", []byte(`{"api_key":"nope","batch":[]}`), oaJSON)
	form := "Content-Type: application/x-www-form-urlencoded"
	s.want(200, "POST", "/identify", []byte("api_key="+demoApp+`&identification={"user_id":"oa-u","user_properties":{"$set":{"a":1}}}`), form)
	s.want(400, "POST", "/identify", []byte("api_key="+demoApp), form)
	s.want(401, "POST", "/identify", []byte(`api_key=nope&identification={"user_id":"oa-u"}`), form)
	phEv := `{"api_key":"` + demoApp + `","event":"a","distinct_id":"oa-u"}`
	for _, p := range []string{"/capture", "/i/v0/e", "/e"} {
		s.want(200, "POST", p, []byte(phEv), oaJSON)
		s.want(400, "POST", p, []byte(`{"api_key":"`+demoApp+`","batch":3}`), oaJSON)
		s.want(401, "POST", p, []byte(`{"api_key":"nope","event":"a","distinct_id":"u"}`), oaJSON)
	}
	mpEv := base64Std(`{"event":"a","properties":{"token":"` + demoApp + `","distinct_id":"oa-u"}}`)
	mpEngage := base64Std(`{"$token":"` + demoApp + `","$distinct_id":"oa-u","$set":{"a":1}}`)
	mpBad := base64Std(`{"event":"a","properties":{"token":"nope","distinct_id":"oa-u"}}`)
	for _, p := range []string{"/track", "/engage", "/import"} {
		data := mpEv
		if p == "/engage" {
			data = mpEngage
		}
		s.want(200, "GET", p+"?data="+url.QueryEscape(data), nil)
		s.want(400, "GET", p+"?data=%7Bnot", nil)
		s.want(401, "GET", p+"?data="+url.QueryEscape(mpBad), nil)
		s.want(200, "POST", p, []byte("data="+url.QueryEscape(data)), form)
		s.want(400, "POST", p, []byte("data="), form)
		s.want(401, "POST", p, []byte("data="+url.QueryEscape(mpBad)), form)
	}

	for _, k := range c.unseen(oaNotTriggered) {
		t.Errorf("web/openapi.yaml documents %s, but no request of this test got it: provoke it, or list it in oaNotTriggered with the reason", k)
	}
}

func oaGzip(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// oaStreamFirstLine opens the live stream, reads its first event, and
// hangs up.
func oaStreamFirstLine(t *testing.T, s *oaSession, path string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+s.addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+backendSecret)
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: status %d; want 200", path, resp.StatusCode)
	}
	line, err := readLine(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: no first line: %v", path, err)
	}
	if err := s.client.Transport.(*oaTransport).c.checkLines("", append(line, '\n'), "StoredEvent"); err != nil {
		t.Errorf("GET %s: %v", path, err)
	}
}

// readLine reads up to and without the first newline.
func readLine(r io.Reader) ([]byte, error) {
	var line []byte
	var b [1]byte
	for {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return line, err
		}
		if b[0] == '\n' {
			return line, nil
		}
		line = append(line, b[0])
	}
}

// oaBackup takes a backup and checks that the body is a zstd stream.
func oaBackup(t *testing.T, s *oaSession) {
	t.Helper()
	r := s.want(200, "POST", "/admin/backup", nil, oaAdmin)
	if !bytes.HasPrefix(r.body, []byte{0x28, 0xb5, 0x2f, 0xfd}) {
		t.Errorf("POST /admin/backup: the body does not start with the zstd magic number")
	}
}

// oaRateConfig adds an app limited to 2 events at once, then one every
// 1,000 s: slow enough that no run of this test sees the bucket refill.
const oaRateConfig = testConfig + `
[[apps]]
name = "limited"
app_key = "oa-limited-app"
rate_limit = 0.001
rate_burst = 2

[[tokens]]
name = "limited"
secret = "s3cret-limited"
scopes = ["ingest"]
apps = ["oa-limited-app"]
`

// oaRateLimited provokes 429 on both write APIs of a rate-limited app.
func oaRateLimited(t *testing.T, c *oaChecker) {
	t.Helper()
	s, stop := c.serverSession(t, oaRateConfig)
	defer stop()
	ev := func(id string) []byte {
		return []byte(`{"type":"event","event":"e","userId":"u","eventTime":"2020-06-03T17:03:48Z","appKey":"oa-limited-app","messageId":"` + id + `"}`)
	}
	s.want(202, "POST", "/v1/events", ev("r1"), oaJSON)
	s.want(202, "POST", "/v1/events", ev("r2"), oaJSON)
	s.want(429, "POST", "/v1/events", ev("r3"), oaJSON)
	// Over the burst at once: a 413, since no wait would let it through.
	s.want(413, "POST", "/v1/events", []byte("["+string(ev("r4"))+","+string(ev("r5"))+","+string(ev("r6"))+"]"), oaJSON)
	p := []byte(`{"appKey":"oa-limited-app","user_profiles":[{"userId":"u"}]}`)
	for _, path := range []string{"/users/profile", "/v1/users/profile"} {
		s.want(429, "POST", path, p, oaJSON, "Authorization: Bearer s3cret-limited")
	}
}

// oaDiskConfig refuses writes below 100 MiB free.
const oaDiskConfig = testConfig + `
[storage]
min_free_disk = "100MiB"
`

// oaFullDisk gives the store a disk with 1 MiB free: under oaDiskConfig,
// nearly full.
func oaFullDisk() serverOption {
	return withHooks(server.Hooks{FreeSpace: func(string) (uint64, error) { return 1 << 20, nil }})
}

// serverSession starts a server on cfgText (with opts) and returns a
// session of the checker with it; stop stops the server.
func (c *oaChecker) serverSession(t *testing.T, cfgText string, opts ...serverOption) (s *oaSession, stop func()) {
	t.Helper()
	srv := startServer(t, cfgText, opts...)
	return &oaSession{t: t, addr: srv.addr, client: c.client()}, srv.stop
}

// oaDiskFull provokes 503 on every write route with a disk that the store
// sees nearly full.
func oaDiskFull(t *testing.T, c *oaChecker) {
	t.Helper()
	s, stop := c.serverSession(t, oaDiskConfig, oaFullDisk())
	defer stop()
	s.want(503, "GET", "/readyz", nil)
	s.want(503, "POST", "/v1/events", []byte(seedExample), oaJSON)
	p := []byte(`{"appKey":"` + demoApp + `","user_profiles":[{"userId":"u"}]}`)
	s.want(503, "POST", "/users/profile", p, oaJSON, oaBackend)
	s.want(503, "POST", "/v1/users/profile", p, oaJSON, oaBackend)
	s.want(503, "DELETE", "/v1/users/profile?appKey="+demoApp+"&userId=u", nil, oaAdmin)
	s.want(503, "POST", "/admin/apps", []byte(`{"name":"full"}`), oaJSON, oaAdmin)
	s.want(503, "POST", "/admin/tokens", []byte(`{"name":"full","scopes":["ingest"],"apps":["*"]}`), oaJSON, oaAdmin)
	// Reads and backups still work.
	s.want(200, "GET", "/v1/export/events?appKey="+demoApp, nil, oaBackend)
	oaBackup(t, s)
}

// TestOpenAPICheckerCatches checks that the checker fails answers that do
// not match the document: a wrong status, a missing header, a body of the
// wrong shape, an NDJSON line of the wrong shape.
func TestOpenAPICheckerCatches(t *testing.T) {
	c := newOAChecker(t)
	tests := []struct {
		name, method, path string
		status             int
		header             map[string]string
		body               string
		want               string
	}{
		{"undocumented status", "GET", "/healthz", 418, map[string]string{"Content-Type": "text/plain"}, "ok\n", "status"},
		{"wrong body", "POST", "/v1/events", 202, map[string]string{"Content-Type": "application/json"}, `{"accepted":"all"}`, "schema"},
		{"error without message", "GET", "/v1/export/events?appKey=k", 400, map[string]string{"Content-Type": "application/json"}, `{"error":"x"}`, "message"},
		{"undocumented content type", "GET", "/v1/export/events?appKey=k", 200, map[string]string{"Content-Type": "text/csv", "X-Trove-Watermark": "1"}, "", "Content-Type"},
		{"no watermark", "GET", "/v1/export/events?appKey=k", 200, map[string]string{"Content-Type": "application/x-ndjson"}, "", "X-Trove-Watermark"},
		{"429 without Retry-After", "POST", "/v1/events", 429, map[string]string{"Content-Type": "application/json"}, `{"error":"rate_limited","message":"slow down"}`, "Retry-After"},
		{"bad NDJSON line", "GET", "/v1/export/events?appKey=k", 200, map[string]string{"Content-Type": "application/x-ndjson", "X-Trove-Watermark": "1"}, `{"event":"e"}` + "\n", "StoredEvent"},
		{"405 without Allow", "PUT", "/v1/events", 405, map[string]string{"Content-Type": "application/json"}, `{"error":"method_not_allowed","message":"no"}`, "Allow"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, "http://127.0.0.1:1"+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp := &http.Response{StatusCode: tc.status, Header: http.Header{"X-Request-Id": {"r1"}}, Body: io.NopCloser(strings.NewReader(tc.body))}
			for k, v := range tc.header {
				resp.Header.Set(k, v)
			}
			err = c.check(req, resp)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("check: %v; want an error mentioning %q", err, tc.want)
			}
		})
	}
	if !slices.Contains(c.unseen(nil), "GET /healthz 200") {
		t.Errorf("unseen does not list an answer that no request got")
	}
}
