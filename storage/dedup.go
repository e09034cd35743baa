package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/cockroachdb/pebble/v2"
	"github.com/goccy/go-json"
)

// Exact deduplication of client messageIds, bounded in memory and on disk.
//
// The index (namespace 0x22) records each stored client messageId by the
// time slice it was written in, the app, and a 48-bit fingerprint of the id
// (xxhash of the id, mixed with the app), with the ingest sequence of the
// event carrying it. Entries are grouped into buckets by the fingerprint's
// top 16 bits: one key per (slice, app, bucket), whose value is the
// bucket's entries back to back, 4 bytes of fingerprint and a sequence
// uvarint each (about 8 bytes per id, whatever the id's length), appended
// to with Pebble merges. One key per id, as the first sliced index had
// (0x21), cost 12.5-16.7 bytes per id on disk: Pebble's per-key overhead
// (an 8-byte trailer, lengths, restart points) was larger than the entry.
// A slice is a fixed span of server time (Options.DedupWindow / 4, at least
// an hour, chosen when the store is created and kept in meta). Everything
// older than the window is a key prefix range: one range deletion drops a
// whole slice.
//
// A lookup never trusts a fingerprint alone. Each live slice has an
// in-memory blocked Bloom filter of its fingerprints, so most new ids are
// decided without touching Pebble. The ids whose fingerprint a filter may
// hold are looked up in the index in one sorted pass of one iterator; for
// each entry found, the stored event it points to is read and its
// messageId and receivedAt compared. So a false match costs a read, never a
// lost event, and an id stored just outside the window is stored again.
//
// Concurrent writers reserve the fingerprints they check, in ascending
// order (so that no two writers wait on each other), until they have
// committed and added them to the filters: a writer that meets a reserved
// fingerprint waits for its holder and checks again.
//
// The filters' memory is bounded by Options.DedupFilterBytes: over it, the
// oldest slice's filter is dropped and its ids are looked up in Pebble,
// which is slower but as exact. The filters are rebuilt from the index at
// Open.

// Dedup tuning. bloomBitsPerKey and bloomK give a false-positive rate of
// about 0.15 % per filter segment (TestIDFilterFalsePositives); a slice's
// first segment takes a million ids (2 MiB), so that a slice rarely has more
// than a few segments to probe.
const (
	bloomBitsPerKey = 16
	bloomK          = 7
	bloomMinKeys    = 1 << 20
	bloomMaxKeys    = 16 << 20
	// minDedupSlice is the shortest slice: a shorter window still has
	// hour-long slices, so that a lookup probes few filters.
	minDedupSlice = time.Hour
)

// A value of the first sliced index (namespace 0x21, read only to convert
// it) has, unlike other values, no version byte, since one was written per
// event: it is the uvarint sequences of the stored events with that
// fingerprint (almost always one; a sequence is never 0), or dedupRefsMixed
// (0x00) followed by tagged refs.
const (
	dedupRefsMixed = 0x00
	refSeq         = 0
	refLegacy      = 1 // an entry converted from namespace 0x20: receivedAt, length, the id
)

const metaDedupSlice = "dedup_slice"

// fingerprint returns the 64-bit fingerprint of app's messageID. It is a
// variable so that tests can make every id collide.
var fingerprint = xxFingerprint

// Fingerprints are 48 bits: with 33 M ids inside the window (what 64 MiB
// of filters hold), a new id matches a stored fingerprint once in 8
// million, and a match costs one verification read; two bytes less per id
// on disk pay for that many times over.
const fpBits = 48

func xxFingerprint(app uint32, messageID []byte) uint64 {
	// The app is mixed in after hashing (murmur3's finaliser), which costs
	// less than hashing it with the id.
	h := xxhash.Sum64(messageID) ^ (uint64(app)+1)*0x9e3779b97f4a7c15
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	return (h ^ h>>33) >> (64 - fpBits)
}

// filterHash spreads a fingerprint's 48 bits over the 64 that a filter
// probe uses (splitmix64's finaliser).
func filterHash(fp uint64) uint64 {
	fp ^= fp >> 30
	fp *= 0xbf58476d1ce4e5b9
	fp ^= fp >> 27
	fp *= 0x94d049bb133111eb
	return fp ^ fp>>31
}

// idFilter is a blocked Bloom filter: a key sets bloomK bits in one 512-bit
// block, so a probe reads one cache line.
type idFilter struct {
	blocks   [][8]uint64
	n, limit int
}

func newIDFilter(keys int) *idFilter {
	nb := max(1, (keys*bloomBitsPerKey+511)/512)
	return &idFilter{blocks: make([][8]uint64, nb), limit: keys}
}

// block returns the block of h (a filterHash) and the bits to probe in it:
// the block comes from a remix of h and the bits from h itself, so that
// the two are independent.
func (f *idFilter) block(h uint64) *[8]uint64 {
	r := (h * 0x9e3779b97f4a7c15) >> 32
	return &f.blocks[(r*uint64(len(f.blocks)))>>32]
}

