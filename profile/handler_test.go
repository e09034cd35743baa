package profile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
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
)

// The apps and token secrets of the test server.
const (
	appA = "yz1Jn-0pSnekg58etEQO4A"
	appB = "app-b-key"

	tokBoth       = "tok-both"        // ingest and export on apps A and B
	tokOnlyA      = "tok-only-a"      // ingest and export on app A alone
	tokIngestOnly = "tok-ingest-only" // ingest on app A
	tokExportOnly = "tok-export-only" // export on app A
)

// testServer is the profile handler behind a real fasthttp server on
// loopback, with just enough of web/ around it: Bearer authentication and
// errors mapped to statuses.
type testServer struct {
	t    *testing.T
	url  string
	reg  *auth.Registry
	db   *storage.DB
	h    *Handler
	http *http.Client
}

// startServer starts a test server; setup, if any, adjusts the handler
// before it serves.
func startServer(t *testing.T, setup ...func(*Handler)) *testServer {
	t.Helper()
	db, err := storage.Open(t.TempDir(), storage.Options{InMemory: true, Sync: false, DedupWindow: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	reg := authtest.NewRegistry([]auth.App{{Name: "a", AppKey: appA, RequireToken: true}, {Name: "b", AppKey: appB}},
		authtest.Token{Secret: tokBoth, Name: tokBoth, Scopes: auth.ScopeIngest | auth.ScopeExport, Apps: []string{appA, appB}},
		authtest.Token{Secret: tokOnlyA, Name: tokOnlyA, Scopes: auth.ScopeIngest | auth.ScopeExport, Apps: []string{appA}},
		authtest.Token{Secret: tokIngestOnly, Name: tokIngestOnly, Scopes: auth.ScopeIngest, Apps: []string{appA}},
		authtest.Token{Secret: tokExportOnly, Name: tokExportOnly, Scopes: auth.ScopeExport, Apps: []string{appA}})
	s := &testServer{t: t, reg: reg, db: db, h: NewHandler(DefaultConfig(), reg, db)}
	for _, f := range setup {
		f(s.h)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: s.serve}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	s.url = "http://" + ln.Addr().String()
	s.http = newClient()
	t.Cleanup(func() {
		s.http.CloseIdleConnections()
		srv.Shutdown()
		// Shutdown before Serve has taken the listener does nothing, and
		// Serve would then never return: closing it ends Serve either way.
		ln.Close()
		<-done
		db.Close()
	})
	return s
}

func newClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
}

func (s *testServer) serve(ctx *fasthttp.RequestCtx) {
	err := func() error {
		secret, present, err := auth.Credential(ctx.Request.Header.Peek("Authorization"))
		if err != nil {
			return err
		}
		if present {
			tok, err := s.reg.Authenticate(secret)
			if err != nil {
				return err
			}
			auth.WithToken(ctx, tok)
		}
		switch path := string(ctx.Path()); {
		case ctx.IsPost() && (path == "/users/profile" || path == "/v1/users/profile"):
			return s.h.Update(ctx)
		case ctx.IsGet() && path == "/v1/users/profile":
			return s.h.Get(ctx)
		}
		return apierr.NotFound
	}()
	if err != nil {
		s.writeError(ctx, err)
	}
}

// statuses maps errors to HTTP statuses as web.statusOf does.
var statuses = []struct {
	err    error
	status int
}{
	{auth.ErrUnauthenticated, 401},
	{auth.ErrForbidden, 403},
	{apierr.Invalid, 400},
	{apierr.Conflict, 409},
	{apierr.NotFound, 404},
	{apierr.TooLarge, 413},
	{apierr.Unsupported, 415},
}

func (s *testServer) writeError(ctx *fasthttp.RequestCtx, err error) {
	status := 500
	for _, st := range statuses {
		if errors.Is(err, st.err) {
			status = st.status
			break
		}
	}
	if status == 500 {
		s.t.Errorf("%s %s: internal error: %v", ctx.Method(), ctx.RequestURI(), err)
	}
	body := map[string]any{"message": err.Error()}
	var e *apierr.Error
	if errors.As(err, &e) {
		body["field"] = e.Field
		if d := e.ErrorDetails(); d != nil {
			body["index"], body["errors"] = d["index"], d["errors"]
		}
	}
	out, _ := json.Marshal(body)
	ctx.Response.ResetBody()
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(out)
}

// response is an answer as the client saw it.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) String() string { return fmt.Sprintf("%d %s", r.status, r.body) }

// errorBody is the JSON body of an error answer.
type errorBody struct {
	Message string `json:"message"`
	Field   string `json:"field"`
	Index   *int   `json:"index"`
	Errors  []struct {
		Index int    `json:"index"`
		Field string `json:"field"`
	} `json:"errors"`
}

// do sends a request; header holds extra header lines as name, value pairs.
func (s *testServer) do(c *http.Client, method, path, token string, body []byte, header ...string) (response, error) {
	req, err := http.NewRequest(method, s.url+path, bytes.NewReader(body))
	if err != nil {
		return response{}, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// post sends a profile update with the token and fails t on a transport
// error.
func (s *testServer) post(token, body string, header ...string) response {
	s.t.Helper()
	r, err := s.do(s.http, "POST", "/users/profile", token, []byte(body), header...)
	if err != nil {
		s.t.Fatal(err)
	}
	return r
}

// accepted posts body and returns the decoded 202 answer, failing t on any
// other status.
func (s *testServer) accepted(token, body string, header ...string) Result {
	s.t.Helper()
	r := s.post(token, body, header...)
	if r.status != 202 {
		s.t.Fatalf("POST %s: got %v; want 202", body, r)
	}
	var res Result
	if err := json.Unmarshal(r.body, &res); err != nil {
		s.t.Fatalf("cannot decode answer %s: %v", r.body, err)
	}
	return res
}

// get reads one profile with query (without appKey) from app.
func (s *testServer) get(token, app, query string) response {
	s.t.Helper()
	r, err := s.do(s.http, "GET", "/v1/users/profile?appKey="+app+"&"+query, token, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	return r
}

// profile reads and decodes one profile, failing t unless it is there.
func (s *testServer) profile(app, query string) (Profile, []byte) {
	s.t.Helper()
	r := s.get(tokBoth, app, query)
	if r.status != 200 {
		s.t.Fatalf("GET %s: got %v; want 200", query, r)
	}
	var p Profile
	if err := json.Unmarshal(r.body, &p); err != nil {
		s.t.Fatalf("cannot decode profile %s: %v", r.body, err)
	}
	return p, r.body
}

// checkAbsent fails t unless GET with query finds nothing.
func (s *testServer) checkAbsent(app, query string) {
	s.t.Helper()
	if r := s.get(tokBoth, app, query); r.status != 404 {
		s.t.Fatalf("GET %s: got %v; want 404", query, r)
	}
}

// checkError fails t unless r is an error answer with status naming index
// (-1 for none) and field.
func checkError(t *testing.T, r response, status, index int, field string) errorBody {
	t.Helper()
	if r.status != status {
		t.Fatalf("got %v; want %d", r, status)
	}
	var e errorBody
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("cannot decode error body %s: %v", r.body, err)
	}
	gotIndex := -1
	if e.Index != nil {
		gotIndex = *e.Index
		if len(e.Errors) != 1 || e.Errors[0].Index != gotIndex || e.Errors[0].Field != e.Field {
			t.Fatalf("error body %s: errors do not repeat index and field", r.body)
		}
	}
	if gotIndex != index || e.Field != field {
		t.Fatalf("got index %d, field %q (%s); want index %d, field %q", gotIndex, e.Field, r.body, index, field)
	}
	return e
}

// counter returns the integer attribute custom-n of userId u in app.
func (s *testServer) counter(app, u string) string {
	s.t.Helper()
	p, _ := s.profile(app, "userId="+u)
	if p.AttributeTypes["custom-n"] != "integer" {
		s.t.Fatalf("custom-n of %s is %s (%s); want an integer", u, p.Attributes["custom-n"], p.AttributeTypes["custom-n"])
	}
	return string(p.Attributes["custom-n"])
}

func TestSeedExample(t *testing.T) {
	s := startServer(t)
	body, err := os.ReadFile("testdata/seed_corrected.json")
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now().UTC().Truncate(time.Millisecond)
	res := s.accepted(tokOnlyA, string(body))
	const pyzeID = "ca1ab028-185d-4833-a3af-5b5d46b62771"
	if res.Accepted != 2 || len(res.Profiles) != 2 {
		t.Fatalf("got %+v; want 2 profiles accepted", res)
	}
	first, second := res.Profiles[0], res.Profiles[1]
	if first.UserID != "user123" || !first.Created || !uuidRE.MatchString(first.PyzeID) || first.PyzeID == pyzeID {
		t.Fatalf("got first %+v; want user123 created under a new pyze_id", first)
	}
	if second.PyzeID != pyzeID || !second.Created || second.UserID != "" {
		t.Fatalf("got second %+v; want %s created", second, pyzeID)
	}

	// The same stored JSON by every identity.
	p, byUser := s.profile(appA, "userId=user123")
	_, byID := s.profile(appA, "pyze_id="+first.PyzeID)
	_, byIDUpper := s.profile(appA, "pyze_id="+strings.ToUpper(first.PyzeID))
	_, byAlias := s.profile(appA, "alias_label=facebook&alias_id=fb123409")
	for name, b := range map[string][]byte{"pyze_id": byID, "upper-case pyze_id": byIDUpper, "alias": byAlias} {
		if !bytes.Equal(b, byUser) {
			t.Errorf("GET by %s: got %s; want %s as by userId", name, b, byUser)
		}
	}
	for name, ts := range map[string]string{"created_at": p.CreatedAt, "updated_at": p.UpdatedAt} {
		tm, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil || tm.Before(before) || tm.After(time.Now()) || !strings.HasSuffix(ts, "Z") {
			t.Errorf("%s = %q; want the server time of the request, UTC", name, ts)
		}
	}
	if p.PyzeID != first.PyzeID || p.UserID != "user123" || len(p.Aliases) != 1 || p.Aliases[0] != (Alias{"facebook", "fb123409"}) ||
		p.FirstName != "John" || p.LastName != "Doe" || p.DateOfFirstUse != "2016-04-12T17:27:20+00:00" || p.DateOfBirth != "1994-07-06" || p.Gender != "F" {
		t.Errorf("got identity and built-ins %s", byUser)
	}
	wantAttrs := map[string][2]string{
		"custom-ltv":          {`35`, "integer"},
		"custom-purchase":     {`30`, "integer"},
		"custom-subscription": {`"premium"`, "string"},
		"custom-tags":         {`["whale","high-spender"]`, "array"},
	}
	if len(p.Attributes) != len(wantAttrs) || len(p.AttributeTypes) != len(wantAttrs) {
		t.Errorf("got attributes %v, types %v; want %v", p.Attributes, p.AttributeTypes, wantAttrs)
	}
	for k, w := range wantAttrs {
		if string(p.Attributes[k]) != w[0] || p.AttributeTypes[k] != w[1] {
			t.Errorf("attribute %s = %s (%s); want %s (%s)", k, p.Attributes[k], p.AttributeTypes[k], w[0], w[1])
		}
	}

	q, raw := s.profile(appA, "pyze_id="+pyzeID)
	if q.PyzeID != pyzeID || q.UserID != "" || q.EmailID != "jane.doe@gmail.com" || q.DateOfLastUse != "2018-06-20T08:17:00+00:00" ||
		len(q.Attributes) != 0 || len(q.AttributeTypes) != 0 || q.CreatedAt == "" || q.UpdatedAt == "" {
		t.Errorf("got second profile %s", raw)
	}

	// Sent again, the same body updates both: nothing is created, the
	// counter adds up, and custom-ltv is set again.
	res = s.accepted(tokOnlyA, string(body))
	if res.Profiles[0].Created || res.Profiles[1].Created || res.Profiles[0].PyzeID != first.PyzeID || res.Profiles[1].PyzeID != pyzeID {
		t.Fatalf("got %+v on the second request; want both updated, none created", res)
	}
	p2, _ := s.profile(appA, "userId=user123")
	if string(p2.Attributes["custom-purchase"]) != "60" || p2.CreatedAt != p.CreatedAt {
		t.Fatalf("got custom-purchase %s, created_at %s; want 60, %s", p2.Attributes["custom-purchase"], p2.CreatedAt, p.CreatedAt)
	}
	// Typed attributes: a date and a float.
	s.accepted(tokOnlyA, `{"user_profiles":[{"userId":"user123","custom-since":"2017-07-13T17:44:46Z","custom-ltv":{"inc":0.5},"custom-tags":{"add":["vip","whale"]}}]}`)
	p3, _ := s.profile(appA, "userId=user123")
	for k, w := range map[string][2]string{"custom-since": {`"2017-07-13T17:44:46Z"`, "date"}, "custom-ltv": {`35.5`, "float"}, "custom-tags": {`["whale","high-spender","vip"]`, "array"}} {
		if string(p3.Attributes[k]) != w[0] || p3.AttributeTypes[k] != w[1] {
			t.Errorf("attribute %s = %s (%s); want %s (%s)", k, p3.Attributes[k], p3.AttributeTypes[k], w[0], w[1])
		}
	}
}

func TestGetProfile(t *testing.T) {
	s := startServer(t)
	res := s.accepted(tokOnlyA, `{"user_profiles":[{"userId":"u1","user_alias":{"alias_label":"l","alias_id":"1"}}]}`)
	id := res.Profiles[0].PyzeID
	tests := []struct {
		name   string
		token  string
		app    string
		query  string
		status int
	}{
		{name: "by userId", token: tokExportOnly, app: appA, query: "userId=u1", status: 200},
		{name: "by pyze_id", token: tokExportOnly, app: appA, query: "pyze_id=" + id, status: 200},
		{name: "by alias", token: tokExportOnly, app: appA, query: "alias_label=l&alias_id=1", status: 200},
		{name: "unknown userId", token: tokExportOnly, app: appA, query: "userId=u2", status: 404},
		{name: "unknown pyze_id", token: tokExportOnly, app: appA, query: "pyze_id=ca1ab028-185d-4833-a3af-5b5d46b62771", status: 404},
		{name: "unknown alias", token: tokExportOnly, app: appA, query: "alias_label=l&alias_id=2", status: 404},
		{name: "alias label alone", token: tokExportOnly, app: appA, query: "alias_label=l", status: 400},
		{name: "empty userId", token: tokExportOnly, app: appA, query: "userId=", status: 404},
		{name: "no identity", token: tokExportOnly, app: appA, query: "x=1", status: 400},
		{name: "bad pyze_id", token: tokExportOnly, app: appA, query: "pyze_id=u1", status: 400},
		{name: "app never written", token: tokBoth, app: appB, query: "userId=u1", status: 404},
		{name: "unknown app", token: tokBoth, app: "nope", query: "userId=u1", status: 401},
		{name: "ingest-only token", token: tokIngestOnly, app: appA, query: "userId=u1", status: 403},
		{name: "token of another app", token: tokOnlyA, app: appB, query: "userId=u1", status: 403},
		{name: "no token", app: appA, query: "userId=u1", status: 401},
		{name: "unknown token", token: "nope", app: appA, query: "userId=u1", status: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := s.get(tt.token, tt.app, tt.query)
			if r.status != tt.status {
				t.Fatalf("got %v; want %d", r, tt.status)
			}
			if r.status == 200 && !bytes.Contains(r.body, []byte(`"pyze_id":"`+id+`"`)) {
				t.Fatalf("got %s; want profile %s", r.body, id)
			}
		})
	}
	if r := s.get(tokExportOnly, "", "userId=u1"); r.status != 400 {
		t.Fatalf("GET without appKey: got %v; want 400", r)
	}
}

func TestUpdateAuth(t *testing.T) {
	s := startServer(t)
	const body = `{"user_profiles":[{"userId":"u1","custom-n":{"inc":1}}]}`
	tests := []struct {
		name   string
		token  string
		body   string
		header []string
		status int
		app    string // where the profile lands, when accepted
	}{
		{name: "appKey in the body", token: tokBoth, body: `{"appKey":"` + appB + `","user_profiles":[{"userId":"body"}]}`, status: 202, app: appB},
		{name: "body before header", token: tokBoth, body: `{"appKey":"` + appB + `","user_profiles":[{"userId":"body-first"}]}`, header: []string{"X-App-Key", appA}, status: 202, app: appB},
		{name: "X-App-Key header", token: tokBoth, body: `{"user_profiles":[{"userId":"header"}]}`, header: []string{"X-App-Key", appB}, status: 202, app: appB},
		{name: "header before the token's app", token: tokOnlyA, body: `{"user_profiles":[{"userId":"x"}]}`, header: []string{"X-App-Key", appB}, status: 403},
		{name: "the token's only app", token: tokOnlyA, body: `{"user_profiles":[{"userId":"only"}]}`, status: 202, app: appA},
		{name: "ingest-only token", token: tokIngestOnly, body: `{"user_profiles":[{"userId":"ingest"}]}`, status: 202, app: appA},
		{name: "no app at all", token: tokBoth, body: body, status: 400},
		{name: "export-only token", token: tokExportOnly, body: body, status: 403},
		{name: "token of another app", token: tokOnlyA, body: `{"appKey":"` + appB + `","user_profiles":[{"userId":"u1"}]}`, status: 403},
		{name: "unknown app", token: tokBoth, body: `{"appKey":"nope","user_profiles":[{"userId":"u1"}]}`, status: 401},
		{name: "no token", body: `{"appKey":"` + appA + `","user_profiles":[{"userId":"u1"}]}`, status: 401},
		{name: "no token for an app without require_token", body: `{"appKey":"` + appB + `","user_profiles":[{"userId":"u1"}]}`, status: 401},
		{name: "unknown token", token: "nope", body: body, status: 401},
		{name: "not JSON", token: tokOnlyA, body: `{`, status: 400},
		{name: "Content-Type text", token: tokOnlyA, body: body, header: []string{"Content-Type", "text/plain"}, status: 415},
		{name: "Content-Encoding br", token: tokOnlyA, body: body, header: []string{"Content-Encoding", "br"}, status: 415},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := s.post(tt.token, tt.body, tt.header...)
			if r.status != tt.status {
				t.Fatalf("got %v; want %d", r, tt.status)
			}
			if tt.app == "" {
				return
			}
			var res Result
			if err := json.Unmarshal(r.body, &res); err != nil {
				t.Fatal(err)
			}
			u := res.Profiles[0].UserID
			s.profile(tt.app, "userId="+u)
			other := appA
			if tt.app == appA {
				other = appB
			}
			s.checkAbsent(other, "userId="+u)
		})
	}
	// Nothing refused was stored.
	s.checkAbsent(appA, "userId=u1")
	s.checkAbsent(appB, "userId=u1")
}

