package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"trove/bench"
)

// colBaseMs is 2026-10-01T00:00:00Z.
const colBaseMs = 1_790_812_800_000

// storedForm appends the stored form of a generated event as ingest makes
// it (ingest/event.go): the client's members, context.ip from the
// connection when the client sent none, receivedAt, then a generated
// messageId when the client sent none.
func storedForm(dst, ev []byte, seq uint64, receivedAt, connIP string) []byte {
	hasID := bytes.Contains(ev, []byte(`"messageId":`))
	ev = ev[:len(ev)-1] // the closing brace
	const ctxKey, ctxEnd = `"context":{`, `},"attributes":`
	if c := bytes.Index(ev, []byte(ctxKey)); c >= 0 {
		if e := bytes.Index(ev[c:], []byte(ctxEnd)); e >= 0 && !bytes.Contains(ev[c:c+e], []byte(`"ip":`)) {
			dst = append(dst, ev[:c+e]...)
			dst = append(dst, `,"ip":"`+connIP+`"`...)
			ev = ev[c+e:]
		}
	}
	dst = append(dst, ev...)
	dst = append(dst, `,"receivedAt":"`+receivedAt+`"`...)
	if !hasID {
		dst = fmt.Appendf(dst, `,"messageId":"trv-%016x"`, seq)
	}
	return append(dst, '}')
}

// generatedStored returns the stored forms of n generated events in ingest
// order, as requests of 500 events would store them: one receivedAt and
// one connection address per request.
func generatedStored(tb testing.TB, n int, messageIDs bool) []blockEvent {
	g := bench.NewGenerator(7, benchAppKey).WithMessageIDs(messageIDs)
	evs := make([]blockEvent, n)
	var ev []byte
	for i := range evs {
		req := i / 500
		recv := time.UnixMilli(colBaseMs + int64(req)*137).UTC().Format("2006-01-02T15:04:05.000Z")
		ip := fmt.Sprintf("10.1.%d.%d", req%7, req%50+1)
		ev = g.AppendEvent(ev[:0])
		seq := uint64(1000 + i)
		evs[i] = blockEvent{seq: seq, time: eventTimeOf(tb, ev), body: storedForm(nil, ev, seq, recv, ip)}
	}
	return evs
}

// generatedBlockEvents returns n generated stored events sorted as a block
// holds them.
func generatedBlockEvents(tb testing.TB, n int, messageIDs bool) []blockEvent {
	evs := generatedStored(tb, n, messageIDs)
	sortBlockEvents(evs)
	return evs
}

