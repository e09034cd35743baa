package storage

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Checkpoint writes a consistent copy of the store into dir, which must not
// exist yet, and returns its watermark: every write at or below it is in the
// copy (later ones may be too). The copy is a Pebble database of its own,
// which Open reads as it reads the store; sstables are hard-linked when dir
// is on the store's file system, so a checkpoint costs little space until
// compactions replace the linked files. The WAL is flushed and synced first,
// so writes committed without Sync are in it as well.
//
// The caller owns dir afterwards and removes it when done.
func (db *DB) Checkpoint(dir string) (watermark uint64, err error) {
	if db.closed.Load() {
		return 0, ErrClosed
	}
	// Close waits for this, as it waits for snapshots.
	db.readers.RLock()
	defer db.readers.RUnlock()
	if db.closed.Load() {
		return 0, ErrClosed
	}
	// Watermark first: everything at or below it has committed, so the
	// checkpoint that follows contains it.
	wm, _ := db.seq.watermark()
	if err := db.pdb.Checkpoint(dir, pebble.WithFlushedWAL()); err != nil {
		return 0, fmt.Errorf("cannot checkpoint the store into %q: %w", dir, err)
	}
	return wm, nil
}
