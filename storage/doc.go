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
// Pebble keeps the blocks' values out of its sstables, in blob files that
// compactions carry forward by reference instead of rewriting (value
// separation, db.go): the LSM compacts keys, and a block is written once at
// flush. Every other namespace keeps its values next to its keys.
//
// Client-supplied messageIds are recorded in a dedup index, checked within
// the dedup window; rejected events go to a per-app quarantine. Sequence
// numbers survive restarts through a persisted lease (seq.go).
//
// A replicated store (Options.Replicated, cluster mode) takes no lease: it
// is written by applying the entries of a replicated log in order, each
// entry's events numbered from its position in the log, and records the
// last entry applied in meta "log_applied" within the same commit
// (replicated.go), so that every node of a cluster holds the same events
// under the same sequences.
//
// # Exact deduplication (dedup.go)
//
// Every client messageId stored within Options.DedupWindow is a duplicate,
// across restarts and crashes (the stored events are the log the index is
// rebuilt from, dedup_pending.go), and a new id is never taken for one. The
// index costs 7-9 bytes per id on disk (S1, BenchmarkStoredBytesPerEvent)
// and 2 bytes of memory, whatever the id:
//
//	0x22 | slice (4B) | appID (4B) | fp >> 32 (2B)  ->  entries: fp low 32 bits (4B) | seq uvarint, …
//
// slice is the server time of the write in units of the store's slice
// length (a quarter of the window, at least an hour, fixed in meta
// "dedup_slice" when the store is created), so everything older than the
// window is one key range: ExpireDedup drops it with one range deletion
// and compacts it away, at Open and every tenth of a slice. fp is a 48-bit
// fingerprint of (app, messageId); its top 16 bits name a bucket, one key
// whose value is its entries back to back. The flusher appends each
// bucket's new entries as one Pebble merge operand (the default merger
// concatenates), and compactions fold the operands into one value, so an
// id costs its entry and not a key's overhead (8-byte trailer, lengths,
// restart points: 12.5-16.7 bytes per id as one key each). An entry is
// never rewritten: a changed ref is a new entry beside the old one.
// Idempotency keys of the Profiles API live under 0x46 slice|app|key and
// expire with the index.
//
// A check (Writer.CheckDuplicates, once per commit):
//
//  1. fingerprints the batch's ids, sorts them, and reserves them in
//     ascending order (64 shards, one channel per writer), so that a
//     concurrent writer with the same id waits for this one and then finds
//     it stored, and no two writers wait on each other;
//  2. asks each live slice's in-memory blocked Bloom filter (16 bits per id,
//     ~0.15 % false positives per segment); a miss everywhere is a new id,
//     which is what almost every id of every request is;
//  3. looks the rest up in the index in one ascending pass of one iterator,
//     one read per bucket (the ids of a bucket are neighbours in that order);
//  4. for every entry found, reads the stored event its sequence names (one
//     decode per group, seqReader) and compares its messageId and receivedAt:
//     a fingerprint match is a read, never a lost event, and an id stored
//     just past the window is stored again.
//
// The new ids' entries go into the commit's batch, and into the filters
// after it commits and before the reservations are released. The filters
// are rebuilt from the index at Open (one counting pass to size them, one to
// fill them) and bounded by Options.DedupFilterBytes: over it, the oldest
// slice's filter is dropped and its ids are looked up in Pebble (slower,
// as exact). A user's deletion turns the refs to their purged events into
// "legacy" refs that hold the id itself, so that a late retry of a deleted
// user's event stays a duplicate for the rest of the window; entries
// converted from the old format (0x20 app|messageId, before 2026-12) are
// legacy refs too.
//
// # Lock order
//
// A -> B means A may be held while B is taken, never the reverse.
//
//	profile lock of an app (ProfileTxn) -> seqTracker.mu
//	mergeMu (merger, purger, retention) -> floors, forgotten
//	dedup reservations (logical, held from CheckDuplicates to Close)
//	    -> dedupIndex.mu (filters), seqTracker.mu (Alloc), apps (EnsureApp)
//	readers (read-locked by each Snapshot, each ProfileTxn, and each write
//	    while it runs) is write-locked only by Close, which so waits for
//	    them. Operations take it without waiting (enter: refused once
//	    Close has begun), so it has no place in the order above;
//	    Checkpoint, Stats and Overview wait for it, holding nothing else.
//
// A reservation shard's mutex is held only to look up and insert, never
// while waiting: a writer waits for another's reservation on that writer's
// channel, holding only fingerprints below the one it waits for. apps,
// floors, forgotten, dedupIndex.mu and overview's locks are leaves: nothing
// is taken under them, and no I/O is done under them except EnsureApp's one
// Set under apps.
//
// # Format versions
//
// Every value starts with a version byte, except the dedup index's (a
// bucket of entries, see above). When a value format changes, add a version, keep
// decoding the old ones, and record the change here.
//
//   - Block values, version 2 (colblock.go): columnar, written by the merger
//     and the purger; fresh blocks stay version 1. The header's leading
//     fields are version 1's. Head columns (seq, time, event, userId,
//     messageId, receivedAt) are a section of their own, read without the
//     bodies; the rest of each body is a template and per-key value
//     columns. Version-1 blocks, including merged ones written before
//     version 2, are still read; they become version 2 only when the merger
//     or the purger rewrites them. Versions 3 (rows) and 4 (columnar) hold
//     times in µs (2026-12), 1 and 2 in ms; since 2026-12-07 the merger
//     writes a columnar block whose times are all whole milliseconds as
//     version 2 again (ten bits less per time), any other as version 4.
//   - 2026-12: the dedup index moved from 0x20 (app|messageId -> receivedAt,
//     never deleted) to 0x21 (slice|app|fp48 -> seqs), and idempotency keys
//     from 0x43 to 0x46 (slice|app|key, same value); Open converts the old
//     namespaces in chunks that each commit atomically, keeping what is
//     inside the window, and deletes them.
//   - 2026-12-07: the dedup index moved from 0x21 (one key per id) to 0x22
//     (buckets of entries, above); Open converts 0x21 the same way, and
//     converts 0x20 straight into 0x22.
//   - Every other value is still version 1.
package storage
