package storage

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Deleting a user (the right to be forgotten) removes their profile and its
// index entries, and records the userId in namespace 0x45 in the same
// batch, with a bound: the last ingest sequence handed out when it
// commits. Readers of events consult that record (Forgotten) and leave the
// user's events up to the bound out of every export from the commit on.
// Events with a higher sequence were sent after the deletion: by default
// they are a new start, stored and exported like any other; a deletion
// with suppress has no bound (every event of the user is hidden) and makes
// ingest refuse the user's events (Suppressed), so none is stored.
//
// The purger then rewrites, in the background, every block that holds an
// event of a deleted user without it, marks the record purged, and compacts
// the app's ranges, so that the bytes leave the data directory: Pebble's
// obsolete files are deleted, and its WAL files are not recycled (see
// deletingCleaner), since a recycled file keeps old bytes past its new end.

// DeleteProfile removes a profile, its change record, and the user and
// alias index entries given, in this transaction.
func (t *ProfileTxn) DeleteProfile(id ProfileID, userIDs [][]byte, aliases [][2][]byte) error {
	// Reading it first records its change sequence.
	if _, _, err := t.Profile(id); err != nil {
		return err
	}
	if prev := t.changed[id]; prev != 0 {
		t.batch.Delete(appendChangeKey(nil, t.app, prev), nil)
	}
	delete(t.bodies, id)
	for i, o := range t.order {
		if o == id {
			t.order = append(t.order[:i], t.order[i+1:]...)
			break
		}
	}
	t.batch.Delete(appendProfileKey(nil, t.app, id), nil)
	for _, u := range userIDs {
		t.batch.Delete(appendUserIndexKey(nil, t.app, u), nil)
	}
	for _, a := range aliases {
		t.batch.Delete(appendAliasIndexKey(nil, t.app, a[0], a[1]), nil)
	}
	return nil
}

// forgetting is a deletion recorded by a ProfileTxn.
type forgetting struct {
	userID   string
	suppress bool
	bound    uint64 // set at Commit
}

// Forget records userID as deleted: once this transaction commits, the
// user's events stored so far are left out of exports and purged. With
// suppress, so are the events that arrive later: ingest refuses them
// (Suppressed); without it, later events are a new start and stored.
func (t *ProfileTxn) Forget(userID []byte, suppress bool) {
	t.forget = append(t.forget, forgetting{userID: string(userID), suppress: suppress})
}

// recordForgotten writes the transaction's deletions into its batch, each
// bounded by the last ingest sequence handed out: an event with a higher
// one was allocated after the deletion began, so it was sent after it.
func (t *ProfileTxn) recordForgotten() {
	if len(t.forget) == 0 {
		return
	}
	bound := t.db.seq.allocated()
	if t.logSeq != 0 {
		// Every event of the entries before this one, whatever this
		// node has allocated since it started (replicated.go).
		bound = t.logSeq<<LogSeqShift - 1
	}
	for i := range t.forget {
		f := &t.forget[i]
		f.bound = bound
		if f.suppress {
			f.bound = math.MaxUint64 // hide whatever slips in
		}
		rec := forgottenRecord{unix: t.now.Unix(), bound: f.bound, suppress: f.suppress}
		t.batch.Set(appendForgottenKey(nil, t.app, []byte(f.userID)), appendForgottenValue(nil, rec), nil)
	}
}

// forgottenRecord is the value of a 0x45 key.
type forgottenRecord struct {
	unix int64 // when the user was deleted
	// bound is the highest ingest sequence of the user's events that are
	// hidden and purged; a version-1 value has none (legacy is set), and
	// is given one at Open.
	bound    uint64
	legacy   bool
	purged   bool // the events up to bound are gone from storage
	suppress bool // later events are refused
}

const (
	forgottenPurged   = 1
	forgottenSuppress = 2
)