// oddBodies are stored bodies that exercise every path of the columnar
// encoding that generated events do not.
var oddBodies = []string{
	// Escapes and unicode in the extracted values.
	`{"type":"event","event":"caf\u00e9 \"quoted\"","userId":"u\\1\/2","eventTime":"2026-10-01T00:00:00.123Z","appKey":"k\"ey","context":{"userAgent":"Mozilla \"x\" \u2603","ip":"1.2.3.4"},"receivedAt":"2026-10-01T00:00:01.000Z","messageId":"a\"b"}`,
	`{"type":"event","event":"日本語","userId":"ü☃😀","eventTime":"2026-10-01T00:00:00Z","appKey":"ключ","context":{"userAgent":"𝄞"},"receivedAt":"2026-10-01T00:00:01.000Z"}`,
	`{"event":"\ud83d\ude00","userId":"\u0000x\ud800"}`,
	// Offsets, fraction digits 0 to 9, and times that are not canonical.
	`{"event":"e","userId":"u","eventTime":"2026-10-01T02:00:00.5+02:00","receivedAt":"2026-10-01T00:00:00+00:00"}`,
	`{"event":"e","userId":"u","eventTime":"2026-10-01T00:00:00Z","receivedAt":"2026-10-01T00:00:00Z"}`,
	`{"event":"e","userId":"u","eventTime":"2026-10-01T00:00:00.1Z","receivedAt":"2026-10-01T00:00:00.1Z"}`,
	`{"event":"e","userId":"u","eventTime":"2026-10-01T00:00:00.12Z","receivedAt":"2026-10-01T00:00:00.12Z"}`,
	`{"event":"e","userId":"u","eventTime":"2026-10-01T00:00:00.120Z","receivedAt":"2026-10-01T00:00:00.120Z"}`,
	`{"event":"e","userId":"u","eventTime":"2026-10-01T00:00:00.1234Z","receivedAt":"2026-10-01T00:00:00.1234Z"}`,
	`{"event":"e","userId":"u","eventTime":"2026-10-01T00:00:00.12345Z","receivedAt":"2026-10-01T00:00:00.12345Z"}`,
	`{"event":"e","userId":"u","eventTime":"2026-10-01T00:00:00.123456Z","receivedAt":"2026-10-01T00:00:00.123456Z"}`,
	`{"event":"e","userId":"u","eventTime":"2026-10-01T00:00:00.1234567Z","receivedAt":"2026-10-01T00:00:00.1234567Z"}`,
	`{"event":"e","userId":"u","eventTime":"2026-10-01T00:00:00.12345678Z","receivedAt":"2026-10-01T00:00:00.12345678Z"}`,
	`{"event":"e","userId":"u","eventTime":"2026-10-01T00:00:00.123456789Z","receivedAt":"2026-10-01T00:00:00.123456789Z"}`,
	`{"event":"e","userId":"u","eventTime":"2026-10-01T00:00:00.000000000Z","receivedAt":"2026-10-01T00:00:00.000Z"}`,
	`{"event":"e","eventTime":"2026-02-29T00:00:00Z","receivedAt":"2028-02-29T00:00:00.000Z"}`,
	`{"event":"e","eventTime":"2026-02-30T00:00:00Z","receivedAt":"2026-13-01T00:00:00Z"}`,
	`{"event":"e","eventTime":"2026-10-01T24:00:00Z","receivedAt":"2026-10-01T00:00:60Z"}`,
	`{"event":"e","eventTime":"2026-10-01t00:00:00Z","receivedAt":"2026-10-01T00:00:00.Z"}`,
	`{"event":"e","eventTime":"1600-01-01T00:00:00Z","receivedAt":"2026-10-01T00:00:00.1234567890Z"}`,
	`{"event":"e","eventTime":"1969-12-31T23:59:59.999Z","receivedAt":"1700-01-01T00:00:00.000Z"}`,
	`{"event":"e","eventTime":"+2026-10-01T00:00:00Z","receivedAt":" 2026-10-01T00:00:00Z"}`,
	`{"event":"e","eventTime":20261001,"receivedAt":null}`,
	// messageIds: UUIDs in each case, other strings, trv- ids of other
	// sequences, not strings.
	`{"event":"e","userId":"u","messageId":"4F6C1B2E-8A1D-4C55-9D1E-0E2F3A4B5C6D"}`,
	`{"event":"e","userId":"u","messageId":"4f6c1b2e-8a1d-4c55-9d1e-0e2f3a4b5c6d"}`,
	`{"event":"e","userId":"u","messageId":"4f6c1b2e-8A1D-4c55-9d1e-0e2f3a4b5c6d"}`,
	`{"event":"e","userId":"u","messageId":"00000000-0000-0000-0000-000000000000"}`,
	`{"event":"e","userId":"u","messageId":"4f6c1b2e8a1d4c559d1e0e2f3a4b5c6d"}`,
	`{"event":"e","userId":"u","messageId":"{4f6c1b2e-8a1d-4c55-9d1e-0e2f3a4b5c6d}"}`,
	`{"event":"e","userId":"u","messageId":"4f6c1b2e-8a1d-4c55-9d1e-0e2f3a4b5c6g"}`,
	`{"event":"e","userId":"u","messageId":"trv-0000000000000001"}`,
	`{"event":"e","userId":"u","messageId":"trv-00000000000000AB"}`,
	`{"event":"e","userId":"u","messageId":"trv-1"}`,
	`{"event":"e","userId":"u","messageId":"a-client-message-id-longer-than-a-uuid-is-0123456789abcdef"}`,
	`{"event":"e","userId":"u","messageId":""}`,
	`{"event":"e","userId":"u","messageId":123}`,
	`{"event":"e","userId":"u","messageId":null}`,
	`{"event":"e","userId":"u","messageId":"m1","messageId":"m2"}`,
	`{"event":"e","userId":"u","messageId":"m1","messageId":7}`,
	// Addresses.
	`{"event":"e","context":{"ip":"::1"}}`,
	`{"event":"e","context":{"ip":"2001:db8::1","userAgent":"a"}}`,
	`{"event":"e","context":{"ip":"01.2.3.4"}}`,
	`{"event":"e","context":{"ip":"256.1.1.1"}}`,
	`{"event":"e","context":{"ip":"1.2.3.4 "}}`,
	`{"event":"e","context":{"ip":"1.2.3"}}`,
	`{"event":"e","context":{"ip":"1.2.3.4.5"}}`,
	`{"event":"e","context":{"ip":"0.0.0.0"}}`,
	`{"event":"e","context":{"ip":"255.255.255.255"}}`,
	`{"event":"e","context":{"ip":1234}}`,
	// Repeated keys: the last wins the head; every appKey, eventTime,
	// userAgent and ip is extracted.
	`{"event":"a","event":"b","userId":"u1","userId":"u2"}`,
	`{"event":"a","event":7,"userId":"u1","userId":null}`,
	`{"event":7,"event":"a"}`,
	`{"appKey":"k1","appKey":"k2","eventTime":"2026-10-01T00:00:00Z","eventTime":"2026-10-01T00:00:00.5Z"}`,
	`{"context":{"ip":"1.1.1.1","ip":"2.2.2.2","userAgent":"x","userAgent":"y"},"context":{"ip":"3.3.3.3"}}`,
	// Missing fields, and objects with odd members.
	`{}`,
	`{"type":"event"}`,
	`{"event":""}`,
	`{"userId":""}`,
	`{"user\u0049d":"x","ev\u0065nt":"y"}`,
	`{"":1,"a":{"event":"nested","userId":"nested"},"b":["event","userId"]}`,
	`{"a":"}","b":"{","c":"\"","d":"\\"}`,
	// Context variants.
	`{"event":"e","context":null}`,
	`{"event":"e","context":[]}`,
	`{"event":"e","context":{}}`,
	`{"event":"e","context":"ip"}`,
	`{"event":"e","context":{"userAgent":{"name":"x"},"ip":["1.2.3.4"]}}`,
	`{"event":"e","context":{"userAgent":17,"nested":{"ip":"1.2.3.4"}}}`,
	`{"event":"e","context":{"userAgent":"a","ip":"1.2.3.4","x":{"y":[1,{"z":"}"}]}}}`,
	`{"event":"e","context":{"userAgent":"a"`,
	// Not compact JSON objects.
	``,
	`not json`,
	`[1,2]`,
	`"string"`,
	`{"a":`,
	`{"a":1}}`,
	`{"a":1} `,
	` {"a":1}`,
	`{"a" :1}`,
	`{"a":1,}`,
	`{"event":"e",,"userId":"u"}`,
	`{"event":"unterminated}`,
	`{"event":"e"}{"event":"f"}`,
	// Bytes below 0x20, markers among them: stored whole.
	"{\"event\":\"a\nb\",\"userId\":\"u\"}",
	"{\"event\":\"e\",\"userId\":\"u\x00\"}",
	"{\"event\":\"e\",\"userId\":\x02}",
	"\x01",
	"\x00",
	"{\"event\":\"e\"}\n",
	// Bytes that are not UTF-8.
	"{\"event\":\"\xff\xfe\",\"userId\":\"\xc3\x28\",\"appKey\":\"\x80\"}",
}

