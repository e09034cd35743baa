package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Retention removes an app's events by whole eventTime days. Each app has a
// floor, a day persisted in meta: its blocks of days before the floor are
// removed by one range deletion, groups left with no day at or after it are
// deleted, and readers skip days before it (a group may still list them).
// The floor moves first in memory, then the batch commits, so a reader
// never looks for a block that is gone; it only moves forward.

// Expired is what one Expire removed.
type Expired struct {
	// Floor is the app's first kept day, as a Unix time in microseconds.
	Floor int64
	// Days is how many days with events were removed, Groups how many
	// groups went away whole, Bytes the estimated size on disk of the
	// removed blocks.
	Days, Groups int
	Bytes        uint64
}

// Expire removes appKey's events on the days that lie wholly before cutoff,
// and compacts what it removed so that the space is freed. An app that has
// no events, or nothing that old, is left alone.
func (db *DB) Expire(appKey string, cutoff time.Time) (Expired, error) {
	var res Expired
	app, err := db.App(appKey)
	if err != nil {
		return res, nil // nothing was ever stored for it
	}
	floor := DayOf(cutoff.UnixMicro())
	// One pass at a time, and not beside a merge: both rewrite groups.
	db.mergeMu.Lock()
	defer db.mergeMu.Unlock()
	// The floor never moves back, but blocks written below it since the
	// last pass (events that old are refused at ingest, so only by a
	// client of storage itself) are removed all the same.
	floor = max(floor, db.floor(app))
	res.Floor = dayStart(floor)
	start, end := appendBlockKey(nil, app, minDay, 0), appendBlockKey(nil, app, floor, 0)
	days, err := db.countDays(start, end)
	if err != nil || days == 0 && floor == db.floor(app) {
		return res, err
	}
	res.Days = days
	res.Bytes, err = db.pdb.EstimateDiskUsage(start, end)
	if err != nil {
		return res, err
	}
	batch := db.pdb.NewBatch()
	defer batch.Close()
	// Groups with no day at or after the floor go.
	it, err := db.pdb.NewIter(&pebble.IterOptions{
		LowerBound: appendGroupKey(nil, app, 0),
		UpperBound: appUpperBound(nsGroup, app),
	})
	if err != nil {
		return res, err
	}
	var g groupValue
	for it.First(); it.Valid(); it.Next() {
		if err := decodeGroupValue(it.Value(), &g); err != nil {
			it.Close()
			return res, err
		}
		if len(g.days) == 0 || g.days[len(g.days)-1] < floor {
			batch.Delete(it.Key(), nil)
			res.Groups++
		}
	}
	if err := it.Close(); err != nil {
		return res, err
	}
	batch.DeleteRange(start, end, nil)
	batch.Set(appendFloorKey(nil, app), appendFloorValue(floor), nil)
	db.setFloor(app, floor)
	if err := batch.Commit(pebble.Sync); err != nil {
		return res, fmt.Errorf("cannot commit the retention of app %q: %w", appKey, err)
	}
	if res.Days == 0 {
		return res, nil
	}
	if db.opts.Replicated {
		// Not while the log waits: the compaction runs in the background
		// (retentionLoop), and counts there.
		select {
		case db.expiredRanges <- expiredRange{appKey, start, end, res}:
		case <-db.mergeStop:
		}
		return res, nil
	}
	return res, db.compactExpired(appKey, start, end, res)
}

// expiredRange is a range of blocks a pass of retention removed, to be
// compacted.
type expiredRange struct {
	appKey     string
	start, end []byte
	res        Expired
}

// compactExpired compacts the blocks that Expire removed from appKey, so
// that their space is freed, and counts them.
func (db *DB) compactExpired(appKey string, start, end []byte, res Expired) error {
	if err := db.pdb.Compact(db.mergeCtx, start, end, false); err != nil && db.mergeCtx.Err() == nil {
		return fmt.Errorf("cannot compact app %q after retention: %w", appKey, err)
	}
	db.expiredDays.Add(int64(res.Days))
	db.expiredBytes.Add(int64(res.Bytes))
	return nil
}