func (f *idFilter) add(fp uint64) {
	h := filterHash(fp)
	b := f.block(h)
	for j := range bloomK {
		bit := (h >> (9 * j)) & 511
		b[bit>>6] |= 1 << (bit & 63)
	}
	f.n++
}

func (f *idFilter) has(fp uint64) bool {
	h := filterHash(fp)
	b := f.block(h)
	for j := range bloomK {
		bit := (h >> (9 * j)) & 511
		if b[bit>>6]&(1<<(bit&63)) == 0 {
			return false
		}
	}
	return true
}

func (f *idFilter) bytes() int { return len(f.blocks) * 64 }

// sliceFilter is the filter of one slice: segments of growing size, since
// how many ids a slice will hold is not known in advance.
type sliceFilter struct {
	segs []*idFilter
	n    int
	// unfiltered marks a slice whose filter was dropped to stay within the
	// memory budget: every lookup consults Pebble.
	unfiltered bool
}

func (s *sliceFilter) has(fp uint64) bool {
	if s.unfiltered {
		return true
	}
	for _, b := range s.segs {
		if b.has(fp) {
			return true
		}
	}
	return false
}

// dedupIndex is the in-memory side of the index: slice arithmetic, the
// filters, and the reservations.
type dedupIndex struct {
	slice  int64 // slice length in seconds
	window time.Duration

	mu struct {
		sync.RWMutex
		filters map[uint32]*sliceFilter
		bytes   int // of all filters
	}
	budget int

	inflight [64]struct {
		sync.Mutex
		m map[uint64]chan struct{} // fingerprint -> closed when its holder finishes
	}

	// pending holds the entries not yet written to Pebble
	// (dedup_pending.go): cur takes new ones, frozen is being written.
	pending struct {
		sync.Mutex
		cur, frozen pendingSet
	}
	flushMu sync.Mutex // one flush at a time; guards indexed
	indexed uint64     // meta dedup_indexed as last written
}

// sliceOf returns the slice of a Unix time in seconds.
func (x *dedupIndex) sliceOf(unix int64) uint32 {
	return uint32(max(unix, 0) / x.slice)
}

// firstLive returns the oldest slice that may hold an id still inside the
// window at now.
func (x *dedupIndex) firstLive(now time.Time) uint32 {
	if x.window <= 0 {
		return 0
	}
	return x.sliceOf(now.Add(-x.window).Unix())
}

// inWindow reports whether an id stored at receivedUnix is still
// remembered at now.
func (x *dedupIndex) inWindow(now time.Time, receivedUnix int64) bool {
	return x.window <= 0 || now.Unix()-receivedUnix < int64(x.window/time.Second)
}

// addLocked records fp in slice's filter, growing or dropping filters to
// stay within the budget.
func (x *dedupIndex) addLocked(slice uint32, fp uint64) {
	f := x.mu.filters[slice]
	if f == nil {
		f = &sliceFilter{}
		x.mu.filters[slice] = f
	}
	if f.unfiltered {
		return
	}
	if len(f.segs) == 0 || f.segs[len(f.segs)-1].n >= f.segs[len(f.segs)-1].limit {
		// A new slice expects what the one before it got: in a steady
		// load it then fills one segment.
		want := 2 * f.n
		if prev := x.mu.filters[slice-1]; f.n == 0 && prev != nil {
			want = prev.n + prev.n/4
		}
		seg := newIDFilter(min(max(bloomMinKeys, want), bloomMaxKeys))
		for x.mu.bytes+seg.bytes() > x.budget {
			if !x.dropOldestLocked() {
				break
			}
		}
		if f.unfiltered {
			return // this very slice was the oldest
		}
		if x.mu.bytes+seg.bytes() > x.budget {
			f.unfiltered, f.segs = true, nil
			return
		}
		f.segs = append(f.segs, seg)
		x.mu.bytes += seg.bytes()
	}
	f.segs[len(f.segs)-1].add(fp)
	f.n++
}

// presizeLocked gives a slice about to receive n ids one segment for all of
// them and as many again (the current slice goes on growing).
func (x *dedupIndex) presizeLocked(slice uint32, n int) {
	if _, ok := x.mu.filters[slice]; ok {
		return
	}
	f := &sliceFilter{}
	x.mu.filters[slice] = f
	seg := newIDFilter(min(max(bloomMinKeys, 2*n), bloomMaxKeys))
	if x.mu.bytes+seg.bytes() > x.budget {
		return // addLocked decides what to drop
	}
	f.segs = append(f.segs, seg)
	x.mu.bytes += seg.bytes()
}

// dropOldestLocked drops the filter of the oldest filtered slice, reporting
// whether there was one.
func (x *dedupIndex) dropOldestLocked() bool {
	oldest, found := uint32(0), false
	for s, f := range x.mu.filters {
		if !f.unfiltered && len(f.segs) > 0 && (!found || s < oldest) {
			oldest, found = s, true
		}
	}
	if !found {
		return false
	}
	f := x.mu.filters[oldest]
	for _, b := range f.segs {
		x.mu.bytes -= b.bytes()
	}
	f.segs, f.unfiltered = nil, true
	return true
}

