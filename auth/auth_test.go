package auth

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"testing"
)

func basic(userPass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(userPass))
}

func TestCredential(t *testing.T) {
	tests := []struct {
		name    string
		header  string
		secret  string
		present bool
		wantErr bool
	}{
		{name: "empty", header: "", present: false},
		{name: "bearer", header: "Bearer s3cret-backend", secret: "s3cret-backend", present: true},
		{name: "bearer lowercase", header: "bearer s3cret-backend", secret: "s3cret-backend", present: true},
		{name: "bearer upper case", header: "BEARER s3cret-backend", secret: "s3cret-backend", present: true},
		{name: "bearer extra spaces", header: "Bearer   s3cret-backend  ", secret: "s3cret-backend", present: true},
		{name: "bearer without token", header: "Bearer ", present: true, wantErr: true},
		{name: "bearer without space", header: "Bearer", present: true, wantErr: true},
		{name: "basic token as user, empty password", header: basic("s3cret-backend:"), secret: "s3cret-backend", present: true},
		{name: "basic token as user, any password", header: basic("s3cret-backend:x"), secret: "s3cret-backend", present: true},
		{name: "basic without colon", header: basic("s3cret-backend"), secret: "s3cret-backend", present: true},
		{name: "basic lowercase", header: "basic " + base64.StdEncoding.EncodeToString([]byte("tok:")), secret: "tok", present: true},
		{name: "basic with no user", header: basic(":s3cret-backend"), present: true, wantErr: true},
		{name: "basic empty", header: basic(""), present: true, wantErr: true},
		{name: "basic malformed base64", header: "Basic !!not-base64!!", present: true, wantErr: true},
		{name: "basic, literal base64 of the token alone", header: "Basic dG9r", secret: "tok", present: true},
		{name: "basic base64 missing its padding", header: "Basic dG9rOg", present: true, wantErr: true},
		{name: "unknown scheme", header: "Digest username=\"x\"", present: true, wantErr: true},
		{name: "token without scheme", header: "s3cret-backend", present: true, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			secret, present, err := Credential([]byte(tc.header))
			if tc.wantErr {
				if !errors.Is(err, ErrUnauthenticated) {
					t.Errorf("got err %v; want ErrUnauthenticated", err)
				}
				if secret != nil {
					t.Errorf("got secret %q with an error; want nil", secret)
				}
			} else if err != nil {
				t.Errorf("got err %v; want nil", err)
			}
			if present != tc.present {
				t.Errorf("got present %v; want %v", present, tc.present)
			}
			if string(secret) != tc.secret {
				t.Errorf("got secret %q; want %q", secret, tc.secret)
			}
		})
	}
}

const (
	appA = "yz1Jn-0pSnekg58etEQO4A"
	appB = "other-app-key-0001"
	appC = "locked-app-key-0002" // RequireToken
)

func testRegistry() *Registry {
	r := NewRegistry()
	r.AddApp(App{Name: "a", AppKey: appA})
	r.AddApp(App{Name: "b", AppKey: appB})
	r.AddApp(App{Name: "c", AppKey: appC, RequireToken: true})
	r.AddToken(Token{ID: "1", Name: "backend", Digest: Digest([]byte("s3cret-backend")), Scopes: ScopeIngest | ScopeExport, Apps: map[string]bool{appA: true}})
	r.AddToken(Token{ID: "2", Name: "ingest-only", Digest: Digest([]byte("s3cret-ingest")), Scopes: ScopeIngest, Apps: map[string]bool{appA: true, appC: true}})
	r.AddToken(Token{ID: "3", Name: "all", Digest: Digest([]byte("s3cret-all")), Scopes: ScopeIngest | ScopeExport | ScopeAdmin, AllApps: true})
	return r
}

func TestAuthenticate(t *testing.T) {
	r := testRegistry()
	tests := []struct {
		secret string
		want   string // token name; "" for ErrUnauthenticated
	}{
		{"s3cret-backend", "backend"},
		{"s3cret-ingest", "ingest-only"},
		{"s3cret-all", "all"},
		{"s3cret-backenD", ""},
		{"s3cret-backend ", ""},
		{"s3cret", ""},
		{"", ""},
	}
	for _, tc := range tests {
		t.Run(tc.secret, func(t *testing.T) {
			tok, err := r.Authenticate([]byte(tc.secret))
			if tc.want == "" {
				if !errors.Is(err, ErrUnauthenticated) || tok != nil {
					t.Errorf("got %v, %v; want nil, ErrUnauthenticated", tok, err)
				}
				return
			}
			if err != nil || tok == nil || tok.Name != tc.want {
				t.Errorf("got %v, %v; want token %q", tok, err, tc.want)
			}
		})
	}
}

