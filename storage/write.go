package storage

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Writer collects one request's events, rejected events and deduplication
// entries and commits them in one atomic Pebble batch. Use it as:
//
//	w := db.NewWriter(now)
//	defer w.Close()
//	dups, err := w.CheckDuplicates(keys)  // optional
//	first, err := w.Alloc(n)
//	w.AddKeyedEvent(...); w.AddEvent(...); w.AddRejected(...)
//	err = w.Commit()
//
// A Writer is not safe for concurrent use; many Writers may commit at once
// and share Pebble's group commit.
type Writer struct {
	db       *DB
	now      time.Time
	batch    *pebble.Batch
	first    uint64
	n        int
	finished bool
	logSeq   uint64 // the log entry applied, in a replicated store (AllocLog)

	closed   bool
	done     chan struct{}      // closed when this writer's reservations are released
	reserved []uint64           // fingerprints this writer holds (dedup.go)
	keys     []DedupKey         // given to CheckDuplicates
	dups     []bool             // CheckDuplicates' answer
	prev     map[int][]dedupRef // refs already under a key's fingerprint in the current slice
	// unquarantined are the apps whose quarantine entries this writer
	// deletes (DeleteRejected), whose overview counts go stale.
	unquarantined []uint32
	*writerBufs
}

// writerBufs are a Writer's reusable buffers, pooled apart from the Writer
// so that a stray second Close cannot hand them to two users.
type writerBufs struct {
	fps     []uint64  // fingerprints of keys
	order   []fpIndex // keys in fingerprint order
	cands   []dedupCandidate
	keySeq  []uint64 // the sequence each new key was added with (0: not added)
	events  []pendingEvent
	evs     []blockEvent
	refs    []dedupRef
	keyBuf  []byte
	valBuf  []byte
	scratch []byte
}

var writerBufsPool sync.Pool

type pendingEvent struct {
	app uint32
	day int32 // DayOf(ev.time), which appendBlocks groups by
	ev  blockEvent
}

type fpIndex struct {
	fp uint64
	i  int32 // into keys
}

// DedupKey names one client-supplied messageId of one app.
type DedupKey struct {
	App       uint32
	MessageID []byte
}

// NewWriter starts a write at the given server time, which is what the
// deduplication window is measured from.
func (db *DB) NewWriter(now time.Time) *Writer {
	bufs, _ := writerBufsPool.Get().(*writerBufs)
	if bufs == nil {
		bufs = &writerBufs{}
	}
	return &Writer{db: db, now: now, writerBufs: bufs}
}

// CheckDuplicates reports, for each key, whether that messageId was already
// stored within the deduplication window, or appears earlier in keys (see
// dedup.go for how). Keys that are not duplicates are reserved until this
// Writer is closed, so a concurrent Writer that checks the same key waits
// for this one to finish and then finds it stored. Events carrying those
// keys must be added with AddKeyedEvent. keys and their MessageID slices
// are retained until Close. It may be called once per Writer.
func (w *Writer) CheckDuplicates(keys []DedupKey) ([]bool, error) {
	if err := w.db.enter(); err != nil {
		return nil, err
	}
	defer w.db.leave()
	if w.keys != nil {
		panic("BUG: Writer.CheckDuplicates called twice")
	}
	x := &w.db.dedup
	n := len(keys)
	w.keys = keys
	dup := make([]bool, n)
	w.fps = slices.Grow(w.fps[:0], n)[:n]
	w.order = slices.Grow(w.order[:0], n)[:n]
	w.keySeq = slices.Grow(w.keySeq[:0], n)[:n]
	clear(w.keySeq)
	for i := range keys {
		w.fps[i] = fingerprint(keys[i].App, keys[i].MessageID)
		w.order[i] = fpIndex{fp: w.fps[i], i: int32(i)}
	}
	w.markRepeats(dup)
	if len(w.reserved) > 0 {
		if w.done == nil {
			w.done = make(chan struct{})
		}
		if !w.db.reserve(w.reserved, w.done) {
			w.reserved = w.reserved[:0]
			return nil, ErrClosed
		}
	}
	// The filters decide most ids; the others are looked up in one sorted
	// pass over the index.
	cur := x.sliceOf(w.now.Unix())
	first := x.firstLive(w.now)
	cands := w.cands[:0]
	x.mu.RLock()
	for s, f := range x.mu.filters {
		if s < first {
			continue
		}
		for i := range keys {
			if !dup[i] && f.has(w.fps[i]) {
				cands = append(cands, dedupCandidate{key: i, slice: s, fp: w.fps[i]})
			}
		}
	}
	x.mu.RUnlock()
	w.cands = cands
	if len(cands) > 0 {
		w.prev = map[int][]dedupRef{}
		if err := w.db.lookupCandidates(w.now, keys, cands, cur, dup, w.prev); err != nil {
			return nil, fmt.Errorf("cannot look up messageIds: %w", err)
		}
	}
	w.dups = dup
	return dup, nil
}

