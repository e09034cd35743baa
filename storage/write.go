package storage

import (
	"bytes"
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
//	w.AddEvent(...); w.AddRejected(...)
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

	closed   bool
	reserved []string // in-flight dedup keys this writer holds
	*writerBufs
}

// writerBufs are a Writer's reusable buffers, pooled apart from the Writer
// so that a stray second Close cannot hand them to two users.
type writerBufs struct {
	dedup   []DedupKey
	events  []pendingEvent
	evs     []blockEvent
	keyBuf  []byte
	valBuf  []byte
	scratch []byte
}

var writerBufsPool sync.Pool

type pendingEvent struct {
	app uint32
	ev  blockEvent
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
// stored within the deduplication window, or appears earlier in keys. Keys
// that are not duplicates are reserved until this Writer is closed, so a
// concurrent Writer that sees the same key waits for this one to finish and
// then finds it stored. The MessageID slices are retained until Commit.
func (w *Writer) CheckDuplicates(keys []DedupKey) ([]bool, error) {
	if w.db.closed.Load() {
		return nil, ErrClosed
	}
	dup := make([]bool, len(keys))
	// Reserve in one global order, so that two writers never wait on each
	// other.
	order := make([]int, len(keys))
	ks := make([]string, len(keys))
	for i := range keys {
		order[i] = i
		ks[i] = string(appendDedupKey(nil, keys[i].App, keys[i].MessageID))
	}
	slices.SortStableFunc(order, func(a, b int) int { return bytes.Compare([]byte(ks[a]), []byte(ks[b])) })
	window := w.db.opts.DedupWindow
	for j, i := range order {
		k := ks[i]
		if j > 0 && ks[order[j-1]] == k {
			dup[i] = true
			continue
		}
		if err := w.reserve(k); err != nil {
			return nil, err
		}
		v, closer, err := w.db.pdb.Get([]byte(k))
		switch {
		case errors.Is(err, pebble.ErrNotFound):
		case err != nil:
			return nil, fmt.Errorf("cannot look up messageId: %w", err)
		default:
			at, derr := decodeDedupValue(v)
			closer.Close()
			if derr != nil {
				return nil, derr
			}
			if window <= 0 || w.now.Unix()-at < int64(window/time.Second) {
				dup[i] = true
				continue
			}
		}
		w.dedup = append(w.dedup, keys[i])
	}
	return dup, nil
}

// reserve takes the in-flight reservation of dedup key k, waiting for any
// other writer that holds it.
func (w *Writer) reserve(k string) error {
	in := &w.db.inflight
	for {
		in.Lock()
		if in.m == nil {
			in.m = map[string]chan struct{}{}
		}
		ch, busy := in.m[k]
		if !busy {
			in.m[k] = make(chan struct{})
			in.Unlock()
			w.reserved = append(w.reserved, k)
			return nil
		}
		in.Unlock()
		<-ch
		if w.db.closed.Load() {
			return ErrClosed
		}
	}
}

// Alloc reserves n consecutive ingest sequences for this write and returns
// the first. It may be called once per Writer.
func (w *Writer) Alloc(n int) (uint64, error) {
	if w.n != 0 {
		panic("BUG: Writer.Alloc called twice")
	}
	if n == 0 {
		return 0, nil
	}
	if w.db.closed.Load() {
		return 0, ErrClosed
	}
	first, err := w.db.seq.alloc(n)
	if err != nil {
		return 0, fmt.Errorf("cannot allocate sequences: %w", err)
	}
	w.first, w.n = first, n
	return first, nil
}

// AddEvent adds an event with an allocated sequence. body is the stored
// JSON form; it is retained, unmodified, until Commit returns.
func (w *Writer) AddEvent(app uint32, seq uint64, timeMs int64, body []byte) {
	w.events = append(w.events, pendingEvent{app: app, ev: blockEvent{seq: seq, time: timeMs, body: body}})
}

// AddRejected adds a quarantine entry (one JSON line, copied) under an
// allocated sequence.
func (w *Writer) AddRejected(app uint32, seq uint64, line []byte) {
	w.ensureBatch()
	w.keyBuf = appendQuarantineKey(w.keyBuf[:0], app, seq)
	w.valBuf = append(append(w.valBuf[:0], valueV1), line...)
	w.batch.Set(w.keyBuf, w.valBuf, nil)
}

func (w *Writer) ensureBatch() {
	if w.batch == nil {
		w.batch = w.db.pdb.NewBatch()
	}
}

// Commit writes everything added in one atomic batch, durably when the
// store syncs. After Commit the Writer must still be closed.
func (w *Writer) Commit() error {
	if w.db.closed.Load() {
		return ErrClosed
	}
	if err := w.db.disk.err(); err != nil {
		return err
	}
	w.ensureBatch()
	if len(w.events) > 0 {
		if w.n == 0 {
			panic("BUG: events added without Alloc")
		}
		last := w.first + uint64(w.n) - 1
		// Group by app, then by day; each (app, day) becomes one block.
		slices.SortFunc(w.events, func(a, b pendingEvent) int {
			if a.app != b.app {
				if a.app < b.app {
					return -1
				}
				return 1
			}
			da, db := DayOf(a.ev.time), DayOf(b.ev.time)
			if da != db {
				if da < db {
					return -1
				}
				return 1
			}
			return 0
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
				day := DayOf(w.events[i].ev.time)
				j := i
				for j < len(w.events) && w.events[j].app == app && DayOf(w.events[j].ev.time) == day {
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
	for _, k := range w.dedup {
		w.keyBuf = appendDedupKey(w.keyBuf[:0], k.App, k.MessageID)
		w.valBuf = appendDedupValue(w.valBuf[:0], w.now.Unix())
		w.batch.Set(w.keyBuf, w.valBuf, nil)
	}
	if w.batch.Empty() {
		return nil
	}
	opt := pebble.NoSync
	if w.db.opts.Sync {
		opt = pebble.Sync
	}
	if err := w.batch.Commit(opt); err != nil {
		return fmt.Errorf("cannot commit batch: %w", err)
	}
	w.db.disk.wrote(w.batch.Len())
	w.db.eventsStored.Add(int64(len(w.events)))
	w.db.overview.rate.countCommitted(w.now, w.events)
	w.finish()
	w.db.kickMerge()
	return nil
}

func (w *Writer) finish() {
	if !w.finished {
		w.finished = true
		w.db.seq.finish(w.first, w.n)
	}
}

// Close releases the Writer's reservations and batch. A Writer that was not
// committed leaves its sequences empty. Closing twice is harmless.
func (w *Writer) Close() {
	if w.closed {
		return
	}
	w.closed = true
	w.finish()
	if len(w.reserved) > 0 {
		in := &w.db.inflight
		in.Lock()
		for _, k := range w.reserved {
			close(in.m[k])
			delete(in.m, k)
		}
		in.Unlock()
		w.reserved = nil
	}
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
	clear(b.dedup)
	*b = writerBufs{
		dedup:   b.dedup[:0],
		events:  b.events[:0],
		evs:     b.evs[:0],
		keyBuf:  b.keyBuf[:0],
		valBuf:  b.valBuf[:0],
		scratch: b.scratch[:0],
	}
	writerBufsPool.Put(b)
}
