package storage

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Index entries do not go into the commits that store their events. A
// commit's entries are random keys, and inserting 500 of them into the
// memtable one by one (and flushing them out of it) cost more than the rest
// of the commit; instead a commit hands its entries to the pending set, in
// memory, and a flusher writes the pending set to Pebble every
// dedupFlushInterval (or sooner once it holds dedupFlushEntries) as one
// batch in key order, together with meta "dedup_indexed": a sequence below
// which every stored event's entry is in Pebble.
//
// The stored events are the log: when the process dies with entries still
// pending, Open rebuilds them from the events above dedup_indexed (their
// messageId and receivedAt), before anything is checked. Lookups read the
// pending set before Pebble, so an entry is never out of sight between the
// two.

const (
	dedupFlushInterval = time.Second
	dedupFlushEntries  = 256 << 10
	// dedupPendingMax is where a commit stops waiting for the flusher and
	// flushes itself: the pending set's memory stays bounded (~50 MB) under
	// any load.
	dedupPendingMax  = 4 * dedupFlushEntries
	metaDedupIndexed = "dedup_indexed"
)

// entryKey names one index entry.
type entryKey struct {
	slice, app uint32
	fp         uint64
}

// sameBucket reports whether a and b are in one bucket of the index.
func sameBucket(a, b entryKey) bool {
	return a.slice == b.slice && a.app == b.app && a.fp>>32 == b.fp>>32
}

// compareEntryKeys orders entries as their index keys: by slice, app and
// fingerprint. It runs for every entry of every commit, several times
// (sorts, merges of the pending runs, lookups), so it stops at the first
// field that differs (cmp.Or would compare all three first).
func compareEntryKeys(a, b entryKey) int {
	if c := cmp.Compare(a.slice, b.slice); c != 0 {
		return c
	}
	if c := cmp.Compare(a.app, b.app); c != 0 {
		return c
	}
	return cmp.Compare(a.fp, b.fp)
}

// pendingSet is a set of entries, kept as sorted runs: a commit appends
// its entries as one run, and runs merge like a binary counter (a run
// merges into the one before it while that one is no larger), so that a
// commit costs an append and amortised O(log n) sequential copying, and a
// set of n entries holds O(log n) runs that a lookup binary-searches. An
// entry in a newer run replaces the same key in older ones. Entries hold
// no pointers (cheap for the collector): almost all hold one sequence;
// the others index their refs in multi.
type pendingSet struct {
	runs  [][]pendingEntry // oldest first, each sorted by key, no key twice
	multi [][]dedupRef
	n     int // entries in all runs, a key in several runs counted in each
}

type pendingEntry struct {
	k entryKey
	v uint64 // the sequence, or pendingMulti|i for multi[i]
}

const pendingMulti = 1 << 63

func comparePendingEntries(a, b pendingEntry) int { return compareEntryKeys(a.k, b.k) }

func (p *pendingSet) len() int { return p.n }

func (p *pendingSet) refsOf(e pendingEntry) []dedupRef {
	if e.v&pendingMulti != 0 {
		return p.multi[e.v&^pendingMulti]
	}
	return []dedupRef{{seq: e.v}}
}

func (p *pendingSet) get(k entryKey) ([]dedupRef, bool) {
	for r := len(p.runs) - 1; r >= 0; r-- {
		run := p.runs[r]
		if i, ok := slices.BinarySearchFunc(run, k, func(e pendingEntry, k entryKey) int { return compareEntryKeys(e.k, k) }); ok {
			return p.refsOf(run[i]), true
		}
	}
	return nil, false
}

// add appends one commit's entries as a run; keys holds no key twice.
func (p *pendingSet) add(keys []entryKey, refs [][]dedupRef) {
	if len(keys) == 0 {
		return
	}
	run := make([]pendingEntry, len(keys))
	for i, k := range keys {
		run[i].k = k
		if len(refs[i]) == 1 && !refs[i][0].legacy {
			run[i].v = refs[i][0].seq
		} else {
			run[i].v = pendingMulti | uint64(len(p.multi))
			p.multi = append(p.multi, refs[i])
		}
	}
	if !slices.IsSortedFunc(run, comparePendingEntries) {
		slices.SortFunc(run, comparePendingEntries)
	}
	p.runs = append(p.runs, run)
	p.n += len(run)
	for len(p.runs) >= 2 && len(p.runs[len(p.runs)-2]) <= len(p.runs[len(p.runs)-1]) {
		p.mergeLast()
	}
}