func TestAuthorize(t *testing.T) {
	r := testRegistry()
	tok := func(secret string) *Token {
		t.Helper()
		tk, err := r.Authenticate([]byte(secret))
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}
	backend, ingestOnly, all := tok("s3cret-backend"), tok("s3cret-ingest"), tok("s3cret-all")
	tests := []struct {
		name  string
		tok   *Token
		app   string
		scope Scope
		want  error // nil, ErrUnauthenticated or ErrForbidden
	}{
		{"unknown app without token", nil, "no-such-app", ScopeIngest, ErrUnauthenticated},
		{"unknown app with token", all, "no-such-app", ScopeExport, ErrUnauthenticated},
		{"appKey alone may ingest", nil, appA, ScopeIngest, nil},
		{"appKey alone may not export", nil, appA, ScopeExport, ErrUnauthenticated},
		{"appKey alone may not administer", nil, appA, ScopeAdmin, ErrUnauthenticated},
		{"require_token app needs a token to ingest", nil, appC, ScopeIngest, ErrUnauthenticated},
		{"require_token app with a token", ingestOnly, appC, ScopeIngest, nil},
		{"token with scope for its app", backend, appA, ScopeExport, nil},
		{"token without the scope", ingestOnly, appA, ScopeExport, ErrForbidden},
		{"token without admin scope", backend, appA, ScopeAdmin, ErrForbidden},
		{"token for another app", backend, appB, ScopeIngest, ErrForbidden},
		{"token for another app, export", backend, appB, ScopeExport, ErrForbidden},
		{"token for another app on a require_token app", backend, appC, ScopeIngest, ErrForbidden},
		{"star token", all, appB, ScopeExport, nil},
		{"star token, admin", all, appC, ScopeAdmin, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := r.Authorize(tc.tok, tc.app, tc.scope)
			switch {
			case tc.want == nil && err != nil:
				t.Errorf("got %v; want nil", err)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Errorf("got %v; want %v", err, tc.want)
			case errors.Is(err, ErrUnauthenticated) && errors.Is(err, ErrForbidden):
				t.Errorf("got %v; want only one of the two sentinels", err)
			}
		})
	}
}

func TestParseScopes(t *testing.T) {
	tests := []struct {
		names   []string
		want    Scope
		str     string
		wantErr bool
	}{
		{names: nil, want: 0, str: ""},
		{names: []string{"ingest"}, want: ScopeIngest, str: "ingest"},
		{names: []string{"export", "ingest"}, want: ScopeIngest | ScopeExport, str: "ingest,export"},
		{names: []string{"admin", "export", "ingest", "admin"}, want: ScopeIngest | ScopeExport | ScopeAdmin, str: "ingest,export,admin"},
		{names: []string{"write"}, wantErr: true},
		{names: []string{"Ingest"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.names), func(t *testing.T) {
			got, err := ParseScopes(tc.names)
			if tc.wantErr {
				if err == nil {
					t.Errorf("got %v, nil; want an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %v, %v; want %v, nil", got, err, tc.want)
			}
			if got.String() != tc.str {
				t.Errorf("String() = %q; want %q", got.String(), tc.str)
			}
		})
	}
}

func TestParseDigest(t *testing.T) {
	d := Digest([]byte("s3cret-backend"))
	h := hex.EncodeToString(d[:])
	got, err := ParseDigest(h)
	if err != nil || got != d {
		t.Errorf("ParseDigest(%q) = %x, %v; want %x, nil", h, got, err, d)
	}
	for _, bad := range []string{"", "zz", h[:62], h + "00", "x" + h[1:]} {
		if _, err := ParseDigest(bad); err == nil {
			t.Errorf("ParseDigest(%q): got nil; want an error", bad)
		}
	}
}

func TestOnlyApp(t *testing.T) {
	tests := []struct {
		name string
		tok  Token
		want string
		ok   bool
	}{
		{"one app", Token{Apps: map[string]bool{appA: true}}, appA, true},
		{"two apps", Token{Apps: map[string]bool{appA: true, appB: true}}, "", false},
		{"all apps", Token{AllApps: true}, "", false},
		{"no app", Token{}, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.tok.OnlyApp()
			if got != tc.want || ok != tc.ok {
				t.Errorf("got %q, %v; want %q, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

type userValues map[any]any

func (u userValues) UserValue(k any) any   { return u[k] }
func (u userValues) SetUserValue(k, v any) { u[k] = v }

func TestWithToken(t *testing.T) {
	ctx := userValues{}
	if got := TokenOf(ctx); got != nil {
		t.Errorf("TokenOf(no token) = %v; want nil", got)
	}
	ctx["tok"] = "a string under another key"
	tok := &Token{Name: "backend"}
	WithToken(ctx, tok)
	if got := TokenOf(ctx); got != tok {
		t.Errorf("TokenOf = %v; want %v", got, tok)
	}
}

// TestRegistryConcurrent runs lookups beside updates, for the race detector.
func TestRegistryConcurrent(t *testing.T) {
	r := testRegistry()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 200 {
				key := fmt.Sprintf("app-%d-%04d", i, j)
				r.AddApp(App{Name: key, AppKey: key})
				r.AddToken(Token{Name: key, Digest: Digest([]byte(key)), Scopes: ScopeIngest, Apps: map[string]bool{key: true}})
				tok, err := r.Authenticate([]byte(key))
				if err != nil {
					t.Error(err)
					return
				}
				if err := r.Authorize(tok, key, ScopeIngest); err != nil {
					t.Error(err)
					return
				}
				_ = r.Apps()
			}
		})
	}
	wg.Wait()
	if got := len(r.Apps()); got != 3+4*200 {
		t.Errorf("got %d apps; want %d", got, 3+4*200)
	}
}
