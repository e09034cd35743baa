package storage

import (
	"encoding/binary"
	"math/bits"
	"slices"
	"strconv"
	"sync"
)

// valueV2 is the version byte of a columnar block value with times in
// Unix milliseconds: what the merger and the purger wrote before 2026-12,
// and what they write again since 2026-12-07 when every time of a block is
// a whole millisecond. Version 4 (valueV4, values.go) is the same layout
// with times in Unix microseconds, what they write otherwise; fresh blocks
// stay row blocks (version 3), so that ingest pays nothing for it.
//
// A columnar block value (namespace 0x10) holds the same events as a row
// one, in the same order, and its header starts with the same fields, with
// the same meaning, so that decodeBlockHeader reads both;
// rawLen is the total size of the bodies once rebuilt. Two sections follow,
// each compressed on its own with codec (zstd for the merger's blocks), so
// that the columns needed to filter events and to verify messageIds can be
// read without the rest:
//
//	+-----+-------+---------+---------+---------+---------+---------+---------+---------+---------+---------+-----------+-----------+
//	| ver | codec | count   | minTime | maxTime | minSeq  | maxSeq  | rawLen  | s1Len   | s1Raw   | s2Raw   | section 1 | section 2 |
//	| 1B  | 1B    | uvarint | varint  | varint  | uvarint | uvarint | uvarint | uvarint | uvarint | uvarint | s1Len B   | the rest  |
//	+-----+-------+---------+---------+---------+---------+---------+---------+---------+---------+---------+-----------+-----------+
//
// s1Len is section 1's stored size; s1Raw and s2Raw are the sections' sizes
// once decompressed. Section 1, the head columns:
//
//	seq - minSeq      count × uvarint
//	time deltas       count × uvarint (first from minTime, then from the previous event)
//	event dict        dict
//	event codes       count × uvarint (see head codes)
//	userId dict       dict
//	userId codes      count × uvarint
//	messageId kinds   count × 1B (midAbsent … midGenerated)
//	messageId UUIDs   16B × events of kind midUUID or midUUIDUpper, in event order
//	messageId strings (uvarint len, bytes) × events of kind midString
//	receivedAt kinds  count × 1B (recvAbsent … recvRun)
//	receivedAt runs   uvarint n, then n × (first seq: uvarint delta from the previous run's, or from minSeq;
//	                  instant: varint delta in ns from the previous run's, or from 0; fraction digits 1B)
//	receivedAt strings (uvarint len, bytes) × events of kind recvString
//
// Section 2, the rest of each body, in user order (see below):
//
//	appKey dict       dict
//	appKey codes      uvarint n, n × uvarint (one per appKey marker)
//	userAgent dict    dict
//	userAgent codes   uvarint n, n × uvarint (one per userAgent marker)
//	eventTimes        uvarint n, n × 1B fraction digits, n × varint (ns - the event's time in ns:
//	                  time × 10³ in version 4, × 10⁶ in version 2)
//	IPs               uvarint n, n × 4B
//	verbatim bodies   uvarint n, n × (uvarint len, bytes)
//	templates         dict
//	template columns  per template, in dict order: uvarint k, k × uvarint column (one per markValue)
//	template codes    count × uvarint (dict indexes)
//	value columns     dict: per key path, its values back to back, each followed by 0x00
//
// where a dict is uvarint n, n × uvarint len, then the n strings back to
// back (most used first, but for the value columns, by first use). The
// entries of the event, userId, appKey and userAgent dicts, and the
// messageId and receivedAt strings, are the bytes between the quotes of a
// JSON string, escapes kept.
//
// An event's skeleton is its body with the value of each extracted member
// replaced by a one-byte marker (markEvent … markIP) naming its column.
// Only top-level members are extracted, and userAgent and ip in a
// top-level context object, and only when the column reproduces the value
// exactly: a JSON string for the dicts; for eventTime, receivedAt and ip
// the canonical forms below. Everything else stays as it was, so any bytes
// round-trip. A body holding a byte below 0x20 (which compact JSON never
// holds, and markers are) is kept whole in the verbatim column, with the
// template of just markVerbatim.
//
// The skeleton is then shredded: in a skeleton that is a compact JSON
// object, each member value that is neither a marker nor an object (an
// object is shredded in turn) is replaced by markValue and goes to the
// value column of its key path (the keys from the top, joined by 0x00);
// what remains is the event's template. Templates repeat, and a column's
// values are alike, which is what zstd needs. Rebuilding a body copies its
// template, writes each marker's value from its column, in order, and
// puts quotes around all but markValue's, which are whole JSON values.
//
// User order: section 2 holds the events sorted by userId code (then by
// index), which the decoder computes again from the codes (bodyOrder). A
// user's events share much (a session, an address, a device), and zstd
// finds that only when they are near each other.
//
// Head codes, per event: 0 when the body has no top-level member of that
// name, 1 when it has one whose (last) value is not in the columns (not a
// string, or a body that is not a compact JSON object; a reader must look
// at the body), else 2 + the dict index. Of members repeated at the top
// level, the last is the one in the head columns, as JSON decoders read it.
//
// Canonical forms: eventTime and receivedAt are RFC 3339 in UTC,
// YYYY-MM-DDTHH:MM:SS[.F]Z with 0 to 9 fraction digits, a year from 1700
// to 2200, that format back to the same bytes. A messageId is a UUID in
// lowercase or in uppercase hex, or "trv-" and the event's own seq in 16
// lowercase hex digits (what ingest generates), or else a string. An ip is
// an IPv4 address in dotted decimal without leading zeros.
//
// receivedAt runs: one request shares one receivedAt, and its events have
// neighbouring seqs, so the receivedAts are stored as runs of seqs. An
// event of kind recvRun has the receivedAt of the run with the highest
// first seq at or below its own.
const valueV2 = 2

