package storage

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

func TestBlockKeyRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		app   uint32
		day   int32
		first uint64
	}{
		{name: "zero", app: 0, day: 0, first: 0},
		{name: "typical", app: 1, day: 20250, first: 7},
		{name: "day before epoch", app: 3, day: -1, first: 1},
		{name: "far before epoch", app: 3, day: -719162, first: 1}, // 0001-01-01
		{name: "year 9999", app: 3, day: 2932896, first: 1},
		{name: "min day", app: 2, day: math.MinInt32, first: 5},
		{name: "max day", app: 2, day: math.MaxInt32, first: 5},
		{name: "max app and first", app: math.MaxUint32, day: 19000, first: math.MaxUint64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("prefix")
			k := appendBlockKey(bytes.Clone(prefix), tt.app, tt.day, tt.first)
			if !bytes.HasPrefix(k, prefix) {
				t.Fatalf("appendBlockKey clobbered dst: got %x", k)
			}
			k = k[len(prefix):]
			if len(k) != 17 || Namespace(k[0]) != nsBlock {
				t.Fatalf("got key %x; want 17 bytes starting with %02x", k, nsBlock)
			}
			app, day, first, err := decodeBlockKey(k)
			if err != nil {
				t.Fatalf("decodeBlockKey(%x): %v", k, err)
			}
			if app != tt.app || day != tt.day || first != tt.first {
				t.Fatalf("got app=%d day=%d first=%d; want app=%d day=%d first=%d", app, day, first, tt.app, tt.day, tt.first)
			}
		})
	}
}

func TestGroupKeyRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		app   uint32
		first uint64
	}{
		{name: "zero", app: 0, first: 0},
		{name: "typical", app: 1, first: 1 << 20},
		{name: "max", app: math.MaxUint32, first: math.MaxUint64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := appendGroupKey([]byte{0xee}, tt.app, tt.first)
			if k[0] != 0xee {
				t.Fatalf("appendGroupKey clobbered dst: got %x", k)
			}
			app, first, err := decodeGroupKey(k[1:])
			if err != nil {
				t.Fatalf("decodeGroupKey(%x): %v", k[1:], err)
			}
			if app != tt.app || first != tt.first {
				t.Fatalf("got app=%d first=%d; want app=%d first=%d", app, first, tt.app, tt.first)
			}
		})
	}
}

func TestDedupKeyRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		app  uint32
		id   []byte
	}{
		{name: "empty id", app: 1, id: []byte{}},
		{name: "uuid", app: 1, id: []byte("4f6c1b2e-8a1d-4c55-9d1e-0e2f3a4b5c6d")},
		{name: "binary", app: math.MaxUint32, id: []byte{0, 0xff, 0x10, 0x11, 0}},
		{name: "long", app: 7, id: bytes.Repeat([]byte("x"), 1000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := appendDedupKey(nil, tt.app, tt.id)
			app, id, err := decodeDedupKey(k)
			if err != nil {
				t.Fatalf("decodeDedupKey(%x): %v", k, err)
			}
			if app != tt.app || !bytes.Equal(id, tt.id) {
				t.Fatalf("got app=%d id=%q; want app=%d id=%q", app, id, tt.app, tt.id)
			}
		})
	}
}

func TestQuarantineKeyRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		app  uint32
		seq  uint64
	}{
		{name: "zero", app: 0, seq: 0},
		{name: "typical", app: 4, seq: 123456},
		{name: "max", app: math.MaxUint32, seq: math.MaxUint64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := appendQuarantineKey(nil, tt.app, tt.seq)
			app, seq, err := decodeQuarantineKey(k)
			if err != nil {
				t.Fatalf("decodeQuarantineKey(%x): %v", k, err)
			}
			if app != tt.app || seq != tt.seq {
				t.Fatalf("got app=%d seq=%d; want app=%d seq=%d", app, seq, tt.app, tt.seq)
			}
		})
	}
}

