package server

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"trove/admin"
	"trove/auth"
	"trove/config"
	"trove/storage"
)

// buildRegistry loads the apps and tokens of the config and the admin token.
func buildRegistry(cfg config.Config, db *storage.DB, log *slog.Logger) (*auth.Registry, error) {
	reg := auth.NewRegistry()
	for _, a := range cfg.Apps {
		reg.AddApp(auth.App{Name: a.Name, AppKey: a.AppKey, RequireToken: a.RequireToken, PublicProfileWrites: a.PublicProfileWrites,
			Source: auth.SourceConfig})
		if _, err := db.EnsureApp(a.AppKey); err != nil {
			return nil, err
		}
	}
	for i, t := range cfg.Tokens {
		scopes, err := auth.ParseScopes(t.Scopes)
		if err != nil {
			return nil, fmt.Errorf("tokens[%d]: %w", i, err)
		}
		tok := auth.Token{Name: t.Name, Scopes: scopes, Apps: map[string]bool{}, Source: auth.SourceConfig}
		if t.Secret != "" {
			tok.Digest = auth.Digest([]byte(t.Secret))
		} else if tok.Digest, err = auth.ParseDigest(t.SHA256); err != nil {
			return nil, fmt.Errorf("tokens[%d].sha256: %w", i, err)
		}
		for _, k := range t.Apps {
			if k == "*" {
				tok.AllApps = true
			} else {
				tok.Apps[k] = true
			}
		}
		// Stable across restarts and reorderings of the file.
		tok.ID = auth.DigestID(tok.Digest)
		reg.AddToken(tok)
	}
	digest, err := adminTokenDigest(cfg, db, log)
	if err != nil {
		return nil, err
	}
	reg.AddToken(auth.Token{ID: "admin", Name: "admin", Digest: digest, Scopes: auth.ScopeAdmin | auth.ScopeExport | auth.ScopeIngest, AllApps: true,
		Source: auth.SourceAdminToken})
	// What the admin API created, beside what the config declares.
	if err := admin.Load(reg, db, log); err != nil {
		return nil, err
	}
	return reg, nil
}

const metaAdminTokenDigest = "admin_token_sha256"

// adminTokenDigest returns the admin token's digest. Without a configured
// token, one is generated on first start, written once to
// <data>/admin.token (mode 0600) and logged once; only its digest is kept.
func adminTokenDigest(cfg config.Config, db *storage.DB, log *slog.Logger) ([32]byte, error) {
	if cfg.AdminToken != "" {
		return auth.Digest([]byte(cfg.AdminToken)), nil
	}
	stored, err := db.GetMeta(metaAdminTokenDigest)
	if err != nil {
		return [32]byte{}, err
	}
	if len(stored) == 32 {
		return [32]byte(stored), nil
	}
	raw := make([]byte, 24)
	rand.Read(raw)
	secret := "trv_admin_" + base64.RawURLEncoding.EncodeToString(raw)
	path := filepath.Join(cfg.DataDir, "admin.token")
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return [32]byte{}, fmt.Errorf("cannot write admin token: %w", err)
	}
	d := auth.Digest([]byte(secret))
	if err := db.SetMeta(metaAdminTokenDigest, d[:]); err != nil {
		return [32]byte{}, err
	}
	log.Info("generated the admin token; it is shown this once and kept in "+path, "admin_token", secret, "sha256", hex.EncodeToString(d[:8]))
	return d, nil
}
