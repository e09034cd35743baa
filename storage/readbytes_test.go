package storage

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"trove/internal/testutil"
)

// countingFS counts the bytes read from sstables and blob files (where
// Pebble keeps the event blocks' values, db.go).
type countingFS struct {
	vfs.FS
	read atomic.Int64
}

func (fs *countingFS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.Open(name, opts...)
	if err != nil || !(strings.HasSuffix(name, ".sst") || strings.HasSuffix(name, ".blob")) {
		return f, err
	}
	return &countingFile{File: f, n: &fs.read}, nil
}

type countingFile struct {
	vfs.File
	n *atomic.Int64
}

func (f *countingFile) Read(p []byte) (int, error) {
	n, err := f.File.Read(p)
	f.n.Add(int64(n))
	return n, err
}

func (f *countingFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.File.ReadAt(p, off)
	f.n.Add(int64(n))
	return n, err
}

// waitSettled waits until db's table stats are collected and no
// compaction runs.
func waitSettled(t *testing.T, db *DB) {
	t.Helper()
	testutil.WaitFor(t, time.Minute, func() error {
		if m := db.pdb.Metrics(); !m.Table.InitialStatsCollectionComplete || m.Table.PendingStatsCollectionCount > 0 {
			return errors.New("table stats are still being collected")
		} else if m.Compact.NumInProgress > 0 {
			return errors.New("a compaction is running")
		}
		return nil
	})
}

// TestOneDayReadsItsShare stores 30 days of generated events as the merger
// leaves them, reopens the store with a cold cache, exports one day, and
// checks the bytes read from sstables and blob files: about a thirtieth of what is stored,
// even with a read budget so small that the day is merged in many windows
// (the windows' re-reads of a block hit the block cache).
func TestOneDayReadsItsShare(t *testing.T) {
	const n = 60_000
	fs := &countingFS{FS: vfs.NewMem()}
	// Groups of 1 MiB give each day 28 blocks: a range scan also loads the
	// block after its last one, which must not be most of what is read.
	db, err := Open("", Options{fs: fs, MergeTargetBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	app := ensureApp(t, db, benchAppKey)
	gen := generateBenchEvents(t, n)
	writeBenchEvents(t, db, app, gen)
	mergeEverything(t, db)
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := db.Compact(); err != nil {
		t.Fatal(err)
	}
	// A manual compaction may end in moves, which leave tombstones for the
	// elision-only compactions that table stats trigger: let them run now,
	// or they run after the reopen, during the export being measured.
	waitSettled(t, db)
	m := db.pdb.Metrics()
	stored := m.Table.Local.LiveSize + m.BlobFiles.LiveSize
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// The day with the median event, and how many events it has.
	times := make([]int64, len(gen))
	for i, e := range gen {
		times[i] = e.time
	}
	day := DayOf(times[len(times)/2])
	want := 0
	for _, tm := range times {
		if DayOf(tm) == day {
			want++
		}
	}
	for _, budget := range []int{0, 64 << 10} {
		db, err := Open("", Options{fs: fs, MergeTargetBytes: 1 << 20, ReadBudget: budget})
		if err != nil {
			t.Fatal(err)
		}
		// Opening starts a background pass over the tables' properties;
		// its reads are not the export's.
		waitSettled(t, db)
		s, err := db.NewSnapshot()
		if err != nil {
			t.Fatal(err)
		}
		// A day before all the events opens the tables (footers, indexes,
		// filters) and reads no blocks of events: a fixed cost, apart.
		fs.read.Store(0)
		err = s.EventsByTime(app, int64(day-40)*dayUs, int64(day-39)*dayUs, func(uint64, int64, []byte) error {
			return errors.New("an event 40 days before the median")
		})
		opened := fs.read.Load()
		fs.read.Store(0)
		got := 0
		if err == nil {
			err = s.EventsByTime(app, int64(day)*dayUs, int64(day+1)*dayUs, func(uint64, int64, []byte) error {
				got++
				return nil
			})
		}
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		read := fs.read.Load()
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("budget %d: %d events of day %d, want %d", budget, got, day, want)
		}
		share := float64(read) / float64(stored)
		t.Logf("budget %d: one day (%d of %d events) read %d of %d stored bytes: 1/%.1f (opening the tables read %d more)", budget, got, n, read, stored, 1/share, opened)
		if share > 1.25/30 {
			t.Errorf("budget %d: one day read 1/%.1f of the stored bytes, want about 1/30", budget, 1/share)
		}
	}
}
