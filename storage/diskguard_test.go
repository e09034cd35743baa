package storage

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"trove/internal/testutil"
)

// spaceFS is a file system that reports the free space (or the error) a
// test sets, whatever it holds.
type spaceFS struct {
	vfs.FS
	avail atomic.Uint64
	fail  atomic.Pointer[error]
}

func newSpaceFS(avail uint64) *spaceFS {
	fs := &spaceFS{FS: vfs.NewMem()}
	fs.avail.Store(avail)
	return fs
}

func (fs *spaceFS) GetDiskUsage(string) (vfs.DiskUsage, error) {
	if err := fs.fail.Load(); err != nil {
		return vfs.DiskUsage{}, *err
	}
	a := fs.avail.Load()
	return vfs.DiskUsage{AvailBytes: a, TotalBytes: 1 << 40, UsedBytes: 1<<40 - a}, nil
}

// logLines counts a logger's messages.
type logLines struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logLines) count(prefix string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.msgs {
		if strings.HasPrefix(m, prefix) {
			n++
		}
	}
	return n
}

// recordHandler is a slog.Handler that keeps each message.
type recordHandler struct{ l *logLines }

func (h recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h recordHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h recordHandler) WithGroup(string) slog.Handler            { return h }
func (h recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.l.mu.Lock()
	defer h.l.mu.Unlock()
	h.l.msgs = append(h.l.msgs, r.Message)
	return nil
}

const minFree = 10 << 20

func openSpaceDB(t *testing.T, fs *spaceFS, opts Options) (*DB, *logLines) {
	t.Helper()
	lines := &logLines{}
	opts.fs = fs
	if opts.MinFreeDisk == 0 {
		opts.MinFreeDisk = minFree
	}
	if opts.DiskCheckInterval == 0 {
		opts.DiskCheckInterval = 5 * time.Millisecond
	}
	opts.Logger = slog.New(recordHandler{lines})
	db, err := Open("", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, lines
}

// tryCommit writes one event and returns Commit's error.
func tryCommit(db *DB, app uint32, body string) error {
	w := db.NewWriter(testNow)
	defer w.Close()
	first, err := w.Alloc(1)
	if err != nil {
		return err
	}
	w.AddEvent(app, first, testNow.UnixMicro(), []byte(body))
	return w.Commit()
}

func tryProfile(db *DB, app uint32) error {
	txn, err := db.BeginProfiles(app, testNow)
	if err != nil {
		return err
	}
	defer txn.Close()
	txn.PutProfile(ProfileID{1}, []byte(`{"pyze_id":"x"}`))
	return txn.Commit()
}

func countEvents(t *testing.T, db *DB, app uint32) int {
	t.Helper()
	var n int
	withSnapshot(t, db, func(s *Snapshot) { n = len(eventsBySeq(t, s, app, 0, 1<<62)) })
	return n
}

func TestDiskGuard(t *testing.T) {
	fs := newSpaceFS(1 << 30)
	db, logs := openSpaceDB(t, fs, Options{})
	app := ensureApp(t, db, "app-key-1")
	// waitState waits for a reading that gives want (and msg).
	waitState := func(what string, want error, msg string) {
		t.Helper()
		testutil.WaitFor(t, 5*time.Second, func() error {
			err := db.Writable()
			if (!errors.Is(err, want) && !(want == nil && err == nil)) || (err != nil && !strings.Contains(err.Error(), msg)) {
				return errors.New(what + ": Writable() = " + errString(err))
			}
			return nil
		})
	}
	steps := []struct {
		name  string
		avail uint64
		fail  error
		want  error // from Writable and every Commit
		msg   string
	}{
		{"plenty of space", 1 << 30, nil, nil, ""},
		{"just at the floor", minFree, nil, nil, ""},
		{"below the floor", minFree - 1, nil, ErrDiskFull, "nearly full: 10.0 MiB free, below storage.min_free_disk (10.0 MiB). Writes resume by themselves once 10.6 MiB are free"},
		{"above the floor, below the resume level", minFree + minFree/32, nil, ErrDiskFull, "10.3 MiB free"},
		{"space returns", minFree + minFree/16, nil, nil, ""},
		{"free space cannot be read", 1 << 30, errors.New("statfs: input/output error"), ErrDiskFull, "cannot be read (statfs: input/output error)"},
		{"it can again", 1 << 30, nil, nil, ""},
		{"nothing free", 0, nil, ErrDiskFull, "0 B free"},
		{"recovered", 1 << 40, nil, nil, ""},
	}
	stored := 0
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			fs.avail.Store(s.avail)
			if s.fail != nil {
				fs.fail.Store(&s.fail)
			} else {
				fs.fail.Store(nil)
			}
			waitState(s.name, s.want, s.msg)
			err := tryCommit(db, app, `{"n":1}`)
			perr := tryProfile(db, app)
			if s.want == nil {
				if err != nil || perr != nil {
					t.Fatalf("got %v and %v; want events and profiles stored", err, perr)
				}
				stored++
			} else {
				var de *DiskFullError
				if !errors.As(err, &de) || !errors.Is(perr, ErrDiskFull) {
					t.Fatalf("got %v and %v; want *DiskFullError from both commits", err, perr)
				}
				if !strings.Contains(de.Error(), s.msg) {
					t.Errorf("got message %q; want it to contain %q", de.Error(), s.msg)
				}
				if de.RetryAfter() != DiskRetryAfter {
					t.Errorf("got RetryAfter %v; want %v", de.RetryAfter(), DiskRetryAfter)
				}
			}
			if n := countEvents(t, db, app); n != stored {
				t.Errorf("got %d events stored; want %d (nothing from refused commits)", n, stored)
			}
		})
	}
	// One line per change, whatever the number of readings.
	if got := logs.count("refusing writes"); got != 3 {
		t.Errorf("got %d \"refusing writes\" log lines; want 3", got)
	}
	if got := logs.count("accepting writes again"); got != 3 {
		t.Errorf("got %d \"accepting writes again\" log lines; want 3", got)
	}
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}