func TestDecodeMalformedKeys(t *testing.T) {
	block := appendBlockKey(nil, 1, 2, 3)
	group := appendGroupKey(nil, 1, 3)
	quarantine := appendQuarantineKey(nil, 1, 3)
	decoders := map[string]func([]byte) error{
		"block":       func(k []byte) error { _, _, _, err := decodeBlockKey(k); return err },
		"group":       func(k []byte) error { _, _, err := decodeGroupKey(k); return err },
		"dedup":       func(k []byte) error { _, _, err := decodeDedupKey(k); return err },
		"quarantine":  func(k []byte) error { _, _, err := decodeQuarantineKey(k); return err },
		"profile":     func(k []byte) error { _, _, err := decodeProfileKey(k); return err },
		"alias":       func(k []byte) error { _, _, _, err := decodeAliasIndexKey(k); return err },
		"change":      func(k []byte) error { _, _, err := decodeChangeKey(k); return err },
		"dedupslice":  func(k []byte) error { _, _, _, err := decodeDedupSliceKey(k); return err },
		"dedupbucket": func(k []byte) error { _, _, _, err := decodeDedupBucketKey(k); return err },
		"idemslice":   func(k []byte) error { _, _, _, err := decodeIdemSliceKey(k); return err },
	}
	profile := appendProfileKey(nil, 1, [16]byte{1})
	alias := appendAliasIndexKey(nil, 1, []byte("facebook"), []byte("fb1"))
	change := appendChangeKey(nil, 1, 3)
	tests := []struct {
		name    string
		decoder string
		key     []byte
	}{
		{name: "block empty", decoder: "block", key: nil},
		{name: "block short", decoder: "block", key: block[:16]},
		{name: "block long", decoder: "block", key: append(bytes.Clone(block), 0)},
		{name: "block wrong namespace", decoder: "block", key: append([]byte{byte(nsGroup)}, block[1:]...)},
		{name: "group empty", decoder: "group", key: nil},
		{name: "group short", decoder: "group", key: group[:12]},
		{name: "group long", decoder: "group", key: append(bytes.Clone(group), 0)},
		{name: "group given a quarantine key", decoder: "group", key: quarantine},
		{name: "dedup empty", decoder: "dedup", key: nil},
		{name: "dedup short", decoder: "dedup", key: []byte{byte(nsDedup), 0, 0, 1}},
		{name: "dedup wrong namespace", decoder: "dedup", key: appendAppKey(nil, "abcd")},
		{name: "quarantine short", decoder: "quarantine", key: quarantine[:12]},
		{name: "quarantine given a group key", decoder: "quarantine", key: group},
		{name: "profile empty", decoder: "profile", key: nil},
		{name: "profile short", decoder: "profile", key: profile[:20]},
		{name: "profile long", decoder: "profile", key: append(bytes.Clone(profile), 0)},
		{name: "profile given a change key", decoder: "profile", key: change},
		{name: "alias empty", decoder: "alias", key: nil},
		{name: "alias without label length", decoder: "alias", key: alias[:5]},
		{name: "alias label cut short", decoder: "alias", key: alias[:10]},
		{name: "alias label length overflows", decoder: "alias", key: append(appendAppPrefix(nil, nsAliasIndex, 1), bytes.Repeat([]byte{0xff}, 11)...)},
		{name: "alias wrong namespace", decoder: "alias", key: append([]byte{byte(nsUserIndex)}, alias[1:]...)},
		{name: "change short", decoder: "change", key: change[:12]},
		{name: "change given a quarantine key", decoder: "change", key: quarantine},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := decoders[tt.decoder](tt.key); err == nil {
				t.Fatalf("decode %s key %x: got nil error; want an error", tt.decoder, tt.key)
			}
		})
	}
}

type blockKeyFields struct {
	app   uint32
	day   int32
	first uint64
}

func compareBlockKeyFields(a, b blockKeyFields) int {
	return cmp.Or(cmp.Compare(a.app, b.app), cmp.Compare(a.day, b.day), cmp.Compare(a.first, b.first))
}

// TestBlockKeyOrder checks that block keys sort by app, then day (across
// the epoch), then first, which is what EventsByTime's range scans rely on.
func TestBlockKeyOrder(t *testing.T) {
	// In the order the keys must sort.
	want := []blockKeyFields{
		{app: 0, day: math.MaxInt32, first: math.MaxUint64},
		{app: 1, day: math.MinInt32, first: 9},
		{app: 1, day: -719162, first: 0},
		{app: 1, day: -2, first: 100},
		{app: 1, day: -1, first: 0},
		{app: 1, day: -1, first: 1},
		{app: 1, day: -1, first: math.MaxUint64},
		{app: 1, day: 0, first: 0},
		{app: 1, day: 0, first: 2},
		{app: 1, day: 1, first: 1},
		{app: 1, day: 20250, first: 7},
		{app: 1, day: 20250, first: 8},
		{app: 1, day: 20251, first: 1},
		{app: 1, day: math.MaxInt32, first: 0},
		{app: 2, day: math.MinInt32, first: 0},
		{app: 2, day: -1, first: 0},
		{app: math.MaxUint32, day: 0, first: 0},
	}
	if !slices.IsSortedFunc(want, compareBlockKeyFields) {
		t.Fatal("BUG: the test's table is not in order")
	}
	for i := 1; i < len(want); i++ {
		a := appendBlockKey(nil, want[i-1].app, want[i-1].day, want[i-1].first)
		b := appendBlockKey(nil, want[i].app, want[i].day, want[i].first)
		if bytes.Compare(a, b) >= 0 {
			t.Errorf("key %+v (%x) does not sort before %+v (%x)", want[i-1], a, want[i], b)
		}
	}
}

// TestGroupKeyOrder checks that group keys sort by app, then first, which
// is what EventsBySeq's range scan relies on.
func TestGroupKeyOrder(t *testing.T) {
	type fields struct {
		app   uint32
		first uint64
	}
	want := []fields{
		{app: 0, first: math.MaxUint64},
		{app: 1, first: 0},
		{app: 1, first: 1},
		{app: 1, first: 255},
		{app: 1, first: 256},
		{app: 1, first: 1 << 32},
		{app: 1, first: math.MaxUint64},
		{app: 2, first: 0},
		{app: 256, first: 0},
	}
	for i := 1; i < len(want); i++ {
		a := appendGroupKey(nil, want[i-1].app, want[i-1].first)
		b := appendGroupKey(nil, want[i].app, want[i].first)
		if bytes.Compare(a, b) >= 0 {
			t.Errorf("key %+v (%x) does not sort before %+v (%x)", want[i-1], a, want[i], b)
		}
		qa := appendQuarantineKey(nil, want[i-1].app, want[i-1].first)
		qb := appendQuarantineKey(nil, want[i].app, want[i].first)
		if bytes.Compare(qa, qb) >= 0 {
			t.Errorf("quarantine key %+v (%x) does not sort before %+v (%x)", want[i-1], qa, want[i], qb)
		}
	}
}