// expireLocked forgets the filters of slices before first.
func (x *dedupIndex) expireLocked(first uint32) {
	for s, f := range x.mu.filters {
		if s < first {
			for _, b := range f.segs {
				x.mu.bytes -= b.bytes()
			}
			delete(x.mu.filters, s)
		}
	}
}

// DedupStats describes the in-memory dedup filters.
type DedupStats struct {
	// IDs is how many fingerprints the live slices' filters hold, Bytes the
	// memory they take, Slices how many slices are live, Unfiltered how
	// many of them are looked up in Pebble for want of memory.
	IDs, Bytes, Slices, Unfiltered int
}

// DedupStats returns the state of the dedup filters.
func (db *DB) DedupStats() DedupStats {
	x := &db.dedup
	x.mu.RLock()
	defer x.mu.RUnlock()
	st := DedupStats{Bytes: x.mu.bytes, Slices: len(x.mu.filters)}
	for _, f := range x.mu.filters {
		st.IDs += f.n
		if f.unfiltered {
			st.Unfiltered++
		}
	}
	return st
}

// shardOf is the reservation shard of a fingerprint: its top bits, so that
// fingerprints in ascending order visit the shards in order.
func shardOf(fp uint64) int { return int(fp>>(fpBits-6)) & 63 }

// reserve takes the reservations of fps, distinct and ascending, for the
// writer whose done channel is done, waiting for any other holder; one
// lock per shard covers a run of them. It reports false, holding nothing,
// when the store closed while waiting.
func (db *DB) reserve(fps []uint64, done chan struct{}) bool {
	for i := 0; i < len(fps); {
		s := shardOf(fps[i])
		sh := &db.dedup.inflight[s]
		sh.Lock()
		if sh.m == nil {
			sh.m = map[uint64]chan struct{}{}
		}
		var wait chan struct{}
		for ; i < len(fps) && shardOf(fps[i]) == s; i++ {
			if ch, busy := sh.m[fps[i]]; busy {
				if ch == done {
					panic("BUG: a writer reserved one fingerprint twice")
				}
				wait = ch
				break
			}
			sh.m[fps[i]] = done
		}
		sh.Unlock()
		if wait != nil {
			<-wait // then fps[i] again
			if db.closed.Load() {
				db.release(fps[:i])
				return false
			}
		}
	}
	return true
}

// release drops the reservations of fps, ascending.
func (db *DB) release(fps []uint64) {
	for i := 0; i < len(fps); {
		sh := &db.dedup.inflight[shardOf(fps[i])]
		sh.Lock()
		for s := shardOf(fps[i]); i < len(fps) && shardOf(fps[i]) == s; i++ {
			delete(sh.m, fps[i])
		}
		sh.Unlock()
	}
}

// A dedup value lists refs to what carries its fingerprint: almost always
// one stored event's sequence.
type dedupRef struct {
	seq      uint64 // when legacy is false
	legacy   bool
	received int64  // legacy: when the id was stored (unix s)
	id       []byte // legacy: the messageId itself
}

func appendDedupRefs(dst []byte, refs []dedupRef) []byte {
	mixed := false
	for _, r := range refs {
		mixed = mixed || r.legacy
	}
	if !mixed {
		for _, r := range refs {
			dst = binary.AppendUvarint(dst, r.seq)
		}
		return dst
	}
	dst = append(dst, dedupRefsMixed)
	for _, r := range refs {
		if !r.legacy {
			dst = append(dst, refSeq)
			dst = binary.AppendUvarint(dst, r.seq)
			continue
		}
		dst = append(dst, refLegacy)
		dst = binary.AppendUvarint(dst, uint64(r.received))
		dst = binary.AppendUvarint(dst, uint64(len(r.id)))
		dst = append(dst, r.id...)
	}
	return dst
}

// decodeDedupRefs appends the refs of a dedup value to dst; legacy ids
// alias v.
func decodeDedupRefs(dst []dedupRef, v []byte) ([]dedupRef, error) {
	if len(v) < 1 {
		return dst, fmt.Errorf("%w: empty dedup value", errCorrupt)
	}
	r := byteReader{b: v}
	switch v[0] {
	default:
		for len(r.b) > 0 && r.err == nil {
			s := r.uvarint()
			if s == 0 {
				return dst, fmt.Errorf("%w: dedup value %x", errCorrupt, v)
			}
			dst = append(dst, dedupRef{seq: s})
		}
	case dedupRefsMixed:
		r.b = r.b[1:]
		if len(r.b) == 0 {
			return dst, fmt.Errorf("%w: dedup value %x", errCorrupt, v)
		}
		for len(r.b) > 0 && r.err == nil {
			tag := r.b[0]
			r.b = r.b[1:]
			switch tag {
			case refSeq:
				s := r.uvarint()
				if s == 0 {
					return dst, fmt.Errorf("%w: dedup value %x", errCorrupt, v)
				}
				dst = append(dst, dedupRef{seq: s})
			case refLegacy:
				at := r.uvarint()
				n := r.uvarint()
				if r.err != nil || n > uint64(len(r.b)) {
					return dst, fmt.Errorf("%w: dedup value %x", errCorrupt, v)
				}
				dst = append(dst, dedupRef{legacy: true, received: int64(at), id: r.b[:n]})
				r.b = r.b[n:]
			default:
				return dst, fmt.Errorf("%w: dedup ref tag %d", errCorrupt, tag)
			}
		}
	}
	if r.err != nil {
		return dst, fmt.Errorf("%w: dedup value %x", errCorrupt, v)
	}
	return dst, nil
}