// ExpiredTotals returns how many days and (estimated) bytes of events
// retention has removed since the store opened.
func (db *DB) ExpiredTotals() (days, bytes int64) {
	return db.expiredDays.Load(), db.expiredBytes.Load()
}

// countDays returns how many days have blocks in [start, end), a block key
// range of one app, reading one block per day.
func (db *DB) countDays(start, end []byte) (int, error) {
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: start, UpperBound: end})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	n := 0
	for valid := it.First(); valid; {
		app, day, _, err := decodeBlockKey(it.Key())
		if err != nil {
			return n, err
		}
		n++
		if day == math.MaxInt32 {
			break
		}
		valid = it.SeekGE(appendBlockKey(nil, app, day+1, 0))
	}
	return n, it.Error()
}

// minDay is the first day a block key can hold.
const minDay = -1 << 31

func appendFloorValue(day int32) []byte {
	return binary.AppendVarint([]byte{valueV1}, int64(day))
}

// floor returns app's first kept day.
func (db *DB) floor(app uint32) int32 {
	db.floors.RLock()
	defer db.floors.RUnlock()
	if d, ok := db.floors.m[app]; ok {
		return d
	}
	return minDay
}

func (db *DB) setFloor(app uint32, day int32) {
	db.floors.Lock()
	defer db.floors.Unlock()
	db.floors.m[app] = day
}

// loadFloors reads every app's floor.
func (db *DB) loadFloors() error {
	db.floors.m = map[uint32]int32{}
	lower, upper := floorKeyBounds()
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		app, err := decodeFloorKey(it.Key())
		v := it.Value()
		if err != nil || len(v) < 2 || v[0] != valueV1 {
			return fmt.Errorf("%w: retention floor %x", errCorrupt, it.Key())
		}
		d, n := binary.Varint(v[1:])
		if n <= 0 {
			return fmt.Errorf("%w: retention floor %x", errCorrupt, it.Key())
		}
		db.floors.m[app] = int32(d)
	}
	return it.Error()
}

// retentionLoop calls Expire for every app that Options.Retention gives a
// retention (zero keeps an app's events forever) now and then every
// Options.RetentionInterval, until the store closes, and logs what it
// removed. A replicated store has no such loop: retention is an entry of
// the log there, which every node applies at the same place (ExpireEntry),
// and the loop compacts what the entries removed.
func (db *DB) retentionLoop() {
	defer close(db.retentionDone)
	if db.opts.Replicated {
		db.compactLoop()
		return
	}
	policy := db.opts.Retention
	if policy == nil {
		return
	}
	t := time.NewTicker(db.opts.RetentionInterval)
	defer t.Stop()
	for {
		if err := db.expireApps(time.Now(), policy); err != nil {
			if db.closed.Load() {
				return
			}
			db.log.Error("retention failed", "err", err)
		}
		select {
		case <-db.mergeStop:
			return
		case <-t.C:
		}
	}
}

// compactLoop compacts the ranges that the passes of a replicated store
// removed, one at a time, until the store closes.
func (db *DB) compactLoop() {
	for {
		select {
		case <-db.mergeStop:
			return
		case r := <-db.expiredRanges:
			if err := db.compactExpired(r.appKey, r.start, r.end, r.res); err != nil {
				db.log.Error("retention failed", "err", err)
			}
		}
	}
}

// expireApps calls Expire for every app of the store that keep gives a
// retention, as of now, and logs what it removed (with logArgs). An app
// that fails does not stop the others; the errors are returned together.
func (db *DB) expireApps(now time.Time, keep func(appKey string) time.Duration, logArgs ...any) error {
	var errs []error
	for _, k := range db.AppKeys() {
		d := keep(k)
		if d <= 0 {
			continue
		}
		r, err := db.Expire(k, now.Add(-d))
		if err != nil {
			errs = append(errs, fmt.Errorf("app %q: %w", k, err))
			continue
		}
		if r.Days > 0 {
			db.log.Info("retention removed events", append([]any{"app", k, "days", r.Days, "groups", r.Groups, "bytes_estimate", r.Bytes,
				"kept_from", time.UnixMicro(r.Floor).UTC().Format(time.DateOnly)}, logArgs...)...)
		}
	}
	return errors.Join(errs...)
}