// appendForgottenValue appends a forgotten-user value: version 2, when
// (unix s, uvarint), the bound (uvarint), then flags (forgottenPurged,
// forgottenSuppress). Version 1 had no bound and a purged byte of 0 or 1.
func appendForgottenValue(dst []byte, r forgottenRecord) []byte {
	dst = binary.AppendUvarint(append(dst, valueV2), uint64(r.unix))
	dst = binary.AppendUvarint(dst, r.bound)
	var flags byte
	if r.purged {
		flags |= forgottenPurged
	}
	if r.suppress {
		flags |= forgottenSuppress
	}
	return append(dst, flags)
}

func decodeForgottenValue(v []byte) (forgottenRecord, error) {
	var r forgottenRecord
	bad := fmt.Errorf("%w: forgotten user value %x", errCorrupt, v)
	if len(v) < 3 || (v[0] != valueV1 && v[0] != valueV2) {
		return r, bad
	}
	u, n := binary.Uvarint(v[1:])
	if n <= 0 {
		return r, bad
	}
	r.unix = int64(u)
	rest := v[1+n:]
	if v[0] == valueV1 {
		if len(rest) != 1 || rest[0] > 1 {
			return r, bad
		}
		r.legacy, r.purged = true, rest[0] == 1
		return r, nil
	}
	if r.bound, n = binary.Uvarint(rest); n <= 0 || len(rest) != n+1 || rest[n]&^(forgottenPurged|forgottenSuppress) != 0 {
		return r, bad
	}
	r.purged, r.suppress = rest[n]&forgottenPurged != 0, rest[n]&forgottenSuppress != 0
	return r, nil
}

// Forgotten returns the deleted userIds of app, each with its bound: an
// event of the user whose sequence is at most the bound is left out. It is
// nil when there are none, and must not be modified; it is replaced, not
// changed, when a user is deleted.
func (db *DB) Forgotten(app uint32) map[string]uint64 {
	db.forgotten.RLock()
	defer db.forgotten.RUnlock()
	return db.forgotten.m[app]
}

// ForgottenGen changes whenever a user of any app is deleted.
func (db *DB) ForgottenGen() uint64 {
	db.forgotten.RLock()
	defer db.forgotten.RUnlock()
	return db.forgotten.gen
}

// Suppressed returns the userIds of app deleted with suppress, whose new
// events ingest refuses, or nil. It must not be modified.
func (db *DB) Suppressed(app uint32) map[string]bool {
	db.forgotten.RLock()
	defer db.forgotten.RUnlock()
	return db.forgotten.suppressed[app]
}

// addForgotten publishes deleted users of app.
func (db *DB) addForgotten(app uint32, users []forgetting) {
	if len(users) == 0 {
		return
	}
	db.forgotten.Lock()
	defer db.forgotten.Unlock()
	m := maps.Clone(db.forgotten.m[app])
	if m == nil {
		m = make(map[string]uint64, len(users))
	}
	sup := maps.Clone(db.forgotten.suppressed[app])
	for _, u := range users {
		m[u.userID] = u.bound
		if u.suppress {
			if sup == nil {
				sup = map[string]bool{}
			}
			sup[u.userID] = true
		} else {
			delete(sup, u.userID)
		}
	}
	db.forgotten.m[app] = m
	if len(sup) == 0 {
		sup = nil
	}
	db.forgotten.suppressed[app] = sup
	db.forgotten.gen++
}