// TestNamespacesDoNotInterleave checks that each namespace is one
// contiguous key range, in the order of its prefix byte.
func TestNamespacesDoNotInterleave(t *testing.T) {
	// Per namespace, the smallest and the largest key the encoders can make.
	ranges := [][2][]byte{
		{appendMetaKey(nil, ""), appendMetaKey(nil, "\xff\xff\xff\xff\xff\xff\xff\xff")},
		{appendAppKey(nil, ""), appendAppKey(nil, "\xff\xff\xff\xff\xff\xff\xff\xff")},
		{appendBlockKey(nil, 0, math.MinInt32, 0), appendBlockKey(nil, math.MaxUint32, math.MaxInt32, math.MaxUint64)},
		{appendGroupKey(nil, 0, 0), appendGroupKey(nil, math.MaxUint32, math.MaxUint64)},
		{appendDedupKey(nil, 0, nil), appendDedupKey(nil, math.MaxUint32, bytes.Repeat([]byte{0xff}, 64))},
		{appendDedupSliceKey(nil, 0, 0, 0), appendDedupSliceKey(nil, math.MaxUint32, math.MaxUint32, 1<<fpBits-1)},
		{appendDedupBucketKey(nil, 0, 0, 0), appendDedupBucketKey(nil, math.MaxUint32, math.MaxUint32, 1<<fpBits-1)},
		{appendQuarantineKey(nil, 0, 0), appendQuarantineKey(nil, math.MaxUint32, math.MaxUint64)},
		{appendProfileKey(nil, 0, [16]byte{}), appendProfileKey(nil, math.MaxUint32, [16]byte{0: 0xff, 15: 0xff})},
		{appendUserIndexKey(nil, 0, nil), appendUserIndexKey(nil, math.MaxUint32, bytes.Repeat([]byte{0xff}, 64))},
		{appendAliasIndexKey(nil, 0, nil, nil), appendAliasIndexKey(nil, math.MaxUint32, bytes.Repeat([]byte{0xff}, 300), bytes.Repeat([]byte{0xff}, 64))},
		{appendIdempotencyKey(nil, 0, nil), appendIdempotencyKey(nil, math.MaxUint32, bytes.Repeat([]byte{0xff}, 255))},
		{appendChangeKey(nil, 0, 0), appendChangeKey(nil, math.MaxUint32, math.MaxUint64)},
		{appendForgottenKey(nil, 0, nil), appendForgottenKey(nil, math.MaxUint32, bytes.Repeat([]byte{0xff}, 64))},
		{appendIdemSliceKey(nil, 0, 0, nil), appendIdemSliceKey(nil, math.MaxUint32, math.MaxUint32, bytes.Repeat([]byte{0xff}, 255))},
	}
	for i := 1; i < len(ranges); i++ {
		if bytes.Compare(ranges[i-1][1], ranges[i][0]) >= 0 {
			t.Errorf("namespace %02x reaches %x, past the start %x of namespace %02x", ranges[i-1][1][0], ranges[i-1][1], ranges[i][0], ranges[i][0][0])
		}
	}
}

func TestAppUpperBound(t *testing.T) {
	tests := []struct {
		name string
		ns   Namespace
		app  uint32
		keys [][]byte // the largest keys of app in ns
		next []byte   // the smallest key after app, or nil
	}{
		{
			name: "block",
			ns:   nsBlock,
			app:  1,
			keys: [][]byte{appendBlockKey(nil, 1, math.MaxInt32, math.MaxUint64)},
			next: appendBlockKey(nil, 2, math.MinInt32, 0),
		},
		{
			name: "group",
			ns:   nsGroup,
			app:  0xff,
			keys: [][]byte{appendGroupKey(nil, 0xff, math.MaxUint64)},
			next: appendGroupKey(nil, 0x100, 0),
		},
		{
			name: "quarantine max app",
			ns:   nsQuarantine,
			app:  math.MaxUint32,
			keys: [][]byte{appendQuarantineKey(nil, math.MaxUint32, math.MaxUint64)},
		},
		{
			name: "dedup max app",
			ns:   nsDedup,
			app:  math.MaxUint32,
			keys: [][]byte{appendDedupKey(nil, math.MaxUint32, bytes.Repeat([]byte{0xff}, 100))},
			next: appendQuarantineKey(nil, 0, 0),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ub := appUpperBound(tt.ns, tt.app)
			for _, k := range tt.keys {
				if bytes.Compare(k, ub) >= 0 {
					t.Errorf("key %x is not below the upper bound %x", k, ub)
				}
			}
			if tt.next != nil && bytes.Compare(tt.next, ub) < 0 {
				t.Errorf("key %x of the next app is below the upper bound %x", tt.next, ub)
			}
		})
	}
}