func TestUpdateAtomic(t *testing.T) {
	s := startServer(t)
	owner := s.accepted(tokOnlyA, `{"user_profiles":[{"userId":"owner","user_alias":{"alias_label":"fb","alias_id":"1"},"custom-s":"text"}]}`).Profiles[0]
	tests := []struct {
		name   string
		body   string
		status int
		index  int
		field  string
	}{
		{name: "alias of another profile", body: `{"user_profiles":[{"userId":"new1","custom-n":1},{"userId":"new2","user_alias":{"alias_label":"fb","alias_id":"1"}}]}`,
			status: 409, index: 1, field: "user_alias"},
		{name: "userId of another profile", body: `{"user_profiles":[{"userId":"new1","custom-n":1},{"pyze_id":"ca1ab028-185d-4833-a3af-5b5d46b62771","userId":"owner"}]}`,
			status: 409, index: 1, field: "userId"},
		{name: "other userId for a pyze_id", body: `{"user_profiles":[{"userId":"new1","custom-n":1},{"pyze_id":"` + owner.PyzeID + `","userId":"new2"}]}`,
			status: 409, index: 1, field: "userId"},
		{name: "400 in profile 3 of 5", body: `{"user_profiles":[{"userId":"new1"},{"userId":"new2"},{"userId":"new3","gender":"X"},{"userId":"new4"},{"userId":"new5"}]}`,
			status: 400, index: 2, field: "gender"},
		{name: "inc on a string in profile 3 of 5", body: `{"user_profiles":[{"userId":"new1"},{"userId":"owner","custom-m":1},{"userId":"owner","custom-s":{"inc":1}},{"userId":"new4"},{"userId":"new5"}]}`,
			status: 400, index: 2, field: "custom-s"},
		{name: "add to a string after a new alias", body: `{"user_profiles":[{"userId":"owner","user_alias":{"alias_label":"g","alias_id":"2"}},{"userId":"new2","custom-s":"x","custom-t":"y"},{"userId":"new2","custom-t":{"add":["z"]}}]}`,
			status: 400, index: 2, field: "custom-t"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, before := s.profile(appA, "userId=owner")
			checkError(t, s.post(tokOnlyA, tt.body), tt.status, tt.index, tt.field)
			for _, u := range []string{"new1", "new2", "new3", "new4", "new5"} {
				s.checkAbsent(appA, "userId="+u)
			}
			s.checkAbsent(appA, "pyze_id=ca1ab028-185d-4833-a3af-5b5d46b62771")
			s.checkAbsent(appA, "alias_label=g&alias_id=2")
			if _, after := s.profile(appA, "userId=owner"); !bytes.Equal(after, before) {
				t.Fatalf("owner changed from %s to %s", before, after)
			}
		})
	}
}

