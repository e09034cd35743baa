package storage

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// rewriteBlocksMs replaces every block of app's group starting at first
// with the same events in a millisecond version (1, or 2 when columnar), as
// a store written before 2026-12 holds them.
func rewriteBlocksMs(t *testing.T, db *DB, app uint32, first uint64, columnar bool) {
	t.Helper()
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: appendBlockKey(nil, app, minDay, 0), UpperBound: appUpperBound(nsBlock, app)})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	b := db.pdb.NewBatch()
	defer b.Close()
	n := 0
	for it.First(); it.Valid(); it.Next() {
		_, _, f, err := decodeBlockKey(it.Key())
		if err != nil {
			t.Fatal(err)
		}
		if f != first {
			continue
		}
		var d decodedBlock
		if err := d.decode(it.Value()); err != nil {
			t.Fatal(err)
		}
		evs := make([]blockEvent, d.len())
		for i := range evs {
			seq, tm, body := d.event(i)
			evs[i] = blockEvent{seq: seq, time: tm, body: slices.Clone(body)}
		}
		if err := b.Set(slices.Clone(it.Key()), appendBlockValueMs(nil, evs, columnar, codecZstd), nil); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n == 0 {
		t.Fatalf("no block of group %d", first)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
}

// blockVersions counts app's block values by version byte.
func blockVersions(t *testing.T, db *DB, app uint32) map[byte]int {
	t.Helper()
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: appendBlockKey(nil, app, minDay, 0), UpperBound: appUpperBound(nsBlock, app)})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	out := map[byte]int{}
	for it.First(); it.Valid(); it.Next() {
		out[it.Value()[0]]++
	}
	return out
}

// TestEventTimeMicroseconds: events are ordered and selected by their
// eventTime to the microsecond, across a day edge; blocks of the
// millisecond versions (1 and 2) read as ms × 1000 beside them, and the
// merger rewrites them in the microsecond versions (3 and 4) with the same
// events and bodies.
func TestEventTimeMicroseconds(t *testing.T) {
	d0 := int64(20786) * dayUs // 2026-11-30T00:00:00Z
	body := func(name, et string) string {
		return fmt.Sprintf(`{"type":"event","event":%q,"userId":"u","eventTime":%q}`, name, et)
	}
	for _, columnar := range []bool{false, true} {
		t.Run(fmt.Sprintf("columnar=%v", columnar), func(t *testing.T) {
			db := openTestDB(t, Options{ColumnarBlocks: columnar})
			app := ensureApp(t, db, "a")
			// Two groups as an old store holds them: times in ms (their
			// bodies keep digits below it), one in rows, one by column.
			oldRows := commitEvents(t, db,
				newEvent{app, d0 - 1000, body("old-last-ms", "2026-11-29T23:59:59.999Z")},
				newEvent{app, d0 + 1000, body("old-1ms", "2026-11-30T00:00:00.001234Z")},
			)
			rewriteBlocksMs(t, db, app, oldRows[0].seq, false)
			oldCols := commitEvents(t, db,
				newEvent{app, d0 + 5000, body("old-5ms", "2026-11-30T05:30:00.005+05:30")},
				newEvent{app, d0 - dayUs, body("old-day-before", "2026-11-29T00:00:00Z")},
			)
			rewriteBlocksMs(t, db, app, oldCols[0].seq, true)
			// Fresh events, in µs, sent in the order opposite to their
			// times.
			fresh := commitEvents(t, db,
				newEvent{app, d0 + 1500, body("new-1.5ms", "2026-11-30T00:00:00.0015Z")},
				newEvent{app, d0 + 1, body("new-1us", "2026-11-30T00:00:00.000001Z")},
				newEvent{app, d0, body("new-midnight", "2026-11-29T16:00:00-08:00")},
				newEvent{app, d0 - 1, body("new-last-us", "2026-11-29T23:59:59.999999Z")},
			)
			all := append(append(append([]event{}, oldRows...), oldCols...), fresh...)
			if v := blockVersions(t, db, app); v[valueV1] == 0 || v[valueV2] == 0 || v[valueV3] == 0 {
				t.Fatalf("block versions %v; want some of 1, 2 and 3", v)
			}
			wantOrder := []string{"old-day-before", "old-last-ms", "new-last-us", "new-midnight", "new-1us", "old-1ms", "new-1.5ms", "old-5ms"}
			ranges := []struct{ from, to int64 }{
				{math.MinInt64, math.MaxInt64},
				{d0, d0 + dayUs},       // the day: from midnight on
				{d0 - 1, d0 + 1},       // the last µs of the day before and midnight
				{d0 - 999, d0 + 1001},  // inside the ms of the old events
				{d0 + 2, d0 + 1500},    // to is exclusive
				{d0 + 1000, d0 + 1501}, // from is inclusive
				{d0 - dayUs, d0 - 999}, // the day before, to within its last ms
				{d0 + 1501, d0 + 5000}, // none: old-5ms is at 5000
				{d0 + 1501, d0 + 5001}, // old-5ms alone
			}
			check := func(stage string) {
				t.Helper()
				s := newSnapshot(t, db)
				got := eventsByTime(t, s, app, math.MinInt64, math.MaxInt64)
				var names []string
				for _, e := range got {
					names = append(names, nameOf(t, e.body))
				}
				if !slices.Equal(names, wantOrder) {
					t.Fatalf("%s: order %v; want %v", stage, names, wantOrder)
				}
				for _, r := range ranges {
					var want []event
					for _, e := range all {
						if e.time >= r.from && e.time < r.to {
							want = append(want, e)
						}
					}
					sortEvents(want)
					if got := eventsByTime(t, s, app, r.from, r.to); !slices.Equal(got, want) {
						t.Fatalf("%s: [%d, %d): got %v; want %v", stage, r.from-d0, r.to-d0, got, want)
					}
				}
				bySeq := eventsBySeq(t, s, app, 0, math.MaxUint64)
				if !slices.Equal(bySeq, all) {
					t.Fatalf("%s: by seq got %v; want %v", stage, bySeq, all)
				}
			}
			check("before merging")
			if _, err := db.MergeAll(); err != nil {
				t.Fatal(err)
			}
			v := blockVersions(t, db, app)
			want := byte(valueV3)
			if columnar {
				want = valueV4
			}
			if len(v) != 1 || v[want] == 0 {
				t.Fatalf("after merging: block versions %v; want only %d", v, want)
			}
			check("after merging")
		})
	}
}

// sortEvents sorts as EventsByTime returns: by time, then seq.
func sortEvents(evs []event) {
	slices.SortFunc(evs, func(a, b event) int {
		if a.time != b.time {
			return cmpInt(a.time, b.time)
		}
		return cmpInt(a.seq, b.seq)
	})
}

func cmpInt[T int64 | uint64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// nameOf returns the "event" member of a test body.
func nameOf(t *testing.T, body string) string {
	t.Helper()
	var h [nHead]span
	scanHead([]byte(body), h[:])
	if h[hEvent].end < 0 {
		t.Fatalf("no event in %s", body)
	}
	return body[h[hEvent].start:h[hEvent].end]
}
