// Package storage is Trove's embedded store: the only package that imports
// Pebble, and the only one that builds or parses key bytes (keys.go) and
// value bytes (values.go).
//
// # Data model
//
// Every stored event belongs to an app (a small integer id registered for
// each appKey) and has an ingest sequence: a number from one store-wide
// counter, handed out in ranges to each write. The watermark is the highest
// sequence at or below which every write has finished; exports read through
// a snapshot taken right after reading it, so `since=<watermark>` on the
// next export misses nothing and repeats nothing.
//
// One write (one Events API request) becomes, per app, one group: a group
// key that records the sequence range and the eventTime days present, and one
// block per day holding those events sorted by eventTime, column-major and
// compressed. Each event's body is its exact stored JSON, so exports
// copy bytes and numbers keep their precision.
//
// Small groups are merged by a background merger (merge.go) into groups of
// up to 16 MiB raw, recompressed at zstd's best level in one atomic batch; that
// is how small requests stop costing small, poorly compressed blocks.
//
// Client-supplied messageIds are recorded in a dedup index, checked within
// the dedup window; rejected events go to a per-app quarantine. Sequence
// numbers survive restarts through a persisted lease (seq.go).
//
// # Format versions
//
// Every value starts with a version byte. When a value format changes, add
// a version, keep decoding the old ones, and record the change here.
//
//   - Block values, version 2 (colblock.go): columnar, written by the merger
//     and the purger; fresh blocks stay version 1. The header's leading
//     fields are version 1's. Head columns (seq, time, event, userId,
//     messageId, receivedAt) are a section of their own, read without the
//     bodies; the rest of each body is a template and per-key value
//     columns. Version-1 blocks, including merged ones written before
//     version 2, are still read; they become version 2 only when the merger
//     or the purger rewrites them.
//   - Every other value is still version 1.
package storage