// mergeLast merges the newest run into the one before it.
func (p *pendingSet) mergeLast() {
	older, newer := p.runs[len(p.runs)-2], p.runs[len(p.runs)-1]
	out := make([]pendingEntry, 0, len(older)+len(newer))
	i, j := 0, 0
	for i < len(older) && j < len(newer) {
		switch c := compareEntryKeys(older[i].k, newer[j].k); {
		case c < 0:
			out = append(out, older[i])
			i++
		case c > 0:
			out = append(out, newer[j])
			j++
		default: // the newer entry replaces the older
			out = append(out, newer[j])
			i++
			j++
		}
	}
	out = append(append(out, older[i:]...), newer[j:]...)
	p.n -= len(older) + len(newer) - len(out)
	p.runs = append(p.runs[:len(p.runs)-2], out)
}

// putUnder puts sorted entries, whose refs index multi, under the set's
// runs, as its oldest. It takes entries over.
func (p *pendingSet) putUnder(entries []pendingEntry, multi [][]dedupRef) {
	if len(entries) == 0 {
		return
	}
	off := uint64(len(p.multi))
	p.multi = append(p.multi, multi...)
	for i := range entries {
		if entries[i].v&pendingMulti != 0 {
			entries[i].v += off
		}
	}
	p.runs = append([][]pendingEntry{entries}, p.runs...)
	p.n += len(entries)
}

// sorted merges every run and returns the set's entries in key order.
func (p *pendingSet) sorted() []pendingEntry {
	for len(p.runs) >= 2 {
		p.mergeLast()
	}
	if len(p.runs) == 0 {
		return nil
	}
	return p.runs[0]
}

// pendingRefsLocked returns the refs of k in the pending set (the newest
// first: the current set, then the one being flushed), and whether it is
// there. The refs must not be modified.
func (x *dedupIndex) pendingRefsLocked(k entryKey) ([]dedupRef, bool) {
	if r, ok := x.pending.cur.get(k); ok {
		return r, true
	}
	return x.pending.frozen.get(k)
}

// addPending records a commit's entries. The caller holds the entries'
// reservations, so no one else changes them meanwhile.
func (db *DB) addPending(keys []entryKey, refs [][]dedupRef) {
	x := &db.dedup
	x.pending.Lock()
	x.pending.cur.add(keys, refs)
	n := x.pending.cur.len()
	x.pending.Unlock()
	switch {
	case n >= dedupPendingMax:
		if err := db.flushDedup(); err != nil && !db.closed.Load() {
			db.log.Error("cannot write the dedup index", "err", err)
		}
	case n >= dedupFlushEntries:
		select {
		case db.dedupKick <- struct{}{}:
		default:
		}
	}
}

// flushDedup writes the pending set to Pebble, in key order, with the
// sequence below which every event's entry is now there.
func (db *DB) flushDedup() error {
	x := &db.dedup
	x.flushMu.Lock()
	defer x.flushMu.Unlock()
	// Every commit at or below the watermark has finished, and a commit
	// adds its entries before it finishes: the set taken after this holds
	// all of theirs.
	wm, _ := db.seq.watermark()
	x.pending.Lock()
	frozen := x.pending.cur
	x.pending.frozen, x.pending.cur = frozen, pendingSet{}
	x.pending.Unlock()
	if frozen.len() == 0 && wm == x.indexed {
		x.pending.Lock()
		x.pending.frozen = pendingSet{}
		x.pending.Unlock()
		return nil
	}
	// Merged in a copy: lookups read frozen's runs meanwhile.
	merged := pendingSet{runs: slices.Clone(frozen.runs), multi: frozen.multi}
	entries := merged.sorted()
	b := db.pdb.NewBatch()
	defer b.Close()
	// One merge per bucket: entries in key order are grouped by bucket. A
	// multi-ref entry holds the refs already stored too (see prev in
	// CheckDuplicates), which so appear twice: refs are a set.
	var key, val []byte
	for i, e := range entries {
		if e.v&pendingMulti == 0 {
			val = appendDedupEntry(val, e.k.fp, dedupRef{seq: e.v})
		} else {
			for _, r := range frozen.refsOf(e) {
				val = appendDedupEntry(val, e.k.fp, r)
			}
		}
		if i+1 < len(entries) && sameBucket(e.k, entries[i+1].k) {
			continue
		}
		key = appendDedupBucketKey(key[:0], e.k.slice, e.k.app, e.k.fp)
		b.Merge(key, val, nil)
		val = val[:0]
	}
	b.Set(appendMetaKey(nil, metaDedupIndexed), binary.AppendUvarint([]byte{valueV1}, wm), nil)
	// Not synced: until the next synced commit makes it durable, the events
	// it indexes are, and Open rebuilds it from them.
	if err := b.Commit(pebble.NoSync); err != nil {
		x.pending.Lock()
		// Back under the current set, whose newer entries replace them.
		x.pending.cur.putUnder(entries, frozen.multi)
		x.pending.frozen = pendingSet{}
		x.pending.Unlock()
		return fmt.Errorf("cannot write the dedup index: %w", err)
	}
	db.disk.wrote(b.Len())
	x.pending.Lock()
	x.pending.frozen = pendingSet{}
	x.pending.Unlock()
	x.indexed = wm
	return nil
}