// Markers in skeletons and templates. They are part of the on-disk format.
const (
	markEnd        = 0x00
	markVerbatim   = 0x01
	markEvent      = 0x02
	markUserID     = 0x03
	markAppKey     = 0x04
	markMessageID  = 0x05
	markEventTime  = 0x06
	markReceivedAt = 0x07
	markUserAgent  = 0x08
	markIP         = 0x09
	markValue      = 0x0a
)

// Head codes of event and userId.
const (
	codeAbsent = 0
	codeBody   = 1
	codeDict   = 2 // and up: 2 + dict index
)

// messageId kinds.
const (
	midAbsent    = 0
	midBody      = 1
	midString    = 2
	midUUID      = 3
	midUUIDUpper = 4
	midGenerated = 5
)

// receivedAt kinds.
const (
	recvAbsent = 0
	recvBody   = 1
	recvString = 2
	recvRun    = 3
)

// colEnc compresses the sections of columnar blocks. SpeedBestCompression:
// on a merged block of 16 MiB of generated events with UUID messageIds it
// makes blocks 1.6% smaller than SpeedBetterCompression (39.8 against 40.4
// bytes per event), encoding 45-75 MB/s against 95-110 on a shared core
// (BenchmarkMergedBlockSize), which is still faster than row blocks at the
// same level (20-45 MB/s): columns are easier to compress than whole
// bodies. The merger runs in the background; bytes on disk stay. The
// encoder is encodeBest's (values.go).

// colDict builds a dict: the distinct values of a column, most used first.
type colDict struct {
	ids    map[string]uint32
	vals   [][]byte // by id, in order of first use; they alias the events' bodies
	counts []uint32
	rank   []uint32 // id -> index in the stored dict
	order  []uint32 // index -> id
}

func (d *colDict) reset() {
	if d.ids == nil {
		d.ids = map[string]uint32{}
	}
	clear(d.ids)
	clear(d.vals)
	d.vals, d.counts = d.vals[:0], d.counts[:0]
}

func (d *colDict) add(v []byte) uint32 {
	if id, ok := d.ids[string(v)]; ok {
		d.counts[id]++
		return id
	}
	id := uint32(len(d.vals))
	d.ids[string(v)] = id
	d.vals = append(d.vals, v)
	d.counts = append(d.counts, 1)
	return id
}

// finish ranks the values (see rankValues) and appends the dict to dst.
func (d *colDict) finish(dst []byte) []byte {
	d.rankValues()
	n := len(d.vals)
	dst = binary.AppendUvarint(dst, uint64(n))
	for _, id := range d.order {
		dst = binary.AppendUvarint(dst, uint64(len(d.vals[id])))
	}
	for _, id := range d.order {
		dst = append(dst, d.vals[id]...)
	}
	return dst
}

// rankValues ranks the values by use, so that the most used get the
// shortest codes.
func (d *colDict) rankValues() {
	n := len(d.vals)
	d.order = slices.Grow(d.order[:0], n)[:n]
	for i := range d.order {
		d.order[i] = uint32(i)
	}
	slices.SortStableFunc(d.order, func(a, b uint32) int { return int(d.counts[b]) - int(d.counts[a]) })
	d.rank = slices.Grow(d.rank[:0], n)[:n]
	for r, id := range d.order {
		d.rank[id] = uint32(r)
	}
}

// colEncoder holds the buffers of one block encoding.
type colEncoder struct {
	ev, uid, ak, ua colDict
	evCode, uidCode []uint32 // per event: codeAbsent, codeBody, or codeDict + id
	akID, uaID      []uint32 // per marker, dict ids
	midKind         []byte
	midUUID         []byte
	midStr          []byte
	recvKind        []byte
	recv            []recvValue // per event
	runOrder        []int32
	etDigits        []byte
	etDelta         []byte
	nsPerTime       int64 // ns in one unit of the block's times: 1e3, or 1e6 in version 2
	ips             []byte
	nVerbatim       int
	verbatim        []byte
	sk              []byte // this event's skeleton
	s1, s2          []byte
	occ             []colOcc

	// Shredding: templates and value columns.
	tmpl      colDict
	tmplArena []byte
	tmplCols  [][]uint32 // by template id: the column of each value marker
	tmplCode  []uint32   // per event, template ids
	colIDs    map[string]uint32
	cols      [][]byte // by column id: values, each ending in 0x00
	vals      []colVal
	path      []byte
	tbuf      []byte

	// What addEvent found for addBody: each event's values to extract,
	// and whether it is kept whole.
	occAll []colOcc
	occEnd []int
	whole  []byte // bodyParsed, bodyVerbatim or bodyUnparsed
	order  []int32
	counts []int32
}

// How addBody takes a body.
const (
	bodyParsed   = 0 // a skeleton from the extracted values
	bodyVerbatim = 1 // kept whole in the verbatim column
	bodyUnparsed = 2 // not a compact object: its own skeleton
)

