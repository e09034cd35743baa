package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// The format of the secrets that Trove generates:
//
//	trv_<kind>_<id>_<secret>
//
// kind names the scopes (admin when the token has admin scope, else the
// scope names joined by "-": ingest, export, ingest-export), so that a leaked
// secret tells at a glance what it opens and secret scanners can match it;
// id is the token's id (IDLen lowercase hex digits), which logs, listings
// and revocation use; secret is 32 random bytes in unpadded URL-safe base64.
// Only the SHA-256 of the whole string is stored.
const (
	tokenPrefix = "trv_"
	// IDLen is the length of a token id: 6 random bytes in hex.
	IDLen = 12
	// secretLen is the length of the random part: 32 bytes in base64.
	secretLen = 43
)

// Kind returns the kind part of a generated secret for scopes s.
func (s Scope) Kind() string {
	if s&ScopeAdmin != 0 {
		return "admin"
	}
	if s == 0 {
		return "none"
	}
	return strings.ReplaceAll(s.String(), ",", "-")
}

// NewID returns a random token id.
func NewID() string {
	var b [IDLen / 2]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// NewSecret returns a new random secret of the given scopes and id, in the
// trv_<kind>_<id>_<secret> format.
func NewSecret(scopes Scope, id string) string {
	var b [32]byte
	rand.Read(b[:])
	return tokenPrefix + scopes.Kind() + "_" + id + "_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// ParseToken splits a secret in the trv_<kind>_<id>_<secret> format into
// its kind and id. ok is false for anything else (a secret from the config
// file, or garbage); the secret itself is never returned, so callers may log
// what they get.
func ParseToken(s string) (kind, id string, ok bool) {
	rest, found := strings.CutPrefix(s, tokenPrefix)
	if !found {
		return "", "", false
	}
	kind, rest, found = strings.Cut(rest, "_")
	if !found || !validKind(kind) {
		return "", "", false
	}
	if len(rest) != IDLen+1+secretLen || rest[IDLen] != '_' {
		return "", "", false
	}
	id, secret := rest[:IDLen], rest[IDLen+1:]
	if !ValidID(id) {
		return "", "", false
	}
	for i := range len(secret) {
		c := secret[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return "", "", false
		}
	}
	return kind, id, true
}

// validKind reports whether k is a kind that Scope.Kind can return.
func validKind(k string) bool {
	if k == "admin" {
		return true
	}
	names := strings.Split(k, "-")
	if len(names) == 0 || len(names) > 2 {
		return false
	}
	s, err := ParseScopes(names)
	return err == nil && s != 0 && s&ScopeAdmin == 0 && s.Kind() == k
}

// ValidID reports whether id has the shape of a token id: IDLen lowercase
// hex digits.
func ValidID(id string) bool {
	if len(id) != IDLen {
		return false
	}
	for i := range len(id) {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// DigestID returns the stable id of a token known only by its digest (one
// declared in the config file): IDLen hex digits of a hash of the digest,
// domain-separated so that the id is not a prefix of the stored digest.
func DigestID(d [sha256.Size]byte) string {
	h := sha256.New()
	h.Write([]byte("trove token id\x00"))
	h.Write(d[:])
	return hex.EncodeToString(h.Sum(nil)[:IDLen/2])
}

// describe names a token for messages and logs: its id and name, never its
// secret.
func (t *Token) describe() string {
	if t.Name == "" {
		return "token " + t.ID
	}
	return fmt.Sprintf("token %s (%q)", t.ID, t.Name)
}
