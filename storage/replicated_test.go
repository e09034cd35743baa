package storage

import (
	"errors"
	"testing"
	"time"
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
	// An entry of no event moves the applied position, not the watermark.
	if _, err := apply(db, 3, 0, true); err != nil {
		t.Fatal(err)
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
	if wm, _ := db.Watermark(); wm != 5<<LogSeqShift {
		t.Errorf("watermark %d; want %d", wm, 5<<LogSeqShift)
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