// colVal is a value to shred from a skeleton.
type colVal struct {
	start, end int
	col        uint32
}

// recvValue is an event's receivedAt as the encoder found it.
type recvValue struct {
	str    []byte // the string's bytes, for recvString
	ns     int64
	digits int8
}

// colOcc is a value to extract from a body: [start, end) is the whole
// JSON string, quotes included.
type colOcc struct {
	start, end int
	mark       byte
}

var colEncoderPool = sync.Pool{New: func() any { return &colEncoder{} }}

// appendColumnarBlock encodes evs, sorted by sortBlockEvents, as a
// version-4 block value with codec (codecZstd, or codecNone for tests),
// appended to dst.
//
// When every eventTime is a whole millisecond (what SDKs send: JavaScript's
// Date, Java's Instant.toEpochMilli, ISO strings with three digits), the
// block is version 2, whose times are in ms: the time column's deltas are
// ten bits shorter, ~1.3 bytes per event less after zstd on the
// generator's events (TestColumnarWholeMsIsVersion2).
func appendColumnarBlock(dst []byte, evs []blockEvent, codec byte) []byte {
	for i := range evs {
		if evs[i].time%1000 != 0 {
			return appendColumnarBlockVersion(dst, evs, codec, valueV4)
		}
	}
	ms := make([]blockEvent, len(evs))
	for i := range evs {
		ms[i] = evs[i]
		ms[i].time /= 1000
	}
	return appendColumnarBlockVersion(dst, ms, codec, valueV2)
}

// appendColumnarBlockVersion encodes evs as a columnar block of version ver:
// valueV4, or valueV2 (times in ms) for appendBlockValueMs.
func appendColumnarBlockVersion(dst []byte, evs []blockEvent, codec, ver byte) []byte {
	e := colEncoderPool.Get().(*colEncoder)
	defer func() {
		// The dicts alias the bodies; drop them before pooling.
		for _, d := range []*colDict{&e.ev, &e.uid, &e.ak, &e.ua, &e.tmpl} {
			d.reset()
		}
		clear(e.recv)
		if cap(e.tmplArena)+cap(e.s2) > 64<<20 {
			*e = colEncoder{}
		}
		colEncoderPool.Put(e)
	}()
	return e.encode(dst, evs, codec, ver)
}