// A bucket of the index (namespace 0x22) holds every ref to what carries a
// fingerprint with the bucket's top 16 bits, one entry per ref, back to
// back:
//
//	fp's low 32 bits (4B) | seq uvarint (never 0)
//	fp's low 32 bits (4B) | 0x00 | receivedAt uvarint | len uvarint | messageId    a legacy ref
//
// Writers append entries with Pebble merges (its default merger
// concatenates operands), never rewrite them: a ref that changes (a purge
// turning a seq ref into a legacy one) is a new entry beside the old one,
// and a fingerprint's refs are the set of its entries. Like the old 0x21
// values, a bucket has no version byte (it is thousands of operands, not one
// value); a new format would be a new namespace.
func appendDedupEntry(dst []byte, fp uint64, r dedupRef) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(fp))
	if !r.legacy {
		return binary.AppendUvarint(dst, r.seq)
	}
	dst = append(dst, 0)
	dst = binary.AppendUvarint(dst, uint64(r.received))
	dst = binary.AppendUvarint(dst, uint64(len(r.id)))
	return append(dst, r.id...)
}

// dedupEntries reads the entries of a bucket value; legacy ids alias it.
type dedupEntries struct{ r byteReader }

// next returns the next entry: the fingerprint's low 32 bits and its ref.
// ok is false at the end or on a corrupt entry (then err() says which).
func (e *dedupEntries) next() (low uint32, ref dedupRef, ok bool) {
	if len(e.r.b) == 0 || e.r.err != nil {
		return 0, ref, false
	}
	if len(e.r.b) < 5 {
		e.r.err = errCorrupt
		return 0, ref, false
	}
	low = binary.BigEndian.Uint32(e.r.b)
	e.r.b = e.r.b[4:]
	if e.r.b[0] != 0 {
		ref.seq = e.r.uvarint()
		return low, ref, e.r.err == nil
	}
	e.r.b = e.r.b[1:]
	at := e.r.uvarint()
	n := e.r.uvarint()
	if e.r.err != nil || n > uint64(len(e.r.b)) {
		e.r.err = errCorrupt
		return 0, ref, false
	}
	ref = dedupRef{legacy: true, received: int64(at), id: e.r.b[:n]}
	e.r.b = e.r.b[n:]
	return low, ref, true
}

func (e *dedupEntries) err() error {
	if e.r.err != nil {
		return fmt.Errorf("%w: dedup index entry", errCorrupt)
	}
	return nil
}

// appendBucketRefs appends to dst the refs of fingerprint fp in bucket value
// v; legacy ids alias v.
func appendBucketRefs(dst []dedupRef, v []byte, fp uint64) ([]dedupRef, error) {
	e := dedupEntries{r: byteReader{b: v}}
	for {
		low, r, ok := e.next()
		if !ok {
			return dst, e.err()
		}
		if low == uint32(fp) {
			dst = append(dst, r)
		}
	}
}

// dedupCandidate is an id whose fingerprint a filter may hold in slice.
type dedupCandidate struct {
	key   int // index into the checked keys
	slice uint32
	fp    uint64
}

// storedHead is what verification reads of a stored event.
type storedHead struct {
	messageID  string
	receivedAt int64 // unix s
}

