package e2e

// End-to-end tests of the admin API (SPEC.md section 2) and of the
// `trove apps` and `trove tokens` commands, on a real server.

import (
	"bytes"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/goccy/go-json"

	"trove/auth"
	"trove/cli"
)

// adminApp and adminToken are the admin API's JSON objects.
type adminApp struct {
	Name         string `json:"name"`
	AppKey       string `json:"appKey"`
	Source       string `json:"source"`
	RequireToken bool   `json:"requireToken"`
	CreatedAt    string `json:"createdAt"`
}

type adminToken struct {
	ID        string   `json:"id"`
	Token     string   `json:"token"`
	Name      string   `json:"name"`
	Scopes    []string `json:"scopes"`
	Apps      []string `json:"apps"`
	Source    string   `json:"source"`
	CreatedAt string   `json:"createdAt"`
	Revoked   bool     `json:"revoked"`
	RevokedAt string   `json:"revokedAt"`
}

// adminCall sends one admin request with the given secret and decodes a
// JSON answer of status want into out (when not nil).
func adminCall(t *testing.T, addr, secret, method, path, body string, want int, out any) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := request(t, method, "http://"+addr+path, rd, jsonType, "Authorization: Bearer "+secret)
	if r.status != want {
		t.Fatalf("%s %s %s: status %d (%s); want %d", method, path, body, r.status, r.body, want)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q; want application/json", method, path, ct)
	}
	if out != nil {
		if err := json.Unmarshal(r.body, out); err != nil {
			t.Fatalf("%s %s: answer %q: %v", method, path, r.body, err)
		}
	}
	return r
}

func listApps(t *testing.T, addr string) map[string]adminApp {
	t.Helper()
	var l struct{ Apps []adminApp }
	adminCall(t, addr, adminSecret, "GET", "/admin/apps", "", http.StatusOK, &l)
	m := map[string]adminApp{}
	for _, a := range l.Apps {
		m[a.AppKey] = a
	}
	return m
}

func listTokens(t *testing.T, addr string) (map[string]adminToken, []byte) {
	t.Helper()
	var l struct{ Tokens []adminToken }
	r := adminCall(t, addr, adminSecret, "GET", "/admin/tokens", "", http.StatusOK, &l)
	m := map[string]adminToken{}
	for _, tk := range l.Tokens {
		m[tk.ID] = tk
	}
	return m, r.body
}

// eventFor is a valid event of app.
func eventFor(app, messageID string) string {
	return strings.Replace(event("admin-test", messageID), demoApp, app, 1)
}

