package storage

import (
	"bytes"
	"cmp"
	"container/heap"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
)

// Snapshot is a consistent, read-only view of the store, with the watermark
// taken just before it: every event with a sequence at or below Watermark
// is in the view, and events above it are left out, so that an export from
// the watermark on misses nothing and repeats nothing.
type Snapshot struct {
	db        *DB
	snap      *pebble.Snapshot
	watermark uint64
}

// NewSnapshot opens a Snapshot; the caller must Close it.
func (db *DB) NewSnapshot() (*Snapshot, error) {
	if err := db.enter(); err != nil {
		return nil, err
	}
	// Watermark first: everything at or below it has committed, so the
	// snapshot that follows contains it.
	wm, _ := db.seq.watermark()
	return &Snapshot{db: db, snap: db.pdb.NewSnapshot(), watermark: wm}, nil
}

// Watermark returns the highest sequence this view is complete up to.
func (s *Snapshot) Watermark() uint64 { return s.watermark }

// Close releases the view.
func (s *Snapshot) Close() error {
	err := s.snap.Close()
	s.db.leave()
	return err
}

// EventFunc receives one stored event. body is borrowed: it is valid only
// until the function returns. Returning an error stops the scan and is
// returned by it.
// timeUs is the event's eventTime in Unix microseconds (floored).
type EventFunc func(seq uint64, timeUs int64, body []byte) error

// Filter selects events by their top-level "event" and "userId" strings
// (compared unescaped) without decoding their JSON: in a columnar block,
// through its dictionaries, so that a block none of whose names or users
// match is skipped without reading its bodies. A nil or zero Filter keeps
// every event. An event without such a string member counts as having "".
type Filter struct {
	// Events keeps only the events whose name is in it; nil keeps all.
	Events map[string]bool
	// UserID keeps only the events of this user, when HasUserID is set.
	UserID    string
	HasUserID bool
	// Exclude leaves out the events of these users (deleted users) whose
	// sequence is at most the user's bound.
	Exclude map[string]uint64
}

func (f *Filter) all() bool {
	return f == nil || f.Events == nil && !f.HasUserID && len(f.Exclude) == 0
}

// wantUserID judges an unescaped userId by UserID alone.
func (f *Filter) wantUserID(u []byte) bool {
	return !f.HasUserID || string(u) == f.UserID
}

// excludes reports whether the event seq of the unescaped userId u is left
// out as a deleted user's.
func (f *Filter) excludes(u []byte, seq uint64) bool {
	bound, ok := f.Exclude[string(u)]
	return ok && seq <= bound
}

// keepHead judges event seq by the raw (still escaped) strings of its
// head; buf is scratch space for unescaping.
func (f *Filter) keepHead(event, userID []byte, seq uint64, buf *[]byte) bool {
	if f.Events != nil && !f.Events[string(unescaped(event, buf))] {
		return false
	}
	u := unescaped(userID, buf)
	return f.wantUserID(u) && !f.excludes(u, seq)
}

// judgeDict sets dst[i] to whether keep holds for dict[i], unescaped.
func (f *Filter) judgeDict(dst []bool, dict [][]byte, buf *[]byte, keep func([]byte) bool) []bool {
	dst = slices.Grow(dst[:0], len(dict))[:len(dict)]
	for i, s := range dict {
		dst[i] = keep(unescaped(s, buf))
	}
	return dst
}

// unescaped returns the JSON string contents s unescaped: s itself when it
// has no escape, else *buf, overwritten.
func unescaped(s []byte, buf *[]byte) []byte {
	if bytes.IndexByte(s, '\\') < 0 {
		return s
	}
	*buf = unescapeJSON((*buf)[:0], s)
	return *buf
}

// EventsBySeq calls fn for each of app's events with since < seq <= until,
// in ingest order. until is capped at the watermark.
func (s *Snapshot) EventsBySeq(app uint32, since, until uint64, fn EventFunc) error {
	return s.EventsBySeqWhere(app, since, until, nil, fn)
}

