// Package ingest implements the Events API (POST /v1/events): it reads and
// decompresses the body with hard size caps, splits it into events (one JSON
// object, a JSON array, or NDJSON lines), validates each event, builds its
// stored form, and hands the batch to a sink that stores it durably.
//
// Valid events are stored and each invalid one is named in the answer and
// quarantined; a request with no valid event is refused. The stored form is
// the event as sent (compacted, numbers untouched) plus the server's fields:
// receivedAt, a generated messageId when absent, context.ip from the
// connection when absent, and the clock-skew correction.
package ingest
