package e2e

// The auth matrix: every credential kind against every route of the route
// table, with the status each cell must answer, and app A's credentials
// never reading or writing app B.

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-json"

	"trove/auth"
	"trove/web"
)

// credKind is one kind of credential the matrix sends.
type credKind string

const (
	credNone      credKind = "none"
	credMalformed credKind = "malformed"
	credUnknown   credKind = "unknown"
	credRevoked   credKind = "revoked"
	credIngest    credKind = "ingest(A)"
	credExport    credKind = "export(A)"
	credAdmin     credKind = "admin"
	credOtherApp  credKind = "ingest+export(B)"
)

var credKinds = []credKind{credNone, credMalformed, credUnknown, credRevoked, credIngest, credExport, credAdmin, credOtherApp}

// matrixRequest builds one request of a route, for app A (demoApp).
type matrixRequest struct {
	query, body, contentType string
	path                     string // for a pattern route, the path with its segments filled in
	ok                       int    // the status of an allowed request
}

func TestAuthMatrix(t *testing.T) {
	t.Parallel()
	addr := startServer(t, testConfig).addr
	base := "http://" + addr
	admin := "Bearer " + adminSecret

	// An export-only token for A, and a revoked one, through the admin API.
	newToken := func(name, scopes string) (id, secret string) {
		t.Helper()
		r := request(t, "POST", base+"/admin/tokens", strings.NewReader(`{"name":"`+name+`","scopes":[`+scopes+`],"apps":["`+demoApp+`"]}`), "Authorization: "+admin)
		var tok struct{ ID, Token string }
		if r.status != http.StatusCreated || json.Unmarshal(r.body, &tok) != nil {
			t.Fatalf("creating token %s: %d %s", name, r.status, r.body)
		}
		return tok.ID, tok.Token
	}
	_, exportSecret := newToken("matrix-export", `"export"`)
	revokedID, revokedSecret := newToken("matrix-revoked", `"ingest","export","admin"`)
	if r := request(t, "DELETE", base+"/admin/tokens/"+revokedID, nil, "Authorization: "+admin); r.status != http.StatusOK {
		t.Fatalf("revoking: %d %s", r.status, r.body)
	}
	authorization := map[credKind]string{
		credMalformed: "Bearer",
		credUnknown:   "Bearer trv_ingest_000000000000_nope",
		credRevoked:   "Bearer " + revokedSecret,
		credIngest:    "Bearer " + ingestSecret,
		credExport:    "Bearer " + exportSecret,
		credAdmin:     admin,
		credOtherApp:  "Bearer " + otherSecret,
	}
	// The Segment routes take an app key or a token as the Basic user name.
	basic := func(user string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":")) }

	event := `{"type":"event","event":"m","userId":"u","eventTime":"2026-11-20T10:00:00Z","appKey":"` + demoApp + `"}`
	segTrack := `{"type":"track","event":"m","userId":"u","timestamp":"2026-11-20T10:00:00Z"}`
	requests := map[string]func(n int) matrixRequest{
		"GET /healthz":             func(int) matrixRequest { return matrixRequest{ok: 200} },
		"GET /readyz":              func(int) matrixRequest { return matrixRequest{ok: 200} },
		"GET /metrics":             func(int) matrixRequest { return matrixRequest{ok: 200} },
		"GET /openapi.yaml":        func(int) matrixRequest { return matrixRequest{ok: 200} },
		"GET /":                    func(int) matrixRequest { return matrixRequest{ok: 200} },
		"POST /v1/events":          func(int) matrixRequest { return matrixRequest{body: event, contentType: "application/json", ok: 202} },
		"GET /v1/export/events":    func(int) matrixRequest { return matrixRequest{query: "appKey=" + demoApp, ok: 200} },
		"GET /v1/export/rejected":  func(int) matrixRequest { return matrixRequest{query: "appKey=" + demoApp, ok: 200} },
		"GET /v1/export/profiles":  func(int) matrixRequest { return matrixRequest{query: "appKey=" + demoApp, ok: 200} },
		"GET /v1/stream/events":    func(int) matrixRequest { return matrixRequest{query: "appKey=" + demoApp + "&since=0", ok: 200} },
		"POST /users/profile":      profileRequest,
		"POST /v1/users/profile":   profileRequest,
		"GET /v1/users/profile":    func(int) matrixRequest { return matrixRequest{query: "appKey=" + demoApp + "&userId=nobody", ok: 404} },
		"DELETE /v1/users/profile": func(int) matrixRequest { return matrixRequest{query: "appKey=" + demoApp + "&userId=gone", ok: 200} },
		"POST /admin/backup":       func(int) matrixRequest { return matrixRequest{ok: 200} },
		"POST /admin/apps":         func(n int) matrixRequest { return matrixRequest{body: fmt.Sprintf(`{"name":"matrix-%d"}`, n), ok: 201} },
		"GET /admin/apps":          func(int) matrixRequest { return matrixRequest{ok: 200} },
		"POST /admin/tokens": func(n int) matrixRequest {
			return matrixRequest{body: fmt.Sprintf(`{"name":"m-%d","scopes":["export"],"apps":["%s"]}`, n, demoApp), ok: 201}
		},
		"GET /admin/tokens":   func(int) matrixRequest { return matrixRequest{ok: 200} },
		"GET /admin/overview": func(int) matrixRequest { return matrixRequest{ok: 200} },
		"GET /admin/sinks":    func(int) matrixRequest { return matrixRequest{ok: 200} },
		"GET /admin/apps/{appKey}/schemas": func(int) matrixRequest {
			return matrixRequest{path: "/admin/apps/" + demoApp + "/schemas", ok: 200}
		},
		"GET /admin/apps/{appKey}/schemas/{event}": func(int) matrixRequest {
			return matrixRequest{path: "/admin/apps/" + demoApp + "/schemas/No%20Such%20Event", ok: 404}
		},
		"PUT /admin/apps/{appKey}/schemas/{event}": func(n int) matrixRequest {
			return matrixRequest{path: fmt.Sprintf("/admin/apps/%s/schemas/matrix-%d", demoApp, n), body: `{}`, contentType: "application/json", ok: 200}
		},
		"DELETE /admin/apps/{appKey}/schemas/{event}": func(int) matrixRequest {
			return matrixRequest{path: "/admin/apps/" + demoApp + "/schemas/No%20Such%20Event", ok: 404}
		},
		"POST /admin/quarantine/replay": func(int) matrixRequest { return matrixRequest{query: "appKey=" + demoApp, ok: 200} },
		"POST /v1/batch": func(int) matrixRequest {
			return matrixRequest{body: `{"batch":[` + segTrack + `]}`, contentType: "application/json", ok: 200}
		},
		"POST /v1/track": func(int) matrixRequest {
			return matrixRequest{body: segTrack, contentType: "application/json", ok: 200}
		},
		"POST /v1/identify": segmentRequest(`{"type":"identify","userId":"u","traits":{"plan":"pro"}}`),
		"POST /v1/page":     segmentRequest(`{"type":"page","name":"home","userId":"u"}`),
		"POST /v1/screen":   segmentRequest(`{"type":"screen","name":"home","userId":"u"}`),
		"POST /v1/alias":    segmentRequest(`{"type":"alias","previousId":"anon-1","userId":"u"}`),
		"POST /v1/group":    segmentRequest(`{"type":"group","groupId":"g","userId":"u"}`),
		"GET /cluster-info": func(int) matrixRequest { return matrixRequest{ok: 200} },
		// The Amplitude, Mixpanel and PostHog routes, with no key in the
		// body: the header's credential is the only one.
		"POST /batch":     jsonRequest(`{"events":[{"event_type":"m","user_id":"u"}]}`),
		"POST /2/httpapi": jsonRequest(`{"events":[{"event_type":"m","user_id":"u"}]}`),
		"POST /identify": func(int) matrixRequest {
			return matrixRequest{body: `identification={"user_id":"u"}`, contentType: "application/x-www-form-urlencoded", ok: 200}
		},
		"GET /track":            queryRequest(mpTrack),
		"POST /track":           formRequest(mpTrack),
		"GET /engage":           queryRequest(mpEngage),
		"POST /engage":          formRequest(mpEngage),
		"GET /import":           queryRequest(mpTrack),
		"POST /import":          formRequest(mpTrack),
		"POST /capture":         jsonRequest(`{"event":"m","distinct_id":"u"}`),
		"POST /i/v0/e":          jsonRequest(`{"event":"m","distinct_id":"u"}`),
		"POST /e":               jsonRequest(`{"event":"m","distinct_id":"u"}`),
		"DELETE /admin/tokens/": nil, // built below: each allowed cell needs a token of its own
		"GET /console/":         func(int) matrixRequest { return matrixRequest{ok: 200} },
	}

	routes := web.New(web.Config{}, auth.NewRegistry(), web.Handlers{}, slog.New(slog.DiscardHandler)).Routes()
	n := 0
	cells, failed := 0, 0
	for _, rt := range routes {
		key := rt.Method + " " + rt.Path
		build, known := requests[key]
		if !known {
			t.Errorf("route %s has no request in the auth matrix: add one", key)
			continue
		}
		for _, cred := range credKinds {
			n++
			var mr matrixRequest
			path := rt.Path
			switch {
			case key == "DELETE /admin/tokens/":
				id, _ := newToken(fmt.Sprintf("victim-%d", n), `"export"`)
				path += id
				mr.ok = 200
			case strings.HasSuffix(rt.Path, "/") && rt.Path != "/":
				path += "app.js"
				mr = build(n)
			default:
				mr = build(n)
				if mr.path != "" {
					path = mr.path
				}
			}
			want := expectedStatus(rt, cred, mr.ok)
			h := authorization[cred]
			if rt.Access == web.WriteKey {
				switch cred {
				case credIngest:
					h = basic(ingestSecret)
				case credExport:
					h = basic(exportSecret)
				case credOtherApp:
					h = basic(otherApp) // B's app key: writes to B, never to A
				}
			}
			got := matrixDo(t, rt.Method, base+path, mr, h)
			cells++
			if got != want {
				failed++
				t.Errorf("%-28s %-18s: status %d; want %d", key, cred, got, want)
			}
		}
	}

	// A's credentials never see B's data, B's never see A's.
	decodeAnswer(t, postEvents(t, addr, `{"type":"event","event":"only-b","userId":"u","eventTime":"2026-11-20T10:00:00Z","appKey":"`+otherApp+`"}`, jsonType, "Authorization: Bearer "+otherSecret), http.StatusAccepted)
	for _, tc := range []struct{ secret, app string }{{backendSecret, otherApp}, {exportSecret, otherApp}, {otherSecret, demoApp}} {
		r := request(t, "GET", base+"/v1/export/events?appKey="+tc.app, nil, "Authorization: Bearer "+tc.secret)
		if r.status != http.StatusForbidden || bytes.Contains(r.body, []byte("only-b")) {
			t.Errorf("a token of another app reading %s: %d %s; want 403", tc.app, r.status, r.body)
		}
	}
	if r := postEvents(t, addr, `{"type":"event","event":"x","userId":"u","eventTime":"2026-11-20T10:00:00Z","appKey":"`+otherApp+`"}`, jsonType, "Authorization: Bearer "+backendSecret); r.status != http.StatusForbidden {
		t.Errorf("A's token writing to B: %d %s; want 403", r.status, r.body)
	}
	summary := fmt.Sprintf("AUTHMATRIX: routes=%d credentials=%d cells=%d mismatches=%d", len(routes), len(credKinds), cells, failed)
	t.Log(summary)
	fmt.Println(summary)
}