// EventsBySeqWhere is EventsBySeq for the events f keeps.
func (s *Snapshot) EventsBySeqWhere(app uint32, since, until uint64, f *Filter, fn EventFunc) error {
	until = min(until, s.watermark)
	if since >= until {
		return nil
	}
	it, err := s.snap.NewIter(&pebble.IterOptions{
		LowerBound: appendGroupKey(nil, app, 0),
		UpperBound: appUpperBound(nsGroup, app),
	})
	if err != nil {
		return err
	}
	defer it.Close()
	var g groupValue
	if err := seekGroup(it, app, since+1, &g); err != nil {
		return err
	}
	var blocks []*decodedBlock
	defer func() {
		for _, b := range blocks {
			putDecodedBlock(b)
		}
	}()
	type ref struct {
		seq   uint64
		block int32
		i     int32
	}
	var refs []ref
	var slots []uint64 // per seq of a dense group: 1<<63 | block<<32 | index
	floor := s.db.floor(app)
	for ; it.Valid(); it.Next() {
		if s.db.closed.Load() {
			return ErrClosed
		}
		_, first, err := decodeGroupKey(it.Key())
		if err != nil {
			return err
		}
		if first > until {
			break
		}
		if err := decodeGroupValue(it.Value(), &g); err != nil {
			return err
		}
		refs = refs[:0]
		for len(blocks) < len(g.days) {
			blocks = append(blocks, getDecodedBlock())
		}
		if err := s.getGroupBlocks(app, first, g.days, floor, blocks, f); err != nil {
			return err
		}
		for bi, day := range g.days {
			if day < floor {
				continue // removed by retention
			}
			b := blocks[bi]
			for i := range b.len() {
				if sq := b.seqs[i]; sq > since && sq <= until {
					refs = append(refs, ref{seq: sq, block: int32(bi), i: int32(i)})
				}
			}
		}
		if span := g.last - first + 1; g.last >= first && span <= 2*uint64(len(refs))+1024 {
			// Dense sequences (a single node's groups): each event goes
			// to its place, with no sort.
			slots = slices.Grow(slots[:0], int(span))[:span]
			clear(slots)
			for _, r := range refs {
				k := r.seq - first
				if k >= span || slots[k] != 0 {
					return fmt.Errorf("%w: group %d of app %d holds seq %d twice or outside it", errCorrupt, first, app, r.seq)
				}
				slots[k] = 1<<63 | uint64(r.block)<<32 | uint64(uint32(r.i))
			}
			for _, sl := range slots {
				if sl == 0 {
					continue
				}
				seq, t, body := blocks[int32(sl>>32)&0x7fffffff].event(int(uint32(sl)))
				if err := fn(seq, t, body); err != nil {
					return err
				}
			}
			continue
		}
		slices.SortFunc(refs, func(a, b ref) int { return cmp.Compare(a.seq, b.seq) })
		for _, r := range refs {
			seq, t, body := blocks[r.block].event(int(r.i))
			if err := fn(seq, t, body); err != nil {
				return err
			}
		}
	}
	return it.Error()
}

// seekGroup moves it, an iterator over app's group keys, to the group
// that may hold seq: the last one starting at or before it, unless that
// one ends before seq; g is scratch.
func seekGroup(it *pebble.Iterator, app uint32, seq uint64, g *groupValue) error {
	start := appendGroupKey(nil, app, seq)
	if !it.SeekLT(start) {
		it.SeekGE(start)
		return nil
	}
	if err := decodeGroupValue(it.Value(), g); err != nil {
		return err
	}
	if g.last < seq {
		it.Next()
	}
	return nil
}

