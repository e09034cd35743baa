// Package authtest builds the auth.Registry that a test serves with, from
// its apps and its tokens' secrets. Only tests import it; auth's own tests
// cannot (they are in package auth, which this package imports), so they
// build theirs with the registry's methods directly.
package authtest

import "trove/auth"

// Token is a token of a test registry, given by its secret.
type Token struct {
	Secret string
	Name   string
	Scopes auth.Scope
	// Apps are the appKeys the token covers; "*" covers every app, as in
	// the config file.
	Apps []string
}

// NewRegistry returns a registry that declares apps and holds tokens. Each
// token's ID is derived from its digest (auth.DigestID), as AddToken does
// for tokens without one.
func NewRegistry(apps []auth.App, tokens ...Token) *auth.Registry {
	reg := auth.NewRegistry()
	for _, a := range apps {
		reg.AddApp(a)
	}
	for _, t := range tokens {
		tok := auth.Token{Name: t.Name, Digest: auth.Digest([]byte(t.Secret)), Scopes: t.Scopes}
		for _, a := range t.Apps {
			if a == "*" {
				tok.AllApps = true
				continue
			}
			if tok.Apps == nil {
				tok.Apps = map[string]bool{}
			}
			tok.Apps[a] = true
		}
		reg.AddToken(tok)
	}
	return reg
}