func profileRequest(int) matrixRequest {
	return matrixRequest{body: `{"appKey":"` + demoApp + `","user_profiles":[{"userId":"u"}]}`, contentType: "application/json", ok: 202}
}

const (
	mpTrack  = `{"event":"m","properties":{"distinct_id":"u"}}`
	mpEngage = `{"$distinct_id":"u","$set":{"plan":"pro"}}`
)

func jsonRequest(body string) func(int) matrixRequest {
	return func(int) matrixRequest { return matrixRequest{body: body, contentType: "application/json", ok: 200} }
}

func queryRequest(data string) func(int) matrixRequest {
	return func(int) matrixRequest {
		return matrixRequest{query: "data=" + base64.StdEncoding.EncodeToString([]byte(data)), ok: 200}
	}
}

func formRequest(data string) func(int) matrixRequest {
	return func(int) matrixRequest {
		return matrixRequest{body: "data=" + base64.URLEncoding.EncodeToString([]byte(data)), contentType: "application/x-www-form-urlencoded", ok: 200}
	}
}

func segmentRequest(body string) func(int) matrixRequest {
	return func(int) matrixRequest { return matrixRequest{body: body, contentType: "application/json", ok: 200} }
}

// expectedStatus is the rule: public routes answer everyone; otherwise bad
// credentials (malformed, unknown, revoked) are 401, and a valid token
// without the route's scope, or without app A, is 403.
func expectedStatus(rt web.Route, cred credKind, ok int) int {
	if rt.Access == web.Public {
		return ok
	}
	switch cred {
	case credMalformed, credUnknown, credRevoked:
		return http.StatusUnauthorized
	case credNone:
		if rt.Access == web.AppKey { // the demo app takes events with its key alone
			return ok
		}
		return http.StatusUnauthorized
	}
	scopes := map[credKind]auth.Scope{
		credIngest:   auth.ScopeIngest,
		credExport:   auth.ScopeExport,
		credAdmin:    auth.ScopeIngest | auth.ScopeExport | auth.ScopeAdmin,
		credOtherApp: auth.ScopeIngest | auth.ScopeExport,
	}[cred]
	if rt.Access == web.WriteKey && cred == credOtherApp {
		return ok // B's own key: the messages go to B
	}
	if rt.Access == web.WriteKey && cred == credAdmin {
		return http.StatusForbidden // a token of every app does not say which app a write key means
	}
	if scopes&rt.Scope != rt.Scope {
		return http.StatusForbidden
	}
	if cred == credOtherApp && !strings.HasPrefix(rt.Path, "/admin/") {
		return http.StatusForbidden // a token of B on A's data
	}
	return ok
}

// matrixDo sends one request and returns its status; streaming answers are
// cut once their status has come.
func matrixDo(t *testing.T, method, url string, mr matrixRequest, authorization string) int {
	t.Helper()
	if mr.query != "" {
		url += "?" + mr.query
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(mr.body))
	if err != nil {
		t.Fatal(err)
	}
	if mr.contentType != "" {
		req.Header.Set("Content-Type", mr.contentType)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	resp.Body.Close() // a stream would never end: the status is all the matrix needs
	return resp.StatusCode
}
