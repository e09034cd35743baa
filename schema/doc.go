// Package schema holds the apps' event contracts (SPEC.md section 7): one
// JSON Schema (draft 2020-12) per app and event name, stored in Trove
// through package storage, compiled once per version and kept compiled in
// memory, and applied by package ingest to the stored form of each event
// according to the app's schema_mode and schema_unknown.
//
// Reads (Registry.Check, on every event) take no lock: the contracts are an
// immutable map replaced whole on each change, under Registry.mu.
package schema