// encode writes the columnar block of evs: section by section, in the
// order decodeSection1 and rebuild read them, so the two can be read side
// by side; that is why it is one long function.
func (e *colEncoder) encode(dst []byte, evs []blockEvent, codec, ver byte) []byte {
	// The eventTime column holds each canonical eventTime's ns less its
	// event's time in ns, which is nothing but its digits below the
	// microsecond (below the millisecond in version 2).
	e.nsPerTime = 1e3
	if ver == valueV2 {
		e.nsPerTime = 1e6
	}
	h := blockHeader{ver: ver, codec: codec, count: len(evs), minTime: evs[0].time, maxTime: evs[len(evs)-1].time, minSeq: evs[0].seq, maxSeq: evs[0].seq}
	for i := range evs {
		h.minSeq = min(h.minSeq, evs[i].seq)
		h.maxSeq = max(h.maxSeq, evs[i].seq)
		h.rawLen += len(evs[i].body)
	}
	for _, d := range []*colDict{&e.ev, &e.uid, &e.ak, &e.ua, &e.tmpl} {
		d.reset()
	}
	e.tmplArena, e.tmplCols, e.tmplCode = e.tmplArena[:0], e.tmplCols[:0], e.tmplCode[:0]
	if e.colIDs == nil {
		e.colIDs = map[string]uint32{}
	}
	clear(e.colIDs)
	for i := range e.cols {
		e.cols[i] = e.cols[i][:0]
	}
	e.cols = e.cols[:0]
	e.evCode, e.uidCode = e.evCode[:0], e.uidCode[:0]
	e.akID, e.uaID = e.akID[:0], e.uaID[:0]
	e.midKind, e.midUUID, e.midStr = e.midKind[:0], e.midUUID[:0], e.midStr[:0]
	e.recvKind, e.recv = e.recvKind[:0], e.recv[:0]
	e.etDigits, e.etDelta, e.ips = e.etDigits[:0], e.etDelta[:0], e.ips[:0]
	e.nVerbatim, e.verbatim = 0, e.verbatim[:0]
	// Section 1's columns go in event order, section 2's in user order
	// (bodyOrder): a user's events share much (a session, an address, a
	// device), which zstd finds only when they are near each other.
	e.occAll, e.occEnd, e.whole = e.occAll[:0], e.occEnd[:0], e.whole[:0]
	for i := range evs {
		e.addEvent(&evs[i])
	}
	e.uid.rankValues()
	e.order, e.counts = bodyOrder(e.order, e.counts, e.uidCode, e.uid.rank, len(e.uid.vals))
	for _, i := range e.order {
		e.addBody(&evs[i], int(i))
	}

	// Section 1.
	s1 := e.s1[:0]
	for i := range evs {
		s1 = binary.AppendUvarint(s1, evs[i].seq-h.minSeq)
	}
	prev := h.minTime
	for i := range evs {
		s1 = binary.AppendUvarint(s1, uint64(evs[i].time-prev))
		prev = evs[i].time
	}
	s1 = e.ev.finish(s1)
	s1 = appendHeadCodes(s1, e.evCode, e.ev.rank)
	s1 = e.uid.finish(s1)
	s1 = appendHeadCodes(s1, e.uidCode, e.uid.rank)
	s1 = append(s1, e.midKind...)
	s1 = append(s1, e.midUUID...)
	s1 = append(s1, e.midStr...)
	s1 = e.appendReceivedAt(s1, evs, h.minSeq)

	// Section 2.
	s2 := e.s2[:0]
	s2 = e.ak.finish(s2)
	s2 = appendDictIDs(s2, e.akID, e.ak.rank)
	s2 = e.ua.finish(s2)
	s2 = appendDictIDs(s2, e.uaID, e.ua.rank)
	s2 = binary.AppendUvarint(s2, uint64(len(e.etDigits)))
	s2 = append(s2, e.etDigits...)
	s2 = append(s2, e.etDelta...)
	s2 = binary.AppendUvarint(s2, uint64(len(e.ips)/4))
	s2 = append(s2, e.ips...)
	s2 = binary.AppendUvarint(s2, uint64(e.nVerbatim))
	s2 = append(s2, e.verbatim...)
	s2 = e.tmpl.finish(s2)
	for _, id := range e.tmpl.order {
		s2 = binary.AppendUvarint(s2, uint64(len(e.tmplCols[id])))
		for _, c := range e.tmplCols[id] {
			s2 = binary.AppendUvarint(s2, uint64(c))
		}
	}
	for _, id := range e.tmplCode {
		s2 = binary.AppendUvarint(s2, uint64(e.tmpl.rank[id]))
	}
	s2 = binary.AppendUvarint(s2, uint64(len(e.cols)))
	for _, c := range e.cols {
		s2 = binary.AppendUvarint(s2, uint64(len(c)))
	}
	for _, c := range e.cols {
		s2 = append(s2, c...)
	}
	e.s1, e.s2 = s1, s2

	dst = appendBlockHeader(dst, ver, codec, &h)
	switch codec {
	case codecZstd:
		// The first section's stored length goes before it: compress it
		// into the tail of dst, then move it behind its lengths.
		mark := len(dst)
		dst = encodeBest(s1, dst)
		c1 := slices.Clone(dst[mark:])
		dst = binary.AppendUvarint(dst[:mark], uint64(len(c1)))
		dst = binary.AppendUvarint(dst, uint64(len(s1)))
		dst = binary.AppendUvarint(dst, uint64(len(s2)))
		dst = append(dst, c1...)
		return encodeBest(s2, dst)
	case codecNone:
		dst = binary.AppendUvarint(dst, uint64(len(s1)))
		dst = binary.AppendUvarint(dst, uint64(len(s1)))
		dst = binary.AppendUvarint(dst, uint64(len(s2)))
		dst = append(dst, s1...)
		return append(dst, s2...)
	default:
		panic("BUG: columnar block codec " + strconv.Itoa(int(codec)))
	}
}

func appendHeadCodes(dst []byte, codes, rank []uint32) []byte {
	for _, c := range codes {
		if c >= codeDict {
			c = codeDict + rank[c-codeDict]
		}
		dst = binary.AppendUvarint(dst, uint64(c))
	}
	return dst
}

func appendDictIDs(dst []byte, ids, rank []uint32) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(ids)))
	for _, id := range ids {
		dst = binary.AppendUvarint(dst, uint64(rank[id]))
	}
	return dst
}

// appendReceivedAt assigns the canonical receivedAts to runs of seqs and
// appends the receivedAt columns.
func (e *colEncoder) appendReceivedAt(dst []byte, evs []blockEvent, minSeq uint64) []byte {
	e.runOrder = e.runOrder[:0]
	for i, k := range e.recvKind {
		if k == recvRun {
			e.runOrder = append(e.runOrder, int32(i))
		}
	}
	slices.SortFunc(e.runOrder, func(a, b int32) int {
		if evs[a].seq != evs[b].seq {
			if evs[a].seq < evs[b].seq {
				return -1
			}
			return 1
		}
		return int(a - b)
	})
	// A run starts where the value changes. A change between two events
	// with the same seq could not be told apart by seq: the second is
	// stored as a string instead.
	var runs []byte
	nruns := 0
	var cur recvValue
	var curSeq uint64
	prevStart, prevNs := minSeq, int64(0)
	for _, i := range e.runOrder {
		v := e.recv[i]
		if nruns > 0 && v.ns == cur.ns && v.digits == cur.digits {
			curSeq = evs[i].seq
			continue
		}
		if nruns > 0 && evs[i].seq == curSeq {
			e.recvKind[i] = recvString
			continue
		}
		runs = binary.AppendUvarint(runs, evs[i].seq-prevStart)
		runs = binary.AppendVarint(runs, v.ns-prevNs)
		runs = append(runs, byte(v.digits))
		prevStart, prevNs = evs[i].seq, v.ns
		cur, curSeq = v, evs[i].seq
		nruns++
	}
	dst = append(dst, e.recvKind...)
	dst = binary.AppendUvarint(dst, uint64(nruns))
	dst = append(dst, runs...)
	for i, k := range e.recvKind {
		if k == recvString {
			dst = binary.AppendUvarint(dst, uint64(len(e.recv[i].str)))
			dst = append(dst, e.recv[i].str...)
		}
	}
	return dst
}

