package storage

// Reading columnar block values, versions 2 and 4 (colblock.go has the
// layout): whole (decode), by head (decodeHead), and filtered (decodeWhere).

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/klauspost/compress/s2"
)

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

// colState is what a decodedBlock holds of a columnar block besides the
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
	colPos, colEnd []int    // offsets in s2
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

	// Heads scanned from bodies: a row block, or a columnar block with
	// anyBody. headSpans holds nHead spans per event; end < 0 when the
	// body has no such string.
	fromBodies bool
	headSpans  []span
	midBuf     [36]byte

	// Filtering (decodeWhere).
	keep, evOK, uidOK []bool
	uidGone           []bool   // the dict's deleted users (keepFromColumns)
	uidBound          []uint64 // and their bounds
	unesc             []byte
}

// decodeSection1 parses the head columns of section 1, d.s1. It is one
// pass over the section, column after column in the order they are
// written (colEncoder.encode), which is why it is one long function.
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
		t += int64(r.uvarint()) * d.h.unit
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

// loadSection1 decompresses and parses section 1 of a columnar payload.
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
	if r.err != nil || len(r.b) != 0 {
		return fmt.Errorf("%w: block body columns", errCorrupt)
	}
	// The columns end section 2; each one's reading position and end are
	// kept as offsets in it.
	n = len(d.colData)
	d.colPos = slices.Grow(d.colPos[:0], n)[:n]
	d.colEnd = slices.Grow(d.colEnd[:0], n)[:n]
	end := len(d.s2)
	for c := n - 1; c >= 0; c-- {
		d.colEnd[c] = end
		end -= len(d.colData[c])
		d.colPos[c] = end
	}
	return d.compileTemplates()
}

// tmplOp is one marker of a compiled template: the text before it is
// ctext[start:lit], where start is the previous op's lit.
type tmplOp struct {
	lit  int32
	col  int32 // markValue's column
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
			op := tmplOp{lit: int32(len(d.ctext)), mark: m}
			if m == markValue {
				if k := d.tmplColOff[t] + values - 1; k < d.tmplColOff[t+1] {
					op.col = int32(d.tmplColIDs[k])
				}
			}
			d.ops = append(d.ops, op)
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

// decodeV2 decodes a columnar payload: every event when f is nil, else
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
	d.seqs, d.times, d.starts, d.ends, d.body = d.seqs[:0], d.times[:0], d.starts[:0], d.ends[:0], d.raw[:0]
}