func TestDayOf(t *testing.T) {
	const day = 86_400_000_000
	tests := []struct {
		name string
		us   int64
		want int32
	}{
		{name: "epoch", us: 0, want: 0},
		{name: "last µs of day 0", us: day - 1, want: 0},
		{name: "first µs of day 1", us: day, want: 1},
		{name: "one µs before the epoch", us: -1, want: -1},
		{name: "first µs of day -1", us: -day, want: -1},
		{name: "last µs of day -2", us: -day - 1, want: -2},
		{name: "first µs of day -2", us: -2 * day, want: -2},
		{name: "2025-06-12 start", us: time.Date(2025, 6, 12, 0, 0, 0, 0, time.UTC).UnixMicro(), want: 20251},
		{name: "2025-06-11 last µs", us: time.Date(2025, 6, 12, 0, 0, 0, 0, time.UTC).UnixMicro() - 1, want: 20250},
		{name: "2025-06-11 last ms as µs", us: time.Date(2025, 6, 12, 0, 0, 0, 0, time.UTC).UnixMilli()*1000 - 1000, want: 20250},
		{name: "1969-12-31 noon", us: time.Date(1969, 12, 31, 12, 0, 0, 0, time.UTC).UnixMicro(), want: -1},
		{name: "1969-12-31 last µs", us: time.Date(1969, 12, 31, 23, 59, 59, 999_999_000, time.UTC).UnixMicro(), want: -1},
		{name: "year 1", us: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro(), want: -719162},
		{name: "year 9999 end", us: time.Date(9999, 12, 31, 23, 59, 59, 999_999_000, time.UTC).UnixMicro(), want: 2932896},
		// Query bounds such as math.MinInt64 stay below every stored day.
		{name: "min int64", us: math.MinInt64, want: -106751992},
		{name: "max int64", us: math.MaxInt64, want: 106751991},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DayOf(tt.us); got != tt.want {
				t.Fatalf("DayOf(%d) = %d; want %d", tt.us, got, tt.want)
			}
		})
	}
}