// headField says which of the head columns a top-level key is.
func headField(key []byte) int {
	switch string(key) {
	case "event":
		return hEvent
	case "userId":
		return hUserID
	case "messageId":
		return hMessageID
	case "receivedAt":
		return hReceivedAt
	}
	return -1
}

// The head fields, in eventHead's order.
const (
	hEvent = iota
	hUserID
	hMessageID
	hReceivedAt
	nHead
)

// addEvent finds the values of ev to extract and adds its head columns. It
// is the merger's per-event scan, one pass over the event's bytes with its
// position in locals, which is why it is not split.
func (e *colEncoder) addEvent(ev *blockEvent) {
	body := ev.body
	var last [nHead]span // the last top-level value of each head field
	var seen [nHead]bool
	e.occ = e.occ[:0]
	ok := !hasControl(body) && walkObject(body, func(k, v span) {
		key := body[k.start:k.end]
		if f := headField(key); f >= 0 {
			last[f], seen[f] = v, true
			return
		}
		switch string(key) {
		case "appKey":
			if isString(body, v) {
				e.occ = append(e.occ, colOcc{v.start, v.end, markAppKey})
			}
		case "eventTime":
			if isString(body, v) {
				if _, _, ok := parseRFC3339(body[v.start+1 : v.end-1]); ok {
					e.occ = append(e.occ, colOcc{v.start, v.end, markEventTime})
				}
			}
		case "context":
			if body[v.start] != '{' {
				return
			}
			n := len(e.occ)
			ctx := body[:v.end]
			if walkObjectAt(ctx, v.start, func(k, v span) {
				switch string(ctx[k.start:k.end]) {
				case "userAgent":
					if isString(ctx, v) {
						e.occ = append(e.occ, colOcc{v.start, v.end, markUserAgent})
					}
				case "ip":
					if isString(ctx, v) {
						if _, ok := parseIPv4(ctx[v.start+1 : v.end-1]); ok {
							e.occ = append(e.occ, colOcc{v.start, v.end, markIP})
						}
					}
				}
			}) != v.end {
				e.occ = e.occ[:n]
			}
		}
	})
	if !ok {
		e.evCode = append(e.evCode, codeBody)
		e.uidCode = append(e.uidCode, codeBody)
		e.midKind = append(e.midKind, midBody)
		e.recvKind = append(e.recvKind, recvBody)
		e.recv = append(e.recv, recvValue{})
		how := byte(bodyUnparsed)
		if hasControl(body) {
			how = bodyVerbatim
		}
		e.whole = append(e.whole, how)
		e.occEnd = append(e.occEnd, len(e.occAll))
		return
	}

	// The head fields: absent, in the columns, or left in the body.
	str := func(f int) ([]byte, bool) {
		if !seen[f] || !isString(body, last[f]) {
			return nil, false
		}
		return body[last[f].start+1 : last[f].end-1], true
	}
	headOcc := func(f int, mark byte) { e.occ = append(e.occ, colOcc{last[f].start, last[f].end, mark}) }
	for _, f := range [...]struct {
		f    int
		mark byte
		dict *colDict
		code *[]uint32
	}{{hEvent, markEvent, &e.ev, &e.evCode}, {hUserID, markUserID, &e.uid, &e.uidCode}} {
		switch s, ok := str(f.f); {
		case !seen[f.f]:
			*f.code = append(*f.code, codeAbsent)
		case !ok:
			*f.code = append(*f.code, codeBody)
		default:
			*f.code = append(*f.code, codeDict+f.dict.add(s))
			headOcc(f.f, f.mark)
		}
	}
	switch s, ok := str(hMessageID); {
	case !seen[hMessageID]:
		e.midKind = append(e.midKind, midAbsent)
	case !ok:
		e.midKind = append(e.midKind, midBody)
	default:
		headOcc(hMessageID, markMessageID)
		if isGeneratedID(s, ev.seq) {
			e.midKind = append(e.midKind, midGenerated)
		} else if u, upper, ok := parseUUID(s); ok {
			e.midUUID = append(e.midUUID, u[:]...)
			e.midKind = append(e.midKind, midUUID+byte(b2i(upper)))
		} else {
			e.midKind = append(e.midKind, midString)
			e.midStr = binary.AppendUvarint(e.midStr, uint64(len(s)))
			e.midStr = append(e.midStr, s...)
		}
	}
	switch s, ok := str(hReceivedAt); {
	case !seen[hReceivedAt]:
		e.recvKind = append(e.recvKind, recvAbsent)
		e.recv = append(e.recv, recvValue{})
	case !ok:
		e.recvKind = append(e.recvKind, recvBody)
		e.recv = append(e.recv, recvValue{})
	default:
		headOcc(hReceivedAt, markReceivedAt)
		if ns, digits, ok := parseRFC3339(s); ok {
			e.recvKind = append(e.recvKind, recvRun)
			e.recv = append(e.recv, recvValue{str: s, ns: ns, digits: int8(digits)})
		} else {
			e.recvKind = append(e.recvKind, recvString)
			e.recv = append(e.recv, recvValue{str: s})
		}
	}

	slices.SortFunc(e.occ, func(a, b colOcc) int { return a.start - b.start })
	e.occAll = append(e.occAll, e.occ...)
	e.occEnd = append(e.occEnd, len(e.occAll))
	e.whole = append(e.whole, bodyParsed)
}