// getGroupBlocks decodes into blocks[i] the events f keeps of the group's
// block of days[i], for each day at or after floor, with up to GOMAXPROCS
// goroutines: an ingest-order read needs every block of a group decoded
// before it can emit the first event, and decoding is most of its time
// (columnar blocks rebuild each body from its columns), so the blocks are
// decoded side by side. Memory is the same as one at a time: the group's
// blocks are all held either way.
func (s *Snapshot) getGroupBlocks(app uint32, first uint64, days []int32, floor int32, blocks []*decodedBlock, f *Filter) error {
	one := func(i int, key []byte) ([]byte, error) {
		if days[i] < floor {
			return key, nil // removed by retention
		}
		key = appendBlockKey(key[:0], app, days[i], first)
		return key, s.getBlock(key, blocks[i], f)
	}
	workers := min(runtime.GOMAXPROCS(0), len(days))
	if workers <= 1 {
		var key []byte
		for i := range days {
			var err error
			if key, err = one(i, key); err != nil {
				return err
			}
		}
		return nil
	}
	var next atomic.Int64
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			var key []byte
			for {
				i := int(next.Add(1) - 1)
				if i >= len(days) || errs[w] != nil {
					return
				}
				key, errs[w] = one(i, key)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// getBlock decodes the events of a block that f keeps into dst.
func (s *Snapshot) getBlock(key []byte, dst *decodedBlock, f *Filter) error {
	v, closer, err := s.snap.Get(key)
	if err != nil {
		if errors.Is(err, pebble.ErrNotFound) {
			return fmt.Errorf("%w: block %x listed by its group is missing", errCorrupt, key)
		}
		return err
	}
	defer closer.Close()
	return dst.decodeWhere(v, f)
}

// EventsByTime calls fn for each of app's events with fromUs <= eventTime <
// toUs (Unix µs), in eventTime order (ties in ingest order). Only the days in range
// are read. Within a day, the blocks of all groups are merged, a time window
// at a time, so that what is held decoded stays near Options.ReadBudget
// however large the day is.
func (s *Snapshot) EventsByTime(app uint32, fromUs, toUs int64, fn EventFunc) error {
	return s.EventsByTimeWhere(app, fromUs, toUs, nil, fn)
}

// EventsByTimeWhere is EventsByTime for the events f keeps.
func (s *Snapshot) EventsByTimeWhere(app uint32, fromUs, toUs int64, f *Filter, fn EventFunc) error {
	if fromUs >= toUs {
		return nil
	}
	lastDay := DayOf(toUs - 1)
	it, err := s.snap.NewIter(&pebble.IterOptions{
		LowerBound: appendBlockKey(nil, app, DayOf(fromUs), 0),
		UpperBound: appendBlockKey(nil, app, lastDay, ^uint64(0)),
	})
	if err != nil {
		return err
	}
	defer it.Close()
	m := dayMerge{f: f}
	defer m.release()
	it.First()
	for it.Valid() {
		if s.db.closed.Load() {
			return ErrClosed
		}
		_, day, _, err := decodeBlockKey(it.Key())
		if err != nil {
			return err
		}
		// The headers of this day's blocks in range, then the merge.
		m.reset(day)
		expired := day < s.db.floor(app)
		for ; it.Valid(); it.Next() {
			_, d, _, err := decodeBlockKey(it.Key())
			if err != nil {
				return err
			}
			if d != day {
				break
			}
			h, _, err := decodeBlockHeader(it.Value())
			if err != nil {
				return err
			}
			if expired || h.maxTime < fromUs || h.minTime >= toUs || h.minSeq > s.watermark {
				continue
			}
			m.add(it.Key(), h)
		}
		lo := max(fromUs, dayStart(day))
		hi := min(toUs, dayStart(day+1))
		if err := m.run(s, lo, hi, fn); err != nil {
			return err
		}
	}
	return it.Error()
}

// dayMerge merges the blocks of one day in eventTime order. The day is cut
// into windows whose estimated raw size (each block's bytes spread evenly
// over its time span) stays within the read budget; for each window, the
// blocks that lie inside it are decoded whole and the ones that straddle
// its edges contribute a copy of their events inside it. A block that
// spans several windows is decoded once per window: the price of bounded
// memory, paid only by days larger than the budget.
type dayMerge struct {
	day    int32
	keys   []byte // the blocks' keys, back to back
	blocks []dayBlock
	rate   []float64       // estimated raw bytes per bucket, as a difference array
	runs   []*decodedBlock // this window's; owned[:len(runs)]
	owned  []*decodedBlock // kept from window to window, so that their buffers are reused
	tmp    *decodedBlock
	f      *Filter
}

type dayBlock struct {
	keyEnd           int
	minTime, maxTime int64
	rawLen           int
}

// dayBuckets is how finely a day is cut to estimate where its bytes lie.
const dayBuckets = 1024

func (m *dayMerge) reset(day int32) {
	m.day = day
	m.keys = m.keys[:0]
	m.blocks = m.blocks[:0]
}

func (m *dayMerge) add(key []byte, h blockHeader) {
	m.keys = append(m.keys, key...)
	m.blocks = append(m.blocks, dayBlock{keyEnd: len(m.keys), minTime: h.minTime, maxTime: h.maxTime, rawLen: h.rawLen})
}

func (m *dayMerge) key(i int) []byte {
	start := 0
	if i > 0 {
		start = m.blocks[i-1].keyEnd
	}
	return m.keys[start:m.blocks[i].keyEnd]
}

func (m *dayMerge) bucket(t int64) int {
	// A bucket is dayUs/dayBuckets µs: the quotient first, so that the
	// product cannot overflow.
	b := int((t - dayStart(m.day)) / (dayUs / dayBuckets))
	return min(max(b, 0), dayBuckets-1)
}

// windows returns the ends of the windows that cut [lo, hi): each window
// starts where the previous one ended (the first at lo) and the last ends
// at hi.
func (m *dayMerge) windows(lo, hi int64, budget int) []int64 {
	total := 0
	for _, b := range m.blocks {
		total += b.rawLen
	}
	if total <= budget {
		return []int64{hi}
	}
	m.rate = slices.Grow(m.rate[:0], dayBuckets+1)[:dayBuckets+1]
	clear(m.rate)
	for _, b := range m.blocks {
		b0, b1 := m.bucket(b.minTime), m.bucket(b.maxTime)
		r := float64(b.rawLen) / float64(b1-b0+1)
		m.rate[b0] += r
		m.rate[b1+1] -= r
	}
	var ends []int64
	rate, acc := 0.0, 0.0
	first := dayStart(m.day)
	for b := range dayBuckets {
		rate += m.rate[b]
		start := first + int64(b)*dayUs/dayBuckets
		if start >= hi {
			break
		}
		if start > lo && acc > 0 && acc+rate > float64(budget) {
			ends = append(ends, start)
			acc = 0
		}
		acc += rate
	}
	return append(ends, hi)
}

func (m *dayMerge) run(s *Snapshot, lo, hi int64, fn EventFunc) error {
	if len(m.blocks) == 0 {
		return nil
	}
	for _, end := range m.windows(lo, hi, s.db.opts.ReadBudget) {
		if err := m.window(s, lo, end, fn); err != nil {
			return err
		}
		lo = end
	}
	return nil
}

// window emits the events in [lo, hi).
func (m *dayMerge) window(s *Snapshot, lo, hi int64, fn EventFunc) error {
	m.runs = m.runs[:0]
	for i, b := range m.blocks {
		if b.maxTime < lo || b.minTime >= hi {
			continue
		}
		if len(m.runs) == len(m.owned) {
			m.owned = append(m.owned, getDecodedBlock())
		}
		r := m.owned[len(m.runs)]
		m.runs = append(m.runs, r)
		if b.minTime >= lo && b.maxTime < hi {
			if err := s.getBlock(m.key(i), r, m.f); err != nil {
				return err
			}
			continue
		}
		if m.tmp == nil {
			m.tmp = getDecodedBlock()
		}
		if err := s.getBlock(m.key(i), m.tmp, m.f); err != nil {
			return err
		}
		r.copyRange(m.tmp, lo, hi)
	}
	return s.mergeBlocks(m.runs, lo, hi, fn)
}

func (m *dayMerge) release() {
	for _, r := range m.owned {
		putDecodedBlock(r)
	}
	m.owned, m.runs = nil, nil
	if m.tmp != nil {
		putDecodedBlock(m.tmp)
		m.tmp = nil
	}
}

// mergeBlocks emits the events of blocks, each sorted by (time, seq), in
// one merged order.
func (s *Snapshot) mergeBlocks(blocks []*decodedBlock, fromUs, toUs int64, fn EventFunc) error {
	h := make(blockHeap, 0, len(blocks))
	for _, b := range blocks {
		c := blockCursor{b: b}
		if c.advance(fromUs, s.watermark) {
			h = append(h, c)
		}
	}
	heap.Init(&h)
	for len(h) > 0 {
		c := &h[0]
		seq, t, body := c.b.event(c.i)
		if t >= toUs {
			heap.Pop(&h)
			continue
		}
		if err := fn(seq, t, body); err != nil {
			return err
		}
		c.i++
		if c.advance(fromUs, s.watermark) {
			heap.Fix(&h, 0)
		} else {
			heap.Pop(&h)
		}
	}
	return nil
}

type blockCursor struct {
	b *decodedBlock
	i int
}

// advance moves to the next event at or after fromUs and at or below the
// watermark, reporting whether there is one.
func (c *blockCursor) advance(fromUs int64, watermark uint64) bool {
	for ; c.i < c.b.len(); c.i++ {
		if c.b.times[c.i] >= fromUs && c.b.seqs[c.i] <= watermark {
			return true
		}
	}
	return false
}

type blockHeap []blockCursor

func (h blockHeap) Len() int { return len(h) }
func (h blockHeap) Less(i, j int) bool {
	a, b := &h[i], &h[j]
	ta, tb := a.b.times[a.i], b.b.times[b.i]
	if ta != tb {
		return ta < tb
	}
	return a.b.seqs[a.i] < b.b.seqs[b.i]
}
func (h blockHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *blockHeap) Push(x any)   { *h = append(*h, x.(blockCursor)) }
func (h *blockHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// RejectedFunc receives one quarantined event as a JSON line. line is
// borrowed: it is valid only until the function returns.
type RejectedFunc func(seq uint64, line []byte) error

// Rejected calls fn for each of app's quarantined events with seq > since,
// in ingest order, up to the watermark.
func (s *Snapshot) Rejected(app uint32, since uint64, fn RejectedFunc) error {
	return s.scanSeq(nsQuarantine, app, since, fn)
}

// scanSeq calls fn with the sequence and value (without its version byte,
// borrowed) of each of app's keys in ns, a namespace keyed by (app, seq),
// with since < seq <= watermark, in order.
func (s *Snapshot) scanSeq(ns Namespace, app uint32, since uint64, fn func(seq uint64, v []byte) error) error {
	if since >= s.watermark {
		return nil // also keeps since+1 below from wrapping around
	}
	it, err := s.snap.NewIter(&pebble.IterOptions{
		LowerBound: appendSeqKey(nil, ns, app, since+1),
		UpperBound: appUpperBound(ns, app),
	})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		if s.db.closed.Load() {
			return ErrClosed
		}
		k := it.Key()
		_, seq, err := decodeSeqKey(k, ns)
		if err != nil {
			return fmt.Errorf("%w: %v", errCorrupt, err)
		}
		if seq > s.watermark {
			break
		}
		v := it.Value()
		if len(v) < 1 || v[0] != valueV1 {
			return fmt.Errorf("%w: value of %x", errCorrupt, k)
		}
		if err := fn(seq, v[1:]); err != nil {
			return err
		}
	}
	return it.Error()
}
