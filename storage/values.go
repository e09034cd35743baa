package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// Every value starts with a format-version byte. The layouts below are part
// of the on-disk format: to change one, add a version and keep reading the
// old one (see doc.go).
const valueV1 = 1

// Block values have versions of their own (see doc.go): 1 and 2 hold
// eventTimes in Unix milliseconds, 3 and 4 the same layouts in Unix
// microseconds. Only 3 and 4 are written; 1 and 2 are read as ms × 1000.
const (
	valueV3 = 3 // version 1's layout, times in µs
	valueV4 = 4 // version 2's columnar layout (colblock.go), times in µs
)

// smallBlock is the raw size under which a fresh block is stored
// uncompressed.
const smallBlock = 512

// Block codecs. Fresh blocks, written while a client waits for its 202, use
// S2 (several hundred MB/s per core); the merger rewrites them with zstd's
// best level, which is ten times slower and a third smaller.
const (
	codecNone = 0
	codecZstd = 1
	codecS2   = 2
)

// A block value (namespace 0x10) holds the events of one app, one eventTime
// day and one group, sorted by (eventTime, seq). The row layout, versions 3
// (times in µs) and 1 (in ms, read only):
//
//	+-----+-------+---------+---------+---------+--------+--------+--------+---------+
//	| ver | codec | count   | minTime | maxTime | minSeq | maxSeq | rawLen | payload |
//	| 1B  | 1B    | uvarint | varint  | varint  | uvarint| uvarint| uvarint| ...     |
//	+-----+-------+---------+---------+---------+--------+--------+--------+---------+
//
// The payload (raw when codec is 0, zstd when 1, S2 when 2; rawLen bytes
// once decompressed) is column-major, which compresses better than rows:
//
//	seq - minSeq    count × uvarint
//	time deltas     count × uvarint (first from minTime, then from the previous event)
//	body lengths    count × uvarint
//	bodies          the stored JSON of each event, concatenated
//
// Times are eventTime as Unix microseconds (version 3), floored: digits
// below the microsecond are not kept, and the body keeps the exact text.
// Version 1's are Unix milliseconds. Bodies are the exact bytes the export
// writes, so exports copy and never re-encode.
type blockHeader struct {
	count int
	// minTime and maxTime are in µs whatever the version: decodeBlockHeader
	// scales a millisecond block's.
	minTime, maxTime int64
	minSeq, maxSeq   uint64
	rawLen           int
	codec            byte
	ver              byte // as stored: valueV1 … valueV4
	// unit is how many µs one stored time unit is: 1000 for versions 1
	// and 2, 1 for 3 and 4.
	unit int64
	// Version 2 only (colblock.go): section 1's stored size, and both
	// sections' sizes once decompressed.
	s1Len, s1Raw, s2Raw int
}

// blockEvent is one event being written into a block. body is owned by the
// writer of the block.
type blockEvent struct {
	seq  uint64
	time int64 // eventTime in Unix µs
	body []byte
}

// columnar reports whether a block of this header is in the columnar
// layout (colblock.go).
func (h *blockHeader) columnar() bool { return h.ver == valueV2 || h.ver == valueV4 }

func sortBlockEvents(evs []blockEvent) {
	slices.SortFunc(evs, func(a, b blockEvent) int {
		if a.time != b.time {
			if a.time < b.time {
				return -1
			}
			return 1
		}
		if a.seq < b.seq {
			return -1
		}
		if a.seq > b.seq {
			return 1
		}
		return 0
	})
}

var zdec *zstd.Decoder

// bestEncoders are the idle zstd encoders at the best level, for the
// merger's blocks of either kind. Each holds ~34 MB once used; kept for
// good, that left exports (which hold a decoded group) so little room
// under the memory limit that the collector ran every few milliseconds.
// The merger lets them go (releaseBestEncoders) after a pass with nothing
// to merge.
var bestEncoders struct {
	sync.Mutex
	idle []*zstd.Encoder
}

// encodeBest appends src compressed at zstd's best level to dst.
func encodeBest(src, dst []byte) []byte {
	x := &bestEncoders
	x.Lock()
	var e *zstd.Encoder
	if n := len(x.idle); n > 0 {
		e, x.idle = x.idle[n-1], x.idle[:n-1]
	}
	x.Unlock()
	if e == nil {
		// A 2 MiB window and lower-memory mode save 16 MB of the
		// encoder's 51 MB and compress our blocks to the same bytes.
		var err error
		e, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithEncoderCRC(false), zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(2<<20), zstd.WithLowerEncoderMem(true))
		if err != nil {
			panic("BUG: " + err.Error())
		}
	}
	dst = e.EncodeAll(src, dst)
	x.Lock()
	x.idle = append(x.idle, e)
	x.Unlock()
	return dst
}

