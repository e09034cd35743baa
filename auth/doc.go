// Package auth holds Trove's credentials: apps with their appKeys, and
// tokens with scopes and the apps they cover. It parses the Authorization
// header (Bearer, or HTTP Basic with the token as user name), stores only
// SHA-256 digests of secrets and compares them in constant time.
package auth
