package auth

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"trove/apierr"
)

// Scope is what a token may do.
type Scope uint8

// Scopes.
const (
	ScopeIngest Scope = 1 << iota
	ScopeExport
	ScopeAdmin
)

var scopeNames = map[string]Scope{"ingest": ScopeIngest, "export": ScopeExport, "admin": ScopeAdmin}

// ParseScopes turns scope names into a Scope set.
func ParseScopes(names []string) (Scope, error) {
	var s Scope
	for _, n := range names {
		v, ok := scopeNames[n]
		if !ok {
			return 0, fmt.Errorf("unknown scope %q: want ingest, export or admin", n)
		}
		s |= v
	}
	return s, nil
}

// String returns the scope names joined by commas.
func (s Scope) String() string {
	out := ""
	for _, n := range []string{"ingest", "export", "admin"} {
		if s&scopeNames[n] != 0 {
			if out != "" {
				out += ","
			}
			out += n
		}
	}
	return out
}

// The credential errors are *apierr.Error values of kind
// apierr.Unauthorized and apierr.Forbidden, shared: callers wrap them
// (fmt.Errorf("%w: …")) and never modify them.
var (
	// ErrUnauthenticated means no valid credentials: none where required,
	// malformed, or unknown (HTTP 401).
	ErrUnauthenticated error = &apierr.Error{Kind: apierr.Unauthorized, Message: "auth: no valid credentials"}
	// ErrForbidden means valid credentials that do not cover this app or
	// scope (HTTP 403).
	ErrForbidden error = &apierr.Error{Kind: apierr.Forbidden, Message: "auth: forbidden"}
)

// Source says where an app or a token was declared.
type Source string

// Sources.
const (
	// SourceConfig is the config file ([[apps]], [[tokens]]).
	SourceConfig Source = "config"
	// SourceAPI is the admin API, which stores what it creates.
	SourceAPI Source = "api"
	// SourceAdminToken is the admin token: admin_token in the config file,
	// TROVE_ADMIN_TOKEN, or the one generated on first start.
	SourceAdminToken Source = "admin_token"
)

// App is an application known to Trove.
type App struct {
	Name         string
	AppKey       string
	RequireToken bool
	// PublicProfileWrites lets messages sent with the appKey alone change
	// profiles through the SDK-compatible endpoints (identify, alias);
	// without it they need a token with ingest scope, as the User Profiles
	// API does.
	PublicProfileWrites bool
	Source              Source
	// Created is when the admin API created the app; zero for the config's.
	Created time.Time
}

// Token is a credential. Only the digest of its secret is kept.
type Token struct {
	// ID names the token in listings, logs and revocation; unique in a
	// Registry. AddToken derives it from the digest when it is empty.
	ID      string
	Name    string
	Digest  [sha256.Size]byte
	Scopes  Scope
	AllApps bool
	// Apps is never modified once the token is in a Registry: copies of a
	// Token share it.
	Apps   map[string]bool
	Source Source
	// Created is when the admin API created the token; zero for the config's.
	Created time.Time
}