// addBody adds the section-2 columns of event i, ev: its skeleton, shredded,
// and the values extracted from it.
func (e *colEncoder) addBody(ev *blockEvent, i int) {
	body := ev.body
	switch e.whole[i] {
	case bodyVerbatim:
		e.nVerbatim++
		e.verbatim = binary.AppendUvarint(e.verbatim, uint64(len(body)))
		e.verbatim = append(e.verbatim, body...)
		e.addTemplate([]byte{markVerbatim}, nil)
		return
	case bodyUnparsed:
		e.shred(body)
		return
	}
	start := 0
	if i > 0 {
		start = e.occEnd[i-1]
	}
	pos := 0
	e.sk = e.sk[:0]
	for _, o := range e.occAll[start:e.occEnd[i]] {
		e.sk = append(e.sk, body[pos:o.start]...)
		e.sk = append(e.sk, o.mark)
		pos = o.end
		v := body[o.start+1 : o.end-1]
		switch o.mark {
		case markAppKey:
			e.akID = append(e.akID, e.ak.add(v))
		case markUserAgent:
			e.uaID = append(e.uaID, e.ua.add(v))
		case markEventTime:
			ns, digits, _ := parseRFC3339(v)
			e.etDigits = append(e.etDigits, byte(digits))
			e.etDelta = binary.AppendVarint(e.etDelta, ns-ev.time*e.nsPerTime)
		case markIP:
			ip, _ := parseIPv4(v)
			e.ips = append(e.ips, ip[:]...)
		}
	}
	e.sk = append(e.sk, body[pos:]...)
	e.shred(e.sk)
}

// bodyOrder returns, into dst, the order in which section 2 holds a block's
// events: by userId code (absent, then in bodies, then by dict index, with
// rank mapping the ids in uidCode to dict indexes when it is not nil), and
// by event index among equal codes. The decoder computes it again from the
// codes it reads.
func bodyOrder(dst, counts []int32, uidCode, rank []uint32, size int) ([]int32, []int32) {
	n := len(uidCode)
	counts = slices.Grow(counts[:0], codeDict+size+1)[:codeDict+size+1]
	clear(counts)
	code := func(c uint32) uint32 {
		if c >= codeDict && rank != nil {
			return codeDict + rank[c-codeDict]
		}
		return c
	}
	for _, c := range uidCode {
		counts[code(c)+1]++
	}
	for i := 1; i < len(counts); i++ {
		counts[i] += counts[i-1]
	}
	dst = slices.Grow(dst[:0], n)[:n]
	for i, c := range uidCode {
		c = code(c)
		dst[counts[c]] = int32(i)
		counts[c]++
	}
	return dst, counts
}

// shred splits a skeleton into a template, in which each value of an
// object member that is not a marker becomes markValue, and those values,
// which go to the column of their key path. A skeleton that is not a
// compact JSON object is a template of its own, with no values.
func (e *colEncoder) shred(sk []byte) {
	e.vals, e.path = e.vals[:0], e.path[:0]
	if !walkObject(sk, func(k, v span) { e.shredMember(sk, k, v) }) {
		e.addTemplate(sk, nil)
		return
	}
	t := e.tbuf[:0]
	pos := 0
	for _, v := range e.vals {
		t = append(t, sk[pos:v.start]...)
		t = append(t, markValue)
		pos = v.end
	}
	t = append(t, sk[pos:]...)
	e.tbuf = t
	e.addTemplate(t, e.vals)
	for _, v := range e.vals {
		e.cols[v.col] = append(append(e.cols[v.col], sk[v.start:v.end]...), markEnd)
	}
}

// shredMember collects the values of one member of an object at key path
// e.path.
func (e *colEncoder) shredMember(sk []byte, k, v span) {
	if sk[v.start] < 0x20 {
		return // an extracted value's marker
	}
	n := len(e.path)
	if n > 0 {
		e.path = append(e.path, markEnd) // keys hold no byte below 0x20
	}
	e.path = append(e.path, sk[k.start:k.end]...)
	defer func() { e.path = e.path[:n] }()
	if sk[v.start] == '{' {
		nv := len(e.vals)
		if walkObjectAt(sk[:v.end], v.start, func(k, v2 span) { e.shredMember(sk, k, v2) }) == v.end {
			return
		}
		e.vals = e.vals[:nv] // shredded whole
	}
	id, ok := e.colIDs[string(e.path)]
	if !ok {
		id = uint32(len(e.cols))
		e.colIDs[string(e.path)] = id
		if len(e.cols) < cap(e.cols) {
			e.cols = e.cols[:len(e.cols)+1]
		} else {
			e.cols = append(e.cols, nil)
		}
	}
	e.vals = append(e.vals, colVal{v.start, v.end, id})
}

