package storage

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

type profileChange struct {
	seq  uint64
	body string
}

// profileChanges returns what ProfileChanges(app, since) passes, copied.
func profileChanges(t testing.TB, s *Snapshot, app uint32, since uint64) []profileChange {
	t.Helper()
	var out []profileChange
	if err := s.ProfileChanges(app, since, func(seq uint64, body []byte) error {
		out = append(out, profileChange{seq, string(body)})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// putProfiles commits one transaction that puts body(n, version) for each
// n; profiles stored before are read first, as the profile handler does.
func putProfiles(t testing.TB, db *DB, app uint32, version int, ns ...byte) {
	t.Helper()
	txn := beginProfiles(t, db, app, time.Now())
	for _, n := range ns {
		if _, _, err := txn.Profile(testProfileID(n)); err != nil {
			t.Fatal(err)
		}
		txn.PutProfile(testProfileID(n), []byte(profileBody(n, version)))
	}
	commit(t, txn)
}

func profileBody(n byte, version int) string {
	return fmt.Sprintf(`{"pyze_id":"p%d","v":%d}`, n, version)
}

func TestProfileChanges(t *testing.T) {
	db := openTestDB(t, Options{})
	app := ensureApp(t, db, "app")
	other := ensureApp(t, db, "other")

	putProfiles(t, db, app, 1, 1, 2, 3) // seqs 1, 2, 3
	putProfiles(t, db, other, 1, 9)     // seq 4
	putProfiles(t, db, app, 2, 2)       // seq 5: profile 2 moves
	putProfiles(t, db, app, 1, 4)       // seq 6
	putProfiles(t, db, app, 3, 2, 1)    // seqs 7 (profile 2), 8 (profile 1)
	putProfiles(t, db, app, 4, 2)       // seq 9
	s := newSnapshot(t, db)
	if s.Watermark() != 9 {
		t.Fatalf("watermark %d; want 9", s.Watermark())
	}

	all := []profileChange{
		{3, profileBody(3, 1)},
		{6, profileBody(4, 1)},
		{8, profileBody(1, 3)},
		{9, profileBody(2, 4)},
	}
	for _, tc := range []struct {
		since uint64
		want  []profileChange
	}{
		{0, all},
		{2, all},
		{3, all[1:]},
		{5, all[1:]},
		{6, all[2:]},
		{7, all[2:]},
		{8, all[3:]},
		{9, nil},
		{100, nil},
		{^uint64(0), nil},
	} {
		if got := profileChanges(t, s, app, tc.since); !slices.Equal(got, tc.want) {
			t.Errorf("since %d: got %v; want %v", tc.since, got, tc.want)
		}
	}
	if got, want := profileChanges(t, s, other, 0), []profileChange{{4, profileBody(9, 1)}}; !slices.Equal(got, want) {
		t.Errorf("other app: got %v; want %v", got, want)
	}
	if got := profileChanges(t, s, 12345, 0); got != nil {
		t.Errorf("app without profiles: got %v", got)
	}

	var bodies []string
	if err := s.Profiles(app, func(body []byte) error {
		bodies = append(bodies, string(body))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{all[0].body, all[1].body, all[2].body, all[3].body}; !slices.Equal(bodies, want) {
		t.Errorf("Profiles: got %v; want %v", bodies, want)
	}

	// The snapshot is a view: later updates do not show in it.
	putProfiles(t, db, app, 5, 3)
	if got := profileChanges(t, s, app, 0); !slices.Equal(got, all) {
		t.Errorf("after a later update, the old snapshot gives %v; want %v", got, all)
	}
	if got, want := profileChanges(t, newSnapshot(t, db), app, 9), []profileChange{{10, profileBody(3, 5)}}; !slices.Equal(got, want) {
		t.Errorf("since the old watermark: got %v; want %v", got, want)
	}

	// An error from fn stops the scan and is returned.
	stop := errors.New("stop")
	n := 0
	if err := s.ProfileChanges(app, 0, func(uint64, []byte) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Errorf("got %v after %d calls; want stop after 1", err, n)
	}
}

// TestProfileChangesWatermark checks that a profile committed above the
// watermark (an earlier sequence still in flight) is left out, and comes
// with since=watermark once the watermark has passed it.
func TestProfileChangesWatermark(t *testing.T) {
	db := openTestDB(t, Options{})
	app := ensureApp(t, db, "app")
	putProfiles(t, db, app, 1, 1) // seq 1

	w := db.NewWriter(time.Now())
	defer w.Close()
	if seq, err := w.Alloc(1); err != nil || seq != 2 {
		t.Fatalf("Alloc: %d, %v; want 2", seq, err)
	}
	putProfiles(t, db, app, 1, 2) // seq 3, committed above the watermark
	putProfiles(t, db, app, 2, 1) // seq 4: profile 1 moves above it too
	s := newSnapshot(t, db)
	if s.Watermark() != 1 {
		t.Fatalf("watermark %d; want 1", s.Watermark())
	}
	if got := profileChanges(t, s, app, 0); got != nil {
		t.Errorf("got %v; want nothing: every latest change is above the watermark", got)
	}
	w.Close() // sequence 2 finishes, empty

	s = newSnapshot(t, db)
	want := []profileChange{{3, profileBody(2, 1)}, {4, profileBody(1, 2)}}
	if s.Watermark() != 4 {
		t.Fatalf("watermark %d; want 4", s.Watermark())
	}
	if got := profileChanges(t, s, app, 1); !slices.Equal(got, want) {
		t.Errorf("since 1: got %v; want %v", got, want)
	}
}

func TestProfileChangesClosed(t *testing.T) {
	db, err := Open("", Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	app := ensureApp(t, db, "app")
	putProfiles(t, db, app, 1, 1, 2)
	s, err := db.NewSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	err = s.ProfileChanges(app, 0, func(uint64, []byte) error {
		go func() { closed <- db.Close() }()
		// Close waits for the snapshot; wait until it has started.
		for !db.closed.Load() {
			time.Sleep(time.Millisecond)
		}
		return nil
	})
	s.Close()
	if !errors.Is(err, ErrClosed) {
		t.Errorf("got %v; want ErrClosed", err)
	}
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
}
