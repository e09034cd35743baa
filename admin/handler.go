package admin

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"

	"trove/apierr"
	"trove/auth"
	"trove/httpbody"
	"trove/logentry"
	"trove/schema"
	"trove/storage"
)

// TokensPath is the path of the token collection; DELETE TokensPath+"/{id}"
// revokes one.
const TokensPath = "/admin/tokens"

const (
	// maxBodyBytes bounds an admin request body: a name and a few lists.
	maxBodyBytes = 64 << 10
	// maxNameLen bounds app and token names, in characters.
	maxNameLen = 255
)

// Handler serves the admin API.
type Handler struct {
	reg *auth.Registry
	db  *storage.DB
	log *slog.Logger
	now func() time.Time

	// mu serialises changes (never held by reads, nor by authentication).
	mu sync.Mutex
	// changes, when set, is the replicated log that changes go through
	// (replicate.go).
	changes logentry.Log
	// schemas are the apps' contracts (schemas.go).
	schemas *schema.Registry

	// dataDir is the data directory whose size the overview reports; see
	// SetDataDir.
	dataDir string
	// du caches the data directory's size for storage.OverviewTTL; mu
	// also makes concurrent overviews wait for one walk.
	du struct {
		mu struct {
			sync.Mutex
			at    time.Time
			bytes uint64
		}
	}
}

// NewHandler returns a Handler that changes reg and stores in db.
func NewHandler(reg *auth.Registry, db *storage.DB, log *slog.Logger) *Handler {
	return &Handler{reg: reg, db: db, log: log, now: time.Now}
}

// SetDataDir makes the overview report what dir (the whole data
// directory, as du counts it) takes on disk, instead of Pebble's figure
// for the store's files. Call it before serving.
func (h *Handler) SetDataDir(dir string) { h.dataDir = dir }

// App is an app as the API shows it.
type App struct {
	Name         string `json:"name"`
	AppKey       string `json:"appKey"`
	Source       string `json:"source"`
	RequireToken bool   `json:"requireToken"`
	CreatedAt    string `json:"createdAt,omitempty"`
}

// Token is a token as the API shows it. Secret is set only in the answer
// that creates it.
type Token struct {
	ID        string   `json:"id"`
	Secret    string   `json:"token,omitempty"`
	Name      string   `json:"name"`
	Scopes    []string `json:"scopes"`
	Apps      []string `json:"apps"`
	Source    string   `json:"source"`
	CreatedAt string   `json:"createdAt,omitempty"`
	RevokedAt string   `json:"revokedAt,omitempty"`
	Revoked   bool     `json:"revoked,omitempty"`
}

// CreateApp serves POST /admin/apps {"name"[,"requireToken"]}.
func (h *Handler) CreateApp(ctx *fasthttp.RequestCtx) error {
	var req struct {
		Name         string
		RequireToken bool
	}
	if err := decodeBody(ctx, map[string]any{"name": &req.Name, "requireToken": &req.RequireToken}); err != nil {
		return err
	}
	if err := checkName("name", req.Name); err != nil {
		return err
	}
	rec := storage.AppRecord{AppKey: newAppKey(), Name: req.Name, RequireToken: req.RequireToken,
		Created: h.now().UTC().Truncate(time.Millisecond)}
	v, err := h.change(change{Op: opApp, App: &rec})
	if err != nil {
		return err
	}
	h.log.Info("created app", "name", rec.Name, "appKey", rec.AppKey, "by", actor(ctx))
	return writeJSON(ctx, fasthttp.StatusCreated, v)
}

// applyApp registers a new app: refused when its name or (rarely) its
// random appKey is taken.
func (h *Handler) applyApp(rec storage.AppRecord) (any, error) {
	if a, ok := h.reg.AppByName(rec.Name); ok {
		return nil, &apierr.Error{Kind: apierr.Conflict, Field: "name", Message: fmt.Sprintf("an app named %q already exists (appKey %s)", a.Name, a.AppKey)}
	}
	if _, taken := h.reg.App(rec.AppKey); taken {
		return nil, &apierr.Error{Kind: apierr.Conflict, Field: "name", Message: "the random appKey drawn for this app is taken: send the request again"}
	}
	if err := h.db.PutApp(rec); err != nil {
		return nil, err
	}
	app := auth.App{Name: rec.Name, AppKey: rec.AppKey, RequireToken: rec.RequireToken, Source: auth.SourceAPI, Created: rec.Created}
	h.reg.AddApp(app)
	return appJSON(app), nil
}