// markRepeats sorts w.order by fingerprint and lists in w.reserved the
// fingerprints to reserve, in ascending order, so that two writers never
// wait on each other; an id repeated within the keys is marked in dup as a
// duplicate of its first occurrence.
func (w *Writer) markRepeats(dup []bool) {
	keys := w.keys
	// cmp.Or would evaluate both comparisons; fingerprints almost never tie.
	slices.SortFunc(w.order, func(a, b fpIndex) int {
		if c := cmp.Compare(a.fp, b.fp); c != 0 {
			return c
		}
		return cmp.Compare(a.i, b.i)
	})
	w.reserved = w.reserved[:0]
	for j, o := range w.order {
		i := o.i
		if j > 0 && w.order[j-1].fp == o.fp {
			for b := j - 1; b >= 0 && w.order[b].fp == o.fp; b-- {
				q := w.order[b].i
				if !dup[q] && keys[q].App == keys[i].App && bytes.Equal(keys[q].MessageID, keys[i].MessageID) {
					dup[i] = true
					break
				}
			}
			continue // reserved with the first
		}
		w.reserved = append(w.reserved, o.fp)
	}
}

// Alloc reserves n consecutive ingest sequences for this write and returns
// the first. It may be called once per Writer.
func (w *Writer) Alloc(n int) (uint64, error) {
	if w.n != 0 {
		panic("BUG: Writer.Alloc called twice")
	}
	if w.db.opts.Replicated {
		return 0, errors.New("BUG: Writer.Alloc on a replicated store (AllocLog)")
	}
	if n == 0 {
		return 0, nil
	}
	// Allocating may write the sequence lease.
	if err := w.db.enter(); err != nil {
		return 0, err
	}
	defer w.db.leave()
	first, err := w.db.seq.alloc(n)
	if err != nil {
		return 0, fmt.Errorf("cannot allocate sequences: %w", err)
	}
	w.first, w.n = first, n
	return first, nil
}

// AddEvent adds an event with an allocated sequence and its eventTime in
// Unix microseconds (floored). body is the stored JSON form; it is
// retained, unmodified, until Commit returns. An event
// with a client messageId is added with AddKeyedEvent instead.
func (w *Writer) AddEvent(app uint32, seq uint64, timeUs int64, body []byte) {
	w.events = append(w.events, pendingEvent{app: app, day: DayOf(timeUs), ev: blockEvent{seq: seq, time: timeUs, body: body}})
}

// AddKeyedEvent adds the event carrying keys[key] of CheckDuplicates, which
// must not have been reported a duplicate, and records its messageId in the
// dedup index in the same commit.
func (w *Writer) AddKeyedEvent(key int, seq uint64, timeUs int64, body []byte) {
	if w.dups == nil || w.dups[key] || w.keySeq[key] != 0 || seq == 0 {
		panic("BUG: AddKeyedEvent of a duplicate, unchecked or repeated key")
	}
	w.keySeq[key] = seq
	w.AddEvent(w.keys[key].App, seq, timeUs, body)
}