// rebuild writes the bodies of a columnar block from its templates and
// columns into d.stage, in section 2's order, and points starts and ends
// at them (no copy into event order: an export copies each body once,
// into its response). With keep, only the events keep marks stay, and the
// others are dropped from seqs and times too.
//
// It is long on purpose: it is the per-event loop of every columnar export
// (W4), and its cursors into the ~25 columns stay in locals rather than
// travel through calls for each of the block's events.
func (d *decodedBlock) rebuild(keep []bool) error {
	n := d.h.count
	out := slices.Grow(d.stage[:0], min(d.h.rawLen, 4*(d.h.s1Raw+d.h.s2Raw))+16) // +16: appendShort's room
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
		p := 0
		if t > 0 {
			p = d.ctextEnd[t-1]
		}
		ct, s2 := d.ctext, d.s2
		for _, op := range d.ops[d.opOff[t]:d.opOff[t+1]] {
			out = appendShort(out, ct, p, int(op.lit))
			p = int(op.lit)
			if op.mark == markValue {
				pos := d.colPos[op.col]
				e := zeroIndex(s2, pos)
				if e < 0 || e >= d.colEnd[op.col] {
					return fmt.Errorf("%w: column %d", errCorrupt, op.col)
				}
				out = appendShort(out, s2, pos, e)
				d.colPos[op.col] = e + 1
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
				// The column holds ns less the time in ns; a version-2
				// time of ms, read as ms × 1000 µs, is the same ns.
				out = d.dates.append(out, d.times[i]*1e3+d.etDelta[et], int(d.etDigits[et]))
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
		if pos != d.colEnd[c] {
			return fmt.Errorf("%w: column %d", errCorrupt, c)
		}
	}
	if len(out) != d.h.rawLen {
		return fmt.Errorf("%w: bodies are %d bytes, header says %d", errCorrupt, len(out), d.h.rawLen)
	}
	// Each body starts where the one before it in section 2's order ends;
	// the bodies stay where they were rebuilt, in that order.
	d.stage, d.body = out, out
	d.starts = slices.Grow(d.starts[:0], n)[:n]
	prev := 0
	for _, i := range d.order {
		d.starts[i], prev = prev, d.bodyEnd[i]
	}
	d.ends, d.bodyEnd = d.bodyEnd[:n], d.ends
	w := 0
	for i := range n {
		if keep != nil && !keep[i] {
			continue
		}
		d.seqs[w], d.times[w], d.starts[w], d.ends[w] = d.seqs[i], d.times[i], d.starts[i], d.ends[i]
		w++
	}
	d.h.count = w
	d.seqs, d.times, d.starts, d.ends = d.seqs[:w], d.times[:w], d.starts[:w], d.ends[:w]
	return nil
}

// appendMessageID appends the messageId of event i of a columnar block
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

// receivedAt returns the receivedAt of event i of a columnar block held
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
// reading only section 1 of a columnar block. A row block (or a
// columnar block some of whose head values are only in the bodies) is
// decoded whole and its bodies' heads are scanned.
func (d *decodedBlock) decodeHead(v []byte) error {
	h, payload, columnar, err := d.openColumnar(v)
	if err != nil || !columnar {
		return err
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

// openColumnar reads the header of block value v. A columnar block is
// left for the caller to read (columnar true, with its header and
// payload); a row block is decoded whole here, its bodies' heads scanned.
func (d *decodedBlock) openColumnar(v []byte) (h blockHeader, payload []byte, columnar bool, err error) {
	if h, payload, err = decodeBlockHeader(v); err != nil || h.columnar() {
		return h, payload, err == nil, err
	}
	if err := d.decode(v); err != nil {
		return h, nil, false, err
	}
	d.scanHeads()
	return h, nil, false, nil
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
	switch d.midKind[i] {
	case midString:
		h.messageID = d.s1[d.midPos[i]:d.midEnd[i]:d.midEnd[i]]
	case midUUID, midUUIDUpper, midGenerated:
		h.messageID = d.appendMessageID(d.midBuf[:0], i) // 36 bytes at most
	}
	if d.recvKind[i] >= recvString {
		h.receivedAt = d.receivedAt(i)
	}
	return h
}

func (d *decodedBlock) bodyOf(i int) []byte {
	return d.body[d.start(i):d.ends[i]]
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
	d.uidOK = f.judgeDict(d.uidOK, d.uidDict, &d.unesc, f.wantUserID)
	// A deleted user's entry holds the bound up to which their events go.
	d.uidGone = slices.Grow(d.uidGone[:0], len(d.uidDict))[:len(d.uidDict)]
	d.uidBound = slices.Grow(d.uidBound[:0], len(d.uidDict))[:len(d.uidDict)]
	for j, u := range d.uidDict {
		d.uidBound[j], d.uidGone[j] = f.Exclude[string(unescaped(u, &d.unesc))]
	}
	evAbsent := f.Events == nil || f.Events[""]
	uidAbsent := f.wantUserID(nil)
	n := d.h.count
	d.keep = slices.Grow(d.keep[:0], n)[:n]
	any := false
	for i := range n {
		ok := evAbsent
		if c := d.evCode[i]; c >= codeDict {
			ok = d.evOK[c-codeDict]
		}
		if ok {
			if c := d.uidCode[i]; c >= codeDict {
				ok = d.uidOK[c-codeDict] && !(d.uidGone[c-codeDict] && d.seqs[i] <= d.uidBound[c-codeDict])
			} else {
				ok = uidAbsent && !f.excludes(nil, d.seqs[i])
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
		if !f.keepHead(ev, uid, d.seqs[i], &d.unesc) {
			continue
		}
		if len(d.starts) > 0 {
			// Bodies out of event order stay where they are.
			d.starts[w], d.ends[w] = d.starts[i], d.ends[i]
		} else {
			end += copy(d.body[end:], body)
			d.ends[w] = end
		}
		d.seqs[w], d.times[w] = d.seqs[i], d.times[i]
		copy(d.headSpans[w*nHead:], sp)
		w++
	}
	d.h.count = w
	d.seqs, d.times, d.ends = d.seqs[:w], d.times[:w], d.ends[:w]
	if len(d.starts) > 0 {
		d.starts = d.starts[:w]
	} else {
		d.body = d.body[:end]
	}
}

// decodeWhere decodes the events of a block value that f keeps. A
// columnar block none of whose head values f keeps is not read past its
// first section.
func (d *decodedBlock) decodeWhere(v []byte, f *Filter) error {
	if f.all() {
		return d.decode(v)
	}
	h, payload, columnar, err := d.openColumnar(v)
	if err != nil {
		return err
	}
	if !columnar {
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

// zeroIndex returns the index of the first 0x00 in b at or after i, or -1.
func zeroIndex(b []byte, i int) int {
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		// The lowest flagged byte is the first zero; borrows only flag
		// bytes above it.
		if m := (x - 0x0101010101010101) &^ x & 0x8080808080808080; m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for ; i < len(b); i++ {
		if b[i] == 0 {
			return i
		}
	}
	return -1
}

// appendShort appends src[p:q] to dst, copying 16 bytes with two loads
// and stores when the copy is that short and both sides have room, as
// most literals and values of a template are: cheaper than memmove's call.
func appendShort(dst, src []byte, p, q int) []byte {
	n := len(dst)
	if l := q - p; l >= 0 && l <= 16 && p+16 <= len(src) && n+16 <= cap(dst) {
		o := dst[n : n+16]
		binary.LittleEndian.PutUint64(o, binary.LittleEndian.Uint64(src[p:]))
		binary.LittleEndian.PutUint64(o[8:], binary.LittleEndian.Uint64(src[p+8:]))
		return dst[:n+l]
	}
	return append(dst, src[p:q]...)
}
