package storage

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"trove/internal/testutil"
)

// TestDiskGuardErrorfs injects failures into the store's own file system
// with Pebble's errorfs: while reading the free space fails, commits are
// refused with ErrDiskFull and nothing of them is stored; once it works
// again, they go through. Reads never stop.
func TestDiskGuardErrorfs(t *testing.T) {
	var failing atomic.Bool
	injected := errors.New("injected: statfs failed")
	fs := errorfs.Wrap(newSpaceFS(1<<40), errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind == errorfs.OpGetDiskUsage && failing.Load() {
			return injected
		}
		return nil
	}))
	db, err := Open("", Options{fs: fs, MinFreeDisk: minFree, DiskCheckInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	app := ensureApp(t, db, "a")
	stored := commitEvents(t, db, newEvent{app, 1, `{"n":1}`})

	failing.Store(true)
	testutil.WaitFor(t, 10*time.Second, func() error {
		if err := db.Writable(); !errors.Is(err, ErrDiskFull) {
			return errors.New("the guard has not tripped yet")
		}
		return nil
	})
	w := db.NewWriter(time.Now())
	first, err := w.Alloc(1)
	if err == nil {
		w.AddEvent(app, first, 2, []byte(`{"n":2}`))
		err = w.Commit()
	}
	w.Close()
	if !errors.Is(err, ErrDiskFull) {
		t.Fatalf("commit while free space cannot be read: %v; want ErrDiskFull", err)
	}
	withSnapshot(t, db, func(s *Snapshot) {
		checkEvents(t, "while refusing", eventsBySeq(t, s, app, 0, 1<<62), stored)
	})

	failing.Store(false)
	testutil.WaitFor(t, 10*time.Second, db.Writable)
	stored = append(stored, commitEvents(t, db, newEvent{app, 3, `{"n":3}`})...)
	withSnapshot(t, db, func(s *Snapshot) {
		checkEvents(t, "after", eventsBySeq(t, s, app, 0, 1<<62), stored)
	})
}