func TestIdempotencyKey(t *testing.T) {
	var later atomic.Int64 // how far ahead of time.Now the handler's clock is
	s := startServer(t, func(h *Handler) {
		h.now = func() time.Time { return time.Now().Add(time.Duration(later.Load())) }
	})
	const body = `{"user_profiles":[{"userId":"u","custom-n":{"inc":1}}]}`
	first := s.post(tokOnlyA, body, "Idempotency-Key", "k1")
	again := s.post(tokOnlyA, body, "Idempotency-Key", "k1")
	if first.status != 202 || again.status != 202 || !bytes.Equal(first.body, again.body) {
		t.Fatalf("got %v then %v; want the same 202 twice", first, again)
	}
	if first.header.Get("Idempotent-Replayed") != "" || again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("Idempotent-Replayed: got %q then %q; want none then true", first.header.Get("Idempotent-Replayed"), again.header.Get("Idempotent-Replayed"))
	}
	if got := s.counter(appA, "u"); got != "1" {
		t.Fatalf("counter is %s after one key sent twice; want 1", got)
	}
	if r := s.post(tokOnlyA, body, "Idempotency-Key", "k2"); r.status != 202 {
		t.Fatalf("got %v; want 202", r)
	}
	if got := s.counter(appA, "u"); got != "2" {
		t.Fatalf("counter is %s after a second key; want 2", got)
	}
	// Without a key, every request applies.
	s.accepted(tokOnlyA, body)
	if got := s.counter(appA, "u"); got != "3" {
		t.Fatalf("counter is %s; want 3", got)
	}
	// Keys are per app: k1 in app B applies there.
	s.accepted(tokBoth, body, "Idempotency-Key", "k1", "X-App-Key", appB)
	if got := s.counter(appB, "u"); got != "1" {
		t.Fatalf("counter of app B is %s; want 1", got)
	}
	// A refused request records nothing under its key.
	checkError(t, s.post(tokOnlyA, `{"user_profiles":[{"userId":"u","custom-n":{"inc":"x"}}]}`, "Idempotency-Key", "k3"), 400, 0, "custom-n")
	if r := s.post(tokOnlyA, body, "Idempotency-Key", "k3"); r.status != 202 || r.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("got %v; want 202, applied", r)
	}
	if got := s.counter(appA, "u"); got != "4" {
		t.Fatalf("counter is %s; want 4", got)
	}
	if r := s.post(tokOnlyA, body, "Idempotency-Key", strings.Repeat("k", 256)); r.status != 400 {
		t.Fatalf("256-byte key: got %v; want 400", r)
	}
	// Past the dedup window, the key applies again.
	later.Store(int64(time.Hour))
	if r := s.post(tokOnlyA, body, "Idempotency-Key", "k1"); r.status != 202 || r.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("got %v; want 202, applied", r)
	}
	if got := s.counter(appA, "u"); got != "5" {
		t.Fatalf("counter is %s after the window; want 5", got)
	}
}

