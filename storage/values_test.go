package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// randomBlockEvents returns n events sorted as a block holds them, with
// sequences from first (gaps included, as after a merge) and bodies of
// arbitrary bytes, some empty.
func randomBlockEvents(seed uint64, n int, first uint64, baseMs int64) []blockEvent {
	r := rand.New(rand.NewPCG(seed, 1))
	evs := make([]blockEvent, n)
	seq := first
	for i := range evs {
		body := make([]byte, r.IntN(300))
		for j := range body {
			body[j] = byte(r.Uint32())
		}
		evs[i] = blockEvent{seq: seq, time: baseMs + r.Int64N(dayUs), body: body}
		seq += 1 + uint64(r.IntN(3))
	}
	sortBlockEvents(evs)
	return evs
}

func blockEventsEqual(t testing.TB, d *decodedBlock, want []blockEvent) {
	t.Helper()
	if d.len() != len(want) {
		t.Fatalf("got %d events; want %d", d.len(), len(want))
	}
	for i, w := range want {
		seq, tm, body := d.event(i)
		if seq != w.seq || tm != w.time || !bytes.Equal(body, w.body) {
			t.Fatalf("event %d: got (seq=%d, time=%d, body=%q); want (seq=%d, time=%d, body=%q)", i, seq, tm, body, w.seq, w.time, w.body)
		}
	}
}

// uncompressedBlockValue encodes evs as a version-1 block with codecNone.
func uncompressedBlockValue(t testing.TB, evs []blockEvent) []byte {
	return appendBlockValueV1(nil, evs, codecNone)
}

// bodiesLen is the total size of the bodies of evs.
func bodiesLen(evs []blockEvent) int {
	n := 0
	for _, e := range evs {
		n += len(e.body)
	}
	return n
}