// lookupCandidates looks the candidates up in the index, in key order with
// one iterator, and reports for each checked key whether it is a
// duplicate. prev receives, for keys whose fingerprint already has an
// entry in slice cur, that entry's refs (so that the new entry keeps them).
//
// One function because its three steps share one iterator and one pass in
// key order: the pending set, the index entries, then the reads of the
// stored events that verify a fingerprint match.
func (db *DB) lookupCandidates(now time.Time, keys []DedupKey, cands []dedupCandidate, cur uint32, dup []bool, prev map[int][]dedupRef) error {
	x := &db.dedup
	slices.SortFunc(cands, func(a, b dedupCandidate) int {
		if a.slice != b.slice {
			return cmpU32(a.slice, b.slice)
		}
		if ka, kb := keys[a.key].App, keys[b.key].App; ka != kb {
			return cmpU32(ka, kb)
		}
		if a.fp != b.fp {
			if a.fp < b.fp {
				return -1
			}
			return 1
		}
		return a.key - b.key
	})
	// The pending set first, then an iterator opened after: an entry the
	// flusher moves meanwhile is seen in one or the other.
	inPending := make([][]dedupRef, len(cands))
	found := make([]bool, len(cands))
	x.pending.Lock()
	for j, c := range cands {
		inPending[j], found[j] = x.pendingRefsLocked(entryKey{c.slice, keys[c.key].App, c.fp})
	}
	x.pending.Unlock()
	it, err := db.pdb.NewIter(&pebble.IterOptions{
		LowerBound: sliceStart(nsDedupIndex, cands[0].slice),
		// Just past the last candidate's bucket.
		UpperBound: append(appendDedupBucketKey(nil, cands[len(cands)-1].slice, keys[cands[len(cands)-1].key].App, cands[len(cands)-1].fp), 0),
	})
	if err != nil {
		return err
	}
	defer it.Close()
	// Verification reads events by sequence, per app, in one pass.
	type pending struct {
		key int
		ref dedupRef
	}
	var toVerify []pending
	// Candidates come in key order, so those of one bucket are neighbours:
	// the bucket read for the first serves the rest. bucket is the
	// iterator's value, valid until it moves, which is only to the next
	// bucket.
	var key, next, bucket []byte
	var refs []dedupRef
	for j, c := range cands {
		if dup[c.key] {
			continue
		}
		k := &keys[c.key]
		if found[j] {
			refs = append(refs[:0], inPending[j]...)
		} else {
			if next = appendDedupBucketKey(next[:0], c.slice, k.App, c.fp); !bytes.Equal(next, key) {
				key, next, bucket = next, key, nil
				if it.SeekGE(key) && bytes.Equal(it.Key(), key) {
					bucket = it.Value()
				} else if it.Error() != nil {
					return it.Error()
				}
			}
			refs, err = appendBucketRefs(refs[:0], bucket, c.fp)
			if err != nil {
				return err
			}
			if len(refs) == 0 {
				continue
			}
		}
		if c.slice == cur {
			p := make([]dedupRef, len(refs))
			for i, r := range refs {
				p[i] = r
				p[i].id = bytes.Clone(r.id)
			}
			prev[c.key] = p
		}
		for _, r := range refs {
			if r.legacy {
				if bytes.Equal(r.id, k.MessageID) && x.inWindow(now, r.received) {
					dup[c.key] = true
				}
				continue
			}
			toVerify = append(toVerify, pending{key: c.key, ref: r})
		}
	}
	if len(toVerify) == 0 {
		return it.Error()
	}
	// Read the stored events the refs point to, app by app, in sequence
	// order.
	slices.SortFunc(toVerify, func(a, b pending) int {
		if ka, kb := keys[a.key].App, keys[b.key].App; ka != kb {
			return cmpU32(ka, kb)
		}
		if a.ref.seq != b.ref.seq {
			if a.ref.seq < b.ref.seq {
				return -1
			}
			return 1
		}
		return 0
	})
	r := newSeqReader(db)
	defer r.close()
	for _, p := range toVerify {
		if dup[p.key] {
			continue
		}
		k := &keys[p.key]
		h, ok, err := r.head(k.App, p.ref.seq)
		if err != nil {
			return err
		}
		// An event that is gone (its user deleted and purged) no longer
		// holds its id.
		if ok && h.messageID == string(k.MessageID) && x.inWindow(now, h.receivedAt) {
			dup[p.key] = true
		}
	}
	return nil
}

func cmpU32(a, b uint32) int {
	if a < b {
		return -1
	}
	if a > b {
		return 1
	}
	return 0
}

// seqReader reads stored events by (app, seq), keeping the last group it
// read decoded, so that a run of sequences of one group costs one read.
type seqReader struct {
	db     *DB
	app    uint32
	first  uint64
	last   uint64
	valid  bool
	blocks []*decodedBlock
	index  map[uint64]eventRef // seq -> where in blocks
}

type eventRef struct{ block, i int32 }

func newSeqReader(db *DB) *seqReader { return &seqReader{db: db} }

func (r *seqReader) close() {
	for _, b := range r.blocks {
		putDecodedBlock(b)
	}
	r.blocks = nil
}

// head returns the messageId and receivedAt of app's event seq, or false
// when no such event is stored.
func (r *seqReader) head(app uint32, seq uint64) (storedHead, bool, error) {
	if !r.valid || r.app != app || seq < r.first || seq > r.last {
		if err := r.load(app, seq); err != nil {
			return storedHead{}, false, err
		}
	}
	if !r.valid {
		return storedHead{}, false, nil
	}
	at, ok := r.index[seq]
	if !ok {
		return storedHead{}, false, nil
	}
	h := r.blocks[at.block].head(int(at.i))
	return headOf(h.messageID, h.receivedAt)
}

