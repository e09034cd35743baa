package storage

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"trove/internal/testutil"
)

// TestNoRecycledWALs checks that obsolete WAL files are deleted, not kept
// for reuse: a reused WAL keeps old bytes past its new end (forget.go).
func TestNoRecycledWALs(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	app := ensureApp(t, db, "a")
	for i := range 4 {
		commitEvents(t, db, newEvent{app, int64(i), `{"n":1}`})
		if err := db.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	// Obsolete files are deleted in the background.
	testutil.WaitFor(t, 10*time.Second, func() error {
		logs, err := filepath.Glob(filepath.Join(dir, "*.log"))
		if err != nil {
			return err
		}
		if len(logs) != 1 {
			return fmt.Errorf("%d WAL files %v after four flushes; want only the live one", len(logs), logs)
		}
		return nil
	})
}
