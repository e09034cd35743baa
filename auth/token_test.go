package auth

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestNewSecret(t *testing.T) {
	tests := []struct {
		scopes Scope
		kind   string
	}{
		{ScopeIngest, "ingest"},
		{ScopeExport, "export"},
		{ScopeIngest | ScopeExport, "ingest-export"},
		{ScopeAdmin, "admin"},
		{ScopeAdmin | ScopeIngest | ScopeExport, "admin"},
	}
	seen := map[string]bool{}
	for _, tc := range tests {
		t.Run(tc.kind, func(t *testing.T) {
			id := NewID()
			if !ValidID(id) {
				t.Fatalf("NewID() = %q; want %d lowercase hex digits", id, IDLen)
			}
			s := NewSecret(tc.scopes, id)
			if seen[s] {
				t.Fatalf("NewSecret returned %q twice", s)
			}
			seen[s] = true
			if want := "trv_" + tc.kind + "_" + id + "_"; !strings.HasPrefix(s, want) {
				t.Errorf("NewSecret = %q; want the prefix %q", s, want)
			}
			kind, gotID, ok := ParseToken(s)
			if !ok || kind != tc.kind || gotID != id {
				t.Errorf("ParseToken(%q) = %q, %q, %v; want %q, %q, true", s, kind, gotID, ok, tc.kind, id)
			}
		})
	}
}

func TestParseToken(t *testing.T) {
	const secret = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA_-" // 43 characters
	tests := []struct {
		name, in, kind, id string
		ok                 bool
	}{
		{"ingest", "trv_ingest_0123456789ab_" + secret, "ingest", "0123456789ab", true},
		{"ingest-export", "trv_ingest-export_0123456789ab_" + secret, "ingest-export", "0123456789ab", true},
		{"admin", "trv_admin_ffffffffffff_" + secret, "admin", "ffffffffffff", true},
		{"secret with underscores", "trv_export_000000000000____________________________________________", "export", "000000000000", true},
		{"config secret", "s3cret-backend", "", "", false},
		{"empty", "", "", "", false},
		{"prefix only", "trv_", "", "", false},
		{"unknown kind", "trv_write_0123456789ab_" + secret, "", "", false},
		{"kind out of order", "trv_export-ingest_0123456789ab_" + secret, "", "", false},
		{"kind repeated", "trv_ingest-ingest_0123456789ab_" + secret, "", "", false},
		{"admin with more", "trv_admin-ingest_0123456789ab_" + secret, "", "", false},
		{"upper-case id", "trv_ingest_0123456789AB_" + secret, "", "", false},
		{"short id", "trv_ingest_0123456789a_" + secret + "x", "", "", false},
		{"short secret", "trv_ingest_0123456789ab_" + secret[1:], "", "", false},
		{"long secret", "trv_ingest_0123456789ab_" + secret + "A", "", "", false},
		{"bad secret character", "trv_ingest_0123456789ab_" + secret[1:] + "=", "", "", false},
		{"space", "trv_ingest_0123456789ab_" + secret[1:] + " ", "", "", false},
		{"the generated admin token of older versions", "trv_admin_" + secret[:32], "", "", false},
		{"other prefix", "TRV_ingest_0123456789ab_" + secret, "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kind, id, ok := ParseToken(tc.in)
			if kind != tc.kind || id != tc.id || ok != tc.ok {
				t.Errorf("ParseToken(%q) = %q, %q, %v; want %q, %q, %v", tc.in, kind, id, ok, tc.kind, tc.id, tc.ok)
			}
		})
	}
}

// FuzzParseToken checks that ParseToken never panics, and that what it
// accepts has the documented shape, with the id and kind inside the input.
func FuzzParseToken(f *testing.F) {
	f.Add(NewSecret(ScopeIngest|ScopeExport, NewID()))
	f.Add(NewSecret(ScopeAdmin, NewID()))
	f.Add("s3cret-backend")
	f.Add("trv_ingest_0123456789ab_")
	f.Fuzz(func(t *testing.T, s string) {
		kind, id, ok := ParseToken(s)
		if !ok {
			if kind != "" || id != "" {
				t.Errorf("ParseToken(%q) = %q, %q, false; want empty parts", s, kind, id)
			}
			return
		}
		if !ValidID(id) || !validKind(kind) {
			t.Errorf("ParseToken(%q) accepted kind %q, id %q", s, kind, id)
		}
		if want := "trv_" + kind + "_" + id + "_"; !strings.HasPrefix(s, want) || len(s) != len(want)+secretLen {
			t.Errorf("ParseToken(%q) = %q, %q: not trv_<kind>_<id>_<%d characters>", s, kind, id, secretLen)
		}
	})
}

func TestDigestID(t *testing.T) {
	d := Digest([]byte("s3cret-backend"))
	id := DigestID(d)
	if !ValidID(id) {
		t.Errorf("DigestID = %q; want %d lowercase hex digits", id, IDLen)
	}
	if again := DigestID(Digest([]byte("s3cret-backend"))); again != id {
		t.Errorf("DigestID is not stable: %q, then %q", id, again)
	}
	if other := DigestID(Digest([]byte("s3cret-other"))); other == id {
		t.Errorf("two digests have the id %q", id)
	}
}