func TestBlockValueRoundTrip(t *testing.T) {
	const day20250 = 20250 * dayUs
	tests := []struct {
		name string
		evs  []blockEvent
	}{
		{name: "one event", evs: []blockEvent{{seq: 7, time: day20250 + 1, body: []byte(`{"event":"open"}`)}}},
		{name: "one empty body", evs: []blockEvent{{seq: 1, time: 0, body: nil}}},
		{name: "arbitrary bytes", evs: []blockEvent{
			{seq: 3, time: day20250, body: []byte{0, 1, 2, 0xff, 0xfe}},
			{seq: 1, time: day20250 + 5, body: []byte("\x00\n\r\"\\\xc3\x28")},
			{seq: 2, time: day20250 + 5, body: bytes.Repeat([]byte{0x80}, 200)},
		}},
		{name: "before the epoch", evs: []blockEvent{
			{seq: 10, time: -dayUs, body: []byte("a")},
			{seq: 11, time: -1, body: []byte("b")},
		}},
		{name: "same time", evs: []blockEvent{
			{seq: 5, time: 1000, body: []byte("x")},
			{seq: 6, time: 1000, body: []byte("y")},
			{seq: 9, time: 1000, body: []byte("z")},
		}},
		{name: "large sequences", evs: []blockEvent{
			{seq: math.MaxUint64 - 1, time: 1, body: []byte("x")},
			{seq: 1 << 40, time: 2, body: []byte("y")},
		}},
		{name: "100 events", evs: randomBlockEvents(1, 100, 1, day20250)},
		{name: "10k events", evs: randomBlockEvents(2, 10_000, 1<<20, day20250)},
	}
	for _, tt := range tests {
		for _, best := range []bool{false, true} {
			mode := map[bool]string{false: "fast", true: "best"}[best]
			t.Run(tt.name+"/"+mode, func(t *testing.T) {
				prefix := []byte("dst")
				v, raw := appendBlockValue(bytes.Clone(prefix), nil, tt.evs, best)
				if !bytes.HasPrefix(v, prefix) {
					t.Fatalf("appendBlockValue clobbered dst")
				}
				v = v[len(prefix):]
				h, _, err := decodeBlockHeader(v)
				if err != nil {
					t.Fatalf("decodeBlockHeader: %v", err)
				}
				// The merger's blocks are columnar and use zstd; fresh
				// ones are rows, compressed (with whatever is fast)
				// unless they are tiny. Both hold times in µs.
				rawLen := len(raw)
				switch {
				case best && (h.ver != valueV4 && h.ver != valueV2 || h.codec != codecZstd):
					t.Errorf("got version %d codec %d; want version 4 or 2, zstd (%d)", h.ver, h.codec, codecZstd)
				case !best && h.ver != valueV3:
					t.Errorf("got version %d; want 3", h.ver)
				case !best && h.unit != 1:
					t.Errorf("got a time unit of %d µs; want 1", h.unit)
				case best && h.unit != map[byte]int64{valueV2: 1000, valueV4: 1}[h.ver]:
					t.Errorf("got a time unit of %d µs in version %d", h.unit, h.ver)
				case !best && len(raw) < smallBlock && h.codec != codecNone:
					t.Errorf("got codec %d for %d raw bytes; want none (%d)", h.codec, len(raw), codecNone)
				case !best && len(raw) >= smallBlock && h.codec == codecNone:
					t.Errorf("got codec none for %d raw bytes; want compression", len(raw))
				}
				if best {
					rawLen = bodiesLen(tt.evs)
				}
				minSeq, maxSeq := uint64(math.MaxUint64), uint64(0)
				for _, e := range tt.evs {
					minSeq, maxSeq = min(minSeq, e.seq), max(maxSeq, e.seq)
				}
				if h.count != len(tt.evs) || h.minTime != tt.evs[0].time || h.maxTime != tt.evs[len(tt.evs)-1].time ||
					h.minSeq != minSeq || h.maxSeq != maxSeq || h.rawLen != rawLen {
					t.Errorf("got header %+v; want count=%d time=[%d, %d] seq=[%d, %d] rawLen=%d", h, len(tt.evs),
						tt.evs[0].time, tt.evs[len(tt.evs)-1].time, minSeq, maxSeq, rawLen)
				}

				// Decode into a block that held something else before.
				d := &decodedBlock{}
				other, _ := appendBlockValue(nil, nil, randomBlockEvents(3, 50, 999, 0), best)
				if err := d.decode(other); err != nil {
					t.Fatal(err)
				}
				if err := d.decode(v); err != nil {
					t.Fatalf("decode: %v", err)
				}
				blockEventsEqual(t, d, tt.evs)

				// The same events in the other forms a block may have on
				// disk: rows raw or zstd (the merger's before version 2),
				// columnar raw.
				for _, other := range [][]byte{
					uncompressedBlockValue(t, tt.evs),
					appendBlockValueV1(nil, tt.evs, codecZstd),
					appendColumnarBlock(nil, tt.evs, codecNone),
				} {
					if err := d.decode(other); err != nil {
						t.Fatalf("decode %x: %v", other[:2], err)
					}
					blockEventsEqual(t, d, tt.evs)
				}
				// And in the millisecond versions (1 and 2) of stores
				// written before 2026-12: read as ms × 1000, each time
				// floored to its ms, the header's too.
				want := msBlockEvents(tt.evs)
				for _, old := range [][]byte{
					appendBlockValueMs(nil, tt.evs, false, codecNone),
					appendBlockValueMs(nil, tt.evs, false, codecS2),
					appendBlockValueMs(nil, tt.evs, false, codecZstd),
					appendBlockValueMs(nil, tt.evs, true, codecNone),
				} {
					oh, _, err := decodeBlockHeader(old)
					if err != nil || oh.ver > valueV2 || oh.unit != 1000 || oh.minTime != want[0].time || oh.maxTime != want[len(want)-1].time {
						t.Fatalf("old header %+v, %v; want version 1 or 2 in ms, times [%d, %d] µs", oh, err, want[0].time, want[len(want)-1].time)
					}
					if err := d.decode(old); err != nil {
						t.Fatalf("decode %x: %v", old[:2], err)
					}
					blockEventsEqual(t, d, want)
				}
			})
		}
	}
}

