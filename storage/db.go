package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Options configures a DB.
type Options struct {
	// Sync makes every Commit wait for fsync. Turning it off trades the
	// durability of acknowledged writes for speed.
	Sync bool
	// CacheSize is the size of Pebble's block cache in bytes.
	CacheSize int64
	// DedupWindow is how long a messageId is remembered for deduplication.
	DedupWindow time.Duration
	// ColumnarBlocks makes the merger and the purger write blocks by column
	// (value version 4, colblock.go): about 30 % smaller with messageIds,
	// but exported at about 0.4 of the row blocks' speed today. Every
	// version is read whatever this says.
	ColumnarBlocks bool
	// DedupFilterBytes bounds the memory of the in-memory dedup filters
	// (dedup.go); 0 means 64 MiB.
	DedupFilterBytes int
	// Replicated makes the store one node's copy of a replicated log
	// (cluster mode): it is written by Writer.AllocLog alone, in the log's
	// order, and its dedup window follows the entries' clock
	// (replicated.go).
	Replicated bool
	// Now, when set, replaces the clock that Open reads to convert and
	// expire the dedup index (tests of the window).
	Now func() time.Time
	// MergeInterval is how often the background merger runs; zero disables it.
	MergeInterval time.Duration
	// MergeTargetBytes is the raw size the merger aims for in one group.
	MergeTargetBytes int
	// MergeMinAge is how long a group stays as written before the merger
	// may combine it with others.
	MergeMinAge time.Duration
	// ReadBudget is roughly how many raw bytes of events a reader holds
	// decoded at once: the blocks of a day that an eventTime-ordered export
	// merges are taken a time window at a time to stay near it.
	ReadBudget int
	// Retention gives an app's retention: its events on days wholly older
	// than that are removed (zero keeps them forever). It is applied at
	// Open and then every RetentionInterval (DefaultRetentionInterval).
	// A replicated store applies retention as entries of its log instead
	// (ExpireEntry).
	Retention         func(appKey string) time.Duration
	RetentionInterval time.Duration
	// MemFS, when set, keeps the store in that file system instead of on
	// disk (crash tests).
	MemFS *MemFS
	// InMemory keeps everything in memory (tests and benchmarks).
	InMemory bool
	// MinFreeDisk is the free space, in bytes, below which writes are
	// refused with a *DiskFullError (see diskguard.go); zero turns the
	// check off, as does InMemory without FreeSpace.
	MinFreeDisk uint64
	// DiskCheckInterval is how often free space is read (default 1 s).
	DiskCheckInterval time.Duration
	// FreeSpace, when set, reports the bytes available in dir in place of
	// the store's file system (tests).
	FreeSpace func(dir string) (uint64, error)
	// Logger receives the store's log lines; nil discards them.
	Logger *slog.Logger

	// fs, when set, is the file system the store lives on (tests).
	fs vfs.FS
	// fewCompactions turns off the compactions Pebble starts on a small
	// store that it does not start on a large one (tests): tombstone-density
	// compactions skip tombstones that overlap more than 40 times their size
	// in the last level, and read-triggered ones need reads of a key range
	// that a large store spreads over many files.
	fewCompactions bool

	// CommitHook, when set, is called by every Writer and ProfileTxn commit
	// once it holds the store open, before it writes (tests that race
	// Close with commits).
	CommitHook func()
}

