package storage

import (
	"fmt"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// The background merger. Every commit writes one small group (one block per
// app and eventTime day, compressed with zstd's fastest level) so that a
// 202 costs little. Small groups compress poorly, so the merger combines
// runs of neighbouring small groups of one app into one group of up to
// Options.MergeTargetBytes raw bytes, recompressed with zstd's best level.
// The new group and the deletion of the old ones are one atomic batch, so a
// reader, which always reads through a snapshot, sees either the old groups
// or the new one, and a crash leaves one or the other.
//
// Only groups whose sequences are all at or below the watermark are merged:
// no commit can still add to the sequence range they cover.

func (db *DB) kickMerge() {
	select {
	case db.mergeKick <- struct{}{}:
	default:
	}
}

func (db *DB) mergeLoop() {
	defer close(db.mergeDone)
	if db.opts.MergeInterval <= 0 {
		<-db.mergeStop
		return
	}
	t := time.NewTicker(db.opts.MergeInterval)
	defer t.Stop()
	// Groups are merged once they are MergeMinAge old: recent data stays in
	// its small groups a little while, so that a burst of ingest does not
	// share the CPU with recompressing what it just wrote.
	type mark struct {
		at time.Time
		wm uint64
	}
	var marks []mark
	// After a pass that rewrote groups, the first quiet tick flushes the
	// memtable: its WAL, up to a memtable's worth of bytes that are also in
	// the merged blocks, is then deleted instead of sitting in the data
	// directory until the next write fills the memtable.
	flushPending, lastStored := false, db.eventsStored.Load()
	for {
		select {
		case <-db.mergeStop:
			return
		case now := <-t.C:
			if stored := db.eventsStored.Load(); flushPending && stored == lastStored {
				if err := db.pdb.Flush(); err != nil {
					db.log.Error("flushing the memtable after merging failed", "err", err)
				}
				if err := db.settleMerged(); err != nil {
					db.log.Error("compacting merged blocks failed", "err", err)
				}
				flushPending = false
			} else {
				lastStored = stored
			}
			wm, _ := db.seq.watermark()
			marks = append(marks, mark{now, wm})
			limit := uint64(0)
			for len(marks) > 0 && now.Sub(marks[0].at) >= db.opts.MergeMinAge {
				limit = marks[0].wm
				marks = marks[1:]
			}
			if limit > db.mergeLimit {
				db.mergeLimit = limit
			}
		}
		if db.disk.err() != nil {
			continue // a merge writes too: wait for disk space
		}
		n, err := db.mergeUpTo(db.mergeLimit)
		if err != nil {
			db.log.Error("background merge failed", "err", err)
		}
		if n == 0 {
			releaseBestEncoders() // idle: their memory is the exports' (values.go)
		}
		flushPending = flushPending || n > 0
	}
}

// MergeAll runs one pass of the merger over every app, whatever the age of
// the groups, and returns how many groups it merged away.
func (db *DB) MergeAll() (int, error) {
	wm, _ := db.seq.watermark()
	return db.mergeUpTo(wm)
}

// mergeUpTo merges groups whose sequences are all at or below limit.
func (db *DB) mergeUpTo(limit uint64) (int, error) {
	// One pass at a time: two could pick the same run of groups.
	db.mergeMu.Lock()
	defer db.mergeMu.Unlock()
	db.apps.RLock()
	ids := make([]uint32, 0, len(db.apps.byKey))
	for _, id := range db.apps.byKey {
		ids = append(ids, id)
	}
	db.apps.RUnlock()
	slices.Sort(ids)
	total := 0
	for _, app := range ids {
		from := uint64(0)
		for {
			select {
			case <-db.mergeStop:
				return total, nil
			default:
			}
			n, next, err := db.mergeOne(app, limit, from)
			if err != nil {
				return total, fmt.Errorf("cannot merge app %d: %w", app, err)
			}
			if n == 0 {
				break
			}
			total += n
			from = next
		}
		if err := db.maybeCompact(app, 4, 16<<20); err != nil {
			return total, err
		}
	}
	db.merged.Add(int64(total))
	return total, nil
}

// settleMerged compacts, once ingest is quiet, the blocks of every app
// whose merged-away blocks are still a thirty-second of its size (and at
// least 1 MiB): after a burst, the passes that merge its last groups each
// delete less than maybeCompact's quarter, which left up to a quarter of
// the app's bytes on disk as garbage (S1: 117.6 instead of ~90 bytes per
// event 3 minutes after W1).
func (db *DB) settleMerged() error {
	db.mergeMu.Lock()
	defer db.mergeMu.Unlock()
	apps := make([]uint32, 0, len(db.mergeDeleted))
	for app := range db.mergeDeleted {
		apps = append(apps, app)
	}
	slices.Sort(apps)
	for _, app := range apps {
		if err := db.maybeCompact(app, 32, 1<<20); err != nil {
			return err
		}
	}
	return nil
}

// maybeCompact compacts app's blocks once the blocks merged away since its
// last compaction amount to at least minBytes and a 1/fraction of what the
// app takes on disk. Pebble would reclaim their space only when later
// writes push compactions through the same keys, which for a quiet app may
// be never; compacting at a fixed fraction keeps the cost proportional to
// what was merged. After each pass the fraction is a quarter; once ingest
// is quiet (settleMerged) it is a thirty-second, so that what the last
// passes of a burst merged away does not stay on disk until the next burst.
func (db *DB) maybeCompact(app uint32, fraction, minBytes uint64) error {
	deleted := db.mergeDeleted[app]
	if deleted < minBytes {
		return nil
	}
	start, end := appendAppPrefix(nil, nsBlock, app), appUpperBound(nsBlock, app)
	usage, err := db.pdb.EstimateDiskUsage(start, end)
	if err != nil {
		return err
	}
	if deleted < usage/fraction {
		return nil
	}
	t := time.Now()
	if err := db.pdb.Compact(db.mergeCtx, start, end, false /* parallelize */); err != nil {
		if db.mergeCtx.Err() != nil {
			return nil // shutting down; the next start compacts
		}
		return fmt.Errorf("cannot compact app %d: %w", app, err)
	}
	delete(db.mergeDeleted, app)
	db.log.Info("compacted merged blocks", "app", app, "reclaimed_estimate", deleted, "took", time.Since(t).Round(time.Millisecond).String())
	return nil
}

type groupRef struct {
	first uint64
	g     groupValue
}

// mergeOne merges the first run of small groups of app starting at or after
// sequence from, and returns how many groups went away (0 when there was
// nothing to do) and where the next search may start.
func (db *DB) mergeOne(app uint32, wm, from uint64) (int, uint64, error) {
	target := db.opts.MergeTargetBytes
	it, err := db.pdb.NewIter(&pebble.IterOptions{
		LowerBound: appendGroupKey(nil, app, 0),
		UpperBound: appUpperBound(nsGroup, app),
	})
	if err != nil {
		return 0, 0, err
	}
	var run []groupRef
	size := 0
	for it.SeekGE(appendGroupKey(nil, app, from)); it.Valid(); it.Next() {
		var r groupRef
		_, r.first, err = decodeGroupKey(it.Key())
		if err == nil {
			err = decodeGroupValue(it.Value(), &r.g)
		}
		if err != nil {
			it.Close()
			return 0, 0, err
		}
		if r.g.last > wm {
			break
		}
		small := r.g.rawBytes < target/2
		if !small || size+r.g.rawBytes > target {
			if len(run) >= 2 {
				break
			}
			run, size = run[:0], 0
			if !small {
				continue
			}
		}
		r.g.days = slices.Clone(r.g.days)
		run = append(run, r)
		size += r.g.rawBytes
	}
	if err := it.Close(); err != nil {
		return 0, 0, err
	}
	if len(run) < 2 {
		return 0, 0, nil
	}
	// The merged group may still be small enough to take its next
	// neighbours, so the next search starts at it.
	return len(run) - 1, run[0].first, db.mergeRun(app, run)
}

// mergeBufs are the merger's buffers, reused from one merge to the next.
type mergeBufs struct {
	arena   []byte
	evs     []blockEvent
	key     []byte
	val     []byte
	scratch []byte
}

// gatherRun reads the events of every block of run's groups (the days
// retention has not removed) into one arena, and adds to batch the
// deletion of each block read and of each group key but the first
// group's, which the merged group takes. The arena is sized up front from
// merged.rawBytes so that it never moves and the events' bodies can point
// into it.
func (db *DB) gatherRun(app uint32, run []groupRef, merged *groupValue, batch *pebble.Batch) ([]byte, []blockEvent, error) {
	m := &db.mergeBufs
	snap := db.pdb.NewSnapshot()
	defer snap.Close()
	d := getDecodedBlock()
	defer putDecodedBlock(d)
	arena := slices.Grow(m.arena[:0], merged.rawBytes)
	evs := slices.Grow(m.evs[:0], merged.count)
	key := m.key
	defer func() { m.key = key }()
	floor := db.floor(app)
	for _, r := range run {
		for _, day := range r.g.days {
			if day < floor {
				continue // removed by retention
			}
			key = appendBlockKey(key[:0], app, day, r.first)
			v, closer, err := snap.Get(key)
			if err != nil {
				return nil, nil, fmt.Errorf("cannot read block %x: %w", key, err)
			}
			err = d.decode(v)
			closer.Close()
			if err != nil {
				return nil, nil, err
			}
			db.mergeDeleted[app] += uint64(len(v))
			if len(arena)+len(d.body) > cap(arena) {
				return nil, nil, fmt.Errorf("%w: group %d of app %d holds more than its %d bytes", errCorrupt, r.first, app, r.g.rawBytes)
			}
			for i := range d.len() {
				seq, t, body := d.event(i)
				start := len(arena)
				arena = append(arena, body...)
				evs = append(evs, blockEvent{seq: seq, time: t, body: arena[start:len(arena):len(arena)]})
			}
			batch.Delete(key, nil)
		}
		if r.first != run[0].first {
			key = appendGroupKey(key[:0], app, r.first)
			batch.Delete(key, nil)
		}
	}
	return arena, evs, nil
}

// mergeRun replaces the groups of run with one.
func (db *DB) mergeRun(app uint32, run []groupRef) error {
	m := &db.mergeBufs
	batch := db.pdb.NewBatch()
	defer batch.Close()
	merged := groupValue{last: run[len(run)-1].g.last}
	for _, r := range run {
		merged.count += r.g.count
		merged.rawBytes += r.g.rawBytes
	}
	arena, evs, err := db.gatherRun(app, run, &merged, batch)
	if err != nil {
		return err
	}
	key := m.key
	// Events sorted by time are also sorted by day; each day's run is one
	// block.
	sortBlockEvents(evs)
	val, scratch := m.val, m.scratch
	for i := 0; i < len(evs); {
		day := DayOf(evs[i].time)
		j := i + 1
		for j < len(evs) && DayOf(evs[j].time) == day {
			j++
		}
		merged.days = append(merged.days, day)
		key = appendBlockKey(key[:0], app, day, run[0].first)
		val, scratch = db.appendMergedBlock(val[:0], scratch, evs[i:j])
		batch.Set(key, val, nil)
		i = j
	}
	key = appendGroupKey(key[:0], app, run[0].first)
	batch.Set(key, appendGroupValue(nil, &merged), nil)
	clear(evs) // drop references into the arena before pooling
	*m = mergeBufs{arena: arena[:0], evs: evs[:0], key: key, val: val, scratch: scratch}
	if cap(m.arena) > 2*db.opts.MergeTargetBytes {
		*m = mergeBufs{}
	}
	// Not synced: the batch is atomic, and until it is durable the old groups
	// are. The next synced commit makes it durable too.
	db.disk.wrote(batch.Len())
	if err := batch.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("cannot commit merge: %w", err)
	}
	return nil
}
