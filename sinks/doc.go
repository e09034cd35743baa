// Package sinks runs the continuous exports to object storage of SPEC
// section 8 ([[sinks]] in the config): one goroutine per sink reads each of
// its apps' committed events from storage snapshots, as an export does, so
// that it never slows ingest, and writes them as files
//
//	{prefix}{appKey}/dt=YYYY-MM-DD/{fromSeq}-{toSeq}.parquet (or .ndjson.zst)
//
// Exactly once. An app's files tile its ingest sequence: a file holds the
// app's events with fromSeq <= seq <= toSeq, and the next file starts at
// toSeq+1. The sink's progress per app (the sequence done, at or below which
// every event is in a file) is kept in the store's meta values
// ("sink/{name}/{appKey}", progress.go). Before a file is uploaded, its
// range and day are stored as pending; after a crash the same range is
// built again under the same name, and uploaded with If-None-Match: * so
// that an object already there (the upload finished, the crash came before
// the progress was stored) is kept, never rewritten. So no event is in two
// files, and none is skipped. {prefix}{appKey}/_watermark.json tells
// readers the sequence done.
//
// Deleted users' events are left out of every file built after the
// deletion (storage.DB.Forgotten); files written before are not rewritten.
//
// Lock order: Manager has none of its own; each appState.mu is taken alone.
package sinks
