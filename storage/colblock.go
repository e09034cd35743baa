package storage

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"sync"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// valueV2 is the version byte of a columnar block value, what the merger
// and the purger write; fresh blocks stay version 1, so that ingest pays
// nothing for it.
//
// A version-2 block value (namespace 0x10) holds the same events as a
// version-1 one, in the same order, and its header starts with the same
// fields, with the same meaning, so that decodeBlockHeader reads both;
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
//	eventTimes        uvarint n, n × 1B fraction digits, n × varint (ns - the event's time × 10⁶)
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

// Skeleton markers. They are part of the on-disk format.
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

// colEnc compresses the sections of version-2 blocks. SpeedBestCompression:
// on a merged block of 16 MiB of generated events with UUID messageIds it
// makes blocks 1.6% smaller than SpeedBetterCompression (39.8 against 40.4
// bytes per event) at 65 MB/s against 100 (BenchmarkMergedBlockSize), and
// that is still twice as fast as version 1 at zstd's best level, since the
// columns are easier to compress than whole bodies. The merger runs in the
// background; bytes on disk stay.
var colEnc = func() *zstd.Encoder {
	e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithEncoderCRC(false), zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(2<<20), zstd.WithLowerEncoderMem(true))
	if err != nil {
		panic("BUG: " + err.Error())
	}
	return e
}()

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
// version-2 block value with codec (codecZstd, or codecNone for tests),
// appended to dst.
func appendColumnarBlock(dst []byte, evs []blockEvent, codec byte) []byte {
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
	return e.encode(dst, evs, codec)
}

