package storage

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"trove/internal/testutil"
)

// TestReplicatedStore checks what a replicated store promises (the top of
// replicated.go): sequences from the log entry, the applied position kept
// across a reopen, an entry that failed to commit applied again under the
// same sequences, and no sequence from a lease.
func TestReplicatedStore(t *testing.T) {
	dir := t.TempDir()
	open := func() *DB {
		t.Helper()
		db, err := Open(dir, Options{Replicated: true, DedupWindow: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	apply := func(db *DB, logSeq uint64, n int, commit bool) (uint64, error) {
		t.Helper()
		app, err := db.EnsureApp("replicated-app")
		if err != nil {
			t.Fatal(err)
		}
		w := db.NewWriter(at.Add(time.Duration(logSeq) * time.Second))
		defer w.Close()
		first, err := w.AllocLog(logSeq, n)
		if err != nil {
			return 0, err
		}
		for i := range n {
			w.AddEvent(app, first+uint64(i), at.UnixMicro(), []byte(`{"i":1}`))
		}
		if !commit {
			return first, nil
		}
		return first, w.Commit()
	}
	db := open()
	if w := db.NewWriter(at); true {
		if _, err := w.Alloc(1); err == nil {
			t.Error("Alloc on a replicated store succeeded")
		}
		w.Close()
	}
	if first, err := apply(db, 1, 3, true); err != nil || first != 1<<LogSeqShift {
		t.Fatalf("entry 1: first %d, %v; want %d", first, err, 1<<LogSeqShift)
	}
	// Entry 2 fails before its commit: the watermark passes the empty
	// sequences after entry 1 but none of entry 2's, and entry 2 is
	// applied again under the same sequences.
	if _, err := apply(db, 2, 2, false); err != nil {
		t.Fatal(err)
	}
	if wm, _ := db.Watermark(); wm != 2<<LogSeqShift-1 {
		t.Errorf("watermark after an entry that did not commit: %d; want %d", wm, 2<<LogSeqShift-1)
	}
	if first, err := apply(db, 2, 2, true); err != nil || first != 2<<LogSeqShift {
		t.Fatalf("entry 2 again: first %d, %v; want %d", first, err, 2<<LogSeqShift)
	}
	if _, err := apply(db, 2, 1, true); err == nil {
		t.Error("entry 2 applied twice")
	}
	// An entry of no event moves the applied position, and the watermark
	// to the end of its sequences, as a node that opens there has it.
	if _, err := apply(db, 3, 0, true); err != nil {
		t.Fatal(err)
	}
	if wm, _ := db.Watermark(); wm != 4<<LogSeqShift-1 {
		t.Errorf("watermark after entry 3 (no event): %d; want %d", wm, 4<<LogSeqShift-1)
	}
	wantAt := at.Add(3 * time.Second)
	if n, got := db.Applied(); n != 3 || !got.Equal(wantAt) {
		t.Errorf("Applied: %d at %v; want 3 at %v", n, got, wantAt)
	}
	db.Close()

	db = open()
	if n, got := db.Applied(); n != 3 || !got.Equal(wantAt) {
		t.Errorf("Applied after a reopen: %d at %v; want 3 at %v", n, got, wantAt)
	}
	if now := db.now(); !now.Equal(wantAt) {
		t.Errorf("the store's clock is %v; want the last entry's time %v", now, wantAt)
	}
	if first, err := apply(db, 5, 1, true); err != nil || first != 5<<LogSeqShift {
		t.Fatalf("entry 5: first %d, %v; want %d", first, err, 5<<LogSeqShift)
	}
	if wm, _ := db.Watermark(); wm != 6<<LogSeqShift-1 {
		t.Errorf("watermark after entry 5: %d; want %d, the end of its sequences", wm, 6<<LogSeqShift-1)
	}
	db.Close()

	// A store that a single node numbered cannot become a replicated one.
	single := t.TempDir()
	s, err := Open(single, Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := s.NewWriter(at)
	if _, err := w.Alloc(1); err != nil {
		t.Fatal(err)
	}
	w.Close()
	s.Close()
	if _, err := Open(single, Options{Replicated: true}); !errors.Is(err, ErrNotReplicated) {
		t.Errorf("opening a single node's store as replicated: %v; want ErrNotReplicated", err)
	}
}

// TestExpireEntry checks a pass of retention applied as a log entry: the
// days before the pass's time minus an app's retention go, others stay,
// the pass is the applied position (kept across a reopen), a store that
// applied it refuses it again, and the compaction of what it removed is
// counted once it has run in the background.
func TestExpireEntry(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, Options{Replicated: true, DedupWindow: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	short, forever := ensureApp(t, db, "short"), ensureApp(t, db, "forever")
	w := db.NewWriter(at)
	first, err := w.AllocLog(1, 4)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range []struct {
		app  uint32
		days int
	}{{short, 5}, {short, 1}, {forever, 5}, {forever, 0}} {
		w.AddEvent(e.app, first+uint64(i), at.Add(-time.Duration(e.days)*24*time.Hour).UnixMicro(), []byte(`{"i":1}`))
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	keep := func(appKey string) time.Duration {
		if appKey == "short" {
			return 3 * 24 * time.Hour
		}
		return 0
	}
	pass := at.Add(time.Hour)
	if err := db.ExpireEntry(2, pass, keep); err != nil {
		t.Fatal(err)
	}
	if err := db.ExpireEntry(2, pass, keep); err == nil {
		t.Error("the same pass applied twice")
	}
	if n, got := db.Applied(); n != 2 || !got.Equal(pass) {
		t.Errorf("Applied after the pass: %d at %v; want 2 at %v", n, got, pass)
	}
	if wm, _ := db.Watermark(); wm != 3<<LogSeqShift-1 {
		t.Errorf("watermark after the pass: %d; want %d", wm, 3<<LogSeqShift-1)
	}
	count := func(app uint32) (n int) {
		withSnapshot(t, db, func(s *Snapshot) { n = len(eventsBySeq(t, s, app, 0, math.MaxUint64)) })
		return n
	}
	if s, f := count(short), count(forever); s != 1 || f != 2 {
		t.Errorf("after the pass: %d events of the app kept 3 days, %d of the one kept forever; want 1 and 2", s, f)
	}
	testutil.WaitFor(t, 30*time.Second, func() error {
		if days, _ := db.ExpiredTotals(); days != 1 {
			return fmt.Errorf("expired days counted: %d; want 1 once compacted", days)
		}
		return nil
	})
	db.Close()
	db, err = Open(dir, Options{Replicated: true, DedupWindow: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n, _ := db.Applied(); n != 2 {
		t.Errorf("Applied after a reopen: %d; want 2", n)
	}
	if s := count(short); s != 1 {
		t.Errorf("after a reopen: %d events of the app kept 3 days; want 1", s)
	}
}