// loadForgotten reads every app's deleted users. A version-1 record (no
// bound: it hid every event of the user, whenever sent) is given the last
// sequence handed out before this Open, which hides what it hid then, and
// rewritten so that its bound stays.
func (db *DB) loadForgotten() error {
	db.forgotten.m = map[uint32]map[string]uint64{}
	db.forgotten.suppressed = map[uint32]map[string]bool{}
	it, err := db.pdb.NewIter(&pebble.IterOptions{
		LowerBound: []byte{byte(nsForgotten)},
		UpperBound: []byte{byte(nsForgotten) + 1},
	})
	if err != nil {
		return err
	}
	defer it.Close()
	batch := db.pdb.NewBatch()
	defer batch.Close()
	for it.First(); it.Valid(); it.Next() {
		app, user, err := decodeForgottenKey(it.Key())
		if err != nil {
			return err
		}
		r, err := decodeForgottenValue(it.Value())
		if err != nil {
			return err
		}
		if r.legacy {
			r.bound, r.legacy = db.seq.allocated(), false
			batch.Set(it.Key(), appendForgottenValue(nil, r), nil)
		}
		if db.forgotten.m[app] == nil {
			db.forgotten.m[app] = map[string]uint64{}
		}
		db.forgotten.m[app][string(user)] = r.bound
		if r.suppress {
			if db.forgotten.suppressed[app] == nil {
				db.forgotten.suppressed[app] = map[string]bool{}
			}
			db.forgotten.suppressed[app][string(user)] = true
		}
		if !r.purged {
			db.kickPurge()
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	if batch.Empty() {
		return nil
	}
	if err := batch.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("cannot upgrade deleted users' records: %w", err)
	}
	return nil
}

func (db *DB) kickPurge() {
	select {
	case db.purgeKick <- struct{}{}:
	default:
	}
}

func (db *DB) purgeLoop() {
	defer close(db.purgeDone)
	for {
		select {
		case <-db.mergeStop:
			return
		case <-db.purgeKick:
		}
		if db.disk.err() != nil {
			// A rewrite writes too; retry once there is room.
			time.AfterFunc(time.Minute, db.kickPurge)
			continue
		}
		r, err := db.PurgeForgotten()
		if err != nil {
			if db.closed.Load() {
				return
			}
			db.log.Error("purging deleted users failed; retrying in a minute", "err", err)
			time.AfterFunc(time.Minute, db.kickPurge)
			continue
		}
		if r.Users > 0 {
			db.log.Info("purged deleted users' events from storage", "users", r.Users, "events", r.Events, "blocks_rewritten", r.Blocks)
		}
	}
}

// PurgedTotals returns how many deleted users and events the purger has
// removed from storage since the store opened.
func (db *DB) PurgedTotals() (users, events int64) {
	return db.purgedUsers.Load(), db.purgedEvents.Load()
}

// Purged is what one PurgeForgotten removed.
type Purged struct {
	Users, Events, Blocks int
}

// PurgeForgotten rewrites every block holding events of a deleted user not
// yet purged without those events, marks the users purged, and compacts
// the ranges it rewrote so that the old bytes are dropped from disk.
func (db *DB) PurgeForgotten() (Purged, error) {
	var res Purged
	// Not beside a merge or a retention pass: all rewrite groups.
	db.mergeMu.Lock()
	defer db.mergeMu.Unlock()
	// keepPurgedID reads the index entries of the events it purges.
	if err := db.flushDedup(); err != nil {
		return res, err
	}
	pending, keys, err := db.forgottenToPurge()
	if err != nil {
		return res, err
	}
	for app, users := range pending {
		events, blocks, err := db.purgeApp(app, users)
		if err != nil {
			return res, err
		}
		res.Events += events
		res.Blocks += blocks
	}
	if len(keys) == 0 {
		return res, nil
	}
	res.Users = len(keys)
	db.purgedUsers.Add(int64(res.Users))
	db.purgedEvents.Add(int64(res.Events))
	if err := db.markPurged(keys); err != nil {
		return res, err
	}
	// Compacting rewrites the sstables that still hold the old blocks and
	// the deleted profiles; the memtable is flushed first, so the WAL that
	// logged them becomes obsolete and is deleted.
	if err := db.pdb.Flush(); err != nil {
		return res, err
	}
	for app := range pending {
		for _, ns := range []Namespace{nsBlock, nsGroup, nsProfile, nsUserIndex, nsAliasIndex, nsChange} {
			if err := db.pdb.Compact(db.mergeCtx, appendAppPrefix(nil, ns, app), appUpperBound(ns, app), false); err != nil {
				if db.mergeCtx.Err() != nil {
					return res, ErrClosed
				}
				return res, fmt.Errorf("cannot compact after purging app %d: %w", app, err)
			}
		}
	}
	return res, nil
}

// forgottenRecordKey is a forgotten-user record as PurgeForgotten read it.
type forgottenRecordKey struct {
	key []byte
	rec forgottenRecord
}

// forgottenToPurge returns, per app, the users whose events are to be
// purged (userId -> bound): those not purged yet, and with them those
// purged already whose later events slipped past ingest's check
// (suppress); and the records of the former, to mark purged after.
func (db *DB) forgottenToPurge() (map[uint32]map[string]uint64, []forgottenRecordKey, error) {
	pending := map[uint32]map[string]uint64{}
	suppressed := map[uint32]map[string]uint64{}
	var keys []forgottenRecordKey
	it, err := db.pdb.NewIter(&pebble.IterOptions{
		LowerBound: []byte{byte(nsForgotten)},
		UpperBound: []byte{byte(nsForgotten) + 1},
	})
	if err != nil {
		return nil, nil, err
	}
	for it.First(); it.Valid(); it.Next() {
		app, user, err := decodeForgottenKey(it.Key())
		if err != nil {
			it.Close()
			return nil, nil, err
		}
		r, err := decodeForgottenValue(it.Value())
		if err != nil {
			it.Close()
			return nil, nil, err
		}
		if r.purged {
			if r.suppress {
				// An event that slipped past ingest's check after the
				// purge goes with the app's next rewrite, which costs
				// nothing more: the app's blocks are read then anyway.
				if suppressed[app] == nil {
					suppressed[app] = map[string]uint64{}
				}
				suppressed[app][string(user)] = r.bound
			}
			continue
		}
		if pending[app] == nil {
			pending[app] = map[string]uint64{}
		}
		pending[app][string(user)] = r.bound
		keys = append(keys, forgottenRecordKey{slices.Clone(it.Key()), r})
	}
	if err := it.Close(); err != nil {
		return nil, nil, err
	}
	for app, users := range pending {
		for u, bound := range suppressed[app] {
			if _, ok := users[u]; !ok {
				users[u] = bound
			}
		}
	}
	return pending, keys, nil
}

// markPurged marks the records of keys purged, but for a user deleted again
// meanwhile: that one has a new bound, and is the next pass's.
func (db *DB) markPurged(keys []forgottenRecordKey) error {
	batch := db.pdb.NewBatch()
	defer batch.Close()
	for _, k := range keys {
		v, closer, err := db.pdb.Get(k.key)
		if err != nil {
			return err
		}
		cur, err := decodeForgottenValue(v)
		closer.Close()
		if err != nil {
			return err
		}
		if cur != k.rec {
			db.kickPurge()
			continue
		}
		cur.purged = true
		batch.Set(k.key, appendForgottenValue(nil, cur), nil)
	}
	if err := batch.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("cannot mark deleted users purged: %w", err)
	}
	return nil
}

