// Package profile implements the User Profiles API: POST /users/profile
// (and /v1/users/profile) creates and updates user profiles, GET
// /v1/users/profile reads one.
//
// A request is decoded and validated whole before anything is applied;
// then, under the app's profile lock (storage.ProfileTxn), each profile is
// found by pyze_id, userId or alias (one point read each), its operations
// are applied in request order, and all of it commits in one fsync'd batch,
// or nothing does. An Idempotency-Key already applied returns the first
// answer and applies nothing again.
package profile
