package storage

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Deleting a user (the right to be forgotten) removes their profile and its
// index entries, and records the userId in namespace 0x45 in the same
// batch. Readers of events consult that record (Forgotten) and leave the
// user's events out of every export from the commit on; the record stays,
// so that events the user's devices send later are hidden too.
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

// Forget records userID as deleted: once this transaction commits, its
// events are left out of exports.
func (t *ProfileTxn) Forget(userID []byte) {
	t.batch.Set(appendForgottenKey(nil, t.app, userID), appendForgottenValue(t.now.Unix(), false), nil)
	t.forget = append(t.forget, string(userID))
}

// A forgotten-user value: version, when (unix s, uvarint), then 1 once the
// user's stored events have been purged, else 0.
func appendForgottenValue(unix int64, purged bool) []byte {
	v := binary.AppendUvarint([]byte{valueV1}, uint64(unix))
	if purged {
		return append(v, 1)
	}
	return append(v, 0)
}

func decodeForgottenValue(v []byte) (unix int64, purged bool, err error) {
	if len(v) < 3 || v[0] != valueV1 {
		return 0, false, fmt.Errorf("%w: forgotten user value", errCorrupt)
	}
	u, n := binary.Uvarint(v[1:])
	if n <= 0 || 1+n != len(v)-1 {
		return 0, false, fmt.Errorf("%w: forgotten user value", errCorrupt)
	}
	return int64(u), v[len(v)-1] == 1, nil
}

// Forgotten returns the deleted userIds of app, or nil when there are none.
// The map must not be modified; it is replaced, not changed, when a user is
// deleted.
func (db *DB) Forgotten(app uint32) map[string]bool {
	db.forgotten.RLock()
	defer db.forgotten.RUnlock()
	return db.forgotten.m[app]
}

// addForgotten publishes deleted users of app.
func (db *DB) addForgotten(app uint32, users []string) {
	if len(users) == 0 {
		return
	}
	db.forgotten.Lock()
	defer db.forgotten.Unlock()
	m := make(map[string]bool, len(db.forgotten.m[app])+len(users))
	for u := range db.forgotten.m[app] {
		m[u] = true
	}
	for _, u := range users {
		m[u] = true
	}
	db.forgotten.m[app] = m
}

// loadForgotten reads every app's deleted users.
func (db *DB) loadForgotten() error {
	db.forgotten.m = map[uint32]map[string]bool{}
	it, err := db.pdb.NewIter(&pebble.IterOptions{
		LowerBound: []byte{byte(nsForgotten)},
		UpperBound: []byte{byte(nsForgotten) + 1},
	})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) < 5 {
			return fmt.Errorf("%w: forgotten user key %x", errCorrupt, k)
		}
		app := binary.BigEndian.Uint32(k[1:5])
		if db.forgotten.m[app] == nil {
			db.forgotten.m[app] = map[string]bool{}
		}
		db.forgotten.m[app][string(k[5:])] = true
		if _, purged, err := decodeForgottenValue(it.Value()); err != nil {
			return err
		} else if !purged {
			db.kickPurge()
		}
	}
	return it.Error()
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
	pending := map[uint32]map[string]bool{}
	var keys [][]byte
	it, err := db.pdb.NewIter(&pebble.IterOptions{
		LowerBound: []byte{byte(nsForgotten)},
		UpperBound: []byte{byte(nsForgotten) + 1},
	})
	if err != nil {
		return res, err
	}
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		_, purged, err := decodeForgottenValue(it.Value())
		if err != nil || len(k) < 5 {
			it.Close()
			return res, fmt.Errorf("%w: forgotten user %x", errCorrupt, k)
		}
		if purged {
			continue
		}
		app := binary.BigEndian.Uint32(k[1:5])
		if pending[app] == nil {
			pending[app] = map[string]bool{}
		}
		pending[app][string(k[5:])] = true
		keys = append(keys, slices.Clone(k))
	}
	if err := it.Close(); err != nil {
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
	batch := db.pdb.NewBatch()
	defer batch.Close()
	now := time.Now().Unix()
	for _, k := range keys {
		batch.Set(k, appendForgottenValue(now, true), nil)
	}
	if err := batch.Commit(pebble.Sync); err != nil {
		return res, fmt.Errorf("cannot mark deleted users purged: %w", err)
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

// purgeApp rewrites app's blocks without the events of users.
func (db *DB) purgeApp(app uint32, users map[string]bool) (events, blocks int, err error) {
	it, err := db.pdb.NewIter(&pebble.IterOptions{
		LowerBound: appendGroupKey(nil, app, 0),
		UpperBound: appUpperBound(nsGroup, app),
	})
	if err != nil {
		return 0, 0, err
	}
	defer it.Close()
	d := getDecodedBlock()
	defer putDecodedBlock(d)
	// Which events go is judged from the head columns (userIds compared
	// unescaped, as exports compare them); only a block that holds one is
	// decoded whole and rewritten.
	f := &Filter{Exclude: users}
	var drop []bool
	var evs []blockEvent
	var val, scratch []byte
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
			key := appendBlockKey(nil, app, day, first)
			v, closer, err := db.pdb.Get(key)
			if err != nil {
				batch.Close()
				return events, blocks, fmt.Errorf("cannot read block %x: %w", key, err)
			}
			err = d.decodeHead(v)
			any := false
			if err == nil {
				drop = slices.Grow(drop[:0], d.len())[:d.len()]
				for i := range d.len() {
					h := d.head(i)
					drop[i] = !f.keepHead(nil, h.userID, &d.unesc)
					any = any || drop[i]
				}
				if any && !d.fromBodies { // else the bodies are decoded already
					err = d.decode(v)
				}
			}
			closer.Close()
			if err != nil {
				batch.Close()
				return events, blocks, err
			}
			if !any {
				kept = append(kept, day)
				continue
			}
			evs = evs[:0]
			for i := range d.len() {
				seq, t, body := d.event(i)
				if drop[i] {
					if err := db.keepPurgedID(batch, app, seq, body); err != nil {
						batch.Close()
						return events, blocks, err
					}
					g.count--
					g.rawBytes -= len(body)
					continue
				}
				evs = append(evs, blockEvent{seq: seq, time: t, body: body})
			}
			changed = true
			events += d.len() - len(evs)
			blocks++
			if len(evs) == 0 {
				batch.Delete(key, nil)
				continue
			}
			kept = append(kept, day)
			val, scratch = db.appendMergedBlock(val[:0], scratch, evs)
			batch.Set(key, val, nil)
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
