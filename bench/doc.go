// Package bench is Trove's built-in load generator, run as `trove bench`
// (in the spirit of `nats bench` and `redis-benchmark`), and the source of the
// synthetic events that other packages' Go benchmarks use.
//
// # Events
//
// Generator writes realistic, deterministic analytics events in the form of
// SPEC.md section 3: about 475 bytes each, 40 event names with Zipf-like
// frequencies, 100,000 users with Zipf popularity (the busiest sends about
// 0.4 % of all events), eventTime spread evenly over the 30 days before
// BaseTime, a handful of user agents, and 5 to 12 attributes of mixed types
// (strings from small vocabularies, numbers, booleans, a null, and now and
// then a nested object or an array) whose keys depend on the event name.
// Per-user traits (device, country, plan, address) are stable, so the data is
// as repetitive as real product data, which matters when measuring storage
// size (PERF.md, S1). The same seed always gives the same bytes.
//
// # Load
//
// Main runs the workloads W1 and W2 of PERF.md: -conns workers, each with one
// connection, take request numbers from a shared counter, build the body of
// that request (-batch events as a JSON array, a single object, or NDJSON,
// optionally gzipped), post it to /v1/events and require 202. The events of
// request i depend only on -seed and i, so a run sends the same data whatever
// -conns is. The run ends after -n events or -duration, whichever comes first;
// a request that gets no HTTP answer at all ends it early. The summary reports
// events/s, raw JSON MB/s, per-request latency percentiles from every sample,
// and what the client itself cost, so that a reader can tell whether the
// client was the bottleneck. With -calibrate, the same load first goes to an
// in-process fasthttp server that discards it, and the report gives Trove's
// share of that ceiling.
package bench