func TestKeyEncodersDoNotAllocate(t *testing.T) {
	dst := make([]byte, 0, 64)
	id := []byte("4f6c1b2e-8a1d-4c55-9d1e-0e2f3a4b5c6d")
	allocs := testing.AllocsPerRun(100, func() {
		dst = appendBlockKey(dst[:0], 1, 20250, 7)
		dst = appendGroupKey(dst[:0], 1, 7)
		dst = appendDedupKey(dst[:0], 1, id)
		dst = appendQuarantineKey(dst[:0], 1, 7)
		if _, _, _, err := decodeBlockKey(appendBlockKey(dst[:0], 1, 20250, 7)); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("got %v allocs per run; want 0", allocs)
	}
}

// FuzzKeys checks that every key decodes to what was encoded, that block
// keys sort as their fields do, and that the decoders never panic on
// arbitrary bytes (and accept only what an encoder can produce).
func FuzzKeys(f *testing.F) {
	f.Add(uint32(1), int32(20250), uint64(7), uint32(1), int32(-1), uint64(8), []byte("msg-1"), appendBlockKey(nil, 1, 20250, 7))
	f.Add(uint32(0), int32(math.MinInt32), uint64(0), uint32(math.MaxUint32), int32(math.MaxInt32), uint64(math.MaxUint64), []byte{}, []byte{})
	f.Add(uint32(2), int32(0), uint64(1), uint32(2), int32(0), uint64(1), []byte{0, 0xff}, appendGroupKey(nil, 2, 1))
	f.Add(uint32(3), int32(-5), uint64(9), uint32(3), int32(5), uint64(9), []byte("x"), appendDedupKey(nil, 3, []byte("x")))
	f.Add(uint32(4), int32(4), uint64(4), uint32(4), int32(4), uint64(4), []byte("y"), appendQuarantineKey(nil, 4, 4))
	f.Add(uint32(5), int32(5), uint64(5), uint32(5), int32(5), uint64(5), []byte("facebookfb1"), appendAliasIndexKey(nil, 5, []byte("facebook"), []byte("fb1")))
	f.Add(uint32(6), int32(6), uint64(6), uint32(6), int32(6), uint64(6), []byte{}, appendChangeKey(nil, 6, 6))
	f.Add(uint32(7), int32(7), uint64(7), uint32(7), int32(7), uint64(7), []byte{}, appendProfileKey(nil, 7, [16]byte{7}))
	f.Fuzz(func(t *testing.T, app uint32, day int32, first uint64, app2 uint32, day2 int32, first2 uint64, id, raw []byte) {
		k := appendBlockKey(nil, app, day, first)
		if a, d, s, err := decodeBlockKey(k); err != nil || a != app || d != day || s != first {
			t.Fatalf("block key %x decodes to (%d, %d, %d, %v); want (%d, %d, %d)", k, a, d, s, err, app, day, first)
		}
		k2 := appendBlockKey(nil, app2, day2, first2)
		x, y := blockKeyFields{app, day, first}, blockKeyFields{app2, day2, first2}
		if got, want := bytes.Compare(k, k2), compareBlockKeyFields(x, y); got != want {
			t.Fatalf("keys of %+v and %+v compare as %d; want %d", x, y, got, want)
		}
		k = appendGroupKey(nil, app, first)
		if a, s, err := decodeGroupKey(k); err != nil || a != app || s != first {
			t.Fatalf("group key %x decodes to (%d, %d, %v); want (%d, %d)", k, a, s, err, app, first)
		}
		if got, want := bytes.Compare(k, appendGroupKey(nil, app2, first2)), cmp.Or(cmp.Compare(app, app2), cmp.Compare(first, first2)); got != want {
			t.Fatalf("group keys (%d, %d) and (%d, %d) compare as %d; want %d", app, first, app2, first2, got, want)
		}
		k = appendDedupKey(nil, app, id)
		if a, m, err := decodeDedupKey(k); err != nil || a != app || !bytes.Equal(m, id) {
			t.Fatalf("dedup key %x decodes to (%d, %x, %v); want (%d, %x)", k, a, m, err, app, id)
		}
		k = appendQuarantineKey(nil, app, first)
		if a, s, err := decodeQuarantineKey(k); err != nil || a != app || s != first {
			t.Fatalf("quarantine key %x decodes to (%d, %d, %v); want (%d, %d)", k, a, s, err, app, first)
		}
		k = appendFloorKey(nil, app)
		if a, err := decodeFloorKey(k); err != nil || a != app {
			t.Fatalf("retention floor key %x decodes to (%d, %v); want %d", k, a, err, app)
		}
		if lo, hi := floorKeyBounds(); bytes.Compare(k, lo) < 0 || bytes.Compare(k, hi) >= 0 {
			t.Fatalf("retention floor key %x outside its bounds [%x, %x)", k, lo, hi)
		}
		var pid [16]byte
		binary.BigEndian.PutUint64(pid[:], first)
		binary.BigEndian.PutUint64(pid[8:], first2)
		k = appendProfileKey(nil, app, pid)
		if a, p, err := decodeProfileKey(k); err != nil || a != app || p != pid {
			t.Fatalf("profile key %x decodes to (%d, %x, %v); want (%d, %x)", k, a, p, err, app, pid)
		}
		label, aliasID := id[:len(id)/2], id[len(id)/2:]
		k = appendAliasIndexKey(nil, app, label, aliasID)
		if a, l, i, err := decodeAliasIndexKey(k); err != nil || a != app || !bytes.Equal(l, label) || !bytes.Equal(i, aliasID) {
			t.Fatalf("alias key %x decodes to (%d, %x, %x, %v); want (%d, %x, %x)", k, a, l, i, err, app, label, aliasID)
		}
		// Alias keys are unique: another split of the same bytes is
		// another key.
		if len(id) > 0 && len(id)/2 != len(id)-1 && bytes.Equal(k, appendAliasIndexKey(nil, app, id[:len(id)-1], id[len(id)-1:])) {
			t.Fatalf("alias keys (%x, %x) and (%x, %x) are equal", label, aliasID, id[:len(id)-1], id[len(id)-1:])
		}
		k = appendSchemaKey(nil, string(label), string(aliasID))
		if a, e, err := decodeSchemaKey(k); err != nil || !bytes.Equal(a, label) || !bytes.Equal(e, aliasID) {
			t.Fatalf("schema key %x decodes to (%x, %x, %v); want (%x, %x)", k, a, e, err, label, aliasID)
		}
		k = appendChangeKey(nil, app, first)
		if a, s, err := decodeChangeKey(k); err != nil || a != app || s != first {
			t.Fatalf("change key %x decodes to (%d, %d, %v); want (%d, %d)", k, a, s, err, app, first)
		}
		if got, want := bytes.Compare(k, appendChangeKey(nil, app2, first2)), cmp.Or(cmp.Compare(app, app2), cmp.Compare(first, first2)); got != want {
			t.Fatalf("change keys (%d, %d) and (%d, %d) compare as %d; want %d", app, first, app2, first2, got, want)
		}
		// Slice keys sort by slice first: an expired slice is one range.
		slice, slice2 := uint32(day), uint32(day2)
		fp, fp2 := first>>(64-fpBits), first2>>(64-fpBits)
		k = appendDedupSliceKey(nil, slice, app, fp)
		if s, a, f, err := decodeDedupSliceKey(k); err != nil || s != slice || a != app || f != fp {
			t.Fatalf("dedup slice key %x decodes to (%d, %d, %d, %v); want (%d, %d, %d)", k, s, a, f, err, slice, app, fp)
		}
		if got, want := bytes.Compare(k, appendDedupSliceKey(nil, slice2, app2, fp2)), cmp.Or(cmp.Compare(slice, slice2), cmp.Compare(app, app2), cmp.Compare(fp, fp2)); got != want {
			t.Fatalf("dedup slice keys (%d, %d, %d) and (%d, %d, %d) compare as %d; want %d", slice, app, fp, slice2, app2, fp2, got, want)
		}
		if bytes.Compare(k, sliceStart(nsDedupSlice, slice)) < 0 || (slice < math.MaxUint32 && bytes.Compare(k, sliceStart(nsDedupSlice, slice+1)) >= 0) {
			t.Fatalf("dedup slice key %x lies outside its slice's range", k)
		}
		k = appendDedupBucketKey(nil, slice, app, fp)
		if s, a, hi, err := decodeDedupBucketKey(k); err != nil || s != slice || a != app || hi != fp&^(1<<32-1) {
			t.Fatalf("dedup bucket key %x decodes to (%d, %d, %d, %v); want (%d, %d, %d)", k, s, a, hi, err, slice, app, fp&^(1<<32-1))
		}
		if got, want := bytes.Compare(k, appendDedupBucketKey(nil, slice2, app2, fp2)), cmp.Or(cmp.Compare(slice, slice2), cmp.Compare(app, app2), cmp.Compare(fp>>32, fp2>>32)); got != want {
			t.Fatalf("dedup bucket keys (%d, %d, %d) and (%d, %d, %d) compare as %d; want %d", slice, app, fp, slice2, app2, fp2, got, want)
		}
		if bytes.Compare(k, sliceStart(nsDedupIndex, slice)) < 0 || (slice < math.MaxUint32 && bytes.Compare(k, sliceStart(nsDedupIndex, slice+1)) >= 0) {
			t.Fatalf("dedup bucket key %x lies outside its slice's range", k)
		}
		k = appendIdemSliceKey(nil, slice, app, id)
		if s, a, key, err := decodeIdemSliceKey(k); err != nil || s != slice || a != app || !bytes.Equal(key, id) {
			t.Fatalf("idempotency slice key %x decodes to (%d, %d, %x, %v); want (%d, %d, %x)", k, s, a, key, err, slice, app, id)
		}

		// Arbitrary bytes: no panics, and whatever decodes re-encodes to
		// the same bytes.
		if a, d, s, err := decodeBlockKey(raw); err == nil {
			if re := appendBlockKey(nil, a, d, s); !bytes.Equal(re, raw) {
				t.Fatalf("block key %x decodes and re-encodes to %x", raw, re)
			}
		}
		if a, s, err := decodeGroupKey(raw); err == nil {
			if re := appendGroupKey(nil, a, s); !bytes.Equal(re, raw) {
				t.Fatalf("group key %x decodes and re-encodes to %x", raw, re)
			}
		}
		if a, m, err := decodeDedupKey(raw); err == nil {
			if re := appendDedupKey(nil, a, m); !bytes.Equal(re, raw) {
				t.Fatalf("dedup key %x decodes and re-encodes to %x", raw, re)
			}
		}
		if a, s, err := decodeQuarantineKey(raw); err == nil {
			if re := appendQuarantineKey(nil, a, s); !bytes.Equal(re, raw) {
				t.Fatalf("quarantine key %x decodes and re-encodes to %x", raw, re)
			}
		}
		if a, err := decodeFloorKey(raw); err == nil {
			if re := appendFloorKey(nil, a); !bytes.Equal(re, raw) {
				t.Fatalf("retention floor key %x decodes and re-encodes to %x", raw, re)
			}
		}
		if a, p, err := decodeProfileKey(raw); err == nil {
			if re := appendProfileKey(nil, a, p); !bytes.Equal(re, raw) {
				t.Fatalf("profile key %x decodes and re-encodes to %x", raw, re)
			}
		}
		// The label length is a uvarint, which also decodes from
		// non-minimal encodings no encoder writes: compare fields.
		if a, l, i, err := decodeAliasIndexKey(raw); err == nil {
			re := appendAliasIndexKey(nil, a, l, i)
			if a2, l2, i2, err := decodeAliasIndexKey(re); err != nil || a2 != a || !bytes.Equal(l2, l) || !bytes.Equal(i2, i) {
				t.Fatalf("alias key %x decodes to (%d, %x, %x), which re-encodes to %x", raw, a, l, i, re)
			}
		}
		if a, e, err := decodeSchemaKey(raw); err == nil {
			re := appendSchemaKey(nil, string(a), string(e))
			if a2, e2, err := decodeSchemaKey(re); err != nil || !bytes.Equal(a2, a) || !bytes.Equal(e2, e) {
				t.Fatalf("schema key %x decodes to (%x, %x), which re-encodes to %x", raw, a, e, re)
			}
		}
		if a, s, err := decodeChangeKey(raw); err == nil {
			if re := appendChangeKey(nil, a, s); !bytes.Equal(re, raw) {
				t.Fatalf("change key %x decodes and re-encodes to %x", raw, re)
			}
		}
		if s, a, fp, err := decodeDedupSliceKey(raw); err == nil {
			if re := appendDedupSliceKey(nil, s, a, fp); !bytes.Equal(re, raw) {
				t.Fatalf("dedup slice key %x decodes and re-encodes to %x", raw, re)
			}
		}
		if s, a, hi, err := decodeDedupBucketKey(raw); err == nil {
			if re := appendDedupBucketKey(nil, s, a, hi); !bytes.Equal(re, raw) {
				t.Fatalf("dedup bucket key %x decodes and re-encodes to %x", raw, re)
			}
		}
		if s, a, key, err := decodeIdemSliceKey(raw); err == nil {
			if re := appendIdemSliceKey(nil, s, a, key); !bytes.Equal(re, raw) {
				t.Fatalf("idempotency slice key %x decodes and re-encodes to %x", raw, re)
			}
		}
		if a, key, err := decodeIdempotencyKey(raw); err == nil {
			if re := appendIdempotencyKey(nil, a, key); !bytes.Equal(re, raw) {
				t.Fatalf("idempotency key %x decodes and re-encodes to %x", raw, re)
			}
		}
		_ = annotateKey(raw)
	})
}

// TestKeysDataDriven runs testdata/keys. Its commands:
//
//	encode     one key spec per input line; prints each key as annotated hex
//	           and checks that it decodes back to the spec
//	decode     one hex key per input line ('|' and spaces ignored, '#'
//	           starts a comment); prints the annotated key or the error
//	sort       one key spec per input line; prints the keys in byte order
//
// A key spec is a kind and its fields: "block app=1 day=20250 first=7"
// (or time=<RFC 3339> instead of day), "group app=1 first=7",
// "dedup app=1 id=abc" (or idhex=00ff), "quarantine app=1 seq=9",
// "profile app=1 id=<32 hex digits>", "user app=1 id=u1" (or idhex=),
// "alias app=1 label=facebook id=fb1" (or labelhex=, idhex=),
// "idempotency app=1 key=k1" (or keyhex=), "change app=1 seq=9",
// "dedupslice slice=490021 app=1 fp=123", "idemslice slice=490021 app=1 key=k1",
// "app key=abc" and "meta name=seq_lease".
//
// Run with -rewrite to regenerate the expected output.
func TestKeysDataDriven(t *testing.T) {
	datadriven.RunTest(t, "testdata/keys", func(t *testing.T, td *datadriven.TestData) string {
		var out strings.Builder
		switch td.Cmd {
		case "encode":
			for _, line := range inputLines(td.Input) {
				k, err := encodeKeySpec(line)
				if err != nil {
					fmt.Fprintf(&out, "error: %v\n", err)
					continue
				}
				ann := annotateKey(k)
				if strings.HasPrefix(ann, "error") {
					t.Fatalf("%s: encoded key %x does not decode: %s", td.Pos, k, ann)
				}
				// The decoded fields must be the spec's, whatever its
				// spelling (time= versus day=, idhex= versus id=).
				if re, err := encodeKeySpec(strings.TrimSpace(ann[strings.Index(ann, "#")+1:])); err != nil || !bytes.Equal(re, k) {
					t.Fatalf("%s: %q encodes to %x, which decodes to %q, which encodes to %x (%v)", td.Pos, line, k, ann, re, err)
				}
				out.WriteString(ann + "\n")
			}
		case "decode":
			for _, line := range inputLines(td.Input) {
				if i := strings.IndexByte(line, '#'); i >= 0 {
					line = line[:i]
				}
				line = strings.NewReplacer(" ", "", "|", "", "\t", "").Replace(line)
				k, err := hex.DecodeString(line)
				if err != nil {
					fmt.Fprintf(&out, "error: bad hex: %v\n", err)
					continue
				}
				out.WriteString(annotateKey(k) + "\n")
			}
		case "sort":
			var keys [][]byte
			for _, line := range inputLines(td.Input) {
				k, err := encodeKeySpec(line)
				if err != nil {
					t.Fatalf("%s: %v", td.Pos, err)
				}
				keys = append(keys, k)
			}
			slices.SortFunc(keys, bytes.Compare)
			for _, k := range keys {
				out.WriteString(annotateKey(k) + "\n")
			}
		default:
			t.Fatalf("%s: unknown command %q", td.Pos, td.Cmd)
		}
		return out.String()
	})
}

func inputLines(s string) []string {
	var lines []string
	for line := range strings.SplitSeq(s, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			lines = append(lines, line)
		}
	}
	return lines
}