// TestDiskGuardAtOpen: a store opened on a nearly full disk refuses
// writes from the start, before any tick.
func TestDiskGuardAtOpen(t *testing.T) {
	fs := newSpaceFS(1 << 20)
	db, _ := openSpaceDB(t, fs, Options{DiskCheckInterval: time.Hour})
	if err := db.Writable(); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("got %v; want ErrDiskFull", err)
	}
}

// TestDiskGuardReadsAfterBytes: between ticks, committing an eighth of the
// margin asks for a reading at once.
func TestDiskGuardReadsAfterBytes(t *testing.T) {
	fs := newSpaceFS(1 << 30)
	db, _ := openSpaceDB(t, fs, Options{DiskCheckInterval: time.Hour})
	app := ensureApp(t, db, "app-key-1")
	fs.avail.Store(1 << 20)
	// Random, so that the block compresses little.
	pad := make([]byte, 256<<10)
	for i := range pad {
		pad[i] = 'a' + byte(rand.IntN(26))
	}
	body := `{"pad":"` + string(pad) + `"}`
	if err := tryCommit(db, app, body); err != nil {
		t.Fatal(err) // not read yet: the commit goes through
	}
	// minFree/8 = 1.25 MiB: a few more commits pass the threshold.
	for i := 0; i < 8 && db.Writable() == nil; i++ {
		if err := tryCommit(db, app, body); err != nil && !errors.Is(err, ErrDiskFull) {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, 5*time.Second, func() error {
		if db.Writable() == nil {
			return errors.New("writes still allowed")
		}
		return nil
	})
}

// TestDiskGuardOff: with MinFreeDisk zero, writes go on whatever the file
// system says.
func TestDiskGuardOff(t *testing.T) {
	fs := newSpaceFS(0)
	fail := error(errors.New("statfs: not supported"))
	fs.fail.Store(&fail)
	lines := &logLines{}
	db, err := Open("", Options{fs: fs, DiskCheckInterval: time.Millisecond, Logger: slog.New(recordHandler{lines})})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	app := ensureApp(t, db, "app-key-1")
	if err := tryCommit(db, app, `{}`); err != nil {
		t.Fatal(err)
	}
	if err := db.Writable(); err != nil {
		t.Errorf("got Writable() = %v; want nil", err)
	}
	if n := lines.count("refusing writes"); n != 0 {
		t.Errorf("got %d \"refusing writes\" log lines; want none", n)
	}
}