var appKeyRE = regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`)

// TestAdminAppsAndTokens creates an app and tokens over HTTP, ingests with
// one, revokes it, and checks that all of it holds after a restart.
func TestAdminAppsAndTokens(t *testing.T) {
	t.Parallel()
	srv := startServer(t, testConfig)
	addr, dataDir, stop := srv.addr, srv.dataDir, srv.stop

	// Only the admin scope opens the admin API.
	for _, secret := range []string{backendSecret, ingestSecret} {
		r := request(t, "GET", "http://"+addr+"/admin/tokens", nil, "Authorization: Bearer "+secret)
		if r.status != http.StatusForbidden {
			t.Errorf("GET /admin/tokens with a token without admin scope: status %d; want 403", r.status)
		}
	}

	var app adminApp
	adminCall(t, addr, adminSecret, "POST", "/admin/apps", `{"name":"shop"}`, http.StatusCreated, &app)
	if app.Name != "shop" || !appKeyRE.MatchString(app.AppKey) || app.Source != "api" || app.CreatedAt == "" {
		t.Fatalf("created app %+v; want name shop, a 22-character URL-safe appKey, source api", app)
	}
	apps := listApps(t, addr)
	if len(apps) != 3 || apps[demoApp].Source != "config" || apps[otherApp].Source != "config" || apps[app.AppKey] != app {
		t.Errorf("GET /admin/apps = %+v; want the two config apps and %+v", apps, app)
	}
	// A second app of the same name is refused.
	r := adminCall(t, addr, adminSecret, "POST", "/admin/apps", `{"name":"shop"}`, http.StatusConflict, nil)
	if !bytes.Contains(r.body, []byte(app.AppKey)) {
		t.Errorf("duplicate name: %s; want the message to give the existing appKey", r.body)
	}

	var tok, all adminToken
	adminCall(t, addr, adminSecret, "POST", "/admin/tokens",
		`{"name":"shop-backend","scopes":["ingest","export"],"apps":["`+app.AppKey+`"]}`, http.StatusCreated, &tok)
	kind, id, ok := auth.ParseToken(tok.Token)
	if !ok || kind != "ingest-export" || id != tok.ID || tok.Source != "api" || tok.Name != "shop-backend" ||
		strings.Join(tok.Scopes, ",") != "ingest,export" || strings.Join(tok.Apps, ",") != app.AppKey {
		t.Fatalf("created token %+v; want trv_ingest-export_<id>_<secret> and its details", tok)
	}
	adminCall(t, addr, adminSecret, "POST", "/admin/tokens", `{"name":"everything","scopes":["export"],"apps":["*"]}`, http.StatusCreated, &all)

	// The new token ingests into the new app and exports it, and nothing else.
	bearer := "Authorization: Bearer " + tok.Token
	decodeAnswer(t, postEvents(t, addr, eventFor(app.AppKey, "a-1"), jsonType, bearer), http.StatusAccepted)
	if got := exportFrom(t, addr, "/v1/export/events", app.AppKey, "", bearer); len(got.lines) != 1 {
		t.Errorf("export of the new app: %d lines; want 1", len(got.lines))
	}
	if got := exportFrom(t, addr, "/v1/export/events", app.AppKey, "", "Authorization: Bearer "+all.Token); len(got.lines) != 1 {
		t.Errorf("export with the \"*\" token: %d lines; want 1", len(got.lines))
	}
	if r := postEvents(t, addr, event("x", "a-2"), jsonType, bearer); r.status != http.StatusForbidden {
		t.Errorf("ingest into another app with the new token: status %d; want 403", r.status)
	}
	if r := request(t, "GET", "http://"+addr+"/admin/tokens", nil, bearer); r.status != http.StatusForbidden {
		t.Errorf("the new token on the admin API: status %d; want 403", r.status)
	}

	// The listing shows config and API tokens, never a secret or a digest.
	toks, body := listTokens(t, addr)
	if len(toks) != 6 {
		t.Errorf("GET /admin/tokens lists %d tokens; want 6 (admin, 3 config, 2 api): %s", len(toks), body)
	}
	backendID := auth.DigestID(auth.Digest([]byte(backendSecret)))
	if b := toks[backendID]; b.Name != "backend" || b.Source != "config" || b.Token != "" {
		t.Errorf("config token %s listed as %+v; want backend, source config", backendID, b)
	}
	if a := toks["admin"]; a.Source != "admin_token" {
		t.Errorf("admin token listed as %+v; want source admin_token", a)
	}
	if toks[tok.ID].Token != "" || toks[tok.ID].Name != "shop-backend" {
		t.Errorf("new token listed as %+v; want it without its secret", toks[tok.ID])
	}
	for _, s := range []string{tok.Token, all.Token, backendSecret, adminSecret, `"token"`} {
		if bytes.Contains(body, []byte(s)) {
			t.Errorf("GET /admin/tokens shows %q: %s", s, body)
		}
	}
	d := auth.Digest([]byte(tok.Token))
	if bytes.Contains(body, []byte(hex.EncodeToString(d[:]))) || bytes.Contains(body, []byte(hex.EncodeToString(d[:8]))) {
		t.Errorf("GET /admin/tokens shows a digest: %s", body)
	}

	// Revocation is refused for what the config declares, and at once
	// effective for an API token.
	r = adminCall(t, addr, adminSecret, "DELETE", "/admin/tokens/"+backendID, "", http.StatusConflict, nil)
	if !bytes.Contains(r.body, []byte("config file")) {
		t.Errorf("revoking a config token: %s; want a message that says to edit the config file", r.body)
	}
	adminCall(t, addr, adminSecret, "DELETE", "/admin/tokens/admin", "", http.StatusConflict, nil)
	var revoked adminToken
	adminCall(t, addr, adminSecret, "DELETE", "/admin/tokens/"+tok.ID, "", http.StatusOK, &revoked)
	if revoked.ID != tok.ID || !revoked.Revoked || revoked.RevokedAt == "" || revoked.Token != "" {
		t.Errorf("DELETE answered %+v; want id %s, revoked, revokedAt", revoked, tok.ID)
	}
	r = postEvents(t, addr, eventFor(app.AppKey, "a-3"), jsonType, bearer)
	if r.status != http.StatusUnauthorized {
		t.Errorf("ingest with the revoked token: status %d; want 401", r.status)
	}
	if !bytes.Contains(r.body, []byte(tok.ID)) || bytes.Contains(r.body, []byte(tok.Token)) {
		t.Errorf("refusal %s; want it to name the id and not the secret", r.body)
	}
	adminCall(t, addr, adminSecret, "DELETE", "/admin/tokens/"+tok.ID, "", http.StatusNotFound, nil)
	if toks, _ := listTokens(t, addr); len(toks) != 5 {
		t.Errorf("after the revocation %d tokens are listed; want 5", len(toks))
	}

	// Everything holds after a restart on the same data directory.
	stop()
	addr = startServer(t, testConfig, inDir(dataDir)).addr
	if got := listApps(t, addr)[app.AppKey]; got != app {
		t.Errorf("after a restart the app is %+v; want %+v", got, app)
	}
	toks, _ = listTokens(t, addr)
	if _, ok := toks[tok.ID]; ok || toks[all.ID].Name != "everything" || toks[backendID].Name != "backend" || len(toks) != 5 {
		t.Errorf("after a restart the tokens are %+v; want the config's and %s, without %s", toks, all.ID, tok.ID)
	}
	if r := postEvents(t, addr, eventFor(app.AppKey, "a-4"), jsonType, bearer); r.status != http.StatusUnauthorized {
		t.Errorf("after a restart, the revoked token: status %d; want 401", r.status)
	}
	if got := exportFrom(t, addr, "/v1/export/events", app.AppKey, "", "Authorization: Bearer "+all.Token); len(got.lines) != 1 {
		t.Errorf("after a restart, export with the \"*\" token: %d lines; want 1", len(got.lines))
	}
	// The app takes events with its appKey alone, as config apps do.
	decodeAnswer(t, postEvents(t, addr, eventFor(app.AppKey, "a-5")), http.StatusAccepted)
}

// TestAdminBadRequests sends bad admin requests: each is a 400, 404 or 409
// naming the field, nothing changes, and the server keeps serving.
func TestAdminBadRequests(t *testing.T) {
	t.Parallel()
	addr := startServer(t, testConfig).addr
	var shop adminApp
	adminCall(t, addr, adminSecret, "POST", "/admin/apps", `{"name":"shop"}`, http.StatusCreated, &shop)
	long := strings.Repeat("n", 256)
	tests := []struct {
		name, method, path, body string
		status                   int
		code, field              string
	}{
		{"app: malformed JSON", "POST", "/admin/apps", `{"name":`, 400, "invalid_request", ""},
		{"app: not an object", "POST", "/admin/apps", `["shop"]`, 400, "invalid_request", ""},
		{"app: null", "POST", "/admin/apps", `null`, 400, "invalid_request", ""},
		{"app: no body", "POST", "/admin/apps", ``, 400, "invalid_request", ""},
		{"app: empty name", "POST", "/admin/apps", `{"name":""}`, 400, "invalid_request", "name"},
		{"app: blank name", "POST", "/admin/apps", `{"name":"  "}`, 400, "invalid_request", "name"},
		{"app: no name", "POST", "/admin/apps", `{}`, 400, "invalid_request", "name"},
		{"app: name not a string", "POST", "/admin/apps", `{"name":7}`, 400, "invalid_request", "name"},
		{"app: name too long", "POST", "/admin/apps", `{"name":"` + long + `"}`, 400, "invalid_request", "name"},
		{"app: control character", "POST", "/admin/apps", `{"name":"a\nb"}`, 400, "invalid_request", "name"},
		{"app: unknown member", "POST", "/admin/apps", `{"name":"x","appKey":"mine"}`, 400, "invalid_request", "appKey"},
		{"app: taken name", "POST", "/admin/apps", `{"name":"shop"}`, 409, "conflict", "name"},
		{"app: config app's name", "POST", "/admin/apps", `{"name":"demo"}`, 409, "conflict", "name"},
		{"token: malformed JSON", "POST", "/admin/tokens", `{"name":"t","scopes":["ingest"]`, 400, "invalid_request", ""},
		{"token: empty name", "POST", "/admin/tokens", `{"name":"","scopes":["ingest"],"apps":["*"]}`, 400, "invalid_request", "name"},
		{"token: unknown scope", "POST", "/admin/tokens", `{"name":"t","scopes":["ingest","write"],"apps":["*"]}`, 400, "invalid_request", "scopes"},
		{"token: no scopes", "POST", "/admin/tokens", `{"name":"t","scopes":[],"apps":["*"]}`, 400, "invalid_request", "scopes"},
		{"token: scopes not a list", "POST", "/admin/tokens", `{"name":"t","scopes":"ingest","apps":["*"]}`, 400, "invalid_request", "scopes"},
		{"token: unknown app key", "POST", "/admin/tokens", `{"name":"t","scopes":["ingest"],"apps":["no-such-app-key"]}`, 400, "invalid_request", "apps"},
		{"token: no apps", "POST", "/admin/tokens", `{"name":"t","scopes":["ingest"],"apps":[]}`, 400, "invalid_request", "apps"},
		{"token: star and a key", "POST", "/admin/tokens", `{"name":"t","scopes":["ingest"],"apps":["*","` + demoApp + `"]}`, 400, "invalid_request", "apps"},
		{"token: unknown member", "POST", "/admin/tokens", `{"name":"t","scope":["ingest"],"apps":["*"]}`, 400, "invalid_request", "scope"},
		{"revoke: unknown id", "DELETE", "/admin/tokens/0123456789ab", "", 404, "not_found", "id"},
		{"revoke: no id", "DELETE", "/admin/tokens/", "", 404, "not_found", "id"},
		{"revoke: config token", "DELETE", "/admin/tokens/" + auth.DigestID(auth.Digest([]byte(ingestSecret))), "", 409, "conflict", "id"},
	}
	appsBefore := listApps(t, addr)
	toksBefore, _ := listTokens(t, addr)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var e struct{ Error, Message, Field string }
			adminCall(t, addr, adminSecret, tc.method, tc.path, tc.body, tc.status, &e)
			if e.Error != tc.code || e.Field != tc.field || e.Message == "" {
				t.Errorf("error %+v; want error %q, field %q and a message", e, tc.code, tc.field)
			}
		})
	}
	if got := listApps(t, addr); len(got) != len(appsBefore) {
		t.Errorf("after the bad requests there are %d apps; want %d", len(got), len(appsBefore))
	}
	if got, _ := listTokens(t, addr); len(got) != len(toksBefore) {
		t.Errorf("after the bad requests there are %d tokens; want %d", len(got), len(toksBefore))
	}
	// An over-long body is a 413, and the server still answers.
	big := `{"name":"` + strings.Repeat("x", 70<<10) + `"}`
	adminCall(t, addr, adminSecret, "POST", "/admin/apps", big, http.StatusRequestEntityTooLarge, nil)
	if r := request(t, "GET", "http://"+addr+"/healthz", nil); r.status != http.StatusOK {
		t.Errorf("/healthz after the bad requests: %d", r.status)
	}
}

// TestAdminTokenGenerated covers the admin token generated on first start
// (SPEC.md section 1): written once to <data>/admin.token with mode 0600,
// logged once, kept hashed, and neither regenerated nor logged again.
func TestAdminTokenGenerated(t *testing.T) {
	t.Parallel()
	cfg := strings.Replace(testConfig, `admin_token = "`+adminSecret+`"`, "", 1)
	dataDir := t.TempDir()
	srv := startServer(t, cfg, inDir(dataDir))
	addr, logs, stop := srv.addr, srv.logs, srv.stop
	path := filepath.Join(dataDir, "admin.token")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v; want 0600", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^trv_admin_[A-Za-z0-9_-]{32,}\n$`).Match(b) {
		t.Fatalf("%s holds %q; want trv_admin_<secret> and a newline", path, b)
	}
	secret := strings.TrimSpace(string(b))
	if n := strings.Count(logs.String(), secret); n != 1 {
		t.Errorf("the log shows the admin token %d times; want once:\n%s", n, logs)
	}
	adminCall(t, addr, secret, "GET", "/admin/tokens", "", http.StatusOK, nil)
	stop()

	srv = startServer(t, cfg, inDir(dataDir))
	addr, logs = srv.addr, srv.logs
	if b2, err := os.ReadFile(path); err != nil || !bytes.Equal(b2, b) {
		t.Errorf("after a restart %s holds %q, %v; want it unchanged", path, b2, err)
	}
	if l := logs.String(); strings.Contains(l, secret) || strings.Contains(l, "generated the admin token") {
		t.Errorf("the second start logs the admin token again:\n%s", l)
	}
	adminCall(t, addr, secret, "GET", "/admin/tokens", "", http.StatusOK, nil)
	// Nor is the store's copy the secret: only its digest.
	store, err := os.ReadDir(filepath.Join(dataDir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range store {
		if e.IsDir() {
			continue
		}
		if c, err := os.ReadFile(filepath.Join(dataDir, "store", e.Name())); err == nil && bytes.Contains(c, []byte(secret)) {
			t.Errorf("the store file %s holds the admin token in the clear", e.Name())
		}
	}
}

// adminCommands are the commands of TestAdminCLI, by name.
var adminCommands = map[string]command{"apps": cli.Apps, "tokens": cli.Tokens}

// TestAdminCLI drives `trove apps` and `trove tokens` against a server.
func TestAdminCLI(t *testing.T) {
	addr := startServer(t, testConfig).addr
	server := "http://" + addr
	flags := []string{"--server", server, "--token", adminSecret}

	code, out, errOut := runCmd(t, cli.Apps, append([]string{"create", "shop"}, flags...)...)
	key := strings.TrimSpace(out)
	if code != 0 || !appKeyRE.MatchString(key) || !strings.Contains(errOut, `created app "shop"`) {
		t.Fatalf("apps create: %d, stdout %q, stderr %q; want 0 and the appKey alone on stdout", code, out, errOut)
	}
	code, out, _ = runCmd(t, cli.Apps, append([]string{"list"}, flags...)...)
	if code != 0 || !regexp.MustCompile(`(?m)^NAME +APP KEY +SOURCE`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^shop +`+key+` +api +false`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^demo +`+demoApp+` +config`).MatchString(out) {
		t.Errorf("apps list: %d\n%s\nwant a table with shop (api) and demo (config)", code, out)
	}

	// Flags after the arguments work too; the token may come from the
	// environment.
	t.Setenv("TROVE_ADMIN_TOKEN", adminSecret)
	code, out, errOut = runCmd(t, cli.Tokens, "create", "--app", key, "--scope", "ingest,export", "--name", "shop-backend", "--server", server)
	secret := strings.TrimSpace(out)
	_, id, ok := auth.ParseToken(secret)
	if code != 0 || !ok || !strings.Contains(errOut, "shown once") || !strings.Contains(errOut, id) {
		t.Fatalf("tokens create: %d, stdout %q, stderr %q; want 0, the secret alone on stdout and a line saying it is shown once", code, out, errOut)
	}
	decodeAnswer(t, postEvents(t, addr, eventFor(key, "c-1"), jsonType, "Authorization: Bearer "+secret), http.StatusAccepted)

	code, out, _ = runCmd(t, cli.Tokens, "list", "--server", server)
	if code != 0 || !regexp.MustCompile(`(?m)^ID +NAME +SCOPES +APPS +SOURCE`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^`+id+` +shop-backend +ingest,export +`+key+` +api`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^admin +admin +ingest,export,admin +\* +admin_token`).MatchString(out) ||
		strings.Contains(out, secret) {
		t.Errorf("tokens list: %d\n%s\nwant a table with %s and the admin token, without secrets", code, out, id)
	}
	code, out, _ = runCmd(t, cli.Tokens, "list", "--server", server, "--json")
	if code != 0 || !json.Valid([]byte(out)) || !strings.Contains(out, `"id":"`+id+`"`) {
		t.Errorf("tokens list --json: %d %s", code, out)
	}

	code, out, _ = runCmd(t, cli.Tokens, "revoke", id, "--server", server)
	if code != 0 || !strings.Contains(out, "revoked token "+id) {
		t.Errorf("tokens revoke: %d %q", code, out)
	}
	if r := postEvents(t, addr, eventFor(key, "c-2"), jsonType, "Authorization: Bearer "+secret); r.status != http.StatusUnauthorized {
		t.Errorf("after tokens revoke, ingest: status %d; want 401", r.status)
	}

	// Failures exit non-zero with the server's message, or the usage.
	fails := []struct {
		name string
		args []string
		code int
		want string // in stderr
	}{
		{"revoke again", []string{"tokens", "revoke", id}, 1, "already revoked"},
		{"revoke unknown", []string{"tokens", "revoke", "0123456789ab"}, 1, "no token has id"},
		{"revoke a config token", []string{"tokens", "revoke", auth.DigestID(auth.Digest([]byte(backendSecret)))}, 1, "config file"},
		{"unknown scope", []string{"tokens", "create", "--app", key, "--scope", "write"}, 1, `unknown scope "write"`},
		{"unknown app", []string{"tokens", "create", "--app", "nope-nope-nope", "--scope", "ingest"}, 1, "(field apps)"},
		{"taken app name", []string{"apps", "create", "shop"}, 1, "already exists"},
		{"wrong admin token", []string{"apps", "list", "--token", "wrong-token"}, 1, "unknown token"},
		{"token without admin scope", []string{"apps", "list", "--token", backendSecret}, 1, "admin scope"},
		{"no server", []string{"apps", "list", "--server", "http://127.0.0.1:1"}, 1, "cannot reach the server"},
		{"no name", []string{"apps", "create"}, 2, "missing the app's NAME"},
		{"two names", []string{"apps", "create", "a", "b"}, 2, `unexpected argument "b"`},
		{"no --app", []string{"tokens", "create", "--scope", "ingest"}, 2, "--app"},
		{"no --scope", []string{"tokens", "create", "--app", key}, 2, "--scope"},
		{"no id", []string{"tokens", "revoke"}, 2, "missing the token's ID"},
		{"unknown subcommand", []string{"tokens", "rotate"}, 2, `unknown command "rotate"`},
		{"no subcommand", []string{"apps"}, 2, "create or list"},
	}
	for _, tc := range fails {
		t.Run(tc.name, func(t *testing.T) {
			args := append(tc.args, "--server", server)
			if tc.name == "no server" {
				args = tc.args
			}
			code, out, errOut := runCmd(t, adminCommands[args[0]], args[1:]...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Errorf("%v: %d, stderr %q; want %d and %q", tc.args, code, errOut, tc.code, tc.want)
			}
			if code == 1 && out != "" {
				t.Errorf("%v: a failure printed %q on stdout", tc.args, out)
			}
		})
	}
	t.Run("no admin token", func(t *testing.T) {
		t.Setenv("TROVE_ADMIN_TOKEN", "")
		code, _, errOut := runCmd(t, cli.Tokens, "list", "--server", server)
		if code != 2 || !strings.Contains(errOut, "TROVE_ADMIN_TOKEN") {
			t.Errorf("tokens list without a token: %d %q; want 2 and a hint", code, errOut)
		}
	})
	t.Run("help", func(t *testing.T) {
		for _, args := range [][]string{{"apps", "-h"}, {"tokens", "--help"}, {"tokens", "create", "-h"}} {
			code, out, errOut := runCmd(t, adminCommands[args[0]], args[1:]...)
			if code != 0 || !strings.Contains(out+errOut, "Usage: trove") {
				t.Errorf("%v: %d %q %q; want 0 and the usage", args, code, out, errOut)
			}
		}
	})
}
