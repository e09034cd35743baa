package storage

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"trove/internal/testutil"
)

func TestExpire(t *testing.T) {
	fs := vfs.NewMem()
	db, err := Open("", Options{fs: fs})
	if err != nil {
		t.Fatal(err)
	}
	app, other := ensureApp(t, db, "a"), ensureApp(t, db, "b")
	d0 := int64(20250) * dayUs
	var all, others []event
	// Ten days; each commit spans three neighbouring days, so that some
	// groups straddle the floor and keep a day before it in their list.
	for c := range 10 {
		var evs []newEvent
		for i := range 6 {
			day := int64(c + i%3)
			evs = append(evs, newEvent{app, d0 + day*dayUs + int64(i)*1000, fmt.Sprintf(`{"c":%d,"i":%d}`, c, i)})
		}
		evs = append(evs, newEvent{other, d0 + int64(c)*dayUs, fmt.Sprintf(`{"other":%d}`, c)})
		stored := commitEvents(t, db, evs...)
		all = append(all, stored[:6]...)
		others = append(others, stored[6])
	}
	floor := d0 + 5*dayUs
	kept := func(evs []event, byTime bool) []event {
		return filterEvents(evs, byTime, func(e event) bool { return e.time >= floor })
	}
	check := func(t *testing.T, db *DB) {
		t.Helper()
		withSnapshot(t, db, func(s *Snapshot) {
			checkEvents(t, "by seq", eventsBySeq(t, s, app, 0, math.MaxUint64), kept(all, false))
			checkEvents(t, "by time", eventsByTime(t, s, app, math.MinInt64, math.MaxInt64), kept(all, true))
			checkEvents(t, "other app", eventsBySeq(t, s, other, 0, math.MaxUint64), others)
		})
		// The blocks before the floor are gone from the store, not only
		// hidden.
		it, err := db.pdb.NewIter(&pebble.IterOptions{
			LowerBound: appendBlockKey(nil, app, minDay, 0),
			UpperBound: appendBlockKey(nil, app, DayOf(floor), 0),
		})
		if err != nil {
			t.Fatal(err)
		}
		defer it.Close()
		for it.First(); it.Valid(); it.Next() {
			t.Errorf("block %x before the floor is still stored", it.Key())
		}
	}

	// A cutoff an hour into day 5 keeps day 5 whole. (Flushed, so that
	// the removed bytes have a size on disk.)
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	res, err := db.Expire("a", time.UnixMicro(floor+3_600_000_000))
	if err != nil {
		t.Fatal(err)
	}
	if res.Floor != floor || res.Days != 5 || res.Groups != 3 || res.Bytes == 0 {
		t.Errorf("Expire = %+v, want floor %d, 5 days, 3 groups (commits 0-2 hold only days 0-4), some bytes", res, floor)
	}
	if days, _ := db.ExpiredTotals(); days != 5 {
		t.Errorf("ExpiredTotals days = %d, want 5", days)
	}
	check(t, db)
	// An earlier cutoff, or the same one, changes nothing.
	for _, c := range []int64{floor - dayUs, floor} {
		if res, err := db.Expire("a", time.UnixMicro(c)); err != nil || res.Days != 0 {
			t.Errorf("Expire(%d) again = %+v, %v: want nothing removed", c, res, err)
		}
	}
	// Merging groups that list removed days works and keeps the rest.
	mergeEverything(t, db)
	check(t, db)
	// The floor survives a restart.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open("", Options{fs: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	check(t, db)
	// An unknown app has nothing to remove.
	if res, err := db.Expire("nobody", time.Now()); err != nil || res.Days != 0 {
		t.Errorf("Expire(unknown app) = %+v, %v", res, err)
	}
}

func TestRetentionLoop(t *testing.T) {
	db := openTestDB(t, Options{
		Retention: func(appKey string) time.Duration {
			if appKey == "short" {
				return 24 * time.Hour
			}
			return 0
		},
		RetentionInterval: 10 * time.Millisecond,
	})
	short, forever := ensureApp(t, db, "short"), ensureApp(t, db, "forever")
	old := time.Now().Add(-72 * time.Hour).UnixMicro()
	commitEvents(t, db, newEvent{short, old, `{"old":1}`}, newEvent{forever, old, `{"old":2}`})
	// Polled by what is stored, not by ExpiredTotals: a pass that counted
	// the days just before the commit removes the event without counting
	// it (ingest refuses events that old, so only a test can race so).
	testutil.WaitFor(t, 30*time.Second, func() error {
		var n int
		withSnapshot(t, db, func(s *Snapshot) { n = len(eventsBySeq(t, s, short, 0, math.MaxUint64)) })
		if n != 0 {
			return fmt.Errorf("the app with a one-day retention still has %d events", n)
		}
		return nil
	})
	withSnapshot(t, db, func(s *Snapshot) {
		if got := eventsBySeq(t, s, forever, 0, math.MaxUint64); len(got) != 1 {
			t.Errorf("app kept forever has %v, want its one event", got)
		}
	})
}
