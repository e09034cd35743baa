package storage

import (
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Pebble ends the process when a WAL write fails, and a full disk is the
// likeliest reason it would. The disk guard refuses writes while the free
// space of the store's file system is below Options.MinFreeDisk, so that
// the store never gets there: a refused request writes nothing, and
// everything acknowledged stays durable.
//
// Free space is read (one statfs) every DiskCheckInterval, and also as soon
// as an eighth of the margin has been committed since the last reading, so
// that a burst of ingest cannot run through the margin between two ticks.
// Once refused, writes resume when the free space is back above the floor
// plus a sixteenth of it, so that the guard does not flap at the edge while
// compactions free and ingest takes a few MiB at a time.
//
// Pebble preallocates each write-ahead log file in blocks of 110% of the
// memtable size (about 18 MiB here) and may hold two at once, and a flush
// or compaction writes before it deletes: the floor must leave room for all
// of that (config keeps it at 64 MiB or more).

// defaultDiskCheckInterval is how often free space is read by default.
const defaultDiskCheckInterval = time.Second

// DiskRetryAfter is how long a client refused for lack of disk space is
// told to wait: freeing space takes an operator, not milliseconds.
const DiskRetryAfter = 30 * time.Second

// DiskFullError is the error of a write refused by the disk guard. It
// wraps ErrDiskFull.
type DiskFullError struct {
	// Dir is the store's directory.
	Dir string
	// Free and Min are the bytes available and the configured floor;
	// writes resume once Resume bytes are free.
	Free, Min, Resume uint64
	// Err is set when the free space could not be read at all.
	Err error
}

func (e *DiskFullError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("writes are refused because the free space of the disk holding %s cannot be read (%v); "+
			"they resume once it can (or set storage.min_free_disk = 0 to turn the check off); reads and exports still work",
			e.Dir, e.Err)
	}
	return fmt.Sprintf("the disk holding %s is nearly full: %s free, below storage.min_free_disk (%s). "+
		"Writes resume by themselves once %s are free (delete files or grow the volume); reads and exports still work",
		e.Dir, formatBytes(e.Free), formatBytes(e.Min), formatBytes(e.Resume))
}

// Unwrap returns ErrDiskFull.
func (e *DiskFullError) Unwrap() error { return ErrDiskFull }

// RetryAfter is how long the client should wait before sending again.
func (e *DiskFullError) RetryAfter() time.Duration { return DiskRetryAfter }

// diskGuard watches the free space of the store's file system.
type diskGuard struct {
	dir      string
	min      uint64
	interval time.Duration
	free     func() (uint64, error)
	log      *slog.Logger

	// state is nil while writes are allowed.
	state atomic.Pointer[DiskFullError]
	// written counts the bytes committed since free space was last read.
	written    atomic.Int64
	checkBytes int64
	kick       chan struct{}
	stop       chan struct{}
	done       chan struct{}
}

// startDiskGuard reads the free space once, so that a store opened on a
// nearly full disk refuses writes from the start, then watches it. With
// MinFreeDisk zero, or a store in memory, it does nothing.
func (db *DB) startDiskGuard(dir string, fs vfs.FS) {
	g := &db.disk
	if db.opts.MinFreeDisk == 0 || (db.opts.InMemory && db.opts.FreeSpace == nil) {
		return
	}
	g.dir, g.min, g.log = dir, db.opts.MinFreeDisk, db.log
	g.interval = db.opts.DiskCheckInterval
	if g.interval <= 0 {
		g.interval = defaultDiskCheckInterval
	}
	if f := db.opts.FreeSpace; f != nil {
		g.free = func() (uint64, error) { return f(dir) }
	} else {
		if fs == nil {
			fs = vfs.Default
		}
		g.free = func() (uint64, error) {
			u, err := fs.GetDiskUsage(dir)
			return u.AvailBytes, err
		}
	}
	// An eighth of the margin: a reading is due long before writes can
	// have used it up, at a cost of one statfs per few MiB.
	g.checkBytes = min(max(int64(g.min/8), 64<<10), 8<<20)
	g.kick = make(chan struct{}, 1)
	g.stop = make(chan struct{})
	g.done = make(chan struct{})
	g.check()
	go g.loop()
}

// stopDiskGuard stops the watcher; writes are then refused by Close anyway.
func (db *DB) stopDiskGuard() {
	if g := &db.disk; g.stop != nil {
		close(g.stop)
		<-g.done
	}
}

func (g *diskGuard) loop() {
	defer close(g.done)
	t := time.NewTicker(g.interval)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
		case <-g.kick:
		}
		g.check()
	}
}

// check reads the free space and updates the state, logging each change
// between allowing and refusing writes once. A reading that fails refuses
// writes: no reading means no promise that the next WAL write fits.
func (g *diskGuard) check() {
	g.written.Store(0)
	avail, err := g.free()
	prev := g.state.Load()
	resume := g.min + g.min/16
	var st *DiskFullError
	switch {
	case err != nil:
		st = &DiskFullError{Dir: g.dir, Min: g.min, Resume: resume, Err: err}
	case avail < g.min, prev != nil && avail < resume:
		st = &DiskFullError{Dir: g.dir, Free: avail, Min: g.min, Resume: resume}
	}
	// Only this goroutine (or Open, before it starts) stores the state.
	g.state.Store(st)
	switch {
	case prev == nil && st != nil && err != nil:
		g.log.Error("refusing writes: cannot read the free disk space", "dir", g.dir, "err", err)
	case prev == nil && st != nil:
		g.log.Error("refusing writes: the disk is nearly full", "dir", g.dir,
			"free", formatBytes(avail), "min_free_disk", formatBytes(g.min))
	case prev != nil && st == nil:
		g.log.Info("accepting writes again: free disk space is back", "dir", g.dir,
			"free", formatBytes(avail), "min_free_disk", formatBytes(g.min))
	}
}

// err returns the reason writes are refused, or nil.
func (g *diskGuard) err() error {
	if st := g.state.Load(); st != nil {
		return st
	}
	return nil
}

// wrote records n bytes committed, and asks for a reading once enough
// have been since the last one.
func (g *diskGuard) wrote(n int) {
	if g.kick == nil {
		return
	}
	if g.written.Add(int64(n)) >= g.checkBytes {
		select {
		case g.kick <- struct{}{}:
		default:
		}
	}
}

// Writable returns nil while the store takes writes, and otherwise a
// *DiskFullError saying why not (the disk is nearly full, or its free
// space cannot be read). It is one atomic load.
func (db *DB) Writable() error {
	if db.closed.Load() {
		return ErrClosed
	}
	return db.disk.err()
}

// formatBytes formats n in binary units, e.g. "12.5 MiB".
func formatBytes(n uint64) string {
	const units = "KMGTPE"
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/1024, 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, units[i])
}