// oddBlockEvents returns oddBodies as block events, sorted, with a few
// sharing a time or a seq.
func oddBlockEvents() []blockEvent {
	evs := make([]blockEvent, len(oddBodies))
	for i, b := range oddBodies {
		seq := uint64(1 + i)
		if i%9 == 8 {
			seq = uint64(i) // the same seq as the event before
		}
		evs[i] = blockEvent{seq: seq, time: colBaseMs + int64(i/3)*1000, body: []byte(b)}
	}
	sortBlockEvents(evs)
	return evs
}

// eventsFromLines turns fuzz input into block events: a body per line,
// with seqs that sometimes repeat and the time of the body's eventTime
// when it has one.
func eventsFromLines(v []byte) []blockEvent {
	var evs []blockEvent
	seq := uint64(0)
	for i, line := range bytes.Split(v, []byte{'\n'}) {
		if len(line)%5 != 1 {
			seq++
		}
		t := int64(i) * 12_345
		if j := bytes.Index(line, []byte(`"eventTime":"`)); j >= 0 {
			s := line[j+13:]
			if k := bytes.IndexByte(s, '"'); k >= 0 {
				if ns, _, ok := parseRFC3339(s[:k]); ok {
					t = floorDiv(ns, 1e6)
				}
			}
		}
		evs = append(evs, blockEvent{seq: seq, time: t, body: line})
	}
	sortBlockEvents(evs)
	return evs
}