// headOf makes a storedHead of the raw (still escaped) string values of a
// stored event's messageId and receivedAt, reporting false when either is
// missing or not what ingest writes.
func headOf(messageID, receivedAt []byte) (storedHead, bool, error) {
	if messageID == nil || receivedAt == nil {
		return storedHead{}, false, nil
	}
	id := string(messageID)
	if bytes.IndexByte(messageID, '\\') >= 0 {
		if err := json.Unmarshal(append(append([]byte{'"'}, messageID...), '"'), &id); err != nil {
			return storedHead{}, false, fmt.Errorf("%w: stored messageId: %v", errCorrupt, err)
		}
	}
	t, err := time.Parse(time.RFC3339Nano, string(receivedAt))
	if err != nil || id == "" {
		return storedHead{}, false, nil
	}
	return storedHead{messageID: id, receivedAt: t.Unix()}, true, nil
}

// load decodes the group that holds app's seq, if any.
func (r *seqReader) load(app uint32, seq uint64) error {
	r.valid, r.app = false, app
	for _, b := range r.blocks {
		putDecodedBlock(b)
	}
	r.blocks = r.blocks[:0]
	it, err := r.db.pdb.NewIter(&pebble.IterOptions{
		LowerBound: appendGroupKey(nil, app, 0),
		UpperBound: appendGroupKey(nil, app, seq+1),
	})
	if err != nil {
		return err
	}
	defer it.Close()
	if !it.Last() {
		return it.Error()
	}
	_, first, err := decodeGroupKey(it.Key())
	if err != nil {
		return err
	}
	var g groupValue
	if err := decodeGroupValue(it.Value(), &g); err != nil {
		return err
	}
	if g.last < seq {
		return nil
	}
	floor := r.db.floor(app)
	for _, day := range g.days {
		if day < floor {
			continue
		}
		v, closer, err := r.db.pdb.Get(appendBlockKey(nil, app, day, first))
		if errors.Is(err, pebble.ErrNotFound) {
			continue // a block being purged or expired
		}
		if err != nil {
			return err
		}
		d := getDecodedBlock()
		err = d.decodeHead(v) // the head columns only, for a version-2 block
		closer.Close()
		if err != nil {
			putDecodedBlock(d)
			return err
		}
		r.blocks = append(r.blocks, d)
	}
	clear(r.index)
	if r.index == nil {
		r.index = map[uint64]eventRef{}
	}
	for bi, d := range r.blocks {
		for i := range d.len() {
			r.index[d.seqs[i]] = eventRef{block: int32(bi), i: int32(i)}
		}
	}
	r.first, r.last, r.valid = first, g.last, true
	return nil
}

// parseStoredHead reads the messageId and receivedAt of a stored event,
// reporting false for a body that lacks them.
func parseStoredHead(body []byte) (storedHead, bool, error) {
	var head struct {
		MessageID  string `json:"messageId"`
		ReceivedAt string `json:"receivedAt"`
	}
	if err := json.Unmarshal(body, &head); err != nil {
		return storedHead{}, false, fmt.Errorf("%w: stored event: %v", errCorrupt, err)
	}
	t, err := time.Parse(time.RFC3339Nano, head.ReceivedAt)
	if err != nil || head.MessageID == "" {
		return storedHead{}, false, nil // not an event the Events API stored
	}
	return storedHead{messageID: head.MessageID, receivedAt: t.Unix()}, true, nil
}

// openDedup reads (or, for a new store, chooses) the slice length, converts
// the old dedup and idempotency namespaces, drops what is past the window
// and loads the filters.
func (db *DB) openDedup(now time.Time) error {
	x := &db.dedup
	x.window = db.opts.DedupWindow
	x.budget = db.opts.DedupFilterBytes
	if x.budget <= 0 {
		x.budget = 64 << 20
	}
	x.mu.filters = map[uint32]*sliceFilter{}
	v, err := db.GetMeta(metaDedupSlice)
	if err != nil {
		return err
	}
	if v != nil {
		s, n := binary.Uvarint(v)
		if n <= 0 || s == 0 {
			return fmt.Errorf("%w: meta %q", errCorrupt, metaDedupSlice)
		}
		x.slice = int64(s)
	} else {
		// A quarter of the window: at most five slices are live, and a
		// slice's ids are dropped at most a quarter window late.
		s := (x.window / 4).Truncate(time.Hour)
		if x.window <= 0 {
			s = 30 * 24 * time.Hour
		}
		s = max(s, minDedupSlice)
		x.slice = int64(s / time.Second)
		if err := db.SetMeta(metaDedupSlice, binary.AppendUvarint(nil, uint64(x.slice))); err != nil {
			return err
		}
	}
	if err := db.convertSliceDedup(); err != nil {
		return err
	}
	if err := db.convertOldDedup(now); err != nil {
		return err
	}
	if err := db.convertOldIdempotency(now); err != nil {
		return err
	}
	if err := db.recoverDedup(now); err != nil {
		return err
	}
	if _, err := db.ExpireDedup(now); err != nil {
		return err
	}
	return db.loadDedupFilters(now)
}

