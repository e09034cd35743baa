package storage

import (
	"fmt"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// The console's overview (GET /admin/overview): per app, events in total
// and today, events per hour for the last 7 days, the ingest rate and the
// rejected events. What it costs, per computation:
//
//   - Totals: one scan of each app's group index (namespace 0x11, about 20
//     bytes per group; the merger keeps about one group per 16 MiB of
//     events), summing each group's count. Only a group that straddles the
//     retention floor has its kept blocks read, header only.
//   - Per hour and today: one scan of each app's blocks of the last 8 eventTime
//     days. A block whose events all fall in one hour counts from its header
//     (count, minTime, maxTime) without being decompressed: a fresh block holds
//     one request, usually seconds apart. A block that spans hours (a merged
//     one) is decompressed once; its per-hour counts are cached by key and
//     header until the merger replaces it. So the cost is reading a week of
//     compressed blocks from Pebble (mostly from its block cache), plus
//     decompressing only blocks not seen before.
//   - Rejected: quarantine keys are counted once; each computation counts
//     only the keys after the last sequence counted (the quarantine only grows).
//   - Ingest rate: counters kept at commit time, one per app per second for
//     the last minute (rateCounter), in memory.
//
// A result is cached for OverviewTTL, so any number of open consoles cost
// one computation per TTL. Events of deleted users that the purger has not
// rewritten away yet are still counted.

// OverviewHours is how many hours of events per hour an overview holds.
const OverviewHours = 7 * 24

// OverviewTTL is how long a computed overview is served before the next
// request computes it again.
const OverviewTTL = 5 * time.Second

// rateWindow is the number of whole seconds the ingest rate averages over.
const rateWindow = 10

// Overview is the store's summary for the console.
type Overview struct {
	// Start is the first hour of each app's Hourly (UTC, a whole hour);
	// the last one is the hour that holds ComputedAt.
	Start time.Time
	// ComputedAt is when it was computed: a cached overview is older than
	// the request.
	ComputedAt time.Time
	// Watermark is the store's watermark when it was computed.
	Watermark uint64
	// DiskUsageBytes is what the store's files take on disk, by Pebble's count
	// (admin reports the whole data directory instead: see DirUsage).
	DiskUsageBytes uint64
	// Apps holds one entry per app that has ever stored an event (or been
	// registered with the store), keyed by appKey.
	Apps map[string]AppOverview
}

// AppOverview is one app's figures.
type AppOverview struct {
	// Total is the number of events stored.
	Total int64
	// Today is the number of events whose eventTime lies in the current
	// UTC day.
	Today int64
	// Hourly holds OverviewHours counts by eventTime hour, from Start.
	Hourly []int64
	// RawBytes is the uncompressed size of the stored events (an estimate
	// once retention has removed days of a group).
	RawBytes int64
	// Rejected is the number of events in the app's quarantine.
	Rejected int64
	// RatePerSec is the events per second committed over the last
	// rateWindow whole seconds.
	RatePerSec float64
}

// overviewCache is the DB's overview state; see Overview.
type overviewCache struct {
	mu struct {
		sync.Mutex
		at   time.Time
		last Overview
		// hours caches the per-hour counts of blocks that span hours, by
		// block key; entries not seen by a computation are dropped.
		hours map[string]blockHours
		// rejected counts each app's quarantine up to a sequence.
		rejected map[uint32]rejectedCount
	}
	rate rateCounter
}

type blockHours struct {
	h      blockHeader
	counts map[int64]int64 // unix hour -> events
}

type rejectedCount struct {
	through uint64 // the last sequence counted
	n       int64
}

// Overview returns the store's overview as of now, computing it at most
// once per OverviewTTL.
func (db *DB) Overview(now time.Time) (Overview, error) {
	c := &db.overview
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.mu.at.IsZero() && now.Sub(c.mu.at) < OverviewTTL && now.Sub(c.mu.at) >= 0 {
		return c.mu.last, nil
	}
	ov, err := db.computeOverviewLocked(now)
	if err != nil {
		return Overview{}, err
	}
	c.mu.at, c.mu.last = now, ov
	return ov, nil
}

// computeOverviewLocked computes an overview; db.overview.mu is held.
func (db *DB) computeOverviewLocked(now time.Time) (Overview, error) {
	// Close takes readers' write lock before closing Pebble.
	db.readers.RLock()
	defer db.readers.RUnlock()
	if db.closed.Load() {
		return Overview{}, ErrClosed
	}
	c := &db.overview
	if c.mu.hours == nil {
		c.mu.hours = map[string]blockHours{}
		c.mu.rejected = map[uint32]rejectedCount{}
	}
	end := now.UTC().Truncate(time.Hour).Add(time.Hour)
	start := end.Add(-OverviewHours * time.Hour)
	wm, _ := db.Watermark()
	ov := Overview{
		Start:          start,
		ComputedAt:     now,
		Watermark:      wm,
		DiskUsageBytes: db.pdb.Metrics().DiskSpaceUsage(),
		Apps:           map[string]AppOverview{},
	}
	db.apps.RLock()
	ids := make(map[string]uint32, len(db.apps.byKey))
	for k, id := range db.apps.byKey {
		ids[k] = id
	}
	db.apps.RUnlock()
	seen := map[string]bool{}
	for key, id := range ids {
		a := AppOverview{Hourly: make([]int64, OverviewHours)}
		if err := db.overviewTotals(id, &a); err != nil {
			return Overview{}, fmt.Errorf("cannot count the events of %s: %w", key, err)
		}
		if err := db.overviewHours(id, start, end, now, &a, seen); err != nil {
			return Overview{}, fmt.Errorf("cannot count the recent events of %s: %w", key, err)
		}
		n, err := db.overviewRejected(id)
		if err != nil {
			return Overview{}, fmt.Errorf("cannot count the rejected events of %s: %w", key, err)
		}
		a.Rejected = n
		a.RatePerSec = c.rate.rate(id, now)
		ov.Apps[key] = a
	}
	for k := range c.mu.hours {
		if !seen[k] {
			delete(c.mu.hours, k)
		}
	}
	return ov, nil
}

// overviewTotals sums app's group index into a.Total and a.RawBytes.
func (db *DB) overviewTotals(app uint32, a *AppOverview) error {
	floor := db.floor(app)
	it, err := db.pdb.NewIter(&pebble.IterOptions{
		LowerBound: appendGroupKey(nil, app, 0),
		UpperBound: appUpperBound(nsGroup, app),
	})
	if err != nil {
		return err
	}
	defer it.Close()
	var g groupValue
	var key []byte
	for it.First(); it.Valid(); it.Next() {
		if err := decodeGroupValue(it.Value(), &g); err != nil {
			return err
		}
		if g.days[0] >= floor {
			a.Total += int64(g.count)
			a.RawBytes += int64(g.rawBytes)
			continue
		}
		// Retention removed some of its days: count the blocks kept.
		_, first, err := decodeGroupKey(it.Key())
		if err != nil {
			return err
		}
		for _, day := range g.days {
			if day < floor {
				continue
			}
			key = appendBlockKey(key[:0], app, day, first)
			v, closer, err := db.pdb.Get(key)
			if err != nil {
				continue // not written, or gone with its group
			}
			h, _, herr := decodeBlockHeader(v)
			closer.Close()
			if herr != nil {
				return herr
			}
			a.Total += int64(h.count)
			a.RawBytes += int64(h.rawLen)
		}
	}
	return it.Error()
}

// hourUs is an hour in microseconds, the unit of block times.
const hourUs = int64(time.Hour / time.Microsecond)

// overviewHours counts app's events in [start, end) by eventTime hour into
// a.Hourly, and those of now's UTC day into a.Today. It records the keys of
// cached blocks it used in seen.
func (db *DB) overviewHours(app uint32, start, end, now time.Time, a *AppOverview, seen map[string]bool) error {
	c := &db.overview
	startUs, endUs := start.UnixMicro(), end.UnixMicro()
	today := DayOf(now.UnixMicro())
	firstDay := max(min(DayOf(startUs), today), db.floor(app))
	lastDay := max(DayOf(endUs-1), today)
	it, err := db.pdb.NewIter(&pebble.IterOptions{
		LowerBound: appendBlockKey(nil, app, firstDay, 0),
		UpperBound: appendBlockKey(nil, app, lastDay+1, 0),
	})
	if err != nil {
		return err
	}
	defer it.Close()
	add := func(us, n int64) {
		if us >= startUs && us < endUs {
			a.Hourly[(us-startUs)/hourUs] += n
		}
	}
	var d *decodedBlock
	defer func() {
		if d != nil {
			putDecodedBlock(d)
		}
	}()
	for it.First(); it.Valid(); it.Next() {
		_, day, _, err := decodeBlockKey(it.Key())
		if err != nil {
			return err
		}
		v := it.Value()
		h, _, err := decodeBlockHeader(v)
		if err != nil {
			return err
		}
		if day == today {
			a.Today += int64(h.count)
		}
		if h.maxTime < startUs || h.minTime >= endUs {
			continue
		}
		if floorDiv(h.minTime, hourUs) == floorDiv(h.maxTime, hourUs) {
			add(h.minTime, int64(h.count))
			continue
		}
		k := string(it.Key())
		bh, ok := c.mu.hours[k]
		if !ok || bh.h != h {
			if d == nil {
				d = getDecodedBlock()
			}
			// The times are all it needs: a columnar block's first section.
			if err := d.decodeHead(v); err != nil {
				return err
			}
			bh = blockHours{h: h, counts: map[int64]int64{}}
			for _, t := range d.times[:d.len()] {
				bh.counts[floorDiv(t, hourUs)]++
			}
			c.mu.hours[k] = bh
		}
		seen[k] = true
		for hour, n := range bh.counts {
			add(hour*hourUs, n)
		}
	}
	return it.Error()
}

// forgetRejectedCounts drops the quarantine counts of apps whose entries
// were deleted (a replay), so that the next overview counts them afresh.
func (db *DB) forgetRejectedCounts(apps []uint32) {
	c := &db.overview
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, app := range apps {
		delete(c.mu.rejected, app)
	}
}

// overviewRejected returns the size of app's quarantine, counting only the
// entries added since the last call.
func (db *DB) overviewRejected(app uint32) (int64, error) {
	c := &db.overview
	rc := c.mu.rejected[app]
	lower := appendQuarantineKey(nil, app, 0)
	if rc.through > 0 {
		lower = appendQuarantineKey(nil, app, rc.through+1)
	}
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: appUpperBound(nsQuarantine, app)})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		_, seq, err := decodeQuarantineKey(it.Key())
		if err != nil {
			return 0, err
		}
		rc.n++
		rc.through = seq
	}
	if err := it.Error(); err != nil {
		return 0, err
	}
	c.mu.rejected[app] = rc
	return rc.n, nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// rateCounter counts committed events per app per second, for the last
