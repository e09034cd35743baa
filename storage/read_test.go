package storage

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestEventsBySeqMergedOrder reads merged groups in ingest order when
// their events are spread over days (so a group's sequences interleave
// across its blocks): a single node's group, whose sequences are dense
// (each event is placed by its sequence), and a replicated store's, whose
// sequences leave 2^20 unused after each entry (sorted instead), in both
// block layouts, whole and from a sequence in the middle.
func TestEventsBySeqMergedOrder(t *testing.T) {
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	for _, replicated := range []bool{false, true} {
		for _, columnar := range []bool{false, true} {
			t.Run(fmt.Sprintf("replicated=%v/columnar=%v", replicated, columnar), func(t *testing.T) {
				db, err := Open(t.TempDir(), Options{Replicated: replicated, ColumnarBlocks: columnar, DedupWindow: time.Hour})
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				app := ensureApp(t, db, benchAppKey)
				var want []uint64
				for req := range 6 {
					w := db.NewWriter(at)
					var first uint64
					if replicated {
						first, err = w.AllocLog(uint64(req+1), 50)
					} else {
						first, err = w.Alloc(50)
					}
					if err != nil {
						t.Fatal(err)
					}
					for i := range 50 {
						// Days in turn, so that every day's block holds
						// sequences from every request.
						et := at.Add(-time.Duration(i%5) * 24 * time.Hour).Add(-time.Duration(i) * time.Second)
						seq := first + uint64(i)
						w.AddEvent(app, seq, et.UnixMicro(), fmt.Appendf(nil, `{"event":"e","userId":"u%d","seq":%d}`, i%7, seq))
						want = append(want, seq)
					}
					if err := w.Commit(); err != nil {
						t.Fatal(err)
					}
					w.Close()
				}
				if mergeEverything(t, db) == 0 {
					t.Fatal("nothing merged")
				}
				for _, since := range []uint64{0, want[137]} {
					s, err := db.NewSnapshot()
					if err != nil {
						t.Fatal(err)
					}
					var got []uint64
					err = s.EventsBySeq(app, since, ^uint64(0), func(seq uint64, _ int64, body []byte) error {
						if !bytes.HasSuffix(body, fmt.Appendf(nil, `"seq":%d}`, seq)) {
							t.Errorf("seq %d has the body %s", seq, body)
						}
						got = append(got, seq)
						return nil
					})
					s.Close()
					if err != nil {
						t.Fatal(err)
					}
					exp := want
					if since > 0 {
						exp = want[138:]
					}
					if !slices.Equal(got, exp) {
						t.Errorf("since %d: %d events, first %v; want %d in ingest order", since, len(got), got[:min(5, len(got))], len(exp))
					}
				}
			})
		}
	}
}