// AddRejected adds a quarantine entry (one JSON line, copied) under an
// allocated sequence.
func (w *Writer) AddRejected(app uint32, seq uint64, line []byte) {
	w.ensureBatch()
	w.keyBuf = appendQuarantineKey(w.keyBuf[:0], app, seq)
	w.valBuf = append(append(w.valBuf[:0], valueV1), line...)
	w.batch.Set(w.keyBuf, w.valBuf, nil)
}

// DeleteRejected removes app's quarantine entry seq in the same commit as
// whatever else is added: a replayed event is stored and leaves the
// quarantine atomically, so that a replay cut short by a crash and run
// again stores nothing twice.
func (w *Writer) DeleteRejected(app uint32, seq uint64) {
	w.ensureBatch()
	w.keyBuf = appendQuarantineKey(w.keyBuf[:0], app, seq)
	w.batch.Delete(w.keyBuf, nil)
	if !slices.Contains(w.unquarantined, app) {
		w.unquarantined = append(w.unquarantined, app)
	}
}

func (w *Writer) ensureBatch() {
	if w.batch == nil {
		w.batch = w.db.pdb.NewBatch()
	}
}

// Commit writes everything added in one atomic batch, durably when the
// store syncs. After Commit the Writer must still be closed.
func (w *Writer) Commit() error {
	if err := w.db.enter(); err != nil {
		return err
	}
	defer w.db.leave()
	if h := w.db.opts.CommitHook; h != nil {
		h()
	}
	if err := w.db.disk.err(); err != nil {
		return err
	}
	w.ensureBatch()
	w.appendBlocks()
	slice, dedupKeys, dedupRefs := w.dedupEntries()
	if w.logSeq == 0 && w.batch.Empty() {
		return nil
	}
	if err := w.db.commit(w.batch, w.logSeq, w.now, w.db.opts.Sync); err != nil {
		return fmt.Errorf("cannot commit batch: %w", err)
	}
	w.db.disk.wrote(w.batch.Len())
	if len(dedupKeys) > 0 {
		w.db.addPending(dedupKeys, dedupRefs)
	}
	w.addToFilters(slice)
	w.db.eventsStored.Add(int64(len(w.events)))
	w.db.overview.rate.countCommitted(w.now, w.events)
	if len(w.unquarantined) > 0 {
		w.db.forgetRejectedCounts(w.unquarantined)
	}
	w.finish()
	w.db.kickMerge()
	return nil
}

// appendBlocks adds the writer's events to its batch: per app one group,
// and in it one block per eventTime day.
func (w *Writer) appendBlocks() {
	if len(w.events) == 0 {
		return
	}
	if w.n == 0 {
		panic("BUG: events added without Alloc")
	}
	last := w.first + uint64(w.n) - 1
	// Group by app, then by day; each (app, day) becomes one block.
	slices.SortFunc(w.events, func(a, b pendingEvent) int {
		if c := cmp.Compare(a.app, b.app); c != 0 {
			return c
		}
		return cmp.Compare(a.day, b.day)
	})
	evs := slices.Grow(w.evs[:0], len(w.events))[:len(w.events)]
	w.evs = evs
	for i := range w.events {
		evs[i] = w.events[i].ev
	}
	for i := 0; i < len(w.events); {
		app := w.events[i].app
		g := groupValue{last: last}
		for i < len(w.events) && w.events[i].app == app {
			day := w.events[i].day
			j := i
			for j < len(w.events) && w.events[j].app == app && w.events[j].day == day {
				j++
			}
			block := evs[i:j]
			sortBlockEvents(block)
			w.keyBuf = appendBlockKey(w.keyBuf[:0], app, day, w.first)
			w.valBuf, w.scratch = appendBlockValue(w.valBuf[:0], w.scratch, block, false /* best */)
			w.batch.Set(w.keyBuf, w.valBuf, nil)
			g.count += j - i
			for _, e := range block {
				g.rawBytes += len(e.body)
			}
			g.days = append(g.days, day)
			i = j
		}
		w.keyBuf = appendGroupKey(w.keyBuf[:0], app, w.first)
		w.valBuf = appendGroupValue(w.valBuf[:0], &g)
		w.batch.Set(w.keyBuf, w.valBuf, nil)
	}
}