// DB is Trove's store: events, their deduplication index, the quarantine
// and metadata, in one Pebble database.
type DB struct {
	pdb  *pebble.DB
	opts Options
	log  *slog.Logger
	seq  seqTracker
	// applied is what a replicated store has applied (replicated.go).
	applied appliedState

	apps struct {
		sync.RWMutex
		byKey map[string]uint32
		next  uint32
	}
	profileLocks sync.Map // app id -> *sync.Mutex, see ProfileTxn

	// now is the clock of Open's and the dedup loop's expiry
	// (Options.Now).
	now func() time.Time
	// dedup is the in-memory side of the dedup index: its filters and
	// the writers' reservations (dedup.go).
	dedup dedupIndex

	// eventsStored counts the events Writers have committed (see Stats).
	eventsStored atomic.Int64
	// overview caches the console's overview and counts the ingest rate
	// (overview.go).
	overview overviewCache

	closed atomic.Bool
	// readers is read-locked by each open Snapshot (from NewSnapshot to its
	// Close, possibly on another goroutine), each ProfileTxn (from
	// BeginProfiles to its Close) and each other operation on Pebble while
	// it runs (enter); Close write-locks it to wait for them.
	readers   sync.RWMutex
	mergeStop chan struct{}
	// mergeCtx is cancelled by Close, stopping a compaction the merger
	// started.
	mergeCtx      context.Context
	mergeCancel   context.CancelFunc
	mergeDone     chan struct{}
	mergeKick     chan struct{}
	retentionDone chan struct{}
	// expiredRanges are what the passes of a replicated store removed,
	// for retentionLoop to compact.
	expiredRanges chan expiredRange
	dedupDone     chan struct{}
	// dedupFlushDone is closed when the dedup flusher stops; dedupKick
	// wakes it early (dedup_pending.go).
	dedupFlushDone chan struct{}
	dedupKick      chan struct{}
	purgeKick      chan struct{}
	purgeDone      chan struct{}
	merged         atomic.Int64 // groups merged away, for tests and metrics
	mergeMu        sync.Mutex   // serialises merges; guards mergeBufs
	schemaMu       sync.Mutex   // serialises changes of schema contracts (schemas.go)
	mergeBufs      mergeBufs
	// mergeDeleted is, per app, the bytes of blocks merged away since its
	// last compaction; guarded by mergeMu.
	mergeDeleted map[uint32]uint64
	// mergeLimit is the sequence up to which the merge loop may merge; only
	// the merge goroutine touches it.
	mergeLimit uint64

	disk diskGuard // refuses writes while the disk is nearly full

	// floors is, per app, the first day retention keeps (see retention.go).
	floors struct {
		sync.RWMutex
		m map[uint32]int32
	}
	expiredDays, expiredBytes atomic.Int64
	purgedUsers, purgedEvents atomic.Int64

	// forgotten is, per app, the deleted users with the sequence bound of
	// their deletion, and those deleted with suppress (forget.go); each
	// map is replaced, never changed. gen counts the replacements.
	forgotten struct {
		sync.RWMutex
		m          map[uint32]map[string]uint64
		suppressed map[uint32]map[string]bool
		gen        uint64
	}
}

// Event blocks, compressed by us (values.go), are most of the bytes a
// store writes. Pebble keeps them apart from their keys, in blob files
// that compactions do not rewrite (value separation): a block is written
// once to the WAL and once at flush, however often the LSM compacts its
// key; without it, every compaction into Lbase rewrote every block of the
// days it overlapped, a quarter of the server's CPU under W1. Blob values
// are not compressed again (they do not shrink); keys and every other
// namespace stay in the sstables, Snappy-compressed, as before.
var (
	valueSeparation = pebble.ValueSeparationPolicy{
		Enabled:     true,
		MinimumSize: 256,
		// Pebble rewrites the values of a compaction whose inputs
		// reference more blob files than this (summed over L0's
		// sublevels): at 10 that was nearly every compaction into Lbase.
		MaxBlobReferenceDepth: 64,
		// The merger deletes the blocks it replaces: their blob files
		// are rewritten once a twentieth of them is garbage. At a fifth,
		// 3.3 MB of 57.9 stayed garbage 3 minutes after W1 of 1 M
		// events (S1); the rewrites run in the background.
		RewriteMinimumAge:  time.Minute,
		TargetGarbageRatio: 0.05,
	}
	storeCompression = func() sstable.CompressionProfile {
		p := *sstable.SnappyCompression
		p.Name = "trove"
		p.ValueBlocks = sstable.NoCompression.ValueBlocks
		return p
	}()
)

// walMinSyncInterval is the least time between two syncs of the WAL,
// Pebble's group commit made wider. On this project's 2-core machine,
// whose disk bounds W1, it gave W1 6-10 % more events/s in five pairs
// alternated, p99 no higher, and W2 the same events/s for less CPU
// (2026-12-08; README, Performance). A write that comes 500 µs or more
// after the last sync is synced at once.
const walMinSyncInterval = 500 * time.Microsecond

// spanPolicy separates the values of event blocks (nsBlock) and keeps
// every other value next to its key.
func spanPolicy(start []byte) (pebble.SpanPolicy, []byte, error) {
	inPlace := pebble.SpanPolicy{ValueStoragePolicy: pebble.ValueStorageLowReadLatency}
	switch {
	case len(start) == 0 || start[0] < byte(nsBlock):
		return inPlace, []byte{byte(nsBlock)}, nil
	case start[0] == byte(nsBlock):
		return pebble.SpanPolicy{}, []byte{byte(nsBlock) + 1}, nil
	default:
		return inPlace, nil, nil
	}
}