func TestAppendBlockValueReusesScratch(t *testing.T) {
	evs := randomBlockEvents(4, 100, 1, 0)
	_, scratch := appendBlockValue(nil, nil, evs, false /* best */)
	v, scratch2 := appendBlockValue(nil, scratch, evs[:10], false /* best */)
	if &scratch2[0] != &scratch[0] {
		t.Errorf("the raw payload did not reuse scratch")
	}
	var d decodedBlock
	if err := d.decode(v); err != nil {
		t.Fatal(err)
	}
	blockEventsEqual(t, &d, evs[:10])
}

func TestGroupValueRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		g    groupValue
	}{
		{name: "one day", g: groupValue{last: 7, count: 1, rawBytes: 100, days: []int32{20250}}},
		{name: "across the epoch", g: groupValue{last: 1 << 40, count: 3, rawBytes: 10, days: []int32{-2, -1, 0, 1}}},
		{name: "far apart", g: groupValue{last: math.MaxUint64, count: 1 << 30, rawBytes: 8 << 20, days: []int32{-719162, 0, 2932896}}},
		{name: "int32 extremes", g: groupValue{last: 1, count: 2, rawBytes: 2, days: []int32{math.MinInt32, math.MaxInt32}}},
		{name: "zero", g: groupValue{days: []int32{0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := appendGroupValue([]byte("x"), &tt.g)[1:]
			// Decoding reuses days; start from a longer slice.
			got := groupValue{days: []int32{9, 9, 9, 9, 9, 9}}
			if err := decodeGroupValue(v, &got); err != nil {
				t.Fatalf("decodeGroupValue(%x): %v", v, err)
			}
			if got.last != tt.g.last || got.count != tt.g.count || got.rawBytes != tt.g.rawBytes || !slices.Equal(got.days, tt.g.days) {
				t.Fatalf("got %+v; want %+v", got, tt.g)
			}
		})
	}
}

func TestDedupValueRoundTrip(t *testing.T) {
	for _, x := range []int64{0, 1, 1_796_076_444, math.MaxInt64, -1} {
		t.Run(fmt.Sprint(x), func(t *testing.T) {
			v := appendDedupValue(nil, x)
			got, err := decodeDedupValue(v)
			if err != nil || got != x {
				t.Fatalf("decodeDedupValue(%x) = %d, %v; want %d", v, got, err, x)
			}
		})
	}
}

func TestUint64ValueRoundTrip(t *testing.T) {
	for _, x := range []uint64{0, 1, 1 << 20, math.MaxUint64} {
		t.Run(fmt.Sprint(x), func(t *testing.T) {
			v := appendUint64Value(nil, x)
			got, err := decodeUint64Value(v)
			if err != nil || got != x {
				t.Fatalf("decodeUint64Value(%x) = %d, %v; want %d", v, got, err, x)
			}
		})
	}
}

// blockHeaderBytes builds a version-1 block header by hand.
func blockHeaderBytes(codec byte, count uint64, minTime, maxTime int64, minSeq, maxSeq, rawLen uint64) []byte {
	v := []byte{valueV1, codec}
	v = binary.AppendUvarint(v, count)
	v = binary.AppendVarint(v, minTime)
	v = binary.AppendVarint(v, maxTime)
	v = binary.AppendUvarint(v, minSeq)
	v = binary.AppendUvarint(v, maxSeq)
	return binary.AppendUvarint(v, rawLen)
}