// dedupFlushLoop runs the flusher until the store closes; Close flushes
// what is left.
func (db *DB) dedupFlushLoop() {
	defer close(db.dedupFlushDone)
	t := time.NewTicker(dedupFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-db.mergeStop:
			return
		case <-t.C:
		case <-db.dedupKick:
		}
		if err := db.flushDedup(); err != nil && !db.closed.Load() {
			db.log.Error("cannot write the dedup index; retrying", "err", err)
		}
	}
}

// recoverDedup rebuilds the index entries of the events stored above meta
// dedup_indexed: those a crash left pending. A store without the meta key
// is new, or indexed by the conversion of the old format: everything in it
// is indexed.
func (db *DB) recoverDedup(now time.Time) error {
	x := &db.dedup
	v, err := db.GetMeta(metaDedupIndexed)
	if err != nil {
		return err
	}
	wm, _ := db.seq.watermark()
	if v == nil {
		x.indexed = wm
		return db.SetMeta(metaDedupIndexed, binary.AppendUvarint(nil, wm))
	}
	since, n := binary.Uvarint(v)
	if n <= 0 {
		return fmt.Errorf("%w: meta %q", errCorrupt, metaDedupIndexed)
	}
	x.indexed = since
	if since >= wm {
		return nil
	}
	start := time.Now()
	db.apps.RLock()
	apps := make([]uint32, 0, len(db.apps.byKey))
	for _, id := range db.apps.byKey {
		apps = append(apps, id)
	}
	db.apps.RUnlock()
	slices.Sort(apps)
	snap, err := db.NewSnapshot()
	if err != nil {
		return err
	}
	defer snap.Close()
	b := db.pdb.NewIndexedBatch()
	defer b.Close()
	events, added := 0, 0
	for _, app := range apps {
		err := snap.EventsBySeq(app, since, math.MaxUint64, func(seq uint64, _ int64, body []byte) error {
			events++
			// A body that is not an event of the Events API (written by a
			// client of storage itself) carries no id to index.
			h, ok, err := parseStoredHead(body)
			if err != nil || !ok || isGeneratedID([]byte(h.messageID), seq) || !x.inWindow(now, h.receivedAt) {
				return nil
			}
			slice, fp := x.sliceOf(h.receivedAt), fingerprint(app, []byte(h.messageID))
			refs, err := getDedupRefs(b, slice, app, fp)
			if err != nil {
				return err
			}
			for _, r := range refs {
				if !r.legacy && r.seq == seq {
					return nil // it made it
				}
			}
			added++
			return b.Merge(appendDedupBucketKey(nil, slice, app, fp), appendDedupEntry(nil, fp, dedupRef{seq: seq}), nil)
		})
		if err != nil {
			return fmt.Errorf("cannot rebuild the dedup index of app %d: %w", app, err)
		}
	}
	b.Set(appendMetaKey(nil, metaDedupIndexed), binary.AppendUvarint([]byte{valueV1}, snap.Watermark()), nil)
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("cannot rebuild the dedup index: %w", err)
	}
	x.indexed = snap.Watermark()
	db.log.Info("rebuilt the dedup index entries a stop left pending", "events_read", events, "entries", added,
		"from_seq", since, "took", time.Since(start).Round(time.Millisecond).String())
	return nil
}