// encodeKeySpec encodes a key spec such as "block app=1 day=20250 first=7";
// the annotation annotateKey prints after '#' is a valid spec.
func encodeKeySpec(spec string) ([]byte, error) {
	fields := strings.Fields(spec)
	if len(fields) == 0 {
		return nil, fmt.Errorf("empty key spec")
	}
	kind := fields[0]
	args := map[string]string{}
	for _, f := range fields[1:] {
		if strings.HasPrefix(f, "(") {
			continue // annotateKey's date
		}
		name, val, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("%s: field %q is not name=value", spec, f)
		}
		args[name] = val
	}
	var err error
	num := func(name string, bits int) uint64 {
		s, ok := args[name]
		if !ok {
			err = cmp.Or(err, fmt.Errorf("%s: missing %s=", spec, name))
			return 0
		}
		x, perr := strconv.ParseUint(s, 10, bits)
		err = cmp.Or(err, perr)
		return x
	}
	// bytesArg returns name=text, or the bytes of namehex=hex.
	bytesArg := func(name string) []byte {
		if h, ok := args[name+"hex"]; ok {
			b, herr := hex.DecodeString(h)
			err = cmp.Or(err, herr)
			return b
		}
		return []byte(args[name])
	}
	var k []byte
	switch kind {
	case "block":
		var day int32
		switch {
		case args["time"] != "":
			tm, perr := time.Parse(time.RFC3339Nano, args["time"])
			err = perr
			day = DayOf(tm.UnixMicro())
		default:
			d, perr := strconv.ParseInt(args["day"], 10, 32)
			err = perr
			day = int32(d)
		}
		k = appendBlockKey(nil, uint32(num("app", 32)), day, num("first", 64))
	case "group":
		k = appendGroupKey(nil, uint32(num("app", 32)), num("first", 64))
	case "quarantine":
		k = appendQuarantineKey(nil, uint32(num("app", 32)), num("seq", 64))
	case "dedup":
		id := []byte(args["id"])
		if h, ok := args["idhex"]; ok {
			id, err = hex.DecodeString(h)
		}
		k = appendDedupKey(nil, uint32(num("app", 32)), id)
	case "profile":
		var id [16]byte
		h, herr := hex.DecodeString(args["id"])
		if herr == nil && len(h) != len(id) {
			herr = fmt.Errorf("id=%s is not 16 bytes of hex", args["id"])
		}
		err = herr
		copy(id[:], h)
		k = appendProfileKey(nil, uint32(num("app", 32)), id)
	case "user":
		k = appendUserIndexKey(nil, uint32(num("app", 32)), bytesArg("id"))
	case "alias":
		k = appendAliasIndexKey(nil, uint32(num("app", 32)), bytesArg("label"), bytesArg("id"))
	case "idempotency":
		k = appendIdempotencyKey(nil, uint32(num("app", 32)), bytesArg("key"))
	case "change":
		k = appendChangeKey(nil, uint32(num("app", 32)), num("seq", 64))
	case "dedupslice":
		k = appendDedupSliceKey(nil, uint32(num("slice", 32)), uint32(num("app", 32)), num("fp", 64))
	case "dedupbucket":
		k = appendDedupBucketKey(nil, uint32(num("slice", 32)), uint32(num("app", 32)), num("fp", 64))
	case "idemslice":
		k = appendIdemSliceKey(nil, uint32(num("slice", 32)), uint32(num("app", 32)), bytesArg("key"))
	case "schema":
		k = appendSchemaKey(nil, args["app"], args["event"])
	case "app":
		k = appendAppKey(nil, args["key"])
	case "meta":
		k = appendMetaKey(nil, args["name"])
	default:
		return nil, fmt.Errorf("%s: unknown key kind %q", spec, kind)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", spec, err)
	}
	return k, nil
}