// AppList returns the token's app keys, sorted, or ["*"].
func (t *Token) AppList() []string {
	if t.AllApps {
		return []string{"*"}
	}
	out := make([]string, 0, len(t.Apps))
	for k := range t.Apps {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// ScopeList returns the token's scope names.
func (t *Token) ScopeList() []string {
	if t.Scopes == 0 {
		return []string{}
	}
	return strings.Split(t.Scopes.String(), ",")
}

// Covers reports whether t may act on appKey with scope.
func (t *Token) Covers(appKey string, scope Scope) bool {
	return t.Scopes&scope == scope && (t.AllApps || t.Apps[appKey])
}

// OnlyApp returns the token's app when it covers exactly one.
func (t *Token) OnlyApp() (string, bool) {
	if t.AllApps || len(t.Apps) != 1 {
		return "", false
	}
	for k := range t.Apps {
		return k, true
	}
	return "", false
}

// Registry holds the apps and tokens. It is safe for concurrent use.
type Registry struct {
	mu struct {
		sync.RWMutex
		apps     map[string]*App
		byDigest map[[sha256.Size]byte]*Token
		byID     map[string]*Token
		// revoked holds the ids of revoked tokens, so that a request
		// with one is told so.
		revoked map[string]bool
	}
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry {
	r := &Registry{}
	r.mu.apps = map[string]*App{}
	r.mu.byDigest = map[[sha256.Size]byte]*Token{}
	r.mu.byID = map[string]*Token{}
	r.mu.revoked = map[string]bool{}
	return r
}

// AddApp adds or replaces an app.
func (r *Registry) AddApp(a App) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mu.apps[a.AppKey] = &a
}

// App returns the app with the given key.
func (r *Registry) App(appKey string) (*App, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	a, ok := r.mu.apps[appKey]
	return a, ok
}

// Apps returns every app, config-declared ones first, then by name.
func (r *Registry) Apps() []App {
	r.mu.RLock()
	out := make([]App, 0, len(r.mu.apps))
	for _, a := range r.mu.apps {
		out = append(out, *a)
	}
	r.mu.RUnlock()
	slices.SortFunc(out, func(a, b App) int {
		return cmpSource(a.Source, b.Source, a.Created, b.Created, a.Name+"\x00"+a.AppKey, b.Name+"\x00"+b.AppKey)
	})
	return out
}

// AppByName returns an app with the given name.
func (r *Registry) AppByName(name string) (App, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, a := range r.mu.apps {
		if a.Name == name {
			return *a, true
		}
	}
	return App{}, false
}

// AddToken adds a token, replacing any with the same id or digest. An
// empty ID becomes DigestID(t.Digest).
func (r *Registry) AddToken(t Token) {
	if t.ID == "" {
		t.ID = DigestID(t.Digest)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.mu.byID[t.ID]; ok {
		delete(r.mu.byDigest, old.Digest)
	}
	if old, ok := r.mu.byDigest[t.Digest]; ok {
		delete(r.mu.byID, old.ID)
	}
	r.mu.byDigest[t.Digest] = &t
	r.mu.byID[t.ID] = &t
	delete(r.mu.revoked, t.ID)
}

// Token returns the token with the given id.
func (r *Registry) Token(id string) (Token, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	t, ok := r.mu.byID[id]
	if !ok {
		return Token{}, false
	}
	return *t, true
}

// Tokens returns every token, config-declared ones first, then by creation
// time and name.
func (r *Registry) Tokens() []Token {
	r.mu.RLock()
	out := make([]Token, 0, len(r.mu.byID))
	for _, t := range r.mu.byID {
		out = append(out, *t)
	}
	r.mu.RUnlock()
	slices.SortFunc(out, func(a, b Token) int {
		return cmpSource(a.Source, b.Source, a.Created, b.Created, a.Name+"\x00"+a.ID, b.Name+"\x00"+b.ID)
	})
	return out
}

// Revoke removes the token with the given id, so that it is refused from
// the moment Revoke returns, and remembers the id as revoked. It returns the
// token removed, if there was one.
func (r *Registry) Revoke(id string) (Token, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mu.revoked[id] = true
	t, ok := r.mu.byID[id]
	if !ok {
		return Token{}, false
	}
	delete(r.mu.byID, id)
	delete(r.mu.byDigest, t.Digest)
	return *t, true
}

// Revoked reports whether the token id was revoked.
func (r *Registry) Revoked(id string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.mu.revoked[id]
}

// sourceRank orders listings: what the operator declared, then what the
// API created.
var sourceRank = map[Source]int{SourceAdminToken: 0, SourceConfig: 1, SourceAPI: 2}

func cmpSource(sa, sb Source, ca, cb time.Time, na, nb string) int {
	if c := sourceRank[sa] - sourceRank[sb]; c != 0 {
		return c
	}
	if c := ca.Compare(cb); c != 0 {
		return c
	}
	return strings.Compare(na, nb)
}

// Digest returns the SHA-256 of a secret.
func Digest(secret []byte) [sha256.Size]byte { return sha256.Sum256(secret) }

// ParseDigest parses a hex SHA-256 digest.
func ParseDigest(s string) ([sha256.Size]byte, error) {
	var d [sha256.Size]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != sha256.Size {
		return d, fmt.Errorf("%q is not a hex SHA-256 digest", s)
	}
	copy(d[:], b)
	return d, nil
}

// Credential extracts the token secret from an Authorization header value:
// "Bearer <token>", or "Basic base64(<token>:<anything>)". ok is false when
// the header is empty; err is ErrUnauthenticated when it is malformed.
func Credential(header []byte) (secret []byte, ok bool, err error) {
	if len(header) == 0 {
		return nil, false, nil
	}
	scheme, rest, found := bytes.Cut(header, []byte(" "))
	if !found {
		return nil, true, fmt.Errorf("%w: malformed Authorization header: want \"Bearer <token>\" or Basic", ErrUnauthenticated)
	}
	rest = bytes.TrimSpace(rest)
	switch {
	case bytes.EqualFold(scheme, []byte("Bearer")):
		if len(rest) == 0 {
			return nil, true, fmt.Errorf("%w: empty Bearer token", ErrUnauthenticated)
		}
		return rest, true, nil
	case bytes.EqualFold(scheme, []byte("Basic")):
		dec := make([]byte, base64.StdEncoding.DecodedLen(len(rest)))
		n, err := base64.StdEncoding.Decode(dec, rest)
		if err != nil {
			return nil, true, fmt.Errorf("%w: malformed Basic credentials", ErrUnauthenticated)
		}
		user, _, _ := bytes.Cut(dec[:n], []byte(":"))
		if len(user) == 0 {
			return nil, true, fmt.Errorf("%w: Basic credentials carry no token as user name", ErrUnauthenticated)
		}
		return user, true, nil
	}
	return nil, true, fmt.Errorf("%w: unsupported Authorization scheme %q: use Bearer or Basic", ErrUnauthenticated, scheme)
}

// Authenticate returns the token whose secret is given, or
// ErrUnauthenticated.
func (r *Registry) Authenticate(secret []byte) (*Token, error) {
	d := Digest(secret)
	r.mu.RLock()
	t, ok := r.mu.byDigest[d]
	r.mu.RUnlock()
	// The map finds the candidate by digest; the final comparison is in
	// constant time all the same.
	if !ok || subtle.ConstantTimeCompare(t.Digest[:], d[:]) != 1 {
		// Name the id a generated secret carries, never the secret.
		if _, id, ok := ParseToken(string(secret)); ok {
			if r.Revoked(id) {
				return nil, fmt.Errorf("%w: token %s was revoked", ErrUnauthenticated, id)
			}
			return nil, fmt.Errorf("%w: unknown token %s", ErrUnauthenticated, id)
		}
		return nil, fmt.Errorf("%w: unknown token", ErrUnauthenticated)
	}
	return t, nil
}

// Authorize checks that tok (nil when the request carried no credentials)
// may act on appKey with scope. Apps that do not require a token accept
// ingest with the appKey alone, as the Pyze Events API does.
func (r *Registry) Authorize(tok *Token, appKey string, scope Scope) error {
	app, ok := r.App(appKey)
	if !ok {
		return fmt.Errorf("%w: unknown appKey %q", ErrUnauthenticated, appKey)
	}
	if tok == nil {
		if scope == ScopeIngest && !app.RequireToken {
			return nil
		}
		return fmt.Errorf("%w: app %q needs a token with %s scope (Authorization: Bearer <token>)", ErrUnauthenticated, appKey, scope)
	}
	if !tok.Covers(appKey, scope) {
		return fmt.Errorf("%w: %s does not have %s scope for app %q", ErrForbidden, tok.describe(), scope, appKey)
	}
	return nil
}

type userValueKey struct{}

// UserValuer is the part of fasthttp.RequestCtx that carries the token.
type UserValuer interface {
	UserValue(key any) any
	SetUserValue(key, value any)
}

// WithToken records the request's authenticated token.
func WithToken(ctx UserValuer, t *Token) { ctx.SetUserValue(userValueKey{}, t) }

// TokenOf returns the request's authenticated token, or nil when it carried
// no credentials.
func TokenOf(ctx UserValuer) *Token {
	t, _ := ctx.UserValue(userValueKey{}).(*Token)
	return t
}