func TestSameUserTwoApps(t *testing.T) {
	s := startServer(t)
	const body = `{"user_profiles":[{"userId":"u","custom-n":{"inc":1}}]}`
	a := s.accepted(tokBoth, body, "X-App-Key", appA).Profiles[0]
	b := s.accepted(tokBoth, body, "X-App-Key", appB).Profiles[0]
	if !a.Created || !b.Created || a.PyzeID == b.PyzeID {
		t.Fatalf("got %+v and %+v; want two profiles created", a, b)
	}
	if pa, _ := s.profile(appA, "userId=u"); pa.PyzeID != a.PyzeID {
		t.Fatalf("app A has %s; want %s", pa.PyzeID, a.PyzeID)
	}
	if pb, _ := s.profile(appB, "userId=u"); pb.PyzeID != b.PyzeID {
		t.Fatalf("app B has %s; want %s", pb.PyzeID, b.PyzeID)
	}
	s.checkAbsent(appB, "pyze_id="+a.PyzeID)
}

func TestSameUserTwiceInOneRequest(t *testing.T) {
	s := startServer(t)
	res := s.accepted(tokOnlyA, `{"user_profiles":[{"userId":"u","custom-n":{"inc":1}},{"userId":"u","custom-n":{"inc":1},"custom-s":"x"},{"userId":"u","custom-s":null}]}`)
	if len(res.Profiles) != 3 || !res.Profiles[0].Created || res.Profiles[1].Created || res.Profiles[2].Created ||
		res.Profiles[1].PyzeID != res.Profiles[0].PyzeID || res.Profiles[2].PyzeID != res.Profiles[0].PyzeID {
		t.Fatalf("got %+v; want one profile, created by the first object", res)
	}
	if got := s.counter(appA, "u"); got != "2" {
		t.Fatalf("counter is %s; want 2", got)
	}
	if p, raw := s.profile(appA, "userId=u"); len(p.Attributes) != 1 {
		t.Fatalf("got %s; want custom-s removed by the last object", raw)
	}
}

