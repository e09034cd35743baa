package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// ProfileID is a profile's pyze_id, a UUID.
type ProfileID [16]byte

// ProfileTxn is a read-modify-write transaction over one app's profiles.
// It holds the app's profile lock from BeginProfiles to Close, so that two
// requests updating the same profile never lose an update (an `inc` from
// each ends counted twice); reads see the transaction's own writes. Commit
// writes everything in one atomic batch, synced when the store syncs.
//
// Profile writes of one app are serialised, fsync included: profile
// requests are batches, and one commit per request is cheap next to the
// thousands of updates one can carry.
type ProfileTxn struct {
	db      *DB
	app     uint32
	now     time.Time
	batch   *pebble.Batch
	unlock  func()
	changed map[ProfileID]uint64 // profile -> its change seq before this txn
	order   []ProfileID          // profiles put, in first-put order
	bodies  map[ProfileID][]byte
	key     []byte
	forget  []forgetting // users deleted in this transaction (forget.go)
	logSeq  uint64       // the log entry applied, in a replicated store (InLog)
	closed  bool
}

// BeginProfiles starts a profile transaction for app at server time now.
// The caller must Close it. The transaction holds the store open: Close
// waits for it.
func (db *DB) BeginProfiles(app uint32, now time.Time) (*ProfileTxn, error) {
	if err := db.enter(); err != nil {
		return nil, err
	}
	v, _ := db.profileLocks.LoadOrStore(app, &sync.Mutex{})
	mu := v.(*sync.Mutex)
	mu.Lock()
	return &ProfileTxn{
		db: db, app: app, now: now,
		batch:   db.pdb.NewIndexedBatch(),
		unlock:  mu.Unlock,
		changed: map[ProfileID]uint64{},
		bodies:  map[ProfileID][]byte{},
	}, nil
}

// get returns a copy of the value at key as this transaction sees it.
func (t *ProfileTxn) get(key []byte) ([]byte, bool, error) { return getV1(t.batch, key) }

// getV1 returns a copy of the payload of the version-1 value at key as r
// sees it, and whether there is one.
func getV1(r pebble.Reader, key []byte) ([]byte, bool, error) {
	v, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer closer.Close()
	if len(v) < 1 || v[0] != valueV1 {
		return nil, false, fmt.Errorf("%w: value of %x", errCorrupt, key)
	}
	return append([]byte(nil), v[1:]...), true, nil
}

func decodeProfileID(v []byte) (ProfileID, error) {
	var id ProfileID
	if len(v) != 16 {
		return id, fmt.Errorf("%w: profile id %x", errCorrupt, v)
	}
	copy(id[:], v)
	return id, nil
}

// Idempotent returns the answer recorded for an Idempotency-Key within the
// dedup window. Keys are kept by time slice (namespace 0x46, dedup.go), so
// each live slice is looked in, newest first.
func (t *ProfileTxn) Idempotent(key []byte) (answer []byte, ok bool, err error) {
	x := &t.db.dedup
	first, cur := x.firstLive(t.now), x.sliceOf(t.now.Unix())
	for s := int64(cur); s >= int64(first); s-- {
		v, ok, err := t.get(appendIdemSliceKey(t.key[:0], uint32(s), t.app, key))
		if err != nil {
			return nil, false, err
		}
		if !ok {
			continue
		}
		at, n := binary.Uvarint(v)
		if n <= 0 {
			return nil, false, fmt.Errorf("%w: idempotency value", errCorrupt)
		}
		if !x.inWindow(t.now, int64(at)) {
			return nil, false, nil
		}
		return v[n:], true, nil
	}
	return nil, false, nil
}

// PutIdempotent records the answer for an Idempotency-Key.
func (t *ProfileTxn) PutIdempotent(key, answer []byte) {
	v := append([]byte{valueV1}, binary.AppendUvarint(nil, uint64(t.now.Unix()))...)
	t.batch.Set(appendIdemSliceKey(nil, t.db.dedup.sliceOf(t.now.Unix()), t.app, key), append(v, answer...), nil)
}

// ByUser returns the profile that userID names.
func (t *ProfileTxn) ByUser(userID []byte) (ProfileID, bool, error) {
	return t.index(appendUserIndexKey(t.key[:0], t.app, userID))
}

// ByAlias returns the profile that the alias (label, id) names.
func (t *ProfileTxn) ByAlias(label, id []byte) (ProfileID, bool, error) {
	return t.index(appendAliasIndexKey(t.key[:0], t.app, label, id))
}

func (t *ProfileTxn) index(key []byte) (ProfileID, bool, error) {
	v, ok, err := t.get(key)
	if !ok || err != nil {
		return ProfileID{}, false, err
	}
	id, err := decodeProfileID(v)
	return id, err == nil, err
}