// releaseBestEncoders drops the idle best-level encoders.
func releaseBestEncoders() {
	x := &bestEncoders
	x.Lock()
	x.idle = nil
	x.Unlock()
}

func init() {
	var err error
	zdec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(1<<30))
	if err != nil {
		panic("BUG: " + err.Error())
	}
}

// appendBlockValue encodes evs, which must be sorted by sortBlockEvents,
// into dst: a row block (version 3) compressed with S2 (or not at all) when
// best is false, a columnar block (version 4, colblock.go) when it is true.
// scratch is a reusable buffer for the raw payload of a row block;
// the grown scratch is returned for reuse.
func appendBlockValue(dst, scratch []byte, evs []blockEvent, best bool) (out, scratchOut []byte) {
	if best {
		return appendColumnarBlock(dst, evs, codecZstd), scratch
	}
	h, raw := appendV1Payload(scratch[:0], evs)
	codec := byte(codecS2)
	if len(raw) < smallBlock {
		// Compressing one or two events saves next to nothing; the
		// merger compresses them with their neighbours later.
		codec = codecNone
	}
	return appendV1Value(dst, h, raw, codec), raw
}

// appendMergedBlock encodes a block that the merger or the purger rewrites:
// by column (version 4) with Options.ColumnarBlocks, else by row (version
// 3) at zstd's best level.
func (db *DB) appendMergedBlock(dst, scratch []byte, evs []blockEvent) (out, scratchOut []byte) {
	if db.opts.ColumnarBlocks {
		return appendBlockValue(dst, scratch, evs, true /* best */)
	}
	h, raw := appendV1Payload(scratch[:0], evs)
	return appendV1Value(dst, h, raw, codecZstd), raw
}

// appendBlockValueV1 encodes evs as a row block (version 3) with codec.
// Only tests still write row blocks compressed with zstd, as the merger did
// before version 2.
func appendBlockValueV1(dst []byte, evs []blockEvent, codec byte) []byte {
	h, raw := appendV1Payload(nil, evs)
	return appendV1Value(dst, h, raw, codec)
}

// appendBlockValueMs encodes evs in the millisecond versions that stores
// written before 2026-12 hold: version 2 when columnar, else version 1,
// with each time floored to its millisecond. Only tests write them, to
// check that they are still read.
func appendBlockValueMs(dst []byte, evs []blockEvent, columnar bool, codec byte) []byte {
	ms := slices.Clone(evs)
	for i := range ms {
		ms[i].time = floorDiv(ms[i].time, 1000)
	}
	// Sorted by (ms, seq), as the old code sorted them.
	sortBlockEvents(ms)
	if columnar {
		return appendColumnarBlockVersion(dst, ms, codec, valueV2)
	}
	h, raw := appendV1Payload(nil, ms)
	h.ver = valueV1
	return appendV1Value(dst, h, raw, codec)
}

// appendV1Payload appends the raw row payload of evs to raw, times in the
// units they have (µs but for appendBlockValueMs).
func appendV1Payload(raw []byte, evs []blockEvent) (blockHeader, []byte) {
	h := blockHeader{ver: valueV3, count: len(evs), minTime: evs[0].time, maxTime: evs[len(evs)-1].time, minSeq: evs[0].seq, maxSeq: evs[0].seq}
	for i := range evs {
		h.minSeq = min(h.minSeq, evs[i].seq)
		h.maxSeq = max(h.maxSeq, evs[i].seq)
	}
	for i := range evs {
		raw = binary.AppendUvarint(raw, evs[i].seq-h.minSeq)
	}
	prev := h.minTime
	for i := range evs {
		raw = binary.AppendUvarint(raw, uint64(evs[i].time-prev))
		prev = evs[i].time
	}
	for i := range evs {
		raw = binary.AppendUvarint(raw, uint64(len(evs[i].body)))
	}
	for i := range evs {
		raw = append(raw, evs[i].body...)
	}
	h.rawLen = len(raw)
	return h, raw
}