// annotateKey prints k as hex, one column per field, followed by its
// decoded fields as a key spec, or "error: …" if k does not decode.
func annotateKey(k []byte) string {
	if len(k) == 0 {
		return "error: empty key"
	}
	var widths []int
	var desc string
	switch Namespace(k[0]) {
	case nsBlock:
		app, day, first, err := decodeBlockKey(k)
		if err != nil {
			return "error: " + err.Error()
		}
		widths = []int{1, 4, 4, 8}
		date := time.Unix(int64(day)*86400, 0).UTC().Format("2006-01-02")
		desc = fmt.Sprintf("block app=%d day=%d (%s) first=%d", app, day, date, first)
	case nsGroup:
		app, first, err := decodeGroupKey(k)
		if err != nil {
			return "error: " + err.Error()
		}
		widths = []int{1, 4, 8}
		desc = fmt.Sprintf("group app=%d first=%d", app, first)
	case nsDedup:
		app, id, err := decodeDedupKey(k)
		if err != nil {
			return "error: " + err.Error()
		}
		widths = []int{1, 4, len(id)}
		if isPrintableSpec(id) {
			desc = fmt.Sprintf("dedup app=%d id=%s", app, id)
		} else {
			desc = fmt.Sprintf("dedup app=%d idhex=%x", app, id)
		}
	case nsQuarantine:
		app, seq, err := decodeQuarantineKey(k)
		if err != nil {
			return "error: " + err.Error()
		}
		widths = []int{1, 4, 8}
		desc = fmt.Sprintf("quarantine app=%d seq=%d", app, seq)
	case nsProfile:
		app, id, err := decodeProfileKey(k)
		if err != nil {
			return "error: " + err.Error()
		}
		widths = []int{1, 4, 16}
		desc = fmt.Sprintf("profile app=%d id=%x", app, id)
	case nsUserIndex, nsIdempotent:
		// No decoder: the app and the rest, as sent.
		if len(k) < 5 {
			return fmt.Sprintf("error: malformed key %x", k)
		}
		app, rest := binary.BigEndian.Uint32(k[1:]), k[5:]
		widths = []int{1, 4, len(rest)}
		kind, field := "user", "id"
		if Namespace(k[0]) == nsIdempotent {
			kind, field = "idempotency", "key"
		}
		desc = fmt.Sprintf("%s app=%d %s", kind, app, bytesSpec(field, rest))
	case nsAliasIndex:
		app, label, id, err := decodeAliasIndexKey(k)
		if err != nil {
			return "error: " + err.Error()
		}
		widths = []int{1, 4, len(k) - 5 - len(label) - len(id), len(label), len(id)}
		desc = fmt.Sprintf("alias app=%d %s %s", app, bytesSpec("label", label), bytesSpec("id", id))
	case nsChange:
		app, seq, err := decodeChangeKey(k)
		if err != nil {
			return "error: " + err.Error()
		}
		widths = []int{1, 4, 8}
		desc = fmt.Sprintf("change app=%d seq=%d", app, seq)
	case nsDedupSlice:
		slice, app, fp, err := decodeDedupSliceKey(k)
		if err != nil {
			return "error: " + err.Error()
		}
		widths = []int{1, 4, 4, 6}
		desc = fmt.Sprintf("dedupslice slice=%d app=%d fp=%d", slice, app, fp)
	case nsDedupIndex:
		slice, app, hi, err := decodeDedupBucketKey(k)
		if err != nil {
			return "error: " + err.Error()
		}
		widths = []int{1, 4, 4, 2}
		desc = fmt.Sprintf("dedupbucket slice=%d app=%d fp=%d", slice, app, hi)
	case nsIdemSlice:
		slice, app, key, err := decodeIdemSliceKey(k)
		if err != nil {
			return "error: " + err.Error()
		}
		widths = []int{1, 4, 4, len(key)}
		desc = fmt.Sprintf("idemslice slice=%d app=%d %s", slice, app, bytesSpec("key", key))
	case nsSchema:
		app, event, err := decodeSchemaKey(k)
		if err != nil {
			return "error: " + err.Error()
		}
		widths = []int{1, len(k) - 1 - len(app) - len(event), len(app), len(event)}
		desc = fmt.Sprintf("schema app=%s event=%s", app, event)
	case nsApp:
		widths = []int{1, len(k) - 1}
		desc = fmt.Sprintf("app key=%s", k[1:])
	case nsMeta:
		widths = []int{1, len(k) - 1}
		desc = fmt.Sprintf("meta name=%s", k[1:])
	default:
		return fmt.Sprintf("error: unknown namespace %02x in key %x", k[0], k)
	}
	var cols []string
	for _, w := range widths {
		if w > 0 {
			cols = append(cols, hex.EncodeToString(k[:w]))
			k = k[w:]
		}
	}
	return strings.Join(cols, " | ") + "  # " + desc
}

// bytesSpec returns name=b for a printable b, else namehex=<hex>.
func bytesSpec(name string, b []byte) string {
	if isPrintableSpec(b) {
		return name + "=" + string(b)
	}
	return fmt.Sprintf("%shex=%x", name, b)
}

func isPrintableSpec(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c > '~' || c == '#' || c == '(' || c == '=' {
			return false
		}
	}
	return true
}