func (e *colEncoder) encode(dst []byte, evs []blockEvent, codec byte) []byte {
	h := blockHeader{ver: valueV2, codec: codec, count: len(evs), minTime: evs[0].time, maxTime: evs[len(evs)-1].time, minSeq: evs[0].seq, maxSeq: evs[0].seq}
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

	dst = append(dst, valueV2, codec)
	dst = binary.AppendUvarint(dst, uint64(h.count))
	dst = binary.AppendVarint(dst, h.minTime)
	dst = binary.AppendVarint(dst, h.maxTime)
	dst = binary.AppendUvarint(dst, h.minSeq)
	dst = binary.AppendUvarint(dst, h.maxSeq)
	dst = binary.AppendUvarint(dst, uint64(h.rawLen))
	switch codec {
	case codecZstd:
		// The first section's stored length goes before it: compress it
		// into the tail of dst, then move it behind its lengths.
		mark := len(dst)
		dst = colEnc.EncodeAll(s1, dst)
		c1 := slices.Clone(dst[mark:])
		dst = binary.AppendUvarint(dst[:mark], uint64(len(c1)))
		dst = binary.AppendUvarint(dst, uint64(len(s1)))
		dst = binary.AppendUvarint(dst, uint64(len(s2)))
		dst = append(dst, c1...)
		return colEnc.EncodeAll(s2, dst)
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

// addEvent finds the values of ev to extract and adds its head columns.
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
			if !walkObjectAt(ctx, v.start, func(k, v span) {
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
			}) {
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
		e.whole = append(e.whole, byte(bodyUnparsed+b2i(hasControl(body))*(bodyVerbatim-bodyUnparsed)))
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
			e.etDelta = binary.AppendVarint(e.etDelta, ns-ev.time*1e6)
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
	if e.addTemplate(t, e.vals) {
		for _, v := range e.vals {
			e.cols[v.col] = append(append(e.cols[v.col], sk[v.start:v.end]...), markEnd)
		}
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
		if walkObjectAt(sk[:v.end], v.start, func(k, v2 span) { e.shredMember(sk, k, v2) }) {
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

// addTemplate codes the event's template t, whose value markers are
// vals, and reports whether vals are to be stored (always, but for a
// verbatim body).
func (e *colEncoder) addTemplate(t []byte, vals []colVal) bool {
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
	return true
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
// needs to find the members: strings, brackets, colons and commas.
func walkObject(b []byte, fn func(k, v span)) bool {
	return walkObjectAt(b, 0, fn) && len(b) > 0 && objectEnd(b, 0) == len(b)
}

// walkObjectAt walks the object that starts at b[start]; see walkObject.
func walkObjectAt(b []byte, start int, fn func(k, v span)) bool {
	i := start
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i++
	if i < len(b) && b[i] == '}' {
		return true
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return false
		}
		ke := stringEnd(b, i)
		if ke < 0 || ke >= len(b) || b[ke] != ':' {
			return false
		}
		ve := valueEnd(b, ke+1)
		if ve < 0 || ve >= len(b) {
			return false
		}
		fn(span{i + 1, ke - 1}, span{ke + 1, ve})
		i = ve + 1
		switch b[ve] {
		case ',':
		case '}':
			return true
		default:
			return false
		}
	}
}

// objectEnd returns the index just past the object at b[i], or -1.
func objectEnd(b []byte, i int) int { return valueEnd(b, i) }

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
	dst = append(dst, '-', byte('0'+m/10), byte('0'+m%10), '-', byte('0'+d/10), byte('0'+d%10), 'T',
		byte('0'+sod/36000), byte('0'+sod/3600%10), ':', byte('0'+sod/600%6), byte('0'+sod/60%10), ':', byte('0'+sod%60/10), byte('0'+sod%10))
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

// decompressSection decompresses one section of codec into dst[:0],
// which must come out raw bytes long.
func decompressSection(codec byte, src, dst []byte, raw int) ([]byte, error) {
	var err error
	switch codec {
	case codecNone:
		dst = append(dst[:0], src...)
	case codecZstd:
		dst, err = zdec.DecodeAll(src, dst[:0])
		if err != nil {
			return dst, fmt.Errorf("%w: cannot decompress block: %v", errCorrupt, err)
		}
	case codecS2:
		n, err := s2.DecodedLen(src)
		if err != nil || n != raw {
			return dst, fmt.Errorf("%w: s2 block length", errCorrupt)
		}
		dst, err = s2.Decode(slices.Grow(dst[:0], n)[:n], src)
		if err != nil {
			return dst, fmt.Errorf("%w: cannot decompress block: %v", errCorrupt, err)
		}
	default:
		return dst, fmt.Errorf("%w: unknown block codec %d", errCorrupt, codec)
	}
	if len(dst) != raw {
		return dst, fmt.Errorf("%w: block section is %d bytes, header says %d", errCorrupt, len(dst), raw)
	}
	return dst, nil
}

// take returns the next n bytes, aliasing r.b.
func (r *byteReader) take(n int) []byte {
	if n < 0 || n > len(r.b) {
		if r.err == nil {
			r.err = errCorrupt
		}
		r.b = nil
		return nil
	}
	b := r.b[:n:n]
	r.b = r.b[n:]
	return b
}

// count reads a uvarint that counts items of at least min bytes each in
// what is left, which bounds what is allocated for them.
func (r *byteReader) count(min int) int {
	n := r.uvarint()
	if n > uint64(len(r.b)/min) {
		if r.err == nil {
			r.err = errCorrupt
		}
		r.b = nil
		return 0
	}
	return int(n)
}

// headRun is one receivedAt run of a decoded block.
type headRun struct {
	first uint64
	end   int // of its text in runText
}

// colState is what a decodedBlock holds of a version-2 block besides the
// rebuilt bodies, and the head columns of either version.
type colState struct {
	s1, s2          []byte // the decompressed sections
	evDict, uidDict [][]byte
	evCode, uidCode []uint32
	midKind         []byte
	uuids           []byte // the UUID planes
	midPos          []int  // per event: its UUID's index, or where its string starts in s1
	midEnd          []int
	recvKind        []byte
	recvPos         []int // per event: its run, or where its string starts in s1
	recvEnd         []int
	runs            []headRun
	runText         []byte
	anyBody         bool // some event has a head code that sends readers to its body

	akDict, uaDict [][]byte
	akIdx, uaIdx   []uint32
	etDigits       []byte
	etDelta        []int64
	ips            []byte
	verbatim       [][]byte
	tmplDict       [][]byte
	tmplColOff     []int // template t's columns are tmplColIDs[tmplColOff[t]:tmplColOff[t+1]]
	tmplColIDs     []uint32
	tmplCode       []uint32
	colData        [][]byte
	colPos         []int
	ops            []tmplOp // compileTemplates
	opOff          []int    // template t's ops are ops[opOff[t]:opOff[t+1]]
	tmplHead       []int    // per template: its head markers as bits, or -1 when verbatim
	ctext          []byte   // the compiled templates, back to back
	ctextEnd       []int
	counts         []int32 // bodyOrder's
	dates          dateCache
	order          []int32 // bodyOrder
	stage          []byte  // bodies in section 2's order
	bodyEnd        []int   // per event, in stage

	// Heads scanned from bodies: version 1, or a version-2 block with
	// anyBody. headSpans holds nHead spans per event; end < 0 when the
	// body has no such string.
	fromBodies bool
	headSpans  []span
	midBuf     [36]byte

	// Filtering (decodeWhere).
	keep, evOK, uidOK []bool
	unesc             []byte
}

// decodeSection1 parses the head columns of section 1, d.s1.
func (d *decodedBlock) decodeSection1() error {
	n := d.h.count
	r := byteReader{b: d.s1}
	d.seqs = slices.Grow(d.seqs[:0], n)[:n]
	d.times = slices.Grow(d.times[:0], n)[:n]
	for i := range n {
		d.seqs[i] = d.h.minSeq + r.uvarint()
	}
	t := d.h.minTime
	for i := range n {
		t += int64(r.uvarint())
		d.times[i] = t
	}
	d.anyBody = false
	var err error
	d.evDict = r.dictEntries(d.evDict)
	d.evCode, err = r.headCodes(d.evCode, n, len(d.evDict), &d.anyBody)
	if err != nil {
		return err
	}
	d.uidDict = r.dictEntries(d.uidDict)
	d.uidCode, err = r.headCodes(d.uidCode, n, len(d.uidDict), &d.anyBody)
	if err != nil {
		return err
	}
	d.midKind = r.take(n)
	d.midPos = slices.Grow(d.midPos[:0], n)[:n]
	d.midEnd = slices.Grow(d.midEnd[:0], n)[:n]
	nUUID := 0
	for _, k := range d.midKind {
		switch k {
		case midUUID, midUUIDUpper:
			nUUID++
		case midBody:
			d.anyBody = true
		case midAbsent, midString, midGenerated:
		default:
			return fmt.Errorf("%w: messageId kind %d", errCorrupt, k)
		}
	}
	d.uuids = r.take(16 * nUUID)
	base := len(d.s1)
	u := 0
	for i, k := range d.midKind {
		switch k {
		case midUUID, midUUIDUpper:
			d.midPos[i] = u
			u++
		case midString:
			l := r.uvarint()
			if l > uint64(len(r.b)) {
				return fmt.Errorf("%w: messageId length", errCorrupt)
			}
			p := base - len(r.b)
			r.take(int(l))
			d.midPos[i], d.midEnd[i] = p, p+int(l)
		}
	}

	d.recvKind = r.take(n)
	d.recvPos = slices.Grow(d.recvPos[:0], n)[:n]
	d.recvEnd = slices.Grow(d.recvEnd[:0], n)[:n]
	nruns := r.count(3)
	d.runs = d.runs[:0]
	d.runText = d.runText[:0]
	first, ns := d.h.minSeq, int64(0)
	for j := range nruns {
		delta := r.uvarint()
		if j > 0 && delta == 0 {
			return fmt.Errorf("%w: receivedAt runs", errCorrupt)
		}
		first += delta
		ns += r.varint()
		digits := r.take(1)
		if len(digits) == 0 || digits[0] > 9 {
			return fmt.Errorf("%w: receivedAt digits", errCorrupt)
		}
		d.runText = appendRFC3339(d.runText, ns, int(digits[0]))
		d.runs = append(d.runs, headRun{first: first, end: len(d.runText)})
	}
	for i, k := range d.recvKind {
		switch k {
		case recvAbsent:
		case recvBody:
			d.anyBody = true
		case recvRun:
			seq := d.seqs[i]
			j, found := slices.BinarySearchFunc(d.runs, seq, func(r headRun, seq uint64) int {
				if r.first < seq {
					return -1
				}
				if r.first > seq {
					return 1
				}
				return 0
			})
			if !found {
				j--
			}
			if j < 0 {
				return fmt.Errorf("%w: receivedAt of seq %d before the first run", errCorrupt, seq)
			}
			d.recvPos[i] = j
		case recvString:
			l := r.uvarint()
			if l > uint64(len(r.b)) {
				return fmt.Errorf("%w: receivedAt length", errCorrupt)
			}
			p := base - len(r.b)
			r.take(int(l))
			d.recvPos[i], d.recvEnd[i] = p, p+int(l)
		default:
			return fmt.Errorf("%w: receivedAt kind %d", errCorrupt, k)
		}
	}
	if r.err != nil || len(r.b) != 0 {
		return fmt.Errorf("%w: block head columns", errCorrupt)
	}
	return nil
}

// dictEntries reads a dict into dst[:0]; the entries alias r.b.
func (r *byteReader) dictEntries(dst [][]byte) [][]byte {
	n := r.count(1)
	dst = slices.Grow(dst[:0], n)[:n]
	// The lengths come first: remember where they start, check that they
	// fit, then slice the strings.
	lens := r.b
	total := uint64(0)
	for range n {
		l := r.uvarint()
		total += l
		if r.err != nil || l > uint64(len(r.b)) || total > uint64(len(r.b)) {
			r.err, r.b = errCorrupt, nil
			return dst[:0]
		}
	}
	lr := byteReader{b: lens}
	for i := range n {
		dst[i] = r.take(int(lr.uvarint()))
	}
	return dst
}

// headCodes reads n head codes into dst[:0], checking them against a dict
// of size entries; it sets *anyBody when one is codeBody.
func (r *byteReader) headCodes(dst []uint32, n, size int, anyBody *bool) ([]uint32, error) {
	dst = slices.Grow(dst[:0], n)[:n]
	for i := range dst {
		c := r.uvarint()
		if c >= uint64(codeDict+size) {
			return dst, fmt.Errorf("%w: head code %d of a dict of %d", errCorrupt, c, size)
		}
		if c == codeBody {
			*anyBody = true
		}
		dst[i] = uint32(c)
	}
	return dst, r.err
}

// loadSection1 decompresses and parses section 1 of a version-2 payload.
func (d *decodedBlock) loadSection1(payload []byte) error {
	var err error
	d.s1, err = decompressSection(d.h.codec, payload[:d.h.s1Len], d.s1, d.h.s1Raw)
	if err != nil {
		return err
	}
	return d.decodeSection1()
}

// loadSection2 decompresses and parses the columns of section 2.
func (d *decodedBlock) loadSection2(payload []byte) error {
	var err error
	d.s2, err = decompressSection(d.h.codec, payload[d.h.s1Len:], d.s2, d.h.s2Raw)
	if err != nil {
		return err
	}
	r := byteReader{b: d.s2}
	d.akDict = r.dictEntries(d.akDict)
	d.akIdx, err = r.dictIndexes(d.akIdx, len(d.akDict))
	if err != nil {
		return err
	}
	d.uaDict = r.dictEntries(d.uaDict)
	d.uaIdx, err = r.dictIndexes(d.uaIdx, len(d.uaDict))
	if err != nil {
		return err
	}
	n := r.count(2)
	d.etDigits = r.take(n)
	d.etDelta = slices.Grow(d.etDelta[:0], n)[:n]
	for i := range n {
		if d.etDigits[i] > 9 {
			return fmt.Errorf("%w: eventTime digits", errCorrupt)
		}
		d.etDelta[i] = r.varint()
	}
	d.ips = r.take(4 * r.count(4))
	n = r.count(1)
	d.verbatim = slices.Grow(d.verbatim[:0], n)[:n]
	for i := range n {
		l := r.uvarint()
		if l > uint64(len(r.b)) {
			return fmt.Errorf("%w: verbatim body length", errCorrupt)
		}
		d.verbatim[i] = r.take(int(l))
	}
	d.tmplDict = r.dictEntries(d.tmplDict)
	d.tmplColOff = append(d.tmplColOff[:0], 0)
	d.tmplColIDs = d.tmplColIDs[:0]
	for range d.tmplDict {
		k := r.count(1)
		for range k {
			d.tmplColIDs = append(d.tmplColIDs, uint32(min(r.uvarint(), 1<<32-1)))
		}
		d.tmplColOff = append(d.tmplColOff, len(d.tmplColIDs))
	}
	d.tmplCode = slices.Grow(d.tmplCode[:0], d.h.count)[:d.h.count]
	for i := range d.tmplCode {
		c := r.uvarint()
		if c >= uint64(len(d.tmplDict)) {
			return fmt.Errorf("%w: template %d of %d", errCorrupt, c, len(d.tmplDict))
		}
		d.tmplCode[i] = uint32(c)
	}
	d.colData = r.dictEntries(d.colData)
	for _, c := range d.tmplColIDs {
		if c >= uint32(len(d.colData)) {
			return fmt.Errorf("%w: column %d of %d", errCorrupt, c, len(d.colData))
		}
	}
	d.colPos = slices.Grow(d.colPos[:0], len(d.colData))[:len(d.colData)]
	clear(d.colPos)
	if r.err != nil || len(r.b) != 0 {
		return fmt.Errorf("%w: block body columns", errCorrupt)
	}
	return d.compileTemplates()
}

// tmplOp is one marker of a compiled template: the text before it is
// ctext[start:lit], where start is the previous op's lit.
type tmplOp struct {
	lit  int
	mark byte
}

// compileTemplates checks the templates once per block and turns each into
// its markers, so that rebuilding a body does not scan its template.
func (d *decodedBlock) compileTemplates() error {
	d.ops, d.opOff = d.ops[:0], append(d.opOff[:0], 0)
	d.tmplHead = d.tmplHead[:0]
	// The compiled text of each template holds the quotes around the
	// values of markers other than markValue.
	d.ctext, d.ctextEnd = d.ctext[:0], d.ctextEnd[:0]
	for t, tm := range d.tmplDict {
		head, values := 0, 0
		verbatim := len(tm) == 1 && tm[0] == markVerbatim
		p := 0
		for !verbatim {
			j := controlIndex(tm[p:])
			if j < 0 {
				break
			}
			m := tm[p+j]
			switch {
			case m == markEvent || m == markUserID || m == markMessageID || m == markReceivedAt:
				if head&(1<<m) != 0 {
					return fmt.Errorf("%w: template %d repeats marker %d", errCorrupt, t, m)
				}
				head |= 1 << m
			case m == markValue:
				values++
			case m == markAppKey || m == markEventTime || m == markUserAgent || m == markIP:
			default:
				return fmt.Errorf("%w: template %d has marker %d", errCorrupt, t, m)
			}
			d.ctext = append(d.ctext, tm[p:p+j]...)
			if m != markValue {
				d.ctext = append(d.ctext, '"')
			}
			d.ops = append(d.ops, tmplOp{lit: len(d.ctext), mark: m})
			if m != markValue {
				d.ctext = append(d.ctext, '"')
			}
			p += j + 1
		}
		if !verbatim {
			d.ctext = append(d.ctext, tm[p:]...)
		}
		d.ctextEnd = append(d.ctextEnd, len(d.ctext))
		if values != d.tmplColOff[t+1]-d.tmplColOff[t] {
			return fmt.Errorf("%w: template %d has %d values for %d columns", errCorrupt, t, values, d.tmplColOff[t+1]-d.tmplColOff[t])
		}
		if verbatim {
			head = -1
		}
		d.opOff = append(d.opOff, len(d.ops))
		d.tmplHead = append(d.tmplHead, head)
	}
	return nil
}

// dictIndexes reads a count and that many indexes into a dict of size
// entries.
func (r *byteReader) dictIndexes(dst []uint32, size int) ([]uint32, error) {
	n := r.count(1)
	dst = slices.Grow(dst[:0], n)[:n]
	for i := range dst {
		c := r.uvarint()
		if c >= uint64(size) {
			return dst, fmt.Errorf("%w: index %d of a dict of %d", errCorrupt, c, size)
		}
		dst[i] = uint32(c)
	}
	return dst, r.err
}

// decodeV2 decodes a version-2 payload: every event when f is nil, else
// the events f keeps.
func (d *decodedBlock) decodeV2(payload []byte, f *Filter) error {
	if err := d.loadSection1(payload); err != nil {
		return err
	}
	var keep []bool
	if f != nil && !d.anyBody {
		keep = d.keepFromColumns(f)
		if keep == nil {
			d.setEmpty()
			return nil // no event matches: section 2 is not read
		}
	}
	if err := d.loadSection2(payload); err != nil {
		return err
	}
	if err := d.rebuild(keep); err != nil {
		return err
	}
	if f != nil && d.anyBody {
		d.scanHeads()
		d.compact(f)
	}
	return nil
}

func (d *decodedBlock) setEmpty() {
	d.h.count = 0
	d.seqs, d.times, d.ends, d.body = d.seqs[:0], d.times[:0], d.ends[:0], d.raw[:0]
}

// rebuild writes the bodies of a version-2 block from its skeletons and
// columns into d.raw. With keep, only the events keep marks stay, and the
// others are dropped from seqs and times too.
func (d *decodedBlock) rebuild(keep []bool) error {
	n := d.h.count
	// Bodies are rebuilt in section 2's order into stage, then copied in
	// event order into raw.
	out := slices.Grow(d.stage[:0], min(d.h.rawLen, 4*(d.h.s1Raw+d.h.s2Raw)))
	d.order, d.counts = bodyOrder(d.order, d.counts, d.uidCode, nil, len(d.uidDict))
	d.bodyEnd = slices.Grow(d.bodyEnd[:0], n)[:n]
	var ak, ua, et, ip, vb int
	for k, i32 := range d.order {
		i := int(i32)
		// The head markers the event's codes announce, and those seen.
		want := 0
		if d.evCode[i] >= codeDict {
			want |= 1 << markEvent
		}
		if d.uidCode[i] >= codeDict {
			want |= 1 << markUserID
		}
		if d.midKind[i] >= midString {
			want |= 1 << markMessageID
		}
		if d.recvKind[i] >= recvString {
			want |= 1 << markReceivedAt
		}
		t := d.tmplCode[k]
		if d.tmplHead[t] < 0 {
			if vb == len(d.verbatim) || d.evCode[i] != codeBody || d.uidCode[i] != codeBody ||
				d.midKind[i] != midBody || d.recvKind[i] != recvBody {
				return fmt.Errorf("%w: verbatim body", errCorrupt)
			}
			out = append(out, d.verbatim[vb]...)
			vb++
			if len(out) > d.h.rawLen {
				return fmt.Errorf("%w: bodies beyond the block's %d bytes", errCorrupt, d.h.rawLen)
			}
			d.bodyEnd[i] = len(out)
			continue
		}
		if d.tmplHead[t] != want {
			return fmt.Errorf("%w: template %d does not hold event %d's head values", errCorrupt, t, i)
		}
		cols := d.tmplColIDs[d.tmplColOff[t]:d.tmplColOff[t+1]]
		p := 0
		if t > 0 {
			p = d.ctextEnd[t-1]
		}
		ct := d.ctext
		for _, op := range d.ops[d.opOff[t]:d.opOff[t+1]] {
			out = append(out, ct[p:op.lit]...)
			p = op.lit
			if op.mark == markValue {
				c := cols[0]
				cols = cols[1:]
				col, pos := d.colData[c], d.colPos[c]
				e := pos
				for e < len(col) && col[e] != markEnd {
					e++
				}
				if e == len(col) {
					return fmt.Errorf("%w: column %d", errCorrupt, c)
				}
				out = append(out, col[pos:e]...)
				d.colPos[c] = e + 1
				continue
			}
			switch op.mark {
			case markEvent:
				out = append(out, d.evDict[d.evCode[i]-codeDict]...)
			case markUserID:
				out = append(out, d.uidDict[d.uidCode[i]-codeDict]...)
			case markMessageID:
				out = d.appendMessageID(out, i)
			case markReceivedAt:
				out = append(out, d.receivedAt(i)...)
			case markAppKey:
				if ak == len(d.akIdx) {
					return fmt.Errorf("%w: appKey column", errCorrupt)
				}
				out = append(out, d.akDict[d.akIdx[ak]]...)
				ak++
			case markUserAgent:
				if ua == len(d.uaIdx) {
					return fmt.Errorf("%w: userAgent column", errCorrupt)
				}
				out = append(out, d.uaDict[d.uaIdx[ua]]...)
				ua++
			case markEventTime:
				if et == len(d.etDigits) {
					return fmt.Errorf("%w: eventTime column", errCorrupt)
				}
				out = d.dates.append(out, d.times[i]*1e6+d.etDelta[et], int(d.etDigits[et]))
				et++
			case markIP:
				if ip == len(d.ips)/4 {
					return fmt.Errorf("%w: ip column", errCorrupt)
				}
				out = appendIPv4(out, d.ips[4*ip:])
				ip++
			}
		}
		out = append(out, ct[p:d.ctextEnd[t]]...)
		if len(out) > d.h.rawLen {
			return fmt.Errorf("%w: bodies beyond the block's %d bytes", errCorrupt, d.h.rawLen)
		}
		d.bodyEnd[i] = len(out)
	}
	if ak != len(d.akIdx) || ua != len(d.uaIdx) || et != len(d.etDigits) || ip != len(d.ips)/4 || vb != len(d.verbatim) {
		return fmt.Errorf("%w: block columns", errCorrupt)
	}
	for c, pos := range d.colPos {
		if pos != len(d.colData[c]) {
			return fmt.Errorf("%w: column %d", errCorrupt, c)
		}
	}
	if len(out) != d.h.rawLen {
		return fmt.Errorf("%w: bodies are %d bytes, header says %d", errCorrupt, len(out), d.h.rawLen)
	}
	d.stage = out
	// Each body starts where the one before it in section 2's order ends.
	raw := slices.Grow(d.raw[:0], len(out))
	d.ends = slices.Grow(d.ends[:0], n)[:n]
	prev := 0
	for _, i := range d.order {
		d.ends[i], prev = prev, d.bodyEnd[i] // ends holds the starts for now
	}
	w := 0
	for i := range n {
		if keep != nil && !keep[i] {
			continue
		}
		raw = append(raw, out[d.ends[i]:d.bodyEnd[i]]...)
		d.seqs[w], d.times[w] = d.seqs[i], d.times[i]
		d.ends[w] = len(raw)
		w++
	}
	d.raw, d.body = raw, raw
	d.h.count = w
	d.seqs, d.times, d.ends = d.seqs[:w], d.times[:w], d.ends[:w]
	return nil
}

// appendMessageID appends the messageId of event i of a version-2 block
// held in its columns, without quotes.
func (d *decodedBlock) appendMessageID(dst []byte, i int) []byte {
	switch d.midKind[i] {
	case midString:
		return append(dst, d.s1[d.midPos[i]:d.midEnd[i]]...)
	case midUUID, midUUIDUpper:
		return appendUUID(dst, d.uuids[16*d.midPos[i]:], d.midKind[i] == midUUIDUpper)
	case midGenerated:
		return appendGeneratedID(dst, d.seqs[i])
	}
	return dst
}

// receivedAt returns the receivedAt of event i of a version-2 block held
// in its columns, without quotes, aliasing d.
func (d *decodedBlock) receivedAt(i int) []byte {
	switch d.recvKind[i] {
	case recvString:
		return d.s1[d.recvPos[i]:d.recvEnd[i]]
	case recvRun:
		j := d.recvPos[i]
		start := 0
		if j > 0 {
			start = d.runs[j-1].end
		}
		return d.runText[start:d.runs[j].end]
	}
	return nil
}

// eventHead is what decodeHead yields of one event. Each string is the
// bytes between the quotes of the event's top-level JSON string member of
// that name (the last one when it is repeated), escapes kept, exactly as
// stored; it is nil when the body has no such member or its value is not a
// string.
type eventHead struct {
	seq                                  uint64
	time                                 int64
	event, userID, messageID, receivedAt []byte
}

// decodeHead decodes what head returns of each event of a block value,
// reading only section 1 of a version-2 block. A version-1 block (or a
// version-2 block some of whose head values are only in the bodies) is
// decoded whole and its bodies' heads are scanned.
func (d *decodedBlock) decodeHead(v []byte) error {
	h, payload, err := decodeBlockHeader(v)
	if err != nil {
		return err
	}
	if h.ver == valueV1 {
		if err := d.decode(v); err != nil {
			return err
		}
		d.scanHeads()
		return nil
	}
	d.h = h
	d.fromBodies = false
	if err := d.loadSection1(payload); err != nil {
		return err
	}
	if d.anyBody {
		if err := d.loadSection2(payload); err != nil {
			return err
		}
		if err := d.rebuild(nil); err != nil {
			return err
		}
		d.scanHeads()
	}
	return nil
}

// head returns the head of event i after decodeHead. Its slices are
// borrowed: they are valid until the next head call or the next decode
// into d.
func (d *decodedBlock) head(i int) eventHead {
	h := eventHead{seq: d.seqs[i], time: d.times[i]}
	if d.fromBodies {
		body := d.bodyOf(i)
		sp := d.headSpans[i*nHead : i*nHead+nHead]
		str := func(s span) []byte {
			if s.end < 0 {
				return nil
			}
			return body[s.start:s.end:s.end]
		}
		h.event, h.userID, h.messageID, h.receivedAt = str(sp[hEvent]), str(sp[hUserID]), str(sp[hMessageID]), str(sp[hReceivedAt])
		return h
	}
	if c := d.evCode[i]; c >= codeDict {
		h.event = d.evDict[c-codeDict]
	}
	if c := d.uidCode[i]; c >= codeDict {
		h.userID = d.uidDict[c-codeDict]
	}
	if d.midKind[i] >= midString {
		h.messageID = d.appendMessageID(d.midBuf[:0], i)
	}
	if d.recvKind[i] >= recvString {
		h.receivedAt = d.receivedAt(i)
	}
	return h
}

func (d *decodedBlock) bodyOf(i int) []byte {
	start := 0
	if i > 0 {
		start = d.ends[i-1]
	}
	return d.body[start:d.ends[i]]
}

// scanHeads fills headSpans from the bodies.
func (d *decodedBlock) scanHeads() {
	n := d.h.count
	d.headSpans = slices.Grow(d.headSpans[:0], n*nHead)[:n*nHead]
	for i := range n {
		scanHead(d.bodyOf(i), d.headSpans[i*nHead:i*nHead+nHead])
	}
	d.fromBodies = true
}

// scanHead finds the head fields of body: into sp, for each, the span of
// the string of the last top-level member of that name, or an end of -1.
// A body that is not one compact JSON object has none.
func scanHead(body []byte, sp []span) {
	found := [nHead]span{{0, -1}, {0, -1}, {0, -1}, {0, -1}}
	if walkObject(body, func(k, v span) {
		if f := headField(body[k.start:k.end]); f >= 0 {
			if isString(body, v) {
				found[f] = span{v.start + 1, v.end - 1}
			} else {
				found[f] = span{0, -1}
			}
		}
	}) {
		copy(sp, found[:])
		return
	}
	copy(sp, []span{{0, -1}, {0, -1}, {0, -1}, {0, -1}})
}

// keepFromColumns returns which events f keeps, judged from the head
// columns alone (d.anyBody must be false), or nil when it keeps none.
func (d *decodedBlock) keepFromColumns(f *Filter) []bool {
	// Each dict entry is judged once; events then cost an index lookup.
	d.evOK = f.judgeDict(d.evOK, d.evDict, &d.unesc, func(s []byte) bool { return f.Events == nil || f.Events[string(s)] })
	d.uidOK = f.judgeDict(d.uidOK, d.uidDict, &d.unesc, f.keepUserID)
	evAbsent := f.Events == nil || f.Events[""]
	uidAbsent := f.keepUserID(nil)
	n := d.h.count
	d.keep = slices.Grow(d.keep[:0], n)[:n]
	any := false
	for i := range n {
		ok := evAbsent
		if c := d.evCode[i]; c >= codeDict {
			ok = d.evOK[c-codeDict]
		}
		if ok {
			ok = uidAbsent
			if c := d.uidCode[i]; c >= codeDict {
				ok = d.uidOK[c-codeDict]
			}
		}
		d.keep[i] = ok
		any = any || ok
	}
	if !any {
		return nil
	}
	return d.keep
}

// compact drops the events f does not keep, judged from the heads that
// scanHeads found in the bodies.
func (d *decodedBlock) compact(f *Filter) {
	w, end := 0, 0
	for i := range d.h.count {
		body := d.bodyOf(i)
		sp := d.headSpans[i*nHead : i*nHead+nHead]
		var ev, uid []byte
		if s := sp[hEvent]; s.end >= 0 {
			ev = body[s.start:s.end]
		}
		if s := sp[hUserID]; s.end >= 0 {
			uid = body[s.start:s.end]
		}
		if !f.keepHead(ev, uid, &d.unesc) {
			continue
		}
		end += copy(d.body[end:], body)
		d.seqs[w], d.times[w], d.ends[w] = d.seqs[i], d.times[i], end
		copy(d.headSpans[w*nHead:], sp)
		w++
	}
	d.h.count = w
	d.seqs, d.times, d.ends, d.body = d.seqs[:w], d.times[:w], d.ends[:w], d.body[:end]
}

// decodeWhere decodes the events of a block value that f keeps. A
// version-2 block none of whose head values f keeps is not read past its
// first section.
func (d *decodedBlock) decodeWhere(v []byte, f *Filter) error {
	if f.all() {
		return d.decode(v)
	}
	h, payload, err := decodeBlockHeader(v)
	if err != nil {
		return err
	}
	if h.ver == valueV1 {
		if err := d.decode(v); err != nil {
			return err
		}
		d.scanHeads()
		d.compact(f)
		return nil
	}
	d.h = h
	d.fromBodies = false
	return d.decodeV2(payload, f)
}

// unescapeJSON appends the JSON string contents s, unescaped, to dst. An
// escape that is not valid JSON is copied as it is.
func unescapeJSON(dst, s []byte) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			dst = append(dst, c)
			continue
		}
		i++
		switch c = s[i]; c {
		case '"', '\\', '/':
			dst = append(dst, c)
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(s[i+1:])
			if !ok {
				dst = append(dst, '\\', c)
				continue
			}
			i += 4
			if utf16.IsSurrogate(r) {
				r2, ok := rune(0), false
				if i+2 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' {
					r2, ok = hex4(s[i+3:])
				}
				if p := utf16.DecodeRune(r, r2); ok && p != utf8.RuneError {
					r = p
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
		default:
			dst = append(dst, '\\', c)
		}
	}
	return dst
}

func hex4(s []byte) (rune, bool) {
	if len(s) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range s[:4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