// checkColumnarRoundTrip encodes evs (sorted) as columnar blocks and
// checks that they decode to the same events, whole, by head and
// filtered; and that the millisecond version 2 that older stores hold
// decodes to them with each time floored to its ms, bodies unchanged.
func checkColumnarRoundTrip(t testing.TB, evs []blockEvent) {
	if len(evs) == 0 {
		return
	}
	for _, codec := range []byte{codecNone, codecZstd} {
		v := appendColumnarBlock(nil, evs, codec)
		h, _, err := decodeBlockHeader(v)
		if err != nil {
			t.Fatalf("decodeBlockHeader: %v", err)
		}
		ver, unit := columnarVersion(evs)
		if h.ver != ver || h.unit != unit || h.codec != codec || h.count != len(evs) || h.rawLen != bodiesLen(evs) ||
			h.minTime != evs[0].time || h.maxTime != evs[len(evs)-1].time {
			t.Fatalf("got header %+v; want version %d, codec %d, %d events of %d bytes", h, ver, codec, len(evs), bodiesLen(evs))
		}
		var d decodedBlock
		if err := d.decode(v); err != nil {
			t.Fatalf("decode: %v", err)
		}
		blockEventsEqual(t, &d, evs)
		checkHeads(t, &d, v)

		old := appendBlockValueMs(nil, evs, true /* columnar */, codec)
		want := msBlockEvents(evs)
		if h, _, err = decodeBlockHeader(old); err != nil || h.ver != valueV2 || h.unit != 1000 ||
			h.minTime != want[0].time || h.maxTime != want[len(want)-1].time {
			t.Fatalf("version 2: got header %+v, %v; want version 2 in ms, times %d to %d µs", h, err, want[0].time, want[len(want)-1].time)
		}
		if err := d.decode(old); err != nil {
			t.Fatalf("decode of version 2: %v", err)
		}
		blockEventsEqual(t, &d, want)
		checkHeads(t, &d, old)
	}
}

// msBlockEvents is what a millisecond block of evs reads back as: each
// time floored to its ms, in µs, sorted again by (time, seq).
func msBlockEvents(evs []blockEvent) []blockEvent {
	out := slices.Clone(evs)
	for i := range out {
		out[i].time = floorDiv(out[i].time, 1000) * 1000
	}
	sortBlockEvents(out)
	return out
}

// checkHeads checks, for a block value v that d holds decoded, that
// decodeHead agrees with a scan of the bodies, and that decodeWhere keeps
// what the filters keep of the bodies.
func checkHeads(t testing.TB, d *decodedBlock, v []byte) {
	var hd decodedBlock
	if err := hd.decodeHead(v); err != nil {
		t.Fatalf("decode succeeded, decodeHead failed: %v", err)
	}
	if hd.len() != d.len() {
		t.Fatalf("decodeHead: got %d events; want %d", hd.len(), d.len())
	}
	var sp [nHead]span
	str := func(body []byte, s span) []byte {
		if s.end < 0 {
			return nil
		}
		return body[s.start:s.end]
	}
	filters := []*Filter{{Exclude: map[string]uint64{}}}
	for i := range d.len() {
		seq, tm, body := d.event(i)
		scanHead(body, sp[:])
		want := eventHead{seq: seq, time: tm, event: str(body, sp[hEvent]), userID: str(body, sp[hUserID]),
			messageID: str(body, sp[hMessageID]), receivedAt: str(body, sp[hReceivedAt])}
		got := hd.head(i)
		if got.seq != want.seq || got.time != want.time || !sameString(got.event, want.event) || !sameString(got.userID, want.userID) ||
			!sameString(got.messageID, want.messageID) || !sameString(got.receivedAt, want.receivedAt) {
			t.Fatalf("head %d of %q:\ngot  %s\nwant %s", i, body, fmtHead(got), fmtHead(want))
		}
		if i < 3 {
			var buf []byte
			ev, uid := string(unescaped(want.event, &buf)), string(unescaped(want.userID, &buf))
			filters = append(filters, &Filter{Events: map[string]bool{ev: true}}, &Filter{UserID: uid, HasUserID: true},
				&Filter{Exclude: map[string]uint64{uid: math.MaxUint64}}, &Filter{Exclude: map[string]uint64{uid: seq}}, &Filter{Events: map[string]bool{ev: true, "other": true}, UserID: uid, HasUserID: true})
		}
	}
	filters = append(filters, &Filter{Events: map[string]bool{}}, &Filter{Events: map[string]bool{"": true}}, &Filter{UserID: "", HasUserID: true})
	var fd decodedBlock
	for _, f := range filters {
		var want []blockEvent
		var buf []byte
		for i := range d.len() {
			seq, tm, body := d.event(i)
			scanHead(body, sp[:])
			if f.keepHead(str(body, sp[hEvent]), str(body, sp[hUserID]), seq, &buf) {
				want = append(want, blockEvent{seq: seq, time: tm, body: body})
			}
		}
		if err := fd.decodeWhere(v, f); err != nil {
			t.Fatalf("decodeWhere(%+v): %v", f, err)
		}
		blockEventsEqual(t, &fd, want)
	}
}

