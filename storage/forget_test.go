package storage

import (
	"encoding/binary"
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
	txn.Forget([]byte("alice"), false)
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	txn.Close()
	if _, ok := db.Forgotten(app)["alice"]; !ok || db.Forgotten(other) != nil {
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

// forget deletes users of app in one profile transaction.
func forget(t *testing.T, db *DB, app uint32, suppress bool, users ...string) {
	t.Helper()
	txn, err := db.BeginProfiles(app, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Close()
	for _, u := range users {
		txn.Forget([]byte(u), suppress)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
}

// TestForgetBound deletes a user between their events: only those stored
// before the deletion go; later ones are a new start. A deletion with
// suppress hides every event of the user and lists them as suppressed, and
// deleting again without it lifts that.
func TestForgetBound(t *testing.T) {
	db := openTestDB(t, Options{})
	app := ensureApp(t, db, "a")
	ev := func(user string, i int) newEvent {
		return newEvent{app, 20250*dayUs + int64(i), fmt.Sprintf(`{"userId":%q,"i":%d}`, user, i)}
	}
	before := commitEvents(t, db, ev("alice", 1), ev("bob", 2))
	forget(t, db, app, false, "alice")
	if got := db.Forgotten(app)["alice"]; got != before[1].seq {
		t.Fatalf("alice's bound is %d; want %d, the last sequence before the deletion", got, before[1].seq)
	}
	if db.Suppressed(app) != nil {
		t.Fatalf("Suppressed = %v; want none", db.Suppressed(app))
	}
	after := commitEvents(t, db, ev("alice", 3), ev("bob", 4))
	if _, err := db.PurgeForgotten(); err != nil {
		t.Fatal(err)
	}
	withSnapshot(t, db, func(s *Snapshot) {
		checkEvents(t, "after a deletion", eventsBySeq(t, s, app, 0, math.MaxUint64), []event{before[1], after[0], after[1]})
	})

	gen := db.ForgottenGen()
	forget(t, db, app, true, "alice")
	if db.ForgottenGen() == gen {
		t.Error("ForgottenGen did not change on a deletion")
	}
	if !db.Suppressed(app)["alice"] || db.Forgotten(app)["alice"] != math.MaxUint64 {
		t.Fatalf("after suppress: Suppressed %v, bound %d; want alice, no bound", db.Suppressed(app), db.Forgotten(app)["alice"])
	}
	// One that slipped past ingest's check, perhaps after the purger (which
	// the deletion kicked) has already run: reads leave it out at once, and
	// the app's next purge, here for another deletion, removes it.
	late := commitEvents(t, db, ev("alice", 5))
	withSnapshot(t, db, func(s *Snapshot) {
		var got []event
		err := s.EventsBySeqWhere(app, 0, math.MaxUint64, &Filter{Exclude: db.Forgotten(app)}, func(seq uint64, tm int64, body []byte) error {
			got = append(got, event{seq: seq, time: tm, body: string(body)})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		checkEvents(t, "read after suppress", got, []event{before[1], after[1]})
	})
	forget(t, db, app, false, "carol")
	if _, err := db.PurgeForgotten(); err != nil {
		t.Fatal(err)
	}
	withSnapshot(t, db, func(s *Snapshot) {
		checkEvents(t, "stored after suppress and another deletion", eventsBySeq(t, s, app, 0, math.MaxUint64), []event{before[1], after[1]})
	})
	forget(t, db, app, false, "alice")
	if db.Suppressed(app) != nil || db.Forgotten(app)["alice"] != late[0].seq {
		t.Fatalf("deleted again without suppress: Suppressed %v, bound %d; want none, %d", db.Suppressed(app), db.Forgotten(app)["alice"], late[0].seq)
	}
}

// TestForgottenV1Upgrade opens a store whose deleted user has a version-1
// record (no bound): it hides what it hid, the events stored until then,
// and keeps that bound across later opens.
func TestForgottenV1Upgrade(t *testing.T) {
	dir := t.TempDir()
	db := openDiskDB(t, dir, Options{Sync: true})
	app := ensureApp(t, db, "a")
	stored := commitEvents(t, db, newEvent{app, 20250 * dayUs, `{"userId":"alice"}`})
	v1 := binary.AppendUvarint([]byte{valueV1}, uint64(testNow.Unix()))
	if err := db.pdb.Set(appendForgottenKey(nil, app, []byte("alice")), append(v1, 1), nil); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	var bound uint64
	for open := range 2 {
		db = openDiskDB(t, dir, Options{Sync: true})
		b, ok := db.Forgotten(app)["alice"]
		if !ok || b < stored[0].seq || open == 1 && b != bound {
			t.Fatalf("open %d: alice's bound is %d (%v); want one at or over %d that stays", open, b, ok, stored[0].seq)
		}
		bound = b
		commitEvents(t, db, newEvent{app, 20250 * dayUs, `{"userId":"alice"}`})
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestForgottenValues(t *testing.T) {
	for _, r := range []forgottenRecord{
		{unix: 1, bound: 0},
		{unix: 1_700_000_000, bound: 12345, purged: true},
		{unix: 1_700_000_000, bound: math.MaxUint64, suppress: true},
		{unix: 5, bound: 7, purged: true, suppress: true},
	} {
		got, err := decodeForgottenValue(appendForgottenValue(nil, r))
		if err != nil || got != r {
			t.Errorf("round trip of %+v = %+v, %v", r, got, err)
		}
	}
	for _, tt := range []struct {
		v    []byte
		want forgottenRecord
		ok   bool
	}{
		{[]byte{valueV1, 5, 0}, forgottenRecord{unix: 5, legacy: true}, true},
		{[]byte{valueV1, 5, 1}, forgottenRecord{unix: 5, legacy: true, purged: true}, true},
		{[]byte{valueV1, 5, 2}, forgottenRecord{}, false},
		{[]byte{valueV1, 5}, forgottenRecord{}, false},
		{[]byte{valueV2, 5, 9, 4}, forgottenRecord{}, false}, // unknown flag
		{[]byte{valueV2, 5, 9}, forgottenRecord{}, false},
		{[]byte{valueV2, 5, 9, 0, 0}, forgottenRecord{}, false},
		{[]byte{3, 5, 9, 0}, forgottenRecord{}, false},
	} {
		got, err := decodeForgottenValue(tt.v)
		if (err == nil) != tt.ok || tt.ok && got != tt.want {
			t.Errorf("decodeForgottenValue(%x) = %+v, %v; want %+v, ok %v", tt.v, got, err, tt.want, tt.ok)
		}
	}
}
