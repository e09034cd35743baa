package storage

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Stats is a snapshot of the store's health, read at scrape time: Pebble's
// own figures and Trove's counters. Only storage sees Pebble, so the metrics
// endpoint takes this plain struct.
type Stats struct {
	// DiskUsageBytes is what the store's files take on disk: live and
	// obsolete tables, the WAL, the manifest.
	DiskUsageBytes uint64
	// CompactionDebtBytes is Pebble's estimate of the bytes that compactions
	// must rewrite before the LSM is in shape; it grows when writes outpace
	// compactions.
	CompactionDebtBytes uint64
	// CompactionsInProgress is the number of running compactions.
	CompactionsInProgress int64
	// WALBytes is the size of the live write-ahead log files: their
	// physical size, or the data in them when that is larger (Pebble counts
	// the file being written by its data).
	WALBytes uint64
	// MemtableBytes is the memory held by memtables.
	MemtableBytes uint64
	// L0Sublevels and L0Files describe level 0: many sublevels or files
	// mean slow reads and, past a limit, stalled writes.
	L0Sublevels int64
	L0Files     int64
	// ReadAmp is the read amplification: L0 sublevels plus non-empty levels.
	ReadAmp int64
	// BlockCacheBytes, BlockCacheHits and BlockCacheMisses describe the
	// block cache since the store was opened.
	BlockCacheBytes  int64
	BlockCacheHits   int64
	BlockCacheMisses int64
	// EventsStored is the number of events this process has committed.
	EventsStored int64
	// GroupsMerged is the number of groups the background merger has
	// combined away since the store was opened.
	GroupsMerged int64
	// Watermark is the sequence at or below which every write has finished.
	Watermark uint64
	// RetentionDays and RetentionBytes are the days of events retention
	// has removed since the store was opened, and their estimated size.
	RetentionDays, RetentionBytes int64
	// PurgedUsers and PurgedEvents count the deleted users whose stored
	// events the purger has rewritten away, and those events.
	PurgedUsers, PurgedEvents int64
	// Dedup describes the dedup index's in-memory filters.
	Dedup DedupStats
	// WritesRefused is true while the disk guard refuses writes.
	WritesRefused bool
}

// Stats returns the store's current figures, or ErrClosed.
func (db *DB) Stats() (Stats, error) {
	// Close takes readers' write lock before closing Pebble, whose Metrics
	// must not be called after that.
	db.readers.RLock()
	defer db.readers.RUnlock()
	if db.closed.Load() {
		return Stats{}, ErrClosed
	}
	m := db.pdb.Metrics()
	wm, _ := db.Watermark()
	return Stats{
		DiskUsageBytes:        m.DiskSpaceUsage(),
		CompactionDebtBytes:   m.Compact.EstimatedDebt,
		CompactionsInProgress: m.Compact.NumInProgress,
		WALBytes:              max(m.WAL.PhysicalSize, m.WAL.Size),
		MemtableBytes:         m.MemTable.Size,
		L0Sublevels:           int64(m.Levels[0].Sublevels),
		L0Files:               m.Levels[0].TablesCount,
		ReadAmp:               int64(m.ReadAmp()),
		BlockCacheBytes:       m.BlockCache.Size,
		BlockCacheHits:        m.BlockCache.Hits,
		BlockCacheMisses:      m.BlockCache.Misses,
		EventsStored:          db.eventsStored.Load(),
		GroupsMerged:          db.merged.Load(),
		Watermark:             wm,
		RetentionDays:         db.expiredDays.Load(),
		RetentionBytes:        db.expiredBytes.Load(),
		PurgedUsers:           db.purgedUsers.Load(),
		PurgedEvents:          db.purgedEvents.Load(),
		Dedup:                 db.DedupStats(),
		WritesRefused:         db.disk.err() != nil,
	}, nil
}

// DiskSpace returns the bytes available to this process and the size of
// the file system that holds dir.
func DiskSpace(dir string) (avail, total uint64, err error) {
	u, err := vfs.Default.GetDiskUsage(dir)
	if err != nil {
		return 0, 0, fmt.Errorf("cannot read the free space of %s: %w", dir, err)
	}
	return u.AvailBytes, u.TotalBytes, nil
}