// ListApps serves GET /admin/apps.
func (h *Handler) ListApps(ctx *fasthttp.RequestCtx) error {
	apps := h.reg.Apps()
	out := make([]App, len(apps))
	for i, a := range apps {
		out[i] = appJSON(a)
	}
	return writeJSON(ctx, fasthttp.StatusOK, map[string]any{"apps": out})
}

// CreateToken serves POST /admin/tokens {"name","scopes":[…],"apps":[…]}.
func (h *Handler) CreateToken(ctx *fasthttp.RequestCtx) error {
	var req struct {
		Name         string
		Scopes, Apps []string
	}
	if err := decodeBody(ctx, map[string]any{"name": &req.Name, "scopes": &req.Scopes, "apps": &req.Apps}); err != nil {
		return err
	}
	if err := checkName("name", req.Name); err != nil {
		return err
	}
	if len(req.Scopes) == 0 {
		return invalid("scopes", `scopes must list at least one of "ingest", "export", "admin"`)
	}
	scopes, err := auth.ParseScopes(req.Scopes)
	if err != nil {
		return invalid("scopes", err.Error())
	}
	tok := auth.Token{Name: req.Name, Scopes: scopes, Apps: map[string]bool{}, Source: auth.SourceAPI,
		Created: h.now().UTC().Truncate(time.Millisecond)}
	if len(req.Apps) == 0 {
		return invalid("apps", `apps must list app keys, or ["*"] for every app`)
	}
	for _, k := range req.Apps {
		switch {
		case k == "*" && len(req.Apps) > 1:
			return invalid("apps", `"*" means every app: list it alone`)
		case k == "*":
			tok.AllApps = true
		default:
			tok.Apps[k] = true // known apps: checked when applied
		}
	}

	tok.ID = auth.NewID()
	secret := auth.NewSecret(tok.Scopes, tok.ID)
	tok.Digest = auth.Digest([]byte(secret))
	rec := tokenRecord(tok, time.Time{})
	v, err := h.change(change{Op: opToken, Token: &rec})
	if err != nil {
		return err
	}
	h.log.Info("created token", "id", tok.ID, "name", tok.Name, "scopes", tok.Scopes.String(),
		"apps", strings.Join(tok.AppList(), ","), "by", actor(ctx))
	out := v.(Token)
	out.Secret = secret
	return writeJSON(ctx, fasthttp.StatusCreated, out)
}

// applyToken registers a new token: refused when its random id is taken
// (or was, by a revoked token).
func (h *Handler) applyToken(rec storage.TokenRecord) (any, error) {
	// Checked here, in the log's order: in cluster mode the app may have
	// been created on another node a moment ago.
	for _, k := range rec.Apps {
		if _, ok := h.reg.App(k); !ok && k != "*" {
			return nil, invalid("apps", fmt.Sprintf("%q is not the appKey of a known app (GET /admin/apps lists them)", k))
		}
	}
	if _, taken := h.reg.Token(rec.ID); taken || h.reg.Revoked(rec.ID) {
		return nil, &apierr.Error{Kind: apierr.Conflict, Field: "name", Message: "the random id drawn for this token is taken: send the request again"}
	}
	tok, err := tokenOf(rec)
	if err != nil {
		return nil, err
	}
	if err := h.db.PutToken(rec); err != nil {
		return nil, err
	}
	h.reg.AddToken(tok)
	return tokenJSON(tok), nil
}

// ListTokens serves GET /admin/tokens. It never shows secrets or digests.
func (h *Handler) ListTokens(ctx *fasthttp.RequestCtx) error {
	toks := h.reg.Tokens()
	out := make([]Token, len(toks))
	for i := range toks {
		out[i] = tokenJSON(toks[i])
	}
	return writeJSON(ctx, fasthttp.StatusOK, map[string]any{"tokens": out})
}