// sameString compares head strings, nil (no string) apart from "".
func sameString(a, b []byte) bool {
	return (a == nil) == (b == nil) && bytes.Equal(a, b)
}

func fmtHead(h eventHead) string {
	q := func(b []byte) string {
		if b == nil {
			return "nil"
		}
		return fmt.Sprintf("%q", b)
	}
	return fmt.Sprintf("seq=%d time=%d event=%s userId=%s messageId=%s receivedAt=%s", h.seq, h.time, q(h.event), q(h.userID), q(h.messageID), q(h.receivedAt))
}

// TestColumnarRoundTrip is the golden test of version 2: generated events
// with and without messageIds, and odd bodies, come back byte for byte
// with their seqs and times, and their heads match their bodies.
func TestColumnarRoundTrip(t *testing.T) {
	with := generatedStored(t, 5000, true)
	without := generatedStored(t, 5000, false)
	for i := range without {
		without[i].seq += 10_000
	}
	odd := oddBlockEvents()
	all := slices.Concat(with, without, odd)
	sortBlockEvents(all)
	tests := []struct {
		name string
		evs  []blockEvent
	}{
		{name: "with messageIds", evs: generatedBlockEvents(t, 5000, true)},
		{name: "without messageIds", evs: generatedBlockEvents(t, 5000, false)},
		{name: "odd", evs: odd},
		{name: "all", evs: all},
		{name: "one event", evs: generatedBlockEvents(t, 1, true)},
	}
	for i, b := range oddBodies {
		tests = append(tests, struct {
			name string
			evs  []blockEvent
		}{name: fmt.Sprintf("odd %d", i), evs: []blockEvent{{seq: 1, time: colBaseMs, body: []byte(b)}}})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkColumnarRoundTrip(t, tt.evs)
		})
	}
}

// TestColumnarExtracts checks that what generated events hold goes to the
// columns: nothing of the head left in the templates, the ip and times
// extracted, receivedAt coded as runs.
func TestColumnarExtracts(t *testing.T) {
	for _, mids := range []bool{false, true} {
		evs := generatedBlockEvents(t, 2000, mids)
		v := appendColumnarBlock(nil, evs, codecNone)
		var d decodedBlock
		if err := d.decode(v); err != nil {
			t.Fatal(err)
		}
		if d.anyBody || len(d.verbatim) != 0 {
			t.Fatalf("messageIds %v: some head values or bodies were left whole", mids)
		}
		wantKind := byte(midGenerated)
		if mids {
			wantKind = midUUID
		}
		for i := range d.len() {
			if d.midKind[i] != wantKind || d.recvKind[i] != recvRun {
				t.Fatalf("messageIds %v: event %d has messageId kind %d, receivedAt kind %d; want %d, %d", mids, i, d.midKind[i], d.recvKind[i], wantKind, recvRun)
			}
		}
		if len(d.runs) != 4 { // 2000 events in requests of 500
			t.Errorf("messageIds %v: got %d receivedAt runs; want 4", mids, len(d.runs))
		}
		if len(d.etDigits) != len(evs) || len(d.ips) != 4*len(evs) || len(d.uaIdx) != len(evs) || len(d.akIdx) != len(evs) {
			t.Errorf("messageIds %v: extracted %d eventTimes, %d ips, %d userAgents, %d appKeys of %d events", mids,
				len(d.etDigits), len(d.ips)/4, len(d.uaIdx), len(d.akIdx), len(evs))
		}
		for _, m := range []string{`"userId":"`, `"event":"`, `"receivedAt":"`, `"messageId":"`, `"eventTime":"`, `"ip":"`, `"userAgent":"`, `"appKey":"`} {
			for _, tm := range d.tmplDict {
				if bytes.Contains(tm, []byte(m)) {
					t.Errorf("messageIds %v: template %q still holds %s…", mids, tm, m)
				}
			}
		}
	}
}