// appendBlockHeader appends the leading fields that both block versions
// share, which decodeBlockHeader reads.
func appendBlockHeader(dst []byte, ver, codec byte, h *blockHeader) []byte {
	dst = append(dst, ver, codec)
	dst = binary.AppendUvarint(dst, uint64(h.count))
	dst = binary.AppendVarint(dst, h.minTime)
	dst = binary.AppendVarint(dst, h.maxTime)
	dst = binary.AppendUvarint(dst, h.minSeq)
	dst = binary.AppendUvarint(dst, h.maxSeq)
	return binary.AppendUvarint(dst, uint64(h.rawLen))
}

// appendV1Value appends the row block of header h (of version h.ver) and
// payload raw.
func appendV1Value(dst []byte, h blockHeader, raw []byte, codec byte) []byte {
	dst = appendBlockHeader(dst, h.ver, codec, &h)
	switch codec {
	case codecNone:
		return append(dst, raw...)
	case codecS2:
		n := s2.MaxEncodedLen(len(raw))
		dst = slices.Grow(dst, n)
		enc := s2.Encode(dst[len(dst):len(dst)+n], raw)
		return dst[:len(dst)+len(enc)]
	default:
		return encodeBest(raw, dst)
	}
}

var errCorrupt = errors.New("storage: corrupt value")

// decodeBlockHeader parses the header of a block value of any version and
// returns the payload that follows it (aliasing v). The header's times are
// in µs whatever the version.
func decodeBlockHeader(v []byte) (h blockHeader, payload []byte, err error) {
	if len(v) < 2 || v[0] < valueV1 || v[0] > valueV4 {
		return h, nil, fmt.Errorf("%w: block version %x", errCorrupt, v[:min(len(v), 1)])
	}
	h.ver, h.codec = v[0], v[1]
	h.unit = 1
	if h.ver == valueV1 || h.ver == valueV2 {
		h.unit = 1000
	}
	r := byteReader{b: v[2:]}
	h.count = int(r.uvarint())
	h.minTime = r.varint() * h.unit
	h.maxTime = r.varint() * h.unit
	h.minSeq = r.uvarint()
	h.maxSeq = r.uvarint()
	h.rawLen = int(r.uvarint())
	if h.columnar() {
		h.s1Len = int(r.uvarint())
		h.s1Raw = int(r.uvarint())
		h.s2Raw = int(r.uvarint())
		// Each event takes at least six bytes of section 1 (a byte or
		// more per head column), which bounds what decode allocates for
		// count.
		if r.err != nil || h.count <= 0 || h.rawLen < 0 || h.rawLen > 1<<30 || h.s1Raw < 0 || h.s1Raw > 1<<30 ||
			h.s2Raw < 0 || h.s2Raw > 1<<30 || h.s1Len < 0 || h.s1Len > len(r.b) || h.count > h.s1Raw/6 {
			return h, nil, fmt.Errorf("%w: block header", errCorrupt)
		}
		return h, r.b, nil
	}
	// Each event takes at least three bytes of rawLen (one per column's
	// uvarint), which bounds what decode allocates for count.
	if r.err != nil || h.count <= 0 || h.rawLen < 0 || h.rawLen > 1<<30 || h.count > h.rawLen/3 {
		return h, nil, fmt.Errorf("%w: block header", errCorrupt)
	}
	return h, r.b, nil
}

// decodedBlock is a block's events, decoded. Bodies alias raw, which the
// decodedBlock owns and reuses on the next decode.
type decodedBlock struct {
	h     blockHeader
	seqs  []uint64
	times []int64 // eventTimes in µs, whatever the block's version
	// Body i is body[start(i):ends[i]]: the bodies lie back to back in
	// event order (starts empty), or where starts says (a columnar block's
	// rebuilt bodies, in section 2's order).
	starts []int
	ends   []int
	body   []byte // the bodies region of raw, or stage
	raw    []byte
	colState
}

func (d *decodedBlock) len() int { return d.h.count }

// event returns the i-th event. The body is borrowed: it is valid until the
// next decode into d.
func (d *decodedBlock) event(i int) (seq uint64, t int64, body []byte) {
	return d.seqs[i], d.times[i], d.body[d.start(i):d.ends[i]]
}

// start returns where body i starts.
func (d *decodedBlock) start(i int) int {
	if len(d.starts) > 0 {
		return d.starts[i]
	}
	if i > 0 {
		return d.ends[i-1]
	}
	return 0
}