// RevokeToken serves DELETE /admin/tokens/{id}. When it answers, the token
// is refused, and it stays refused after a restart.
func (h *Handler) RevokeToken(ctx *fasthttp.RequestCtx) error {
	id, ok := strings.CutPrefix(string(ctx.Path()), TokensPath+"/")
	if !ok || id == "" || strings.Contains(id, "/") {
		return &apierr.Error{Kind: apierr.NotFound, Field: "id", Message: "give the token id: DELETE " + TokensPath + "/{id}"}
	}
	v, err := h.change(change{Op: opRevoke, ID: id, At: h.now().UTC().Truncate(time.Millisecond)})
	if err != nil {
		return err
	}
	out := v.(Token)
	h.log.Info("revoked token", "id", out.ID, "name", out.Name, "by", actor(ctx))
	return writeJSON(ctx, fasthttp.StatusOK, out)
}

// applyRevoke revokes token id at revoked; the admin token and the
// config's tokens are not the API's to revoke.
func (h *Handler) applyRevoke(id string, revoked time.Time) (any, error) {
	tok, found := h.reg.Token(id)
	switch {
	case !found && h.reg.Revoked(id):
		return nil, &apierr.Error{Kind: apierr.NotFound, Field: "id", Message: fmt.Sprintf("token %s was already revoked", id)}
	case !found:
		return nil, &apierr.Error{Kind: apierr.NotFound, Field: "id", Message: fmt.Sprintf("no token has id %q (GET %s lists them)", id, TokensPath)}
	case tok.Source == auth.SourceAdminToken:
		return nil, &apierr.Error{Kind: apierr.Conflict, Field: "id", Message: fmt.Sprintf(
			"token %s is the admin token, which cannot be revoked through the API: set another admin_token in the config file (or TROVE_ADMIN_TOKEN) and restart", id)}
	case tok.Source != auth.SourceAPI:
		return nil, &apierr.Error{Kind: apierr.Conflict, Field: "id", Message: fmt.Sprintf(
			"token %s (%q) is declared in the config file, so it cannot be revoked through the API: remove its [[tokens]] entry from the config file and restart", id, tok.Name)}
	}
	if err := h.db.PutToken(tokenRecord(tok, revoked)); err != nil {
		return nil, err
	}
	h.reg.Revoke(id)
	out := tokenJSON(tok)
	out.Revoked, out.RevokedAt = true, formatTime(revoked)
	return out, nil
}

// Load adds the stored apps and tokens to reg, beside the config-declared
// ones already there; an appKey the config declares keeps the config's
// settings. Revoked tokens are remembered as revoked.
func Load(reg *auth.Registry, db *storage.DB, log *slog.Logger) error {
	apps, err := db.AppRecords()
	if err != nil {
		return err
	}
	for _, r := range apps {
		if a, ok := reg.App(r.AppKey); ok {
			log.Warn("an app created through the admin API is also declared in the config file; the config's settings apply",
				"appKey", r.AppKey, "name", r.Name, "config_name", a.Name)
			continue
		}
		reg.AddApp(auth.App{Name: r.Name, AppKey: r.AppKey, RequireToken: r.RequireToken, Source: auth.SourceAPI, Created: r.Created})
	}
	toks, err := db.TokenRecords()
	if err != nil {
		return err
	}
	live := 0
	for _, r := range toks {
		if !r.Revoked.IsZero() {
			reg.Revoke(r.ID)
			continue
		}
		t, err := tokenOf(r)
		if err != nil {
			return err
		}
		reg.AddToken(t)
		live++
	}
	log.Info("loaded apps and tokens created through the admin API", "apps", len(apps), "tokens", live, "revoked", len(toks)-live)
	return nil
}

// newAppKey returns a random appKey: 16 bytes in unpadded URL-safe base64,
// 22 characters, like the demo key yz1Jn-0pSnekg58etEQO4A.
func newAppKey() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// actor names the token that made the request, for the log.
func actor(ctx *fasthttp.RequestCtx) string {
	if t := auth.TokenOf(ctx); t != nil {
		return t.ID
	}
	return ""
}

