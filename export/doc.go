// Package export streams stored events and quarantined events as NDJSON,
// and stored events as Parquet (parquet.go: one row per event, columns of
// SPEC section 8, written in row groups as they fill).
// It validates parameters and opens a storage snapshot before the first
// byte, then writes stored bytes straight into a 64 KiB buffered writer: the
// export copies, it never re-encodes. The X-Trove-Watermark header names the
// highest ingest sequence the export can contain.
package export