// corruptBlockValues returns damaged block values, each of which must be
// rejected with ErrCorrupt.
func corruptBlockValues(t testing.TB) map[string][]byte {
	evs := randomBlockEvents(5, 200, 1, 0)
	zstdV := appendBlockValueV1(nil, evs, codecZstd)
	rawV := uncompressedBlockValue(t, evs[:3])
	colV := appendColumnarBlock(nil, evs[:20], codecZstd)
	colRaw := appendColumnarBlock(nil, generatedBlockEvents(t, 3, true), codecNone)
	vs := map[string][]byte{
		"nil":             nil,
		"empty":           {},
		"version only":    {valueV1},
		"version 0":       append([]byte{0}, zstdV[1:]...),
		"version 2":       append([]byte{2}, zstdV[1:]...),
		"unknown codec":   append([]byte{valueV1, 7}, zstdV[2:]...),
		"zero count":      append(blockHeaderBytes(codecNone, 0, 0, 0, 1, 1, 3), 0, 0, 0),
		"rawLen too big":  append(blockHeaderBytes(codecNone, 1, 0, 0, 1, 1, 1<<31), 0, 0, 0),
		"rawLen mismatch": append(blockHeaderBytes(codecNone, 1, 0, 0, 1, 1, 4), 0, 0, 0),
		"trailing byte":   append(slices.Clone(rawV), 0),
		"zstd trailing":   append(slices.Clone(zstdV), 0),
		// A count far beyond what rawLen bytes can hold must not make the
		// decoder allocate for it.
		"huge count": append(blockHeaderBytes(codecNone, 1<<40, 0, 0, 1, 1, 3), 0, 0, 0),
		// Column lengths that do not add up to the bodies.
		"short bodies": append(blockHeaderBytes(codecNone, 1, 0, 0, 1, 1, 4), 0, 0, 5, 'x'),
		// Two body lengths whose int sum wraps around to the bodies' length.
		"wrapping lengths": func() []byte {
			raw := []byte{0, 1, 0, 0}
			raw = binary.AppendUvarint(raw, 1<<63)
			raw = binary.AppendUvarint(raw, 1<<63+2)
			raw = append(raw, "ab"...)
			return append(blockHeaderBytes(codecNone, 2, 0, 0, 1, 2, uint64(len(raw))), raw...)
		}(),
	}
	for i := range len(rawV) {
		vs[fmt.Sprintf("raw truncated to %d", i)] = rawV[:i]
	}
	for i := range len(colRaw) {
		vs[fmt.Sprintf("columnar raw truncated to %d", i)] = colRaw[:i]
	}
	for i := 0; i < len(colV); i += 7 {
		vs[fmt.Sprintf("columnar zstd truncated to %d", i)] = colV[:i]
	}
	vs["columnar trailing byte"] = append(slices.Clone(colRaw), 0)
	vs["columnar zstd trailing byte"] = append(slices.Clone(colV), 0)
	vs["version 3"] = append([]byte{3}, colRaw[1:]...)
	for i := range len(zstdV) {
		vs[fmt.Sprintf("zstd truncated to %d", i)] = zstdV[:i]
	}
	return vs
}

func TestDecodeCorruptBlock(t *testing.T) {
	d := getDecodedBlock()
	defer putDecodedBlock(d)
	for name, v := range corruptBlockValues(t) {
		t.Run(name, func(t *testing.T) {
			err := d.decode(v)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decode(%x): got error %v; want one wrapping ErrCorrupt", v, err)
			}
		})
	}
	// The block is still usable after failures.
	evs := randomBlockEvents(6, 10, 1, 0)
	v, _ := appendBlockValue(nil, nil, evs, false /* best */)
	if err := d.decode(v); err != nil {
		t.Fatal(err)
	}
	blockEventsEqual(t, d, evs)
}

// TestDecodeBlockBitFlips checks that no single-bit error in a block makes
// the decoder, or reading the decoded events, panic.
func TestDecodeBlockBitFlips(t *testing.T) {
	for _, v := range [][]byte{
		uncompressedBlockValue(t, randomBlockEvents(7, 3, 1, 0)),
		appendBlockValueV1(nil, randomBlockEvents(8, 3, 1, 0), codecZstd),
		func() []byte { v, _ := appendBlockValue(nil, nil, randomBlockEvents(8, 3, 1, 0), true); return v }(),
		appendColumnarBlock(nil, generatedBlockEvents(t, 2, true), codecNone),
	} {
		var d decodedBlock
		for i := range len(v) * 8 {
			c := slices.Clone(v)
			c[i/8] ^= 1 << (i % 8)
			checkDecodeBlock(t, &d, c)
		}
	}
}

