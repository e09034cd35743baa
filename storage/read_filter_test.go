package storage

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"
)

// TestEventsWhere checks the filtered scans against the unfiltered ones
// filtered by a scan of each body, over a store holding both merged
// (version 2) and fresh (version 1) blocks, odd bodies among them.
func TestEventsWhere(t *testing.T) {
	db := openTestDB(t, Options{})
	app := ensureApp(t, db, benchAppKey)
	store := func(evs []blockEvent) {
		for len(evs) > 0 {
			batch := evs[:min(300, len(evs))]
			evs = evs[len(batch):]
			w := db.NewWriter(time.Now())
			first, err := w.Alloc(len(batch))
			if err != nil {
				t.Fatal(err)
			}
			for i, e := range batch {
				w.AddEvent(app, first+uint64(i), e.time, e.body)
			}
			if err := w.Commit(); err != nil {
				t.Fatal(err)
			}
			w.Close()
		}
	}
	gen := generatedStored(t, 3000, true)
	odd := oddBlockEvents()
	store(gen[:2000])
	store(odd)
	mergeEverything(t, db)
	store(gen[2000:]) // fresh blocks stay version 1

	var sp [nHead]span
	headOf := func(body []byte) (ev, uid []byte) {
		scanHead(body, sp[:])
		if s := sp[hEvent]; s.end >= 0 {
			ev = body[s.start:s.end]
		}
		if s := sp[hUserID]; s.end >= 0 {
			uid = body[s.start:s.end]
		}
		return ev, uid
	}
	type row struct {
		seq  uint64
		time int64
		body string
	}
	scan := func(byTime bool, f *Filter) []row {
		s, err := db.NewSnapshot()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var rows []row
		fn := func(seq uint64, tm int64, body []byte) error {
			rows = append(rows, row{seq, tm, string(body)})
			return nil
		}
		if byTime {
			err = s.EventsByTimeWhere(app, -1<<62, 1<<62, f, fn)
		} else {
			err = s.EventsBySeqWhere(app, 0, ^uint64(0), f, fn)
		}
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}
	var firstUser string
	for _, r := range scan(false, nil) {
		if _, uid := headOf([]byte(r.body)); uid != nil {
			firstUser = string(uid)
			break
		}
	}
	filters := []struct {
		f    *Filter
		none bool // it keeps no event
	}{
		{f: nil},
		{f: &Filter{}},
		{f: &Filter{Events: map[string]bool{"screen_view": true}}},
		{f: &Filter{Events: map[string]bool{"purchase": true, "e": true, "café \"quoted\"": true}}},
		{f: &Filter{Events: map[string]bool{"no such event": true}}, none: true},
		{f: &Filter{Events: map[string]bool{}}, none: true},
		{f: &Filter{UserID: firstUser, HasUserID: true}},
		{f: &Filter{UserID: `u\1/2`, HasUserID: true}},
		{f: &Filter{UserID: "", HasUserID: true}}, // events without a userId
		{f: &Filter{Exclude: map[string]uint64{firstUser: math.MaxUint64, "u": math.MaxUint64}}},
		{f: &Filter{Events: map[string]bool{"screen_view": true}, Exclude: map[string]uint64{firstUser: math.MaxUint64}}},
		// A bound within the stored range: the user's later events stay.
		{f: &Filter{Exclude: map[string]uint64{firstUser: uint64(len(gen) / 2)}}},
	}
	for _, byTime := range []bool{false, true} {
		all := scan(byTime, nil)
		if len(all) != len(gen)+len(odd) {
			t.Fatalf("scanned %d events; stored %d", len(all), len(gen)+len(odd))
		}
		for i, tt := range filters {
			f := tt.f
			t.Run(fmt.Sprintf("byTime=%v/%d", byTime, i), func(t *testing.T) {
				var want []row
				var buf []byte
				for _, r := range all {
					ev, uid := headOf([]byte(r.body))
					if f.all() || f.keepHead(ev, uid, r.seq, &buf) {
						want = append(want, r)
					}
				}
				got := scan(byTime, f)
				if !slices.Equal(got, want) {
					t.Fatalf("filter %+v: got %d events; want %d", f, len(got), len(want))
				}
				if (len(want) == 0) != tt.none {
					t.Fatalf("filter %+v keeps %d events: the case tests too little", f, len(want))
				}
			})
		}
	}
}