// decode decodes a block value of any version whole.
func (d *decodedBlock) decode(v []byte) error {
	h, payload, err := decodeBlockHeader(v)
	if err != nil {
		return err
	}
	d.h = h
	d.fromBodies = false
	if h.columnar() {
		return d.decodeV2(payload, nil)
	}
	switch h.codec {
	case codecNone:
		d.raw = append(d.raw[:0], payload...)
	case codecZstd:
		d.raw, err = zdec.DecodeAll(payload, d.raw[:0])
		if err != nil {
			return fmt.Errorf("%w: cannot decompress block: %v", errCorrupt, err)
		}
	case codecS2:
		n, err := s2.DecodedLen(payload)
		if err != nil || n != h.rawLen {
			return fmt.Errorf("%w: s2 block length", errCorrupt)
		}
		d.raw, err = s2.Decode(slices.Grow(d.raw[:0], n)[:n], payload)
		if err != nil {
			return fmt.Errorf("%w: cannot decompress block: %v", errCorrupt, err)
		}
	default:
		return fmt.Errorf("%w: unknown block codec %d", errCorrupt, h.codec)
	}
	if len(d.raw) != h.rawLen {
		return fmt.Errorf("%w: block is %d bytes, header says %d", errCorrupt, len(d.raw), h.rawLen)
	}
	n := h.count
	d.seqs = slices.Grow(d.seqs[:0], n)[:n]
	d.times = slices.Grow(d.times[:0], n)[:n]
	d.starts = d.starts[:0]
	d.ends = slices.Grow(d.ends[:0], n)[:n]
	r := byteReader{b: d.raw}
	for i := range n {
		d.seqs[i] = h.minSeq + r.uvarint()
	}
	t := h.minTime
	for i := range n {
		t += int64(r.uvarint()) * h.unit
		d.times[i] = t
	}
	end := 0
	for i := range n {
		// Bounding each length keeps the sum from wrapping around, so the
		// ends only grow and event never slices backwards.
		l := r.uvarint()
		if l > uint64(len(d.raw)) {
			return fmt.Errorf("%w: block body length", errCorrupt)
		}
		end += int(l)
		d.ends[i] = end
	}
	if r.err != nil || end != len(r.b) {
		return fmt.Errorf("%w: block columns", errCorrupt)
	}
	d.body = r.b
	return nil
}

// copyRange makes d hold the events of src with lo <= time < hi, in src's
// order, in buffers of its own.
func (d *decodedBlock) copyRange(src *decodedBlock, lo, hi int64) {
	n := src.len()
	i, _ := slices.BinarySearch(src.times[:n], lo)
	j, _ := slices.BinarySearch(src.times[:n], hi)
	j = max(i, j)
	d.h = src.h
	d.h.count = j - i
	d.seqs = append(d.seqs[:0], src.seqs[i:j]...)
	d.times = append(d.times[:0], src.times[i:j]...)
	d.starts, d.ends, d.raw = d.starts[:0], d.ends[:0], d.raw[:0]
	if len(src.starts) > 0 {
		for k := i; k < j; k++ {
			d.raw = append(d.raw, src.body[src.starts[k]:src.ends[k]]...)
			d.ends = append(d.ends, len(d.raw))
		}
	} else if j > i {
		start := src.start(i)
		for _, e := range src.ends[i:j] {
			d.ends = append(d.ends, e-start)
		}
		d.raw = append(d.raw, src.body[start:src.ends[j-1]]...)
	}
	d.body = d.raw
}

// A group value (namespace 0x11):
//
//	+-----+---------+---------+----------+---------+-----------+------------------+
//	| ver | last    | count   | rawBytes | ndays   | firstDay  | day deltas       |
//	| 1B  | uvarint | uvarint | uvarint  | uvarint | varint    | (ndays-1)×uvarint|
//	+-----+---------+---------+----------+---------+-----------+------------------+
type groupValue struct {
	last     uint64
	count    int
	rawBytes int
	days     []int32 // ascending
}

func appendGroupValue(dst []byte, g *groupValue) []byte {
	dst = append(dst, valueV1)
	dst = binary.AppendUvarint(dst, g.last)
	dst = binary.AppendUvarint(dst, uint64(g.count))
	dst = binary.AppendUvarint(dst, uint64(g.rawBytes))
	dst = binary.AppendUvarint(dst, uint64(len(g.days)))
	for i, d := range g.days {
		if i == 0 {
			dst = binary.AppendVarint(dst, int64(d))
		} else {
			dst = binary.AppendUvarint(dst, uint64(d-g.days[i-1]))
		}
	}
	return dst
}