// TestColumnarHeader reads the headers of version-2 blocks: the fields
// shared with version 1, the section lengths, and what is rejected.
func TestColumnarHeader(t *testing.T) {
	evs := generatedBlockEvents(t, 3, false)
	good := appendColumnarBlock(nil, evs, codecNone)
	h, payload, err := decodeBlockHeader(good)
	if err != nil {
		t.Fatal(err)
	}
	// Rebuilds a header with some fields changed, keeping the payload.
	header := func(f func(h *blockHeader)) []byte {
		h := h
		f(&h)
		v := []byte{h.ver, h.codec}
		v = binary.AppendUvarint(v, uint64(h.count))
		v = binary.AppendVarint(v, h.minTime/h.unit) // stored in the version's unit
		v = binary.AppendVarint(v, h.maxTime/h.unit)
		v = binary.AppendUvarint(v, h.minSeq)
		v = binary.AppendUvarint(v, h.maxSeq)
		v = binary.AppendUvarint(v, uint64(h.rawLen))
		v = binary.AppendUvarint(v, uint64(h.s1Len))
		v = binary.AppendUvarint(v, uint64(h.s1Raw))
		v = binary.AppendUvarint(v, uint64(h.s2Raw))
		return append(v, payload...)
	}
	tests := []struct {
		name    string
		v       []byte
		want    *blockHeader // nil: rejected by decodeBlockHeader
		decodes bool
	}{
		{name: "as written", v: good, want: &h, decodes: true},
		{name: "rebuilt", v: header(func(*blockHeader) {}), want: &h, decodes: true},
		{name: "count beyond section 1", v: header(func(h *blockHeader) { h.count = h.s1Raw/6 + 1 })},
		{name: "zero count", v: header(func(h *blockHeader) { h.count = 0 })},
		{name: "section 1 beyond the value", v: header(func(h *blockHeader) { h.s1Len = len(payload) + 1 })},
		{name: "rawLen too big", v: header(func(h *blockHeader) { h.rawLen = 1<<30 + 1 })},
		{name: "s2Raw too big", v: header(func(h *blockHeader) { h.s2Raw = 1<<30 + 1 })},
		{name: "rawLen off by one", v: header(func(h *blockHeader) { h.rawLen++ }), want: &blockHeader{}},
		{name: "s1Len off by one", v: header(func(h *blockHeader) { h.s1Len-- }), want: &blockHeader{}},
		{name: "s2Raw off by one", v: header(func(h *blockHeader) { h.s2Raw++ }), want: &blockHeader{}},
		{name: "count off by one", v: header(func(h *blockHeader) { h.count-- }), want: &blockHeader{}},
		{name: "unknown codec", v: header(func(h *blockHeader) { h.codec = 9 }), want: &blockHeader{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := decodeBlockHeader(tt.v)
			if tt.want == nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("decodeBlockHeader: got %+v, %v; want ErrCorrupt", got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("decodeBlockHeader: %v", err)
			}
			if *tt.want != (blockHeader{}) && got != *tt.want {
				t.Fatalf("got %+v; want %+v", got, *tt.want)
			}
			var d decodedBlock
			if err := d.decode(tt.v); (err == nil) != tt.decodes || err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decode: got %v; want success %v", err, tt.decodes)
			}
		})
	}
	if ver, _ := columnarVersion(evs); h.ver != ver || h.count != 3 || h.rawLen != bodiesLen(evs) || h.s1Len != h.s1Raw || h.s1Raw+h.s2Raw != len(payload) {
		t.Errorf("header %+v of a raw block of %d bytes of payload", h, len(payload))
	}
}

func TestRFC3339(t *testing.T) {
	tests := []struct {
		in     string
		ok     bool
		digits int
	}{
		{"2026-10-01T00:00:00Z", true, 0},
		{"2026-10-01T12:34:56.789Z", true, 3},
		{"2026-10-01T12:34:56.000000001Z", true, 9},
		{"1970-01-01T00:00:00Z", true, 0},
		{"1969-12-31T23:59:59.9Z", true, 1},
		{"2000-02-29T00:00:00Z", true, 0},
		{"1900-02-29T00:00:00Z", false, 0},
		{"2026-10-01T12:34:56.789+00:00", false, 0},
		{"2026-10-01 12:34:56Z", false, 0},
		{"2026-10-01T12:34:56.Z", false, 0},
		{"2026-10-31T00:00:00Z", true, 0},
		{"2026-11-31T00:00:00Z", false, 0},
		{"2201-01-01T00:00:00Z", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			ns, digits, ok := parseRFC3339([]byte(tt.in))
			if ok != tt.ok || ok && digits != tt.digits {
				t.Fatalf("parseRFC3339: got %d, %v; want %d, %v", digits, ok, tt.digits, tt.ok)
			}
			if !ok {
				return
			}
			want, err := time.Parse(time.RFC3339Nano, tt.in)
			if err != nil || want.UnixNano() != ns {
				t.Fatalf("got %d ns; want %d (%v)", ns, want.UnixNano(), err)
			}
		})
	}
}