func TestConcurrentIncrements(t *testing.T) {
	s := startServer(t)
	const clients, requests = 2, 1000
	const body = `{"user_profiles":[{"userId":"u","custom-n":{"inc":1}}]}`
	testutil.Concurrently(t, clients, func(int) error {
		c := newClient()
		defer c.CloseIdleConnections()
		for i := range requests {
			r, err := s.do(c, "POST", "/v1/users/profile", tokOnlyA, []byte(body))
			if err == nil && r.status != 202 {
				err = fmt.Errorf("request %d: got %v; want 202", i, r)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if got := s.counter(appA, "u"); got != fmt.Sprint(clients*requests) {
		t.Fatalf("counter is %s; want %d", got, clients*requests)
	}
}

func TestUpdateLimits(t *testing.T) {
	small := startServer(t, func(h *Handler) { h.cfg.MaxRequestBytes = 1 << 10 })
	big := `{"user_profiles":[{"userId":"u","x":"` + strings.Repeat("x", 2<<10) + `"}]}`
	if r := small.post(tokOnlyA, big); r.status != 413 {
		t.Fatalf("got %v; want 413", r)
	}
	s := startServer(t)
	checkError(t, s.post(tokOnlyA, string(nProfiles(1001))), 400, -1, "user_profiles")
	if res := s.accepted(tokOnlyA, string(nProfiles(1000))); res.Accepted != 1000 {
		t.Fatalf("accepted %d; want 1000", res.Accepted)
	}
	checkError(t, s.post(tokOnlyA, `{"user_profiles":[`+withAttrs(51, "")+`]}`), 400, 0, "")
	s.accepted(tokOnlyA, `{"user_profiles":[`+withAttrs(50, `"user_alias":{"alias_label":"l","alias_id":"i"}`)+`]}`)
}