// pebbleOptions returns the options the store opens Pebble with.
func pebbleOptions(opts Options, cache *pebble.Cache, log *slog.Logger) *pebble.Options {
	po := &pebble.Options{
		Cache:                       cache,
		MemTableSize:                16 << 20,
		MemTableStopWritesThreshold: 4,
		// Eight L0 files before a compaction to Lbase: a burst of
		// ingest is absorbed in L0 (its sublevels keep reads cheap) and
		// Lbase is rewritten half as often as with Pebble's 4.
		L0CompactionThreshold:      8,
		L0StopWritesThreshold:      24,
		CompactionConcurrencyRange: func() (int, int) { return 1, 2 },
		FormatMajorVersion:         pebble.FormatNewest,
		Logger:                     pebbleLogger{log},
		Cleaner:                    deletingCleaner{},
		// A commit that asks for a sync still waits for it, so a 202
		// stays durable; syncs asked for within walMinSyncInterval of
		// the last one wait for it to pass, and so take more commits
		// each.
		WALMinSyncInterval: func() time.Duration { return walMinSyncInterval },
	}
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		po.Levels[i].Compression = func() *sstable.CompressionProfile { return &storeCompression }
	}
	po.Experimental.ValueSeparationPolicy = func() pebble.ValueSeparationPolicy { return valueSeparation }
	po.Experimental.SpanPolicyFunc = spanPolicy
	if opts.InMemory {
		po.FS = vfs.NewMem()
	}
	if opts.MemFS != nil {
		po.FS = opts.MemFS.fs
	}
	if opts.fs != nil {
		po.FS = opts.fs
	}
	if opts.fewCompactions {
		po.Experimental.TombstoneDenseCompactionThreshold = -1
		po.Experimental.ReadSamplingMultiplier = -1
	}
	return po
}

// Open opens (creating if needed) the store in dir.
func Open(dir string, opts Options) (*DB, error) {
	if opts.CacheSize == 0 {
		opts.CacheSize = 64 << 20
	}
	if opts.MergeTargetBytes == 0 {
		opts.MergeTargetBytes = 16 << 20
	}
	if opts.ReadBudget == 0 {
		opts.ReadBudget = 16 << 20
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cache := pebble.NewCache(opts.CacheSize)
	defer cache.Unref()
	po := pebbleOptions(opts, cache, log)
	pdb, err := pebble.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("cannot open store in %q: %w", dir, err)
	}
	db := &DB{pdb: pdb, opts: opts, log: log, mergeDeleted: map[uint32]uint64{}}
	if err := db.load(); err != nil {
		pdb.Close()
		return nil, err
	}
	if err := db.loadFloors(); err != nil {
		pdb.Close()
		return nil, err
	}
	db.purgeKick = make(chan struct{}, 1)
	if err := db.loadForgotten(); err != nil {
		pdb.Close()
		return nil, err
	}
	db.mergeCtx, db.mergeCancel = context.WithCancel(context.Background())
	db.now = time.Now
	if opts.Replicated {
		db.now = db.appliedClock
	}
	if opts.Now != nil {
		db.now = opts.Now
	}
	if err := db.openDedup(db.now()); err != nil {
		db.mergeCancel()
		pdb.Close()
		return nil, err
	}
	db.startDiskGuard(dir, po.FS)
	db.mergeStop = make(chan struct{})
	db.mergeDone = make(chan struct{})
	db.mergeKick = make(chan struct{}, 1)
	go db.mergeLoop()
	if db.opts.RetentionInterval <= 0 {
		db.opts.RetentionInterval = DefaultRetentionInterval
	}
	db.retentionDone = make(chan struct{})
	db.expiredRanges = make(chan expiredRange, 1024)
	go db.retentionLoop()
	db.purgeDone = make(chan struct{})
	go db.purgeLoop()
	db.dedupDone = make(chan struct{})
	go db.dedupLoop()
	db.dedupFlushDone = make(chan struct{})
	db.dedupKick = make(chan struct{}, 1)
	go db.dedupFlushLoop()
	return db, nil
}

const (
	metaSeqLease = "seq_lease"
)

// DefaultRetentionInterval is how often retention runs.
const DefaultRetentionInterval = time.Hour

// load reads the app registry and the sequence lease.
func (db *DB) load() error {
	db.apps.byKey = map[string]uint32{}
	db.apps.next = 1
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: []byte{byte(nsApp)}, UpperBound: []byte{byte(nsApp) + 1}})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		appKey, err := decodeNameKey(it.Key(), nsApp)
		if err != nil {
			it.Close()
			return err
		}
		id, err := decodeUint64Value(it.Value())
		if err != nil {
			it.Close()
			return fmt.Errorf("cannot load app %q: %w", appKey, err)
		}
		db.apps.byKey[string(appKey)] = uint32(id)
		db.apps.next = max(db.apps.next, uint32(id)+1)
	}
	if err := it.Close(); err != nil {
		return err
	}
	next := uint64(1)
	v, closer, err := db.pdb.Get(appendMetaKey(nil, metaSeqLease))
	switch {
	case err == nil:
		next, err = decodeUint64Value(v)
		closer.Close()
		if err != nil {
			return fmt.Errorf("cannot load sequence lease: %w", err)
		}
	case errors.Is(err, pebble.ErrNotFound):
	default:
		return err
	}
	db.seq.init(next, func(lease uint64) error {
		return db.pdb.Set(appendMetaKey(nil, metaSeqLease), appendUint64Value(nil, lease), pebble.Sync)
	})
	if db.opts.Replicated {
		return db.loadApplied()
	}
	return nil
}

