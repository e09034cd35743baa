// Package admin serves the admin API (SPEC.md section 2): apps and tokens
// created, listed and revoked over HTTP by a token with admin scope.
//
//	POST   /admin/apps          {"name"}                      → 201 {"name","appKey",…}
//	GET    /admin/apps                                        → 200 {"apps":[…]}
//	POST   /admin/tokens        {"name","scopes","apps"}      → 201 {"id","token",…}
//	GET    /admin/tokens                                      → 200 {"tokens":[…]}
//	DELETE /admin/tokens/{id}                                 → 200 {"id","revoked":true,…}
//
// What the API creates is stored (storage.PutApp, storage.PutToken) and
// loaded into the auth.Registry on start (Load), beside what the config file
// declares; listings say which is which ("source": "config", "api" or
// "admin_token"). Config-declared apps and tokens cannot be changed here:
// the file is their source of truth.
//
// A new token's secret (auth.NewSecret: trv_<kind>_<id>_<secret>) is in the
// 201 answer only; the store and the registry keep its SHA-256. Logs and
// errors name tokens by id and name.
//
// Revocation writes the record with its revocation time, fsync'd, then
// removes the token from the registry: the DELETE answers only once the
// token is refused, and it stays refused after a restart.
//
// The web package routes to Handler's methods behind its admin-scope check;
// Handler serialises changes with one mutex, so that a name check and its
// write, or an id and its record, cannot interleave with another change.
package admin