// TestRegistryTokens adds, lists and revokes tokens by id.
func TestRegistryTokens(t *testing.T) {
	r := testRegistry()
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	id := NewID()
	secret := NewSecret(ScopeIngest, id)
	r.AddToken(Token{ID: id, Name: "api", Digest: Digest([]byte(secret)), Scopes: ScopeIngest, Apps: map[string]bool{appB: true},
		Source: SourceAPI, Created: created})
	r.AddToken(Token{Name: "no id", Digest: Digest([]byte("s3cret-no-id")), Scopes: ScopeExport, AllApps: true, Source: SourceConfig})

	if tok, err := r.Authenticate([]byte(secret)); err != nil || tok.ID != id {
		t.Fatalf("Authenticate(new secret) = %v, %v; want token %s", tok, err, id)
	}
	derived := DigestID(Digest([]byte("s3cret-no-id")))
	if tok, ok := r.Token(derived); !ok || tok.Name != "no id" {
		t.Errorf("Token(%q) = %+v, %v; want the token added without an id", derived, tok, ok)
	}
	var names []string
	for _, tok := range r.Tokens() {
		names = append(names, tok.Name)
		if tok.ID == "" {
			t.Errorf("Tokens() lists %q without an id", tok.Name)
		}
	}
	// The test registry's tokens have no Source: they sort first, by name;
	// then the config's, then the API's.
	if got, want := strings.Join(names, ","), "all,backend,ingest-only,no id,api"; got != want {
		t.Errorf("Tokens() names = %s; want %s", got, want)
	}

	if _, ok := r.Revoke(id); !ok {
		t.Fatalf("Revoke(%s): not found", id)
	}
	if _, ok := r.Token(id); ok {
		t.Errorf("Token(%s) found after Revoke", id)
	}
	if !r.Revoked(id) {
		t.Errorf("Revoked(%s) = false after Revoke", id)
	}
	tok, err := r.Authenticate([]byte(secret))
	if !errors.Is(err, ErrUnauthenticated) || tok != nil {
		t.Fatalf("Authenticate after Revoke = %v, %v; want ErrUnauthenticated", tok, err)
	}
	if msg := err.Error(); !strings.Contains(msg, id) || !strings.Contains(msg, "revoked") || strings.Contains(msg, secret[len(secret)-20:]) {
		t.Errorf("error %q; want it to name id %s and say revoked, without the secret", msg, id)
	}
	if _, ok := r.Revoke(id); ok {
		t.Errorf("Revoke(%s) twice: found the second time", id)
	}
	// An unknown generated secret is named by its id.
	other := NewID()
	_, err = r.Authenticate([]byte(NewSecret(ScopeExport, other)))
	if err == nil || !strings.Contains(err.Error(), "unknown token "+other) {
		t.Errorf("unknown generated secret: error %v; want one naming id %s", err, other)
	}
	// Re-adding a token with the same id replaces it, digest included.
	r.AddToken(Token{ID: "1", Name: "backend v2", Digest: Digest([]byte("s3cret-backend-2")), Scopes: ScopeIngest, AllApps: true})
	if _, err := r.Authenticate([]byte("s3cret-backend")); err == nil {
		t.Errorf("the replaced token's old secret still authenticates")
	}
	if tok, err := r.Authenticate([]byte("s3cret-backend-2")); err != nil || tok.Name != "backend v2" {
		t.Errorf("Authenticate(new secret of id 1) = %v, %v", tok, err)
	}
}

func TestTokenLists(t *testing.T) {
	tok := Token{Scopes: ScopeExport | ScopeIngest, Apps: map[string]bool{appB: true, appA: true}}
	if got := strings.Join(tok.ScopeList(), ","); got != "ingest,export" {
		t.Errorf("ScopeList = %s; want ingest,export", got)
	}
	if got := strings.Join(tok.AppList(), ","); got != appB+","+appA {
		t.Errorf("AppList = %s; want the keys sorted", got)
	}
	all := Token{AllApps: true}
	if got := all.AppList(); len(got) != 1 || got[0] != "*" {
		t.Errorf("AppList of an all-apps token = %v; want [*]", got)
	}
	if got := (&Token{}).ScopeList(); got == nil || len(got) != 0 {
		t.Errorf("ScopeList of no scopes = %#v; want an empty, non-nil list", got)
	}
}

func TestAppsListing(t *testing.T) {
	r := NewRegistry()
	r.AddApp(App{Name: "z-api", AppKey: "k3", Source: SourceAPI, Created: time.Unix(2, 0)})
	r.AddApp(App{Name: "a-api", AppKey: "k4", Source: SourceAPI, Created: time.Unix(1, 0)})
	r.AddApp(App{Name: "b-config", AppKey: "k2", Source: SourceConfig})
	r.AddApp(App{Name: "a-config", AppKey: "k1", Source: SourceConfig})
	var got []string
	for _, a := range r.Apps() {
		got = append(got, a.Name)
	}
	if want := "a-config,b-config,a-api,z-api"; strings.Join(got, ",") != want {
		t.Errorf("Apps() = %v; want %s (config first, then API apps by creation)", got, want)
	}
	if a, ok := r.AppByName("a-api"); !ok || a.AppKey != "k4" {
		t.Errorf("AppByName(a-api) = %+v, %v", a, ok)
	}
	if _, ok := r.AppByName("nope"); ok {
		t.Errorf("AppByName(nope) found an app")
	}
}