// tokenOf is the registry's token of a stored record.
func tokenOf(r storage.TokenRecord) (auth.Token, error) {
	scopes, err := auth.ParseScopes(r.Scopes)
	if err != nil {
		return auth.Token{}, fmt.Errorf("cannot load token %s: %w", r.ID, err)
	}
	t := auth.Token{ID: r.ID, Name: r.Name, Digest: r.Digest, Scopes: scopes, Apps: map[string]bool{},
		Source: auth.SourceAPI, Created: r.Created}
	for _, k := range r.Apps {
		if k == "*" {
			t.AllApps = true
		} else {
			t.Apps[k] = true
		}
	}
	return t, nil
}

func tokenRecord(t auth.Token, revoked time.Time) storage.TokenRecord {
	return storage.TokenRecord{ID: t.ID, Name: t.Name, Digest: t.Digest, Scopes: t.ScopeList(), Apps: t.AppList(),
		Created: t.Created, Revoked: revoked}
}

func appJSON(a auth.App) App {
	return App{Name: a.Name, AppKey: a.AppKey, Source: string(a.Source), RequireToken: a.RequireToken, CreatedAt: formatTime(a.Created)}
}

func tokenJSON(t auth.Token) Token {
	return Token{ID: t.ID, Name: t.Name, Scopes: t.ScopeList(), Apps: t.AppList(), Source: string(t.Source), CreatedAt: formatTime(t.Created)}
}

// formatTime is RFC 3339 in UTC with milliseconds, or "" for the zero time.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// checkName refuses an empty, over-long or unprintable name.
func checkName(field, name string) error {
	switch {
	case strings.TrimSpace(name) == "":
		return invalid(field, field+" must not be empty")
	case !utf8.ValidString(name):
		return invalid(field, field+" must be valid UTF-8")
	case utf8.RuneCountInString(name) > maxNameLen:
		return invalid(field, field+" must be at most "+strconv.Itoa(maxNameLen)+" characters")
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return invalid(field, field+" must not contain control characters")
	}
	return nil
}

// readBody reads the request body through httpbody, as every API does:
// at most limit bytes as sent and once decompressed (Content-Encoding gzip,
// zstd or deflate). A body over limit is refused with tooLarge, the admin
// API's own message, which clients already read.
func readBody(ctx *fasthttp.RequestCtx, limit int, tooLarge string) ([]byte, error) {
	body, err := httpbody.Read(ctx, &httpbody.Buffers{}, limit, "admin")
	if errors.Is(err, apierr.TooLarge) {
		return nil, &apierr.Error{Kind: apierr.TooLarge, Message: tooLarge}
	}
	return body, err
}

// decodeBody decodes a JSON object body into fields (member name → pointer),
// refusing unknown members and naming the member whose value is wrong.
func decodeBody(ctx *fasthttp.RequestCtx, fields map[string]any) error {
	body, err := readBody(ctx, maxBodyBytes, "request body is over the limit of "+strconv.Itoa(maxBodyBytes)+" bytes")
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return invalid("", "the request needs a JSON object body")
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(body, &members); err != nil || members == nil {
		return invalid("", "the body is not a JSON object: "+jsonProblem(err))
	}
	names := make([]string, 0, len(members))
	for k := range members {
		names = append(names, k)
	}
	slices.Sort(names) // report the same member first every time
	for _, k := range names {
		dst, ok := fields[k]
		if !ok {
			known := make([]string, 0, len(fields))
			for f := range fields {
				known = append(known, strconv.Quote(f))
			}
			slices.Sort(known)
			return invalid(k, fmt.Sprintf("unknown member %q: the body takes %s", k, strings.Join(known, ", ")))
		}
		if err := json.Unmarshal(members[k], dst); err != nil {
			return invalid(k, fmt.Sprintf("%s must be %s", k, kindOf(dst)))
		}
	}
	return nil
}

func kindOf(dst any) string {
	switch dst.(type) {
	case *string:
		return "a string"
	case *bool:
		return "true or false"
	case *[]string:
		return "an array of strings"
	}
	return "of another type"
}

// jsonProblem is the decoder's complaint, or what the body was instead of
// an object.
func jsonProblem(err error) string {
	if err == nil {
		return "it is null"
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return se.Error()
	}
	return "it is another JSON value"
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("cannot encode the answer: %w", err)
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(append(b, '\n'))
	return nil
}
