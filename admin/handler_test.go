package admin

import (
	"log/slog"
	"testing"
	"time"

	"trove/auth"
	"trove/storage"
)

// TestLoad stores records as the API does and loads them into a registry
// that already holds the config's apps.
func TestLoad(t *testing.T) {
	db, err := storage.Open("", storage.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	created := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	for _, rec := range []storage.AppRecord{
		{AppKey: "api-app-key-0001", Name: "shop", RequireToken: true, Created: created},
		{AppKey: "config-app-key-01", Name: "shadowed", Created: created},
	} {
		if err := db.PutApp(rec); err != nil {
			t.Fatal(err)
		}
	}
	live := storage.TokenRecord{ID: "aaaaaaaaaaaa", Name: "live", Digest: auth.Digest([]byte("live-secret")),
		Scopes: []string{"ingest", "export"}, Apps: []string{"api-app-key-0001"}, Created: created}
	all := storage.TokenRecord{ID: "cccccccccccc", Name: "all", Digest: auth.Digest([]byte("all-secret")),
		Scopes: []string{"export"}, Apps: []string{"*"}, Created: created}
	gone := storage.TokenRecord{ID: "bbbbbbbbbbbb", Name: "gone", Digest: auth.Digest([]byte("gone-secret")),
		Scopes: []string{"ingest"}, Apps: []string{"*"}, Created: created, Revoked: created.Add(time.Hour)}
	for _, rec := range []storage.TokenRecord{live, all, gone} {
		if err := db.PutToken(rec); err != nil {
			t.Fatal(err)
		}
	}

	reg := auth.NewRegistry()
	reg.AddApp(auth.App{Name: "from-config", AppKey: "config-app-key-01", Source: auth.SourceConfig})
	if err := Load(reg, db, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if a, ok := reg.App("api-app-key-0001"); !ok || a.Name != "shop" || !a.RequireToken || a.Source != auth.SourceAPI || !a.Created.Equal(created) {
		t.Errorf("loaded app = %+v, %v; want shop, require_token, source api", a, ok)
	}
	if a, _ := reg.App("config-app-key-01"); a.Name != "from-config" || a.Source != auth.SourceConfig {
		t.Errorf("an appKey the config declares became %+v; want the config's", a)
	}
	tok, err := reg.Authenticate([]byte("live-secret"))
	if err != nil || tok.ID != live.ID || tok.Source != auth.SourceAPI || !tok.Covers("api-app-key-0001", auth.ScopeExport) || tok.Covers("config-app-key-01", auth.ScopeIngest) {
		t.Errorf("loaded token = %+v, %v; want %s covering only its app", tok, err, live.ID)
	}
	if tok, err := reg.Authenticate([]byte("all-secret")); err != nil || !tok.AllApps {
		t.Errorf("loaded \"*\" token = %+v, %v; want AllApps", tok, err)
	}
	if _, err := reg.Authenticate([]byte("gone-secret")); err == nil {
		t.Errorf("a revoked token authenticates after Load")
	}
	if !reg.Revoked(gone.ID) {
		t.Errorf("Revoked(%s) = false after Load", gone.ID)
	}

	// A record with a scope this version does not know stops the start.
	if err := db.PutToken(storage.TokenRecord{ID: "dddddddddddd", Name: "odd", Scopes: []string{"superuser"}, Apps: []string{"*"}}); err != nil {
		t.Fatal(err)
	}
	if err := Load(auth.NewRegistry(), db, slog.New(slog.DiscardHandler)); err == nil {
		t.Errorf("Load with an unknown scope: got nil; want an error")
	}
}

func TestCheckName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"shop", true},
		{"Shop – Europe (prod)", true},
		{"", false},
		{"   ", false},
		{"a\tb", false},
		{"\xff", false},
		{string(make([]rune, 255)), false}, // NUL characters
	} {
		if err := checkName("name", tc.name); (err == nil) != tc.ok {
			t.Errorf("checkName(%q) = %v; want ok %v", tc.name, err, tc.ok)
		}
	}
	long := ""
	for range maxNameLen {
		long += "é"
	}
	if err := checkName("name", long); err != nil {
		t.Errorf("a name of %d characters: %v; want it accepted", maxNameLen, err)
	}
	if err := checkName("name", long+"x"); err == nil {
		t.Errorf("a name of %d characters: accepted; want refused", maxNameLen+1)
	}
}

func TestNewAppKey(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		k := newAppKey()
		if len(k) != 22 || seen[k] {
			t.Fatalf("newAppKey() = %q; want 22 characters, never twice", k)
		}
		seen[k] = true
	}
}
