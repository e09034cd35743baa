package storage

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// ProfileFunc receives one profile's stored JSON and the sequence of its
// latest change. body is borrowed: it is valid only until the function
// returns. Returning an error stops the scan and is returned by it.
type ProfileFunc func(seq uint64, body []byte) error

// ProfileChanges calls fn for each of app's profiles whose latest change
// has a sequence with since < seq <= watermark, in change order. Every
// update moves a profile's change entry (0x44) to its new sequence, so each
// changed profile comes once, in its latest state; a profile whose latest
// change lies above the watermark is left out here and comes with
// since=watermark.
func (s *Snapshot) ProfileChanges(app uint32, since uint64, fn ProfileFunc) error {
	var key []byte
	return s.scanSeq(nsChange, app, since, func(seq uint64, v []byte) error {
		id, err := decodeProfileID(v)
		if err != nil {
			return err
		}
		key = appendProfileKey(key[:0], app, id)
		return s.profileAt(key, seq, fn)
	})
}

// profileAt passes the profile stored at key to fn if its change sequence
// is seq. A change entry whose profile has moved on to another sequence is
// stale and skipped: the profile comes at its own change entry.
func (s *Snapshot) profileAt(key []byte, seq uint64, fn ProfileFunc) error {
	v, closer, err := s.snap.Get(key)
	if err != nil {
		if errors.Is(err, pebble.ErrNotFound) {
			return fmt.Errorf("%w: profile %x listed by change %d is missing", errCorrupt, key, seq)
		}
		return err
	}
	defer closer.Close()
	if len(v) < 1 || v[0] != valueV1 {
		return fmt.Errorf("%w: value of %x", errCorrupt, key)
	}
	at, body, err := decodeProfilePayload(v[1:])
	if err != nil || at != seq {
		return err
	}
	return fn(seq, body)
}

// Profiles calls fn for each of app's profiles in the view, in the order
// of their latest change; it is ProfileChanges from 0.
func (s *Snapshot) Profiles(app uint32, fn func(body []byte) error) error {
	return s.ProfileChanges(app, 0, func(_ uint64, body []byte) error { return fn(body) })
}
