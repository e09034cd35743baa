package obs

import (
	"bytes"
	"io"

	"github.com/VictoriaMetrics/metrics"

	"trove/storage"
)

// StoreWriter returns a function that writes the series of one store, read
// at scrape time: Pebble's figures, Trove's storage counters, and the free
// space of the file system that holds dataDir.
func StoreWriter(db *storage.DB, dataDir string) func(w io.Writer) {
	return func(w io.Writer) {
		var b bytes.Buffer
		if s, err := db.Stats(); err == nil {
			writeStats(&b, &s)
			metrics.WriteGaugeUint64(&b, "trove_storage_open", 1)
		} else {
			// Closing or closed: the figures are gone, say so.
			metrics.WriteGaugeUint64(&b, "trove_storage_open", 0)
		}
		if free, total, err := storage.DiskSpace(dataDir); err == nil {
			metrics.WriteGaugeUint64(&b, "trove_data_dir_free_bytes", free)
			metrics.WriteGaugeUint64(&b, "trove_data_dir_capacity_bytes", total)
		}
		w.Write(expose(make([]byte, 0, 2*b.Len()), b.Bytes()))
	}
}

func writeStats(w io.Writer, s *storage.Stats) {
	g := func(name string, v uint64) { metrics.WriteGaugeUint64(w, name, v) }
	c := func(name string, v uint64) { metrics.WriteCounterUint64(w, name, v) }
	u := func(v int64) uint64 { return uint64(max(v, 0)) }
	g("trove_storage_disk_usage_bytes", s.DiskUsageBytes)
	g("trove_storage_compaction_debt_bytes", s.CompactionDebtBytes)
	g("trove_storage_compactions_running", u(s.CompactionsInProgress))
	g("trove_storage_wal_bytes", s.WALBytes)
	g("trove_storage_memtable_bytes", s.MemtableBytes)
	g("trove_storage_l0_sublevels", u(s.L0Sublevels))
	g("trove_storage_l0_files", u(s.L0Files))
	g("trove_storage_read_amp", u(s.ReadAmp))
	g("trove_storage_block_cache_bytes", u(s.BlockCacheBytes))
	c("trove_storage_block_cache_hits_total", u(s.BlockCacheHits))
	c("trove_storage_block_cache_misses_total", u(s.BlockCacheMisses))
	c("trove_events_stored_total", u(s.EventsStored))
	c("trove_groups_merged_total", u(s.GroupsMerged))
	g("trove_storage_watermark", s.Watermark)
	// Base units: retention removes whole days, exposed as seconds.
	c("trove_retention_removed_seconds_total", u(s.RetentionDays)*86400)
	c("trove_retention_removed_bytes_total", u(s.RetentionBytes))
	c("trove_deleted_users_purged_total", u(s.PurgedUsers))
	c("trove_deleted_user_events_purged_total", u(s.PurgedEvents))
	g("trove_dedup_filter_ids", uint64(s.Dedup.IDs))
	g("trove_dedup_filter_bytes", uint64(s.Dedup.Bytes))
	g("trove_dedup_slices", uint64(s.Dedup.Slices))
	g("trove_dedup_slices_unfiltered", uint64(s.Dedup.Unfiltered))
	refused := uint64(0)
	if s.WritesRefused {
		refused = 1
	}
	g("trove_storage_writes_refused", refused)
}
