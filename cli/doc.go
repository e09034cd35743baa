// Package cli holds Trove's client-side commands: the ones that talk to a
// running server over HTTP instead of opening the data directory.
//
// # Export
//
// Export runs `trove export events|profiles` (SPEC.md section 5). It calls
// GET /v1/export/events or /v1/export/profiles on --server with the token
// from --token or TROVE_TOKEN, and writes the NDJSON stream to -o FILE (or
// stdout). The output's suffix picks the compression: for .zst and .gz the
// client asks the server for that Content-Encoding and stores the bytes as
// they arrive, without recompressing; any other name gets plain NDJSON,
// fetched as zstd and decompressed on the fly so the wire carries less. The
// stream is always decoded as it passes, to count lines and to catch a
// truncated stream.
//
// A file is written to a temporary name in the target's directory and
// renamed into place only once the server ended the stream properly, so a
// broken transfer (the server aborts the connection mid-stream, which the
// client sees as an unexpected EOF) never leaves a complete-looking file.
// The summary on stderr gives the X-Trove-Watermark and the command that
// continues from it with --since.
//
// # Import
//
// Import runs `trove import events|profiles FILE...` (SPEC.md section 10,
// import.go): each line of a Trove, Segment, Mixpanel or Amplitude export
// (importfmt.go) is sent, in batches from --concurrency workers, to that
// vendor's endpoint on the server, so that the server's mapping applies; a
// line without an id gets one from its hash. --state records per input the
// lines done without a gap, so a re-run continues there; 429 and 503 are
// retried after Retry-After; rejected lines go to FILE.rejected.ndjson.
//
// # Apps and tokens
//
// Apps and Tokens run `trove apps create|list` and `trove tokens
// create|list|revoke` (SPEC.md section 2) against the admin API on --server
// with the admin token from --token or TROVE_ADMIN_TOKEN (admin.go). Flags
// may come before or after the arguments. A created appKey or token secret
// is printed alone on stdout, so that `T=$(trove tokens create …)` works;
// what it is, and that the secret is shown once, goes to stderr. Lists are
// tables, or the server's JSON with --json. A refusal exits 1 with the
// server's message.
//
// # Backup, restore and health
//
// Backup runs `trove backup -o FILE`: POST /admin/backup with the admin
// token, the archive checked as it arrives (backup.Verify) and written to a
// temporary file that is linked into place only when complete; an existing
// FILE is refused. Restore runs `trove restore FILE -data DIR`, which
// opens no server: it extracts the archive with backup.Restore into a new
// or empty DIR. Healthcheck runs `trove healthcheck`, the container's
// HEALTHCHECK: GET /healthz on the server TROVE_LISTEN points at.
//
// Besides trove/backup (the archive format), the package imports no other
// package of ours: it speaks HTTP only.
package cli