// loadDedupFilters builds the filters of the live slices from the index.
func (db *DB) loadDedupFilters(now time.Time) error {
	x := &db.dedup
	t := time.Now()
	it, err := db.pdb.NewIter(&pebble.IterOptions{
		LowerBound: sliceStart(nsDedupIndex, x.firstLive(now)),
		UpperBound: []byte{byte(nsDedupIndex) + 1},
	})
	if err != nil {
		return err
	}
	defer it.Close()
	x.mu.Lock()
	defer x.mu.Unlock()
	// each calls fn for every entry of the live slices.
	each := func(fn func(slice uint32, fp uint64)) error {
		for it.First(); it.Valid(); it.Next() {
			slice, _, hi, err := decodeDedupBucketKey(it.Key())
			if err != nil {
				return err
			}
			v, err := it.ValueAndErr()
			if err != nil {
				return err
			}
			e := dedupEntries{r: byteReader{b: v}}
			for low, _, ok := e.next(); ok; low, _, ok = e.next() {
				fn(slice, hi|uint64(low))
			}
			if err := e.err(); err != nil {
				return err
			}
		}
		return it.Error()
	}
	// Count first, so that each slice gets one segment of the right size.
	counts := map[uint32]int{}
	if err := each(func(slice uint32, _ uint64) { counts[slice]++ }); err != nil {
		return err
	}
	for slice, n := range counts {
		x.presizeLocked(slice, n)
	}
	n := 0
	err = each(func(slice uint32, fp uint64) {
		x.addLocked(slice, fp)
		n++
		if n%(1<<20) == 0 {
			db.log.Info("loading the dedup filters", "ids", n)
		}
	})
	if err != nil {
		return err
	}
	if n > 0 {
		db.log.Info("loaded the dedup filters", "ids", n, "bytes", x.mu.bytes, "took", time.Since(t).Round(time.Millisecond).String())
	}
	return nil
}

// DedupExpired is what one ExpireDedup removed.
type DedupExpired struct {
	// Slices is how many expired slices were dropped.
	Slices int
}

// ExpireDedup drops the dedup and idempotency entries of slices that lie
// wholly before the window at now, with one range deletion per namespace,
// and compacts the range so that the space is freed.
func (db *DB) ExpireDedup(now time.Time) (DedupExpired, error) {
	var res DedupExpired
	x := &db.dedup
	if x.window <= 0 {
		return res, nil
	}
	// Pending entries of expired slices go with the rest, not after.
	if err := db.flushDedup(); err != nil {
		return res, err
	}
	first := x.firstLive(now)
	x.mu.Lock()
	for s := range x.mu.filters {
		if s < first {
			res.Slices++
		}
	}
	x.expireLocked(first)
	x.mu.Unlock()
	for _, ns := range []Namespace{nsDedupIndex, nsIdemSlice} {
		start, end := []byte{byte(ns)}, sliceStart(ns, first)
		it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: start, UpperBound: end})
		if err != nil {
			return res, err
		}
		any := it.First()
		if err := it.Close(); err != nil {
			return res, err
		}
		if !any {
			continue
		}
		if err := db.pdb.DeleteRange(start, end, pebble.Sync); err != nil {
			return res, fmt.Errorf("cannot drop expired dedup slices: %w", err)
		}
		if err := db.pdb.Compact(db.mergeCtx, start, end, false /* parallelize */); err != nil && !db.closed.Load() {
			return res, fmt.Errorf("cannot compact expired dedup slices: %w", err)
		}
	}
	return res, nil
}

// dedupLoop drops expired slices every tenth of a slice.
func (db *DB) dedupLoop() {
	defer close(db.dedupDone)
	if db.dedup.window <= 0 {
		<-db.mergeStop
		return
	}
	t := time.NewTicker(time.Duration(db.dedup.slice) * time.Second / 10)
	defer t.Stop()
	for {
		select {
		case <-db.mergeStop:
			return
		case <-t.C:
			if db.disk.err() != nil {
				continue
			}
			if _, err := db.ExpireDedup(db.now()); err != nil && !db.closed.Load() {
				db.log.Error("dropping expired dedup entries failed", "err", err)
			}
		}
	}
}

// convertOldDedup moves the entries of the old dedup namespace (0x20,
// app|messageId -> receivedAt) that are still inside the window into the
// sliced index, as legacy refs that keep the id itself, and deletes the old
// namespace. Each chunk's inserts and its deletion are one batch, so a crash
// leaves a partly converted store that the next Open finishes.
func (db *DB) convertOldDedup(now time.Time) error {
	return db.convertOld(nsDedup, "dedup index", func(b *pebble.Batch, k, v []byte) error {
		app, id, err := decodeDedupKey(k)
		if err != nil {
			return err
		}
		at, err := decodeDedupValue(v)
		if err != nil {
			return err
		}
		if !db.dedup.inWindow(now, at) {
			return nil
		}
		fp := fingerprint(app, id)
		return b.Merge(appendDedupBucketKey(nil, db.dedup.sliceOf(at), app, fp),
			appendDedupEntry(nil, fp, dedupRef{legacy: true, received: at, id: id}), nil)
	})
}