// purgeApp rewrites app's blocks without the events of users, one group
// per atomic batch.
func (db *DB) purgeApp(app uint32, users map[string]uint64) (events, blocks int, err error) {
	it, err := db.pdb.NewIter(&pebble.IterOptions{
		LowerBound: appendGroupKey(nil, app, 0),
		UpperBound: appUpperBound(nsGroup, app),
	})
	if err != nil {
		return 0, 0, err
	}
	defer it.Close()
	p := &groupPurge{db: db, app: app, d: getDecodedBlock(), f: &Filter{Exclude: users}}
	defer putDecodedBlock(p.d)
	floor := db.floor(app)
	for it.First(); it.Valid(); it.Next() {
		if db.closed.Load() {
			return events, blocks, ErrClosed
		}
		_, first, err := decodeGroupKey(it.Key())
		if err != nil {
			return events, blocks, err
		}
		var g groupValue
		if err := decodeGroupValue(it.Value(), &g); err != nil {
			return events, blocks, err
		}
		g.days = slices.Clone(g.days)
		batch := db.pdb.NewIndexedBatch() // keepPurgedID reads its own writes
		kept := g.days[:0]
		changed := false
		for _, day := range g.days {
			if day < floor {
				continue // removed by retention
			}
			n, keep, err := p.day(batch, day, first, &g)
			if err != nil {
				batch.Close()
				return events, blocks, err
			}
			if keep {
				kept = append(kept, day)
			}
			if n > 0 {
				changed = true
				events += n
				blocks++
			}
		}
		if changed {
			g.days = kept
			if len(kept) == 0 {
				batch.Delete(it.Key(), nil)
			} else {
				batch.Set(it.Key(), appendGroupValue(nil, &g), nil)
			}
			if err := batch.Commit(pebble.Sync); err != nil {
				batch.Close()
				return events, blocks, fmt.Errorf("cannot commit a purged group: %w", err)
			}
		}
		batch.Close()
	}
	return events, blocks, it.Error()
}