func TestUnescapeJSON(t *testing.T) {
	tests := []struct{ in, want string }{
		{`plain`, "plain"},
		{`a\"b\\c\/d`, `a"b\c/d`},
		{`\b\f\n\r\t`, "\b\f\n\r\t"},
		{`caf\u00e9`, "café"},
		{`\ud83d\ude00`, "😀"},
		{`\ud83dx`, "\ufffdx"},
		{`\u12`, `\u12`},
		{`\q`, `\q`},
		{`end\`, `end\`},
	}
	for _, tt := range tests {
		if got := string(unescapeJSON(nil, []byte(tt.in))); got != tt.want {
			t.Errorf("unescapeJSON(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestControlIndex(t *testing.T) {
	for n := range 40 {
		for at := -1; at < n; at++ {
			b := bytes.Repeat([]byte{'a'}, n)
			for i := range b {
				b[i] = byte(0x20 + (i*37)%0xe0) // no byte below 0x20
			}
			if at >= 0 {
				b[at] = byte(at % 0x20)
			}
			if got := controlIndex(b); got != at {
				t.Fatalf("controlIndex(%x) = %d; want %d", b, got, at)
			}
		}
	}
}

// mergedBlockEvents returns generated stored events, sorted, totalling at
// least raw bytes: one merged block's worth.
func mergedBlockEvents(tb testing.TB, raw int, messageIDs bool) []blockEvent {
	n := raw/480 + 1
	for {
		evs := generatedStored(tb, n, messageIDs)
		if bodiesLen(evs) >= raw {
			for bodiesLen(evs[:len(evs)-1]) >= raw {
				evs = evs[:len(evs)-1]
			}
			sortBlockEvents(evs)
			return evs
		}
		n += n / 10
	}
}

// BenchmarkMergedBlockSize reports what one merged block of generated
// events costs per event, with and without messageIds, as version 1 (zstd
// best) and version 2: a block of 16 MiB, and one of 512 KiB, the size of
// a day's block in a 16 MiB group of events spread over 30 days, as the
// generator spreads them. It measures once, whatever -benchtime says.
func BenchmarkMergedBlockSize(b *testing.B) {
	for _, size := range []int{16 << 20, 512 << 10} {
		for _, mids := range []bool{false, true} {
			name := fmt.Sprintf("%dKiB/%s", size>>10, map[bool]string{false: "generated-ids", true: "uuid-ids"}[mids])
			b.Run(name, func(b *testing.B) {
				evs := mergedBlockEvents(b, size, mids)
				var v1, v2 []byte
				var t1, t2 time.Duration
				for b.Loop() {
					if v1 != nil {
						continue
					}
					start := time.Now()
					v1 = appendBlockValueV1(nil, evs, codecZstd)
					t1 = time.Since(start)
					start = time.Now()
					v2 = appendColumnarBlock(nil, evs, codecZstd)
					t2 = time.Since(start)
				}
				h, _, _ := decodeBlockHeader(v2)
				n := float64(len(evs))
				b.ReportMetric(n, "events")
				b.ReportMetric(float64(bodiesLen(evs))/n, "json-B/event")
				b.ReportMetric(float64(len(v1))/n, "v1-B/event")
				b.ReportMetric(float64(len(v2))/n, "v2-B/event")
				b.ReportMetric(float64(h.s1Len)/n, "v2-section1-B/event")
				b.ReportMetric(float64(bodiesLen(evs))/1e6/t1.Seconds(), "v1-encode-MB/s")
				b.ReportMetric(float64(bodiesLen(evs))/1e6/t2.Seconds(), "v2-encode-MB/s")
			})
		}
	}
}

// BenchmarkColumnarBlock encodes and decodes a merged block of 16 MiB of
// generated events with messageIds: whole, by head, and filtered to one
// event name.
func BenchmarkColumnarBlock(b *testing.B) {
	evs := mergedBlockEvents(b, 16<<20, true)
	raw := int64(bodiesLen(evs))
	v := appendColumnarBlock(nil, evs, codecZstd)
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(raw)
		var dst []byte
		for b.Loop() {
			dst = appendColumnarBlock(dst[:0], evs, codecZstd)
		}
	})
	decodes := []struct {
		name string
		fn   func(d *decodedBlock) error
	}{
		{"decode", func(d *decodedBlock) error { return d.decode(v) }},
		{"decode-v1", func() func(d *decodedBlock) error {
			v1 := appendBlockValueV1(nil, evs, codecZstd)
			return func(d *decodedBlock) error { return d.decode(v1) }
		}()},
		{"decodeHead", func(d *decodedBlock) error { return d.decodeHead(v) }},
		{"decodeWhere-event", func(d *decodedBlock) error {
			return d.decodeWhere(v, &Filter{Events: map[string]bool{"purchase": true}})
		}},
		{"decodeWhere-exclude", func(d *decodedBlock) error {
			return d.decodeWhere(v, &Filter{Exclude: map[string]uint64{"user-1": math.MaxUint64}})
		}},
	}
	for _, dd := range decodes {
		b.Run(dd.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(raw)
			d := &decodedBlock{}
			for b.Loop() {
				if err := dd.fn(d); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(evs))*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// TestColumnarFilterSkipsBlocks checks that a filter no dict entry of a
// block matches does not read the block's second section.
func TestColumnarFilterSkipsBlocks(t *testing.T) {
	evs := generatedBlockEvents(t, 500, true)
	v := appendColumnarBlock(nil, evs, codecZstd)
	h, payload, err := decodeBlockHeader(v)
	if err != nil {
		t.Fatal(err)
	}
	// Damage section 2: a filter that matches nothing must not notice.
	damaged := slices.Clone(v)
	damaged[len(v)-len(payload)+h.s1Len+5] ^= 0xff
	var d decodedBlock
	if err := d.decodeWhere(damaged, &Filter{Events: map[string]bool{"no such event": true}}); err != nil || d.len() != 0 {
		t.Fatalf("got %d events, %v; want 0 and no error", d.len(), err)
	}
	if err := d.decodeWhere(damaged, &Filter{UserID: "nobody", HasUserID: true}); err != nil || d.len() != 0 {
		t.Fatalf("got %d events, %v; want 0 and no error", d.len(), err)
	}
	if err := d.decodeWhere(damaged, &Filter{Events: map[string]bool{strings.Trim(string(d.evDict[0]), `"`): true}}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a filter that matches read a damaged section 2 without error: %v", err)
	}
}