// minute.
type rateCounter struct {
	mu   sync.Mutex
	apps map[uint32]*[60]rateSlot
}

type rateSlot struct {
	sec int64 // the unix second this slot counts
	n   int64
}

// add counts n events of app committed at now.
func (r *rateCounter) add(app uint32, now time.Time, n int) {
	sec := now.Unix()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.apps == nil {
		r.apps = map[uint32]*[60]rateSlot{}
	}
	ring := r.apps[app]
	if ring == nil {
		ring = &[60]rateSlot{}
		r.apps[app] = ring
	}
	s := &ring[sec%60]
	if s.sec != sec {
		*s = rateSlot{sec: sec}
	}
	s.n += int64(n)
}

// rate returns app's events per second over the rateWindow whole seconds
// before now.
func (r *rateCounter) rate(app uint32, now time.Time) float64 {
	sec := now.Unix()
	r.mu.Lock()
	defer r.mu.Unlock()
	ring := r.apps[app]
	if ring == nil {
		return 0
	}
	var n int64
	for _, s := range ring {
		if s.sec < sec && s.sec >= sec-rateWindow {
			n += s.n
		}
	}
	return float64(n) / rateWindow
}

// countCommitted records, for the ingest rate, the events of a committed
// write, which are sorted by app.
func (r *rateCounter) countCommitted(now time.Time, events []pendingEvent) {
	for i := 0; i < len(events); {
		j := i
		for j < len(events) && events[j].app == events[i].app {
			j++
		}
		r.add(events[i].app, now, j-i)
		i = j
	}
}