// enter holds the store open for one operation on Pebble, until leave:
// Close waits for it. Once Close has begun it returns ErrClosed, holding
// nothing. It never blocks, so an operation that starts while Close waits
// is refused rather than queued behind it, and one that already holds the
// store (a ProfileTxn) cannot deadlock with Close by entering again.
func (db *DB) enter() error {
	// Only Close write-locks readers, so TryRLock fails only once Close
	// waits for it or holds it.
	if db.closed.Load() || !db.readers.TryRLock() {
		return ErrClosed
	}
	if db.closed.Load() {
		db.readers.RUnlock()
		return ErrClosed
	}
	return nil
}

// leave ends what enter began.
func (db *DB) leave() { db.readers.RUnlock() }

// App returns the id of a registered app.
func (db *DB) App(appKey string) (uint32, error) {
	db.apps.RLock()
	id, ok := db.apps.byKey[appKey]
	db.apps.RUnlock()
	if !ok {
		return 0, fmt.Errorf("%w %q", ErrUnknownApp, appKey)
	}
	return id, nil
}

// EnsureApp registers appKey if it is new and returns its id. Ids are
// never reused.
func (db *DB) EnsureApp(appKey string) (uint32, error) {
	if id, err := db.App(appKey); err == nil {
		return id, nil
	}
	if err := db.enter(); err != nil {
		return 0, err
	}
	defer db.leave()
	db.apps.Lock()
	defer db.apps.Unlock()
	if id, ok := db.apps.byKey[appKey]; ok {
		return id, nil
	}
	id := db.apps.next
	if err := db.pdb.Set(appendAppKey(nil, appKey), appendUint64Value(nil, uint64(id)), pebble.Sync); err != nil {
		return 0, fmt.Errorf("cannot register app %q: %w", appKey, err)
	}
	db.apps.byKey[appKey] = id
	db.apps.next++
	return id, nil
}

// Watermark returns the highest sequence at or below which every write has
// finished, and a channel closed when it next moves.
func (db *DB) Watermark() (uint64, <-chan struct{}) { return db.seq.watermark() }

// GetMeta returns a copy of the named meta value, or nil when absent.
func (db *DB) GetMeta(name string) ([]byte, error) {
	if err := db.enter(); err != nil {
		return nil, err
	}
	defer db.leave()
	v, closer, err := db.pdb.Get(appendMetaKey(nil, name))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	if len(v) < 1 || v[0] != valueV1 {
		return nil, fmt.Errorf("%w: meta %q", errCorrupt, name)
	}
	return append([]byte(nil), v[1:]...), nil
}

// SetMeta durably stores a named meta value.
func (db *DB) SetMeta(name string, value []byte) error {
	if err := db.enter(); err != nil {
		return err
	}
	defer db.leave()
	return db.pdb.Set(appendMetaKey(nil, name), append([]byte{valueV1}, value...), pebble.Sync)
}

// Flush writes the memtable out, so that the data directory reflects what
// was written (tests and benchmarks).
func (db *DB) Flush() error {
	if err := db.flushDedup(); err != nil {
		return err
	}
	return db.pdb.Flush()
}

// Compact compacts the whole key space, dropping deleted data.
func (db *DB) Compact() error {
	return db.pdb.Compact(context.Background(), []byte{0}, []byte{0xff}, true /* parallelize */)
}

// Close stops the merger, flushes and closes the store.
func (db *DB) Close() error {
	if db.closed.Swap(true) {
		return ErrClosed
	}
	db.stopDiskGuard()
	close(db.mergeStop)
	db.mergeCancel() // a compaction in progress stops
	<-db.mergeDone
	<-db.retentionDone
	<-db.purgeDone
	<-db.dedupDone
	<-db.dedupFlushDone
	// Scans check closed between steps and stop with ErrClosed, so this
	// wait is short even for a long export; writes in flight finish.
	db.readers.Lock()
	defer db.readers.Unlock()
	if err := db.flushDedup(); err != nil {
		db.log.Error("cannot write the dedup index at close; the next start rebuilds it", "err", err)
	}
	if err := db.pdb.Flush(); err != nil {
		db.pdb.Close()
		return fmt.Errorf("cannot flush store: %w", err)
	}
	return db.pdb.Close()
}

type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}
func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}
func (p pebbleLogger) Fatalf(format string, args ...any) {
	// Pebble cannot go on after this (for example a failed WAL write), and
	// neither can we: anything acknowledged is already durable.
	p.l.Error("FATAL: "+fmt.Sprintf(format, args...), "component", "pebble")
	os.Exit(1)
}

var _ io.Closer = (*DB)(nil)
