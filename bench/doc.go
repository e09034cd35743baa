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
// size (PERF.md, S1). The same seed always gives the same bytes. Events carry
// no messageId unless WithMessageIDs; then each has a UUID of its own, about
// 51 more bytes.
//
// # Load
//
// Main runs the workloads W1, W1n and W2 of PERF.md: -conns workers, each with
// one connection, take request numbers from a shared counter, build the body
// of that request (-batch events as a JSON array, a single object, or NDJSON,
// optionally gzipped), post it to /v1/events and require 202. The events of
// request i depend only on -seed and i, so a run sends the same data whatever
// -conns is. The run ends after -n events or -duration, whichever comes first;
// a request that gets no HTTP answer at all ends it early. The summary reports
// events/s, raw JSON MB/s, per-request latency percentiles from every sample,
// the server's own counts of accepted, duplicate and rejected events, and what
// the client itself cost, so that a reader can tell whether the client was the
// bottleneck. With -calibrate, the same load first goes to an in-process
// fasthttp server that discards it, and the report gives Trove's share of
// that ceiling.
//
// Every event carries a UUID messageId, as SDKs send, unless -no-message-ids
// (W1n). Without an explicit -seed the ids are salted afresh for each run
// (Generator.WithMessageIDSalt), so two runs against one server never share
// one and a duplicate in the server's counts is a bug, which fails the run;
// with -seed they repeat exactly, which is how to load the duplicate path.
//
// With -data-dir, Main measures S1 of PERF.md after the load: it waits
// -settle (3 minutes by default) while the server merges, printing the
// directory's size every 10 seconds, then walks the directory as du -sb does
// and divides its size by the events the server accepted.
//
// # Profiles
//
// ProfileGenerator writes deterministic profile objects for the User
// Profiles API (SPEC.md section 4), about 190 bytes each: 20 % creates of new
// users (puser-100000 on, never seen before, with names, email, gender, date
// of birth, country and its language and time zone, and custom plan, signup
// date, tags and so on), 70 % updates of the 100,000 existing users (puser-0
// to puser-99999) drawn with the same Zipf popularity as the events' users
// — date_of_last_use, {"inc":1} logins, tags {"add"} or {"remove"}, now and
// then a new plan or a null — and 10 % profiles known only by a Facebook
// alias. At most MaxProfileFields attribute fields per profile, and aliases
// are chosen so that none can ever belong to two profiles (a 409).
//
// `trove bench profiles` runs W3 of PERF.md with the same machinery as the
// events: request i holds -batch profiles that depend only on -seed and i
// (its new users are numbered from 100000 + i*batch), posted as
// {"appKey","user_profiles"} to /v1/users/profile with the -token, and only
// 202 counts as success. With -reads R, readers on connections of their own
// GET /v1/users/profile?appKey=…&userId=… at R per second in total, from the
// first acknowledged update until the updates end, choosing among the users
// of the most recently acknowledged requests (so every user read exists, and
// popular users are read more); anything but 200 is a failed read, and their
// latency is reported on a line of its own.
package bench