// groupPurge rewrites the blocks of one app's groups without the events f
// excludes, reusing its buffers from block to block.
type groupPurge struct {
	db       *DB
	app      uint32
	d        *decodedBlock
	f        *Filter
	drop     []bool
	evs      []blockEvent
	val, tmp []byte
}

// day adds to batch the rewrite of the group's block of day (from the group
// at first, whose counts in g it updates): dropped is how many of its events
// went, keep whether the block still holds any. Which events go is judged
// from the head columns (userIds compared unescaped, as exports compare
// them); only a block that holds one is decoded whole and rewritten.
func (p *groupPurge) day(batch *pebble.Batch, day int32, first uint64, g *groupValue) (dropped int, keep bool, err error) {
	d := p.d
	key := appendBlockKey(nil, p.app, day, first)
	v, closer, err := p.db.pdb.Get(key)
	if err != nil {
		return 0, false, fmt.Errorf("cannot read block %x: %w", key, err)
	}
	err = d.decodeHead(v)
	any := false
	if err == nil {
		p.drop = slices.Grow(p.drop[:0], d.len())[:d.len()]
		for i := range d.len() {
			h := d.head(i)
			p.drop[i] = !p.f.keepHead(nil, h.userID, h.seq, &d.unesc)
			any = any || p.drop[i]
		}
		if any && !d.fromBodies { // else the bodies are decoded already
			err = d.decode(v)
		}
	}
	closer.Close()
	if err != nil || !any {
		return 0, true, err
	}
	p.evs = p.evs[:0]
	for i := range d.len() {
		seq, t, body := d.event(i)
		if p.drop[i] {
			if err := p.db.keepPurgedID(batch, p.app, seq, body); err != nil {
				return 0, false, err
			}
			g.count--
			g.rawBytes -= len(body)
			continue
		}
		p.evs = append(p.evs, blockEvent{seq: seq, time: t, body: body})
	}
	dropped = d.len() - len(p.evs)
	if len(p.evs) == 0 {
		batch.Delete(key, nil)
		return dropped, false, nil
	}
	p.val, p.tmp = p.db.appendMergedBlock(p.val[:0], p.tmp, p.evs)
	batch.Set(key, p.val, nil)
	return dropped, true, nil
}

// deletingCleaner deletes obsolete files as Pebble's default cleaner does,
// and by also claiming to need their contents (the method comes with the
// embedded ArchiveCleaner, one level further down than DeleteCleaner's
// Clean) keeps Pebble from recycling WAL files: a recycled WAL keeps the
// bytes of the old one past the end of what is written into it, and events
// of a deleted user must leave the data directory. Recycling saves creating
// a file per memtable (16 MiB); that is all it costs.
type deletingCleaner struct {
	pebble.DeleteCleaner
	archiveMarker
}

type archiveMarker struct{ pebble.ArchiveCleaner }
