package storage

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

func TestPurgeForgotten(t *testing.T) {
	db := openTestDB(t, Options{})
	app, other := ensureApp(t, db, "a"), ensureApp(t, db, "b")
	ev := func(app uint32, user string, day, i int) newEvent {
		return newEvent{app, int64(20250+day)*dayUs + int64(i), fmt.Sprintf(`{"userId":%q,"i":%d}`, user, i)}
	}
	var all []event
	// Mixed commits over two days, one commit of alice alone, and alice in
	// another app (not deleted there).
	all = append(all, commitEvents(t, db, ev(app, "alice", 0, 1), ev(app, "bob", 0, 2), ev(app, "alice", 1, 3))...)
	all = append(all, commitEvents(t, db, ev(app, "alice", 0, 4), ev(app, "alice", 1, 5))...)
	all = append(all, commitEvents(t, db, ev(app, "bob", 1, 6), ev(app, `a\"lice`, 1, 7))...)
	otherEvs := commitEvents(t, db, ev(other, "alice", 0, 8))
	mergeEverything(t, db) // some in merged groups, zstd
	all = append(all, commitEvents(t, db, ev(app, "alice", 2, 9), ev(app, "carol", 2, 10))...)

	txn, err := db.BeginProfiles(app, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	txn.Forget([]byte("alice"))
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	txn.Close()
	if !db.Forgotten(app)["alice"] || db.Forgotten(other) != nil {
		t.Fatalf("Forgotten: %v, %v", db.Forgotten(app), db.Forgotten(other))
	}
	// The purger starts on the commit; a pass of our own may find it done.
	if _, err := db.PurgeForgotten(); err != nil {
		t.Fatal(err)
	}
	if users, events := db.PurgedTotals(); users != 1 || events != 5 {
		t.Errorf("PurgedTotals = %d users, %d events; want 1 user, 5 events", users, events)
	}
	notAlice := filterEvents(all, false, func(e event) bool { return !strings.Contains(e.body, `"alice"`) })
	withSnapshot(t, db, func(s *Snapshot) {
		checkEvents(t, "by seq", eventsBySeq(t, s, app, 0, math.MaxUint64), notAlice)
		checkEvents(t, "by time", eventsByTime(t, s, app, math.MinInt64, math.MaxInt64), filterEvents(notAlice, true, func(event) bool { return true }))
		checkEvents(t, "other app", eventsBySeq(t, s, other, 0, math.MaxUint64), otherEvs)
	})
	// Purged once: a second pass has nothing to do, and merging the
	// rewritten groups keeps them whole.
	if res, err := db.PurgeForgotten(); err != nil || res != (Purged{}) {
		t.Errorf("second PurgeForgotten = %+v, %v; want nothing", res, err)
	}
	mergeEverything(t, db)
	withSnapshot(t, db, func(s *Snapshot) {
		checkEvents(t, "after merging", eventsBySeq(t, s, app, 0, math.MaxUint64), notAlice)
	})
}