// Profile returns a copy of a profile's stored JSON, as this transaction
// sees it.
func (t *ProfileTxn) Profile(id ProfileID) ([]byte, bool, error) {
	if b, ok := t.bodies[id]; ok {
		return append([]byte(nil), b...), true, nil
	}
	v, ok, err := t.get(appendProfileKey(t.key[:0], t.app, id))
	if !ok || err != nil {
		return nil, false, err
	}
	seq, body, err := decodeProfilePayload(v)
	if err != nil {
		return nil, false, err
	}
	if _, seen := t.changed[id]; !seen {
		t.changed[id] = seq
	}
	return body, true, nil
}

// PutProfile sets a profile's stored JSON (copied). A profile put before
// being read is new.
func (t *ProfileTxn) PutProfile(id ProfileID, body []byte) {
	if _, ok := t.bodies[id]; !ok {
		t.order = append(t.order, id)
		if _, seen := t.changed[id]; !seen {
			t.changed[id] = 0
		}
	}
	t.bodies[id] = append([]byte(nil), body...)
}

// SetUser points userID at a profile.
func (t *ProfileTxn) SetUser(userID []byte, id ProfileID) {
	t.batch.Set(appendUserIndexKey(nil, t.app, userID), append([]byte{valueV1}, id[:]...), nil)
}

// SetAlias points the alias (label, id) at a profile.
func (t *ProfileTxn) SetAlias(label, aliasID []byte, id ProfileID) {
	t.batch.Set(appendAliasIndexKey(nil, t.app, label, aliasID), append([]byte{valueV1}, id[:]...), nil)
}

// Commit writes the profiles put, each with a new change sequence that
// replaces its previous one, and everything else set, in one batch.
func (t *ProfileTxn) Commit() error {
	// The transaction holds the store open (BeginProfiles).
	if h := t.db.opts.CommitHook; h != nil {
		h()
	}
	if err := t.db.disk.err(); err != nil {
		return err
	}
	n := len(t.order)
	var first uint64
	committed := false
	switch {
	case n > 0 && t.logSeq != 0:
		var err error
		if first, err = t.db.allocEntry(t.logSeq, n); err != nil {
			return err
		}
		defer func() { t.db.endEntry(first, n, committed) }()
	case n > 0:
		var err error
		if first, err = t.db.seq.alloc(n); err != nil {
			return fmt.Errorf("cannot allocate sequences: %w", err)
		}
		defer t.db.seq.finish(first, n)
	}
	for i, id := range t.order {
		seq := first + uint64(i)
		if prev := t.changed[id]; prev != 0 {
			t.batch.Delete(appendChangeKey(nil, t.app, prev), nil)
		}
		t.batch.Set(appendChangeKey(nil, t.app, seq), append([]byte{valueV1}, id[:]...), nil)
		t.batch.Set(appendProfileKey(nil, t.app, id), appendProfileValue(nil, seq, t.bodies[id]), nil)
	}
	t.recordForgotten()
	if t.logSeq == 0 && t.batch.Empty() {
		return nil
	}
	if err := t.db.commit(t.batch, t.logSeq, t.now, t.db.opts.Sync); err != nil {
		return fmt.Errorf("cannot commit profiles: %w", err)
	}
	committed = true
	if len(t.forget) > 0 {
		t.db.addForgotten(t.app, t.forget)
		t.db.kickPurge()
	}
	t.db.disk.wrote(t.batch.Len())
	return nil
}

// Close releases the transaction and the app's profile lock; without
// Commit nothing is written. Closing twice is harmless.
func (t *ProfileTxn) Close() {
	if t.closed {
		return
	}
	t.closed = true
	t.batch.Close()
	t.unlock()
	t.db.leave()
}

// ProfileLookup names one profile by one of its identities.
type ProfileLookup struct {
	ID                  *ProfileID
	UserID              []byte
	AliasLabel, AliasID []byte
}

// ReadProfile returns a copy of the stored JSON of the profile that l
// names, read from one consistent view.
func (db *DB) ReadProfile(app uint32, l ProfileLookup) ([]byte, bool, error) {
	snap, err := db.NewSnapshot()
	if err != nil {
		return nil, false, err
	}
	defer snap.Close()
	get := func(key []byte) ([]byte, bool, error) { return getV1(snap.snap, key) }
	var id ProfileID
	switch {
	case l.ID != nil:
		id = *l.ID
	default:
		var key []byte
		if l.UserID != nil {
			key = appendUserIndexKey(nil, app, l.UserID)
		} else {
			key = appendAliasIndexKey(nil, app, l.AliasLabel, l.AliasID)
		}
		v, ok, err := get(key)
		if !ok || err != nil {
			return nil, false, err
		}
		if id, err = decodeProfileID(v); err != nil {
			return nil, false, err
		}
	}
	v, ok, err := get(appendProfileKey(nil, app, id))
	if !ok || err != nil {
		return nil, false, err
	}
	_, body, err := decodeProfilePayload(v)
	return body, err == nil, err
}