// columnarVersion is the version appendColumnarBlock writes evs in, and its
// time unit in µs: 2 (ms) when every time is a whole millisecond, else 4.
func columnarVersion(evs []blockEvent) (byte, int64) {
	for _, e := range evs {
		if e.time%1000 != 0 {
			return valueV4, 1
		}
	}
	return valueV2, 1000
}

// TestColumnarWholeMsIsVersion2 checks that a block of whole-millisecond
// times is written in ms (version 2), one microsecond off in µs (version
// 4), and that both read back the same bodies and times, and reports what
// the ms version saves on the generator's events as the merger splits
// them (one block per eventTime day of a 16 MiB group).
func TestColumnarWholeMsIsVersion2(t *testing.T) {
	evs := mergedBlockEvents(t, 4<<20, true)
	byDay := map[int64][]blockEvent{}
	for _, e := range evs {
		d := floorDiv(e.time, 86400e6)
		byDay[d] = append(byDay[d], e)
	}
	var ms, us int
	for _, day := range byDay {
		sortBlockEvents(day)
		v := appendColumnarBlock(nil, day, codecZstd)
		odd := slices.Clone(day)
		odd[len(odd)-1].time++ // still sorted: the last time of a day
		v4 := appendColumnarBlock(nil, odd, codecZstd)
		for _, c := range []struct {
			v   []byte
			evs []blockEvent
			ver byte
		}{{v, day, valueV2}, {v4, odd, valueV4}} {
			h, _, err := decodeBlockHeader(c.v)
			if err != nil || h.ver != c.ver {
				t.Fatalf("version %d (%v); want %d", h.ver, err, c.ver)
			}
			var d decodedBlock
			if err := d.decode(c.v); err != nil {
				t.Fatal(err)
			}
			for i := range c.evs {
				if s, tm, body := d.event(i); s != c.evs[i].seq || tm != c.evs[i].time || !bytes.Equal(body, c.evs[i].body) {
					t.Fatalf("version %d event %d: (%d, %d, %s); want (%d, %d, %s)", c.ver, i, s, tm, body, c.evs[i].seq, c.evs[i].time, c.evs[i].body)
				}
			}
		}
		ms += len(v)
		us += len(v4)
	}
	t.Logf("%d events in %d day blocks: %.2f bytes/event in ms, %.2f in µs", len(evs), len(byDay), float64(ms)/float64(len(evs)), float64(us)/float64(len(evs)))
	if ms >= us {
		t.Errorf("blocks in ms take %d bytes, in µs %d; want fewer in ms", ms, us)
	}
}
