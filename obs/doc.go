// Package obs holds Trove's metric definitions: the series that web,
// ingest, profile and export update, and the ones read from the store at
// scrape time, all named trove_* and served by GET /metrics in the
// Prometheus text format.
//
// Every family goes out with its # HELP and # TYPE lines: the library
// writes the TYPE (metrics.ExposeMetadata), and expose fills each HELP from
// the help table, renames the few library series whose names break
// Prometheus' conventions and retypes the ones it mistypes, so that a scrape
// passes `promtool check metrics`. Latency histograms have Prometheus' le
// buckets (LatencyBuckets), so that histogram_quantile works; values are in
// base units (seconds, bytes).
//
// Series live in one process-wide set (registered with
// github.com/VictoriaMetrics/metrics, so WritePrometheus also writes the
// Go and process series). Labelled counters are created once per label
// value and cached, so that the hot paths only look them up and add. The
// label values are bounded: route patterns from the route table, status
// codes, export kinds, and the keys of apps that credentials were checked
// against.
//
// Per-store series (Pebble's figures, free disk) are not in the set: a
// server writes them for its own store at scrape time (StoreWriter), so
// that several servers in one process (tests) do not mix their stores.
// Counters in the set are shared by such servers, and only ever grow.
package obs