// checkDecodeBlock decodes v and, when that succeeds, reads every event and
// checks that they re-encode to the same events.
func checkDecodeBlock(t testing.TB, d *decodedBlock, v []byte) {
	t.Helper()
	if err := d.decode(v); err != nil {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("decode(%x): got error %v; want one wrapping ErrCorrupt", v, err)
		}
		return
	}
	evs := make([]blockEvent, d.len())
	total := 0
	for i := range evs {
		seq, tm, body := d.event(i)
		evs[i] = blockEvent{seq: seq, time: tm, body: slices.Clone(body)}
		total += len(body)
	}
	if total != len(d.body) {
		t.Fatalf("decode(%x): bodies are %d bytes; the block holds %d", v, total, len(d.body))
	}
	// The heads of a damaged block that still decodes need not match its
	// bodies, but they are there, for the same events.
	var hd decodedBlock
	if err := hd.decodeHead(v); err != nil || hd.len() != d.len() {
		t.Fatalf("decode(%x) succeeded; decodeHead got %d events, %v", v, hd.len(), err)
	}
	for i := range d.len() {
		if h := hd.head(i); h.seq != d.seqs[i] || h.time != d.times[i] {
			t.Fatalf("decode(%x): head %d is seq %d time %d; event is seq %d time %d", v, i, h.seq, h.time, d.seqs[i], d.times[i])
		}
	}
	for _, f := range []*Filter{{Events: map[string]bool{"e": true}}, {UserID: "u", HasUserID: true}, {Exclude: map[string]uint64{"u": 5}}} {
		if err := hd.decodeWhere(v, f); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("decodeWhere(%x): got error %v; want one wrapping ErrCorrupt", v, err)
		}
	}
	for _, best := range []bool{false, true} {
		re, _ := appendBlockValue(nil, nil, evs, best)
		var d2 decodedBlock
		if err := d2.decode(re); err != nil {
			t.Fatalf("decode(%x) re-encoded as %x does not decode: %v", v, re, err)
		}
		blockEventsEqual(t, &d2, evs)
		checkHeads(t, &d2, re)
	}
}

func TestDecodeCorruptValues(t *testing.T) {
	group := appendGroupValue(nil, &groupValue{last: 300, count: 3, rawBytes: 1000, days: []int32{-1, 0, 20250}})
	type decoder func([]byte) error
	decodeGroup := func(v []byte) error { var g groupValue; return decodeGroupValue(v, &g) }
	decodeDedup := func(v []byte) error { _, err := decodeDedupValue(v); return err }
	decodeUint64 := func(v []byte) error { _, err := decodeUint64Value(v); return err }
	tests := []struct {
		name string
		dec  decoder
		v    []byte
	}{
		{name: "group nil", dec: decodeGroup, v: nil},
		{name: "group version 2", dec: decodeGroup, v: append([]byte{2}, group[1:]...)},
		{name: "group trailing byte", dec: decodeGroup, v: append(slices.Clone(group), 0)},
		{name: "group no days", dec: decodeGroup, v: []byte{valueV1, 1, 1, 1, 0}},
		{name: "group too many days", dec: decodeGroup, v: binary.AppendUvarint([]byte{valueV1, 1, 1, 1}, 1<<21)},
		{name: "group days missing", dec: decodeGroup, v: []byte{valueV1, 1, 1, 1, 3, 0}},
		{name: "dedup nil", dec: decodeDedup, v: nil},
		{name: "dedup version only", dec: decodeDedup, v: []byte{valueV1}},
		{name: "dedup version 2", dec: decodeDedup, v: []byte{2, 1}},
		{name: "dedup truncated varint", dec: decodeDedup, v: []byte{valueV1, 0x80}},
		{name: "uint64 nil", dec: decodeUint64, v: nil},
		{name: "uint64 short", dec: decodeUint64, v: appendUint64Value(nil, 5)[:8]},
		{name: "uint64 long", dec: decodeUint64, v: append(appendUint64Value(nil, 5), 0)},
		{name: "uint64 version 2", dec: decodeUint64, v: append([]byte{2}, appendUint64Value(nil, 5)[1:]...)},
	}
	for i := range len(group) {
		tests = append(tests, struct {
			name string
			dec  decoder
			v    []byte
		}{name: fmt.Sprintf("group truncated to %d", i), dec: decodeGroup, v: group[:i]})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.dec(tt.v); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decode(%x): got error %v; want one wrapping ErrCorrupt", tt.v, err)
			}
		})
	}
}