// dedupEntries returns the index entries of the keyed events, in the slice
// of the writer's time, and that slice. New keys of one app with one
// fingerprint (a collision, here or with an entry already in the slice)
// share one entry.
func (w *Writer) dedupEntries() (slice uint32, keys []entryKey, refs [][]dedupRef) {
	slice = w.db.dedup.sliceOf(w.now.Unix())
	if w.keys == nil {
		return slice, nil, nil
	}
	// One slab for every entry's refs: most hold one.
	slab := make([]dedupRef, 0, len(w.order)+len(w.prev))
	for j := 0; j < len(w.order); {
		k := j
		for k < len(w.order) && w.order[k].fp == w.order[j].fp {
			k++
		}
		// Usually k == j+1; a fingerprint shared by keys of several apps
		// is one entry per app.
		for a := j; a < k; a++ {
			app := w.keys[w.order[a].i].App
			first := true
			for b := j; b < a; b++ {
				first = first && w.keys[w.order[b].i].App != app
			}
			if !first {
				continue
			}
			start := len(slab)
			for b := a; b < k; b++ {
				q := w.order[b].i
				if w.keySeq[q] != 0 && w.keys[q].App == app {
					if len(slab) == start {
						slab = append(slab, w.prev[int(q)]...)
					}
					slab = append(slab, dedupRef{seq: w.keySeq[q]})
				}
			}
			if len(slab) > start {
				keys = append(keys, entryKey{slice: slice, app: app, fp: w.order[a].fp})
				refs = append(refs, slab[start:len(slab):len(slab)])
			}
		}
		j = k
	}
	return slice, keys, refs
}

// addToFilters records the committed keys in the dedup filters, before
// their reservations are released.
func (w *Writer) addToFilters(slice uint32) {
	if w.keys == nil {
		return
	}
	x := &w.db.dedup
	x.mu.Lock()
	for i, seq := range w.keySeq {
		if seq != 0 {
			x.addLocked(slice, w.fps[i])
		}
	}
	x.mu.Unlock()
}

func (w *Writer) finish() {
	if !w.finished {
		w.finished = true
		w.db.seq.finish(w.first, w.n)
	}
}

// abandon is finish for a Writer that did not commit: its sequences are
// left empty, or in a replicated store given back (replicated.go).
func (w *Writer) abandon() {
	if w.logSeq != 0 && !w.finished {
		w.finished = true
		w.db.endEntry(w.first, w.n, false)
		return
	}
	w.finish()
}

// Close releases the Writer's reservations and batch. A Writer that was not
// committed leaves its sequences empty. Closing twice is harmless.
func (w *Writer) Close() {
	if w.closed {
		return
	}
	w.closed = true
	w.abandon()
	if len(w.reserved) > 0 {
		w.db.release(w.reserved)
		close(w.done)
	}
	w.reserved = nil
	w.keys, w.dups, w.prev = nil, nil, nil
	if w.batch != nil {
		w.batch.Close()
		w.batch = nil
	}
	// Pool the buffers, unless they grew unusually large.
	b := w.writerBufs
	w.writerBufs = nil
	if cap(b.valBuf) > 8<<20 || cap(b.scratch) > 8<<20 || cap(b.events) > 64<<10 {
		return
	}
	clear(b.events) // drop references to the caller's bodies
	clear(b.evs)
	clear(b.refs)
	*b = writerBufs{
		fps:     b.fps[:0],
		order:   b.order[:0],
		cands:   b.cands[:0],
		keySeq:  b.keySeq[:0],
		refs:    b.refs[:0],
		events:  b.events[:0],
		evs:     b.evs[:0],
		keyBuf:  b.keyBuf[:0],
		valBuf:  b.valBuf[:0],
		scratch: b.scratch[:0],
	}
	writerBufsPool.Put(b)
}
