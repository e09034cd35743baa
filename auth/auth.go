package auth

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
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

var (
	// ErrUnauthenticated means no valid credentials: none where required,
	// malformed, or unknown (HTTP 401).
	ErrUnauthenticated = errors.New("auth: no valid credentials")
	// ErrForbidden means valid credentials that do not cover this app or
	// scope (HTTP 403).
	ErrForbidden = errors.New("auth: forbidden")
)

// App is an application known to Trove.
type App struct {
	Name         string
	AppKey       string
	RequireToken bool
}

// Token is a credential. Only the digest of its secret is kept.
type Token struct {
	ID      string
	Name    string
	Digest  [sha256.Size]byte
	Scopes  Scope
	AllApps bool
	Apps    map[string]bool
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
	}
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry {
	r := &Registry{}
	r.mu.apps = map[string]*App{}
	r.mu.byDigest = map[[sha256.Size]byte]*Token{}
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

// Apps returns every app.
func (r *Registry) Apps() []App {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]App, 0, len(r.mu.apps))
	for _, a := range r.mu.apps {
		out = append(out, *a)
	}
	return out
}

// AddToken adds a token.
func (r *Registry) AddToken(t Token) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mu.byDigest[t.Digest] = &t
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
		return fmt.Errorf("%w: token %q does not have %s scope for app %q", ErrForbidden, tok.Name, scope, appKey)
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
