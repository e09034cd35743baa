package storage

import (
	"encoding/hex"
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"
)

// TestCheckpoint checks that a checkpoint holds everything committed before
// it, with the watermark, and nothing written after, and that it opens as a
// store of its own, with the sequence lease and meta values.
func TestCheckpoint(t *testing.T) {
	// Without Sync, so that the flushed WAL is what keeps the last commit.
	db := openDiskDB(t, filepath.Join(t.TempDir(), "store"), Options{})
	app := ensureApp(t, db, "a")
	if err := db.SetMeta("m", []byte("value")); err != nil {
		t.Fatal(err)
	}
	// One commit in an sstable and a blob file (hard-linked into the
	// checkpoint), one in the WAL (copied). The first block is large and
	// incompressible, so that Pebble separates it into a blob file.
	big := make([]byte, 4096)
	rand.NewChaCha8([32]byte{1}).Read(big)
	before := commitEvents(t, db, newEvent{app, 1, hex.EncodeToString(big)})
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	before = append(before, commitEvents(t, db, newEvent{app, 2, "y"})...)
	dir := filepath.Join(t.TempDir(), "checkpoint")
	wm, err := db.Checkpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ssts, _ := filepath.Glob(filepath.Join(dir, "*.sst")); len(ssts) == 0 {
		t.Error("the checkpoint holds no sstable; the test wants one")
	}
	if blobs, _ := filepath.Glob(filepath.Join(dir, "*.blob")); len(blobs) == 0 {
		t.Error("the checkpoint holds no blob file; the test wants one")
	}
	if wm < before[1].seq {
		t.Errorf("checkpoint watermark %d; want at least %d, the last sequence committed before it", wm, before[1].seq)
	}
	commitEvents(t, db, newEvent{app, 3, "after"})
	if _, err := db.Checkpoint(dir); err == nil {
		t.Error("a checkpoint into an existing directory succeeded; want an error")
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Checkpoint(filepath.Join(t.TempDir(), "late")); !errors.Is(err, ErrClosed) {
		t.Errorf("Checkpoint after Close: got %v; want ErrClosed", err)
	}

	cp := openDiskDB(t, dir, Options{})
	defer cp.Close()
	if id, err := cp.App("a"); err != nil || id != app {
		t.Fatalf("App in the checkpoint: got %d, %v; want %d", id, err, app)
	}
	if v, err := cp.GetMeta("m"); string(v) != "value" || err != nil {
		t.Errorf("GetMeta in the checkpoint: got %q, %v; want \"value\"", v, err)
	}
	withSnapshot(t, cp, func(s *Snapshot) {
		checkEvents(t, "checkpoint", eventsBySeq(t, s, app, 0, math.MaxUint64), before)
	})
	// New sequences in the restored store come after the checkpoint's.
	evs := commitEvents(t, cp, newEvent{app, 4, "new"})
	if evs[0].seq <= wm {
		t.Errorf("first sequence in the restored store %d; want more than the checkpoint's watermark %d", evs[0].seq, wm)
	}
}