func decodeGroupValue(v []byte, g *groupValue) error {
	if len(v) < 1 || v[0] != valueV1 {
		return fmt.Errorf("%w: group version", errCorrupt)
	}
	r := byteReader{b: v[1:]}
	g.last = r.uvarint()
	g.count = int(r.uvarint())
	g.rawBytes = int(r.uvarint())
	n := int(r.uvarint())
	if r.err != nil || n < 1 || n > 1<<20 {
		return fmt.Errorf("%w: group value", errCorrupt)
	}
	g.days = g.days[:0]
	d := int32(r.varint())
	g.days = append(g.days, d)
	for i := 1; i < n; i++ {
		d += int32(r.uvarint())
		g.days = append(g.days, d)
	}
	if r.err != nil || len(r.b) != 0 {
		return fmt.Errorf("%w: group value", errCorrupt)
	}
	return nil
}

// A profile value (namespace 0x40) is the version byte, the sequence of the
// profile's latest change (uvarint), then its JSON.
func appendProfileValue(dst []byte, seq uint64, body []byte) []byte {
	dst = binary.AppendUvarint(append(dst, valueV1), seq)
	return append(dst, body...)
}

// decodeProfilePayload splits a profile value without its version byte into
// its change sequence and JSON (aliasing p).
func decodeProfilePayload(p []byte) (seq uint64, body []byte, err error) {
	seq, n := binary.Uvarint(p)
	if n <= 0 {
		return 0, nil, fmt.Errorf("%w: profile value", errCorrupt)
	}
	return seq, p[n:], nil
}

// appendDedupValue encodes a dedup entry: when the message was first stored.
func appendDedupValue(dst []byte, receivedUnix int64) []byte {
	dst = append(dst, valueV1)
	return binary.AppendUvarint(dst, uint64(receivedUnix))
}

func decodeDedupValue(v []byte) (receivedUnix int64, err error) {
	if len(v) < 2 || v[0] != valueV1 {
		return 0, fmt.Errorf("%w: dedup value", errCorrupt)
	}
	x, n := binary.Uvarint(v[1:])
	if n <= 0 {
		return 0, fmt.Errorf("%w: dedup value", errCorrupt)
	}
	return int64(x), nil
}

// appendUint64Value encodes a version byte and a big-endian uint64 (app ids
// and the sequence high-water mark).
func appendUint64Value(dst []byte, x uint64) []byte {
	dst = append(dst, valueV1)
	return binary.BigEndian.AppendUint64(dst, x)
}

func decodeUint64Value(v []byte) (uint64, error) {
	if len(v) != 9 || v[0] != valueV1 {
		return 0, fmt.Errorf("%w: uint64 value %x", errCorrupt, v)
	}
	return binary.BigEndian.Uint64(v[1:]), nil
}

// byteReader reads varints, remembering the first error.
type byteReader struct {
	b   []byte
	err error
}

func (r *byteReader) uvarint() uint64 {
	x, n := binary.Uvarint(r.b)
	if !r.advance(n) {
		return 0
	}
	return x
}

func (r *byteReader) varint() int64 {
	x, n := binary.Varint(r.b)
	if !r.advance(n) {
		return 0
	}
	return x
}

// advance moves past the n bytes of a varint just read; n <= 0 (no varint
// there) records errCorrupt and stops the reading.
func (r *byteReader) advance(n int) bool {
	if n <= 0 {
		if r.err == nil {
			r.err = errCorrupt
		}
		r.b = nil
		return false
	}
	r.b = r.b[n:]
	return true
}

var decodedBlockPool sync.Pool

func getDecodedBlock() *decodedBlock {
	if v := decodedBlockPool.Get(); v != nil {
		return v.(*decodedBlock)
	}
	return &decodedBlock{}
}

func putDecodedBlock(d *decodedBlock) {
	// Do not pool the buffers of an unusually large block.
	if cap(d.raw) > 16<<20 || cap(d.stage) > 16<<20 || cap(d.s2) > 16<<20 || cap(d.s1) > 8<<20 {
		return
	}
	decodedBlockPool.Put(d)
}