// addTemplate codes the event's template t, whose value markers are vals.
func (e *colEncoder) addTemplate(t []byte, vals []colVal) {
	start := len(e.tmplArena)
	e.tmplArena = append(e.tmplArena, t...)
	n := len(e.tmpl.vals)
	id := e.tmpl.add(e.tmplArena[start:len(e.tmplArena):len(e.tmplArena)])
	if int(id) < n {
		e.tmplArena = e.tmplArena[:start]
	} else {
		cols := make([]uint32, len(vals))
		for i, v := range vals {
			cols[i] = v.col
		}
		e.tmplCols = append(e.tmplCols, cols)
	}
	e.tmplCode = append(e.tmplCode, id)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// hasControl reports whether b holds a byte below 0x20, which compact JSON
// never does and skeleton markers are.
func hasControl(b []byte) bool {
	return controlIndex(b) >= 0
}

// controlIndex returns the index of the first byte of b below 0x20, or -1.
func controlIndex(b []byte) int {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		// Sets the high bit of each byte below 0x20; bytes with the high
		// bit set are never flagged, and the lowest flagged byte is exact.
		if m := (x - 0x2020202020202020) &^ x & 0x8080808080808080; m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for ; i < len(b); i++ {
		if b[i] < 0x20 {
			return i
		}
	}
	return -1
}

// span is [start, end) in a body.
type span struct{ start, end int }

func isString(b []byte, v span) bool {
	return v.end-v.start >= 2 && b[v.start] == '"' && b[v.end-1] == '"'
}

// walkObject calls fn with the key (without its quotes) and the value of
// each member of b, which must be one compact JSON object and nothing
// else, and reports whether it was. It checks only the structure that it
// needs to find the members: strings, brackets, colons and commas. When b
// is not such an object, fn may have been called for some members.
func walkObject(b []byte, fn func(k, v span)) bool {
	return len(b) > 0 && walkObjectAt(b, 0, fn) == len(b)
}

// walkObjectAt walks the object that starts at b[start] (see walkObject)
// and returns the index just past it, or -1.
func walkObjectAt(b []byte, start int, fn func(k, v span)) int {
	i := start
	if i >= len(b) || b[i] != '{' {
		return -1
	}
	i++
	if i < len(b) && b[i] == '}' {
		return i + 1
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return -1
		}
		ke := stringEnd(b, i)
		if ke < 0 || ke >= len(b) || b[ke] != ':' {
			return -1
		}
		ve := valueEnd(b, ke+1)
		if ve < 0 || ve >= len(b) {
			return -1
		}
		fn(span{i + 1, ke - 1}, span{ke + 1, ve})
		i = ve + 1
		switch b[ve] {
		case ',':
		case '}':
			return i
		default:
			return -1
		}
	}
}

// stringEnd returns the index just past the string that starts at b[i],
// or -1.
func stringEnd(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '"':
			return j + 1
		case '\\':
			j++
		}
	}
	return -1
}

// valueEnd returns the index just past the value that starts at b[i], or
// -1 when there is none.
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				e := stringEnd(b, j)
				if e < 0 {
					return -1
				}
				j = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	case ',', '}', ']', ':':
		return -1
	}
	j := i
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' {
		j++
	}
	return j
}

// isGeneratedID reports whether s is the messageId ingest generates for
// seq: "trv-" and seq in 16 lowercase hex digits.
func isGeneratedID(s []byte, seq uint64) bool {
	if len(s) != 20 || string(s[:4]) != "trv-" {
		return false
	}
	var buf [20]byte
	return string(appendGeneratedID(buf[:0], seq)) == string(s)
}

func appendGeneratedID(dst []byte, seq uint64) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, "trv-"...)
	for shift := 60; shift >= 0; shift -= 4 {
		dst = append(dst, hex[(seq>>uint(shift))&0xf])
	}
	return dst
}

// parseUUID parses a UUID written in lowercase or in uppercase hex (upper
// tells which); one with both cases is not canonical.
func parseUUID(s []byte) (u [16]byte, upper, ok bool) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, false, false
	}
	lower, up := false, false
	n := 0
	for i := 0; i < 36; i++ {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			continue
		}
		c := s[i]
		var x byte
		switch {
		case c >= '0' && c <= '9':
			x = c - '0'
		case c >= 'a' && c <= 'f':
			x, lower = c-'a'+10, true
		case c >= 'A' && c <= 'F':
			x, up = c-'A'+10, true
		default:
			return u, false, false
		}
		u[n/2] |= x << (4 * (1 - n%2))
		n++
	}
	if lower && up {
		return u, false, false
	}
	return u, up, true
}

func appendUUID(dst []byte, u []byte, upper bool) []byte {
	hex := "0123456789abcdef"
	if upper {
		hex = "0123456789ABCDEF"
	}
	var b [36]byte
	b[8], b[13], b[18], b[23] = '-', '-', '-', '-'
	j := 0
	for i, x := range u[:16] {
		b[j], b[j+1] = hex[x>>4], hex[x&0xf]
		j += 2
		if i == 3 || i == 5 || i == 7 || i == 9 {
			j++
		}
	}
	return append(dst, b[:]...)
}

// parseIPv4 parses a dotted-decimal IPv4 address without leading zeros.
func parseIPv4(s []byte) (ip [4]byte, ok bool) {
	if len(s) < 7 || len(s) > 15 {
		return ip, false
	}
	part, digits := 0, 0
	v := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if digits == 0 || v > 255 || part > 3 {
				return ip, false
			}
			ip[part] = byte(v)
			part++
			v, digits = 0, 0
			continue
		}
		c := s[i]
		if c < '0' || c > '9' || (digits == 1 && v == 0) {
			return ip, false
		}
		v = v*10 + int(c-'0')
		digits++
	}
	return ip, part == 4
}