// convertSliceDedup moves the entries of the first sliced index (0x21, one
// key per fingerprint, 2026-12) into its buckets (0x22), in chunks like
// convertOldDedup. Entries of expired slices go too: ExpireDedup drops them
// right after.
func (db *DB) convertSliceDedup() error {
	var refs []dedupRef
	var val []byte
	return db.convertOld(nsDedupSlice, "dedup index of 2026-12", func(b *pebble.Batch, k, v []byte) error {
		slice, app, fp, err := decodeDedupSliceKey(k)
		if err != nil {
			return err
		}
		if refs, err = decodeDedupRefs(refs[:0], v); err != nil {
			return err
		}
		val = val[:0]
		for _, r := range refs {
			val = appendDedupEntry(val, fp, r)
		}
		return b.Merge(appendDedupBucketKey(nil, slice, app, fp), val, nil)
	})
}

// convertOldIdempotency moves the old idempotency namespace (0x43) into
// its sliced one (0x46); the value format is unchanged.
func (db *DB) convertOldIdempotency(now time.Time) error {
	return db.convertOld(nsIdempotent, "idempotency keys", func(b *pebble.Batch, k, v []byte) error {
		app, key, err := decodeIdempotencyKey(k)
		if err != nil {
			return err
		}
		if len(v) < 2 || v[0] != valueV1 {
			return fmt.Errorf("%w: idempotency value", errCorrupt)
		}
		at, n := binary.Uvarint(v[1:])
		if n <= 0 {
			return fmt.Errorf("%w: idempotency value", errCorrupt)
		}
		if !db.dedup.inWindow(now, int64(at)) {
			return nil
		}
		return b.Set(appendIdemSliceKey(nil, db.dedup.sliceOf(int64(at)), app, key), v, nil)
	})
}

// convertOld calls fn for every entry of ns, in chunks, each chunk one
// batch that also deletes the chunk's old keys.
func (db *DB) convertOld(ns Namespace, what string, fn func(b *pebble.Batch, k, v []byte) error) error {
	total := 0
	for {
		it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: []byte{byte(ns)}, UpperBound: []byte{byte(ns) + 1}})
		if err != nil {
			return err
		}
		b := db.pdb.NewIndexedBatch()
		n := 0
		var last []byte
		for it.First(); it.Valid() && n < 50_000; it.Next() {
			if err := fn(b, it.Key(), it.Value()); err != nil {
				it.Close()
				b.Close()
				return fmt.Errorf("cannot convert the old %s: %w", what, err)
			}
			last = append(last[:0], it.Key()...)
			n++
		}
		if err := it.Close(); err != nil {
			b.Close()
			return err
		}
		if n == 0 {
			b.Close()
			if total > 0 {
				db.log.Info("converted the old "+what, "entries", total)
			}
			return nil
		}
		b.DeleteRange([]byte{byte(ns)}, append(last, 0), nil)
		if err := b.Commit(pebble.Sync); err != nil {
			b.Close()
			return fmt.Errorf("cannot convert the old %s: %w", what, err)
		}
		b.Close()
		total += n
		db.log.Info("converting the old "+what, "entries", total)
	}
}

// keepPurgedID turns the dedup ref to app's event seq, whose body is being
// purged (its user deleted), into a legacy ref that holds the messageId
// itself: the id stays a duplicate for the rest of the window, so that an
// SDK's late retry cannot bring a deleted user's event back, and the ref
// no longer points at an event that is gone. b must be an indexed batch, and
// the pending entries flushed (PurgeForgotten does both).
func (db *DB) keepPurgedID(b *pebble.Batch, app uint32, seq uint64, body []byte) error {
	h, ok, err := parseStoredHead(body)
	if err != nil || !ok {
		return err
	}
	slice, fp := db.dedup.sliceOf(h.receivedAt), fingerprint(app, []byte(h.messageID))
	refs, err := getDedupRefs(b, slice, app, fp)
	if err != nil {
		return err
	}
	for _, r := range refs {
		if r.legacy && string(r.id) == h.messageID {
			return nil // kept already (a purge that ran before, cut short)
		}
	}
	for _, r := range refs {
		if !r.legacy && r.seq == seq {
			// The seq ref stays beside it, pointing at nothing: entries
			// are never rewritten, and verification finds the event gone.
			return b.Merge(appendDedupBucketKey(nil, slice, app, fp),
				appendDedupEntry(nil, fp, dedupRef{legacy: true, received: h.receivedAt, id: []byte(h.messageID)}), nil)
		}
	}
	return nil // none: a generated id, or one past the window
}

// getDedupRefs returns a copy of the refs of fingerprint fp of app in slice
// as indexed batch b sees them.
func getDedupRefs(b *pebble.Batch, slice, app uint32, fp uint64) ([]dedupRef, error) {
	v, closer, err := b.Get(appendDedupBucketKey(nil, slice, app, fp))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	refs, err := appendBucketRefs(nil, v, fp)
	if err != nil {
		return nil, err
	}
	for i := range refs {
		refs[i].id = bytes.Clone(refs[i].id)
	}
	return refs, nil
}