// FuzzDecodeBlock feeds arbitrary bytes to the value decoders: they must
// return an error wrapping ErrCorrupt or a value that survives a round trip,
// and never panic.
func FuzzDecodeBlock(f *testing.F) {
	small, _ := appendBlockValue(nil, nil, randomBlockEvents(9, 3, 1, 0), false /* best */)
	large, _ := appendBlockValue(nil, nil, randomBlockEvents(10, 100, 1, 0), false /* best */)
	best, _ := appendBlockValue(nil, nil, randomBlockEvents(11, 5, 1, -dayUs), true /* best */)
	f.Add(small)
	f.Add(large)
	f.Add(best)
	f.Add(appendBlockValueV1(nil, randomBlockEvents(11, 5, 1, -dayUs), codecZstd))
	f.Add(appendColumnarBlock(nil, generatedBlockEvents(f, 2, true), codecNone))
	f.Add(appendColumnarBlock(nil, generatedBlockEvents(f, 3, false), codecNone))
	f.Add(appendColumnarBlock(nil, oddBlockEvents()[:4], codecNone))
	// The millisecond versions of stores written before 2026-12.
	f.Add(appendBlockValueMs(nil, randomBlockEvents(12, 5, 1, -dayUs), false /* columnar */, codecS2))
	f.Add(appendBlockValueMs(nil, generatedBlockEvents(f, 2, true), true /* columnar */, codecNone))
	// Event lists, one body per line, for the round trip below.
	for _, evs := range [][]blockEvent{generatedBlockEvents(f, 3, true), oddBlockEvents()[:8]} {
		var lines []byte
		for _, e := range evs {
			lines = append(append(lines, e.body...), '\n')
		}
		f.Add(lines)
	}
	f.Add(appendGroupValue(nil, &groupValue{last: 9, count: 2, rawBytes: 40, days: []int32{-3, 20250}}))
	f.Add(appendDedupValue(nil, 1_796_076_444))
	f.Add(appendUint64Value(nil, 1<<20))
	for _, v := range corruptBlockValues(f) {
		if len(v) < 40 {
			f.Add(v)
		}
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		var d decodedBlock
		checkDecodeBlock(t, &d, v)
		checkColumnarRoundTrip(t, eventsFromLines(v))

		var g groupValue
		if err := decodeGroupValue(v, &g); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decodeGroupValue(%x): got error %v; want one wrapping ErrCorrupt", v, err)
			}
		} else {
			var g2 groupValue
			if err := decodeGroupValue(appendGroupValue(nil, &g), &g2); err != nil || g2.last != g.last ||
				g2.count != g.count || g2.rawBytes != g.rawBytes || !slices.Equal(g2.days, g.days) {
				t.Fatalf("group %+v from %x round-trips to %+v, %v", g, v, g2, err)
			}
		}
		if x, err := decodeDedupValue(v); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decodeDedupValue(%x): got error %v; want one wrapping ErrCorrupt", v, err)
			}
		} else if y, err := decodeDedupValue(appendDedupValue(nil, x)); err != nil || y != x {
			t.Fatalf("dedup value %d from %x round-trips to %d, %v", x, v, y, err)
		}
		if x, err := decodeUint64Value(v); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decodeUint64Value(%x): got error %v; want one wrapping ErrCorrupt", v, err)
			}
		} else if !bytes.Equal(appendUint64Value(nil, x), v) {
			t.Fatalf("uint64 value %d from %x re-encodes to %x", x, v, appendUint64Value(nil, x))
		}
	})
}