func appendIPv4(dst []byte, ip []byte) []byte {
	for i, x := range ip[:4] {
		if i > 0 {
			dst = append(dst, '.')
		}
		dst = append(dst, octets[octetEnd[x]-octetLen(x):octetEnd[x]]...)
	}
	return dst
}

// octets holds "0" to "255" back to back; octetEnd[x] is where x ends.
var octets, octetEnd = func() (string, [256]int) {
	var b []byte
	var ends [256]int
	for x := range 256 {
		b = strconv.AppendUint(b, uint64(x), 10)
		ends[x] = len(b)
	}
	return string(b), ends
}()

func octetLen(x byte) int {
	switch {
	case x >= 100:
		return 3
	case x >= 10:
		return 2
	}
	return 1
}

// parseRFC3339 parses YYYY-MM-DDTHH:MM:SS[.F]Z, with 0 to 9 fraction
// digits and a year from 1700 to 2200, into nanoseconds since the Unix
// epoch; ok is false unless appendRFC3339 gives back the same bytes.
func parseRFC3339(s []byte) (ns int64, digits int, ok bool) {
	if len(s) < 20 || len(s) > 30 || s[len(s)-1] != 'Z' || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return 0, 0, false
	}
	num := func(a, b int) (int64, bool) {
		var v int64
		for _, c := range s[a:b] {
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int64(c-'0')
		}
		return v, true
	}
	y, ok1 := num(0, 4)
	mo, ok2 := num(5, 7)
	d, ok3 := num(8, 10)
	hh, ok4 := num(11, 13)
	mm, ok5 := num(14, 16)
	ss, ok6 := num(17, 19)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || y < 1700 || y > 2200 || mo < 1 || mo > 12 || d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 59 {
		return 0, 0, false
	}
	var frac int64
	if len(s) > 20 {
		digits = len(s) - 21
		if s[19] != '.' || digits < 1 {
			return 0, 0, false
		}
		f, ok := num(20, 20+digits)
		if !ok {
			return 0, 0, false
		}
		frac = f
		for range 9 - digits {
			frac *= 10
		}
	}
	sec := daysFromCivil(y, mo, d)*86400 + hh*3600 + mm*60 + ss
	ns = sec*1e9 + frac
	var buf [32]byte
	if string(appendRFC3339(buf[:0], ns, digits)) != string(s) {
		return 0, 0, false // a day past the month's end
	}
	return ns, digits, true
}

// appendRFC3339 formats ns since the Unix epoch in UTC as
// YYYY-MM-DDTHH:MM:SS[.F]Z with digits fraction digits (0 to 9).
func appendRFC3339(dst []byte, ns int64, digits int) []byte {
	sec := floorDiv(ns, 1e9)
	frac := ns - sec*1e9
	days := floorDiv(sec, 86400)
	sod := sec - days*86400
	y, m, d := civilFromDays(days)
	if y < 0 || y > 9999 {
		dst = strconv.AppendInt(dst, y, 10) // only from damaged blocks
	} else {
		dst = append(dst, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10))
	}
	dst = append(dst, '-', byte('0'+m/10), byte('0'+m%10), '-', byte('0'+d/10), byte('0'+d%10), 'T')
	return appendClock(dst, sod, frac, digits)
}

// appendClock appends "hh:mm:ss", the first digits of frac (nanoseconds)
// after a point when digits > 0, and "Z": the time of day of an RFC 3339
// instant sod seconds into its day.
func appendClock(dst []byte, sod, frac int64, digits int) []byte {
	dst = append(dst, byte('0'+sod/36000), byte('0'+sod/3600%10), ':', byte('0'+sod/600%6), byte('0'+sod/60%10), ':', byte('0'+sod%60/10), byte('0'+sod%10))
	if digits > 0 {
		dst = append(dst, '.')
		div := int64(1e8)
		for range min(digits, 9) {
			dst = append(dst, byte('0'+frac/div%10))
			div /= 10
		}
	}
	return append(dst, 'Z')
}

// dateCache formats RFC 3339 times as appendRFC3339 does, keeping the date
// of the last day formatted: a block's events are sorted by time.
type dateCache struct {
	day  int64
	date [11]byte // YYYY-MM-DDT
	ok   bool
}

func (c *dateCache) append(dst []byte, ns int64, digits int) []byte {
	sec := floorDiv(ns, 1e9)
	days := floorDiv(sec, 86400)
	if !c.ok || days != c.day {
		y, _, _ := civilFromDays(days)
		if y < 0 || y > 9999 {
			return appendRFC3339(dst, ns, digits)
		}
		var buf [32]byte
		copy(c.date[:], appendRFC3339(buf[:0], days*86400*1e9, 0))
		c.day, c.ok = days, true
	}
	frac := ns - sec*1e9
	sod := sec - days*86400
	dst = append(dst, c.date[:]...)
	return appendClock(dst, sod, frac, digits)
}

// daysFromCivil returns the days since 1970-01-01 of a proleptic
// Gregorian date (H. Hinnant's algorithm).
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := floorDiv(y, 400)
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// civilFromDays is the inverse of daysFromCivil.
func civilFromDays(z int64) (y, m, d int64) {
	z += 719468
	era := floorDiv(z, 146097)
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	if mp < 10 {
		m = mp + 3
	} else {
		m = mp - 9
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}
