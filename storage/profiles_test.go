package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"trove/internal/testutil"
)

// testProfileID returns a distinct profile id for n.
func testProfileID(n byte) ProfileID {
	var id ProfileID
	for i := range id {
		id[i] = n
	}
	return id
}

// beginProfiles starts a profile transaction that is closed when the test
// ends (Close twice is harmless).
func beginProfiles(t testing.TB, db *DB, app uint32, now time.Time) *ProfileTxn {
	t.Helper()
	txn, err := db.BeginProfiles(app, now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(txn.Close)
	return txn
}

func commit(t testing.TB, txn *ProfileTxn) {
	t.Helper()
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	txn.Close()
}

// readProfile returns the stored JSON that l names in app, or "" when
// absent.
func readProfile(t testing.TB, db *DB, app uint32, l ProfileLookup) string {
	t.Helper()
	b, ok, err := db.ReadProfile(app, l)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return ""
	}
	return string(b)
}

// nsKeys returns every key of app in ns with its value.
func nsKeys(t testing.TB, db *DB, ns Namespace, app uint32) (keys, values [][]byte) {
	t.Helper()
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: appendAppPrefix(nil, ns, app), UpperBound: appUpperBound(ns, app)})
	if err != nil {
		t.Fatal(err)
	}
	for it.First(); it.Valid(); it.Next() {
		keys = append(keys, bytes.Clone(it.Key()))
		values = append(values, bytes.Clone(it.Value()))
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	return keys, values
}

// countProfileKeys returns how many keys app has in each profile namespace.
func countProfileKeys(t testing.TB, db *DB, app uint32) map[Namespace]int {
	t.Helper()
	out := map[Namespace]int{}
	for _, ns := range []Namespace{nsProfile, nsUserIndex, nsAliasIndex, nsIdempotent, nsChange} {
		keys, _ := nsKeys(t, db, ns, app)
		out[ns] = len(keys)
	}
	return out
}

func TestProfileTxnReadsItsOwnWrites(t *testing.T) {
	db := openTestDB(t, Options{DedupWindow: time.Hour})
	app := ensureApp(t, db, "a")
	id := testProfileID(1)
	txn := beginProfiles(t, db, app, testNow)
	if _, ok, err := txn.ByUser([]byte("u1")); ok || err != nil {
		t.Fatalf("ByUser in an empty store: got %v, %v; want nothing", ok, err)
	}
	if _, ok, err := txn.Profile(id); ok || err != nil {
		t.Fatalf("Profile in an empty store: got %v, %v; want nothing", ok, err)
	}
	txn.PutProfile(id, []byte(`{"v":1}`))
	txn.SetUser([]byte("u1"), id)
	txn.SetAlias([]byte("fb"), []byte("1"), id)
	body := []byte(`{"v":2}`)
	txn.PutProfile(id, body)
	body[6] = '9' // PutProfile copies
	tests := []struct {
		name string
		get  func() (ProfileID, bool, error)
		want bool
	}{
		{name: "ByUser", get: func() (ProfileID, bool, error) { return txn.ByUser([]byte("u1")) }, want: true},
		{name: "ByUser other", get: func() (ProfileID, bool, error) { return txn.ByUser([]byte("u2")) }},
		{name: "ByUser prefix", get: func() (ProfileID, bool, error) { return txn.ByUser([]byte("u")) }},
		{name: "ByAlias", get: func() (ProfileID, bool, error) { return txn.ByAlias([]byte("fb"), []byte("1")) }, want: true},
		// The label is length-prefixed: ("f", "b1") is another alias.
		{name: "ByAlias split elsewhere", get: func() (ProfileID, bool, error) { return txn.ByAlias([]byte("f"), []byte("b1")) }},
		{name: "ByAlias other id", get: func() (ProfileID, bool, error) { return txn.ByAlias([]byte("fb"), []byte("2")) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := tt.get()
			if err != nil || ok != tt.want || (ok && got != id) {
				t.Fatalf("got %x, %v, %v; want found=%v", got, ok, err, tt.want)
			}
		})
	}
	b, ok, err := txn.Profile(id)
	if err != nil || !ok || string(b) != `{"v":2}` {
		t.Fatalf("Profile: got %s, %v, %v; want the last put", b, ok, err)
	}
	b[0] = 'x' // Profile returns a copy
	if b, _, _ := txn.Profile(id); string(b) != `{"v":2}` {
		t.Fatalf("Profile after changing its answer: got %s", b)
	}
	// Nobody else sees any of it before Commit.
	if got := readProfile(t, db, app, ProfileLookup{UserID: []byte("u1")}); got != "" {
		t.Fatalf("ReadProfile before Commit: got %s; want nothing", got)
	}
	commit(t, txn)
	if got := readProfile(t, db, app, ProfileLookup{UserID: []byte("u1")}); got != `{"v":2}` {
		t.Fatalf("ReadProfile after Commit: got %q", got)
	}
}

func TestProfileTxnCloseWithoutCommit(t *testing.T) {
	db := openTestDB(t, Options{DedupWindow: time.Hour})
	app := ensureApp(t, db, "a")
	id := testProfileID(1)
	txn := beginProfiles(t, db, app, testNow)
	txn.PutProfile(id, []byte(`{}`))
	txn.SetUser([]byte("u1"), id)
	txn.SetAlias([]byte("fb"), []byte("1"), id)
	txn.PutIdempotent([]byte("k"), []byte(`{"accepted":1}`))
	txn.Close()
	txn.Close() // harmless
	for ns, n := range countProfileKeys(t, db, app) {
		if n != 0 {
			t.Errorf("namespace %02x has %d keys after Close without Commit; want 0", byte(ns), n)
		}
	}
	// The lock was released, and nothing is found.
	txn = beginProfiles(t, db, app, testNow)
	if _, ok, _ := txn.ByUser([]byte("u1")); ok {
		t.Fatal("userId found after Close without Commit")
	}
	if _, ok, _ := txn.Idempotent([]byte("k")); ok {
		t.Fatal("Idempotency-Key found after Close without Commit")
	}
	// An empty transaction commits nothing.
	commit(t, txn)
	if w, _ := db.Watermark(); w != 0 {
		t.Fatalf("watermark %d after empty commits; want 0", w)
	}
}

func TestProfileTxnChangeEntries(t *testing.T) {
	db := openTestDB(t, Options{DedupWindow: time.Hour})
	app := ensureApp(t, db, "a")
	other := ensureApp(t, db, "b")
	p1, p2, p3 := testProfileID(1), testProfileID(2), testProfileID(3)
	update := func(app uint32, ids ...ProfileID) {
		t.Helper()
		txn := beginProfiles(t, db, app, testNow)
		for _, id := range ids {
			b, _, err := txn.Profile(id)
			if err != nil {
				t.Fatal(err)
			}
			n, _ := strconv.Atoi(string(b))
			txn.PutProfile(id, []byte(strconv.Itoa(n+1)))
			txn.PutProfile(id, []byte(strconv.Itoa(n+1))) // twice: one change
		}
		commit(t, txn)
	}
	update(app, p1)
	update(app, p1, p2)
	update(app, p2)
	update(app, p1)
	update(other, p1)
	update(app, p3, p1, p3)

	want := map[ProfileID]string{p1: "4", p2: "2", p3: "2"}
	keys, values := nsKeys(t, db, nsChange, app)
	if len(keys) != len(want) {
		t.Fatalf("got %d change keys; want one per profile, %d", len(keys), len(want))
	}
	var lastSeq uint64
	seen := map[ProfileID]bool{}
	for i, k := range keys {
		a, seq, err := decodeChangeKey(k)
		if err != nil || a != app {
			t.Fatalf("change key %x: app %d, %v", k, a, err)
		}
		id, err := decodeProfileID(values[i][1:])
		if err != nil || values[i][0] != valueV1 {
			t.Fatalf("change value %x: %v", values[i], err)
		}
		if seen[id] {
			t.Fatalf("profile %x has two change keys", id)
		}
		seen[id] = true
		// The profile's value carries the sequence of its change key.
		v, closer, err := db.pdb.Get(appendProfileKey(nil, app, id))
		if err != nil {
			t.Fatal(err)
		}
		pseq, n := binary.Uvarint(v[1:])
		body := string(v[1+n:])
		closer.Close()
		if pseq != seq || body != want[id] {
			t.Fatalf("profile %x: seq %d, body %s; want seq %d of its change key, body %s", id, pseq, body, seq, want[id])
		}
		lastSeq = max(lastSeq, seq)
	}
	// p3 then p1 in the last commit: the latest change comes last.
	if id, _ := decodeProfileID(values[len(values)-1][1:]); id != p1 {
		t.Fatalf("last change is %x; want p1, put last", id)
	}
	if w, _ := db.Watermark(); w < lastSeq {
		t.Fatalf("watermark %d is below the last change %d", w, lastSeq)
	}
	if keys, _ := nsKeys(t, db, nsChange, other); len(keys) != 1 {
		t.Fatalf("app b has %d change keys; want 1", len(keys))
	}
}

func TestProfileTxnIdempotent(t *testing.T) {
	const window = time.Hour
	tests := []struct {
		name   string
		window time.Duration
		after  time.Duration
		key    string
		want   bool
	}{
		{name: "at once", window: window, key: "k", want: true},
		{name: "just inside the window", window: window, after: window - time.Second, key: "k", want: true},
		{name: "at the end of the window", window: window, after: window, key: "k"},
		{name: "past the window", window: window, after: 2 * window, key: "k"},
		{name: "another key", window: window, key: "k2"},
		{name: "a prefix of the key", window: window, key: ""},
		{name: "no window: forever", after: 1000 * time.Hour, key: "k", want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openTestDB(t, Options{DedupWindow: tt.window})
			app := ensureApp(t, db, "a")
			txn := beginProfiles(t, db, app, testNow)
			txn.PutIdempotent([]byte("k"), []byte(`{"accepted":1}`))
			if answer, ok, err := txn.Idempotent([]byte("k")); !ok || err != nil || string(answer) != `{"accepted":1}` {
				t.Fatalf("in the writing txn: got %s, %v, %v", answer, ok, err)
			}
			commit(t, txn)
			txn = beginProfiles(t, db, app, testNow.Add(tt.after))
			answer, ok, err := txn.Idempotent([]byte(tt.key))
			if err != nil || ok != tt.want || (ok && string(answer) != `{"accepted":1}`) {
				t.Fatalf("got %s, %v, %v; want found=%v", answer, ok, err, tt.want)
			}
			// Another app does not see it.
			txn.Close()
			txn = beginProfiles(t, db, ensureApp(t, db, "b"), testNow)
			if _, ok, _ := txn.Idempotent([]byte("k")); ok {
				t.Fatal("found in another app")
			}
		})
	}
}

func TestReadProfile(t *testing.T) {
	db := openTestDB(t, Options{DedupWindow: time.Hour})
	app := ensureApp(t, db, "a")
	other := ensureApp(t, db, "b")
	p1, p2 := testProfileID(1), testProfileID(2)
	txn := beginProfiles(t, db, app, testNow)
	txn.PutProfile(p1, []byte(`{"p":1}`))
	txn.SetUser([]byte("u1"), p1)
	txn.SetAlias([]byte("fb"), []byte("1"), p1)
	txn.SetAlias([]byte("g"), []byte("1"), p1)
	txn.PutProfile(p2, []byte(`{"p":2}`))
	txn.SetAlias([]byte("fb"), []byte("2"), p2)
	commit(t, txn)
	txn = beginProfiles(t, db, other, testNow)
	txn.PutProfile(p1, []byte(`{"p":"b1"}`))
	txn.SetUser([]byte("u1"), p1)
	commit(t, txn)
	// An index entry pointing at no profile: absent, not an error.
	txn = beginProfiles(t, db, app, testNow)
	txn.SetUser([]byte("dangling"), testProfileID(9))
	commit(t, txn)

	tests := []struct {
		name string
		app  uint32
		l    ProfileLookup
		want string
	}{
		{name: "by id", app: app, l: ProfileLookup{ID: &p1}, want: `{"p":1}`},
		{name: "by id, second", app: app, l: ProfileLookup{ID: &p2}, want: `{"p":2}`},
		{name: "by userId", app: app, l: ProfileLookup{UserID: []byte("u1")}, want: `{"p":1}`},
		{name: "by alias", app: app, l: ProfileLookup{AliasLabel: []byte("fb"), AliasID: []byte("1")}, want: `{"p":1}`},
		{name: "by second alias", app: app, l: ProfileLookup{AliasLabel: []byte("g"), AliasID: []byte("1")}, want: `{"p":1}`},
		{name: "by alias, second profile", app: app, l: ProfileLookup{AliasLabel: []byte("fb"), AliasID: []byte("2")}, want: `{"p":2}`},
		{name: "id wins over userId", app: app, l: ProfileLookup{ID: &p2, UserID: []byte("u1")}, want: `{"p":2}`},
		{name: "other app by userId", app: other, l: ProfileLookup{UserID: []byte("u1")}, want: `{"p":"b1"}`},
		{name: "other app by id", app: other, l: ProfileLookup{ID: &p1}, want: `{"p":"b1"}`},
		{name: "unknown id", app: app, l: ProfileLookup{ID: new(testProfileID(3))}},
		{name: "unknown userId", app: app, l: ProfileLookup{UserID: []byte("u2")}},
		{name: "empty userId", app: app, l: ProfileLookup{UserID: []byte{}}},
		{name: "unknown alias", app: app, l: ProfileLookup{AliasLabel: []byte("fb"), AliasID: []byte("3")}},
		{name: "not in other app", app: other, l: ProfileLookup{ID: &p2}},
		{name: "app never written", app: 99, l: ProfileLookup{UserID: []byte("u1")}},
		{name: "dangling index entry", app: app, l: ProfileLookup{UserID: []byte("dangling")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := readProfile(t, db, tt.app, tt.l); got != tt.want {
				t.Fatalf("got %q; want %q", got, tt.want)
			}
		})
	}
}

func TestProfileCorruptValues(t *testing.T) {
	db := openTestDB(t, Options{DedupWindow: time.Hour})
	app := ensureApp(t, db, "a")
	id := testProfileID(1)
	for _, kv := range [][2][]byte{
		{appendUserIndexKey(nil, app, []byte("short")), {valueV1, 1, 2}},
		{appendUserIndexKey(nil, app, []byte("version")), append([]byte{0x7f}, id[:]...)},
		{appendProfileKey(nil, app, id), {valueV1}},
		{appendIdemSliceKey(nil, db.dedup.sliceOf(testNow.Unix()), app, []byte("k")), {valueV1}},
	} {
		if err := db.pdb.Set(kv[0], kv[1], pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	txn := beginProfiles(t, db, app, testNow)
	for name, get := range map[string]func() error{
		"short id":      func() error { _, _, err := txn.ByUser([]byte("short")); return err },
		"version":       func() error { _, _, err := txn.ByUser([]byte("version")); return err },
		"profile":       func() error { _, _, err := txn.Profile(id); return err },
		"idempotency":   func() error { _, _, err := txn.Idempotent([]byte("k")); return err },
		"read short id": func() error { _, _, err := db.ReadProfile(app, ProfileLookup{UserID: []byte("short")}); return err },
		"read profile":  func() error { _, _, err := db.ReadProfile(app, ProfileLookup{ID: &id}); return err },
	} {
		if err := get(); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: got %v; want ErrCorrupt", name, err)
		}
	}
}

// TestProfileTxnSerialises runs read-modify-write transactions on one
// counter from many goroutines: none may lose another's update.
func TestProfileTxnSerialises(t *testing.T) {
	db := openTestDB(t, Options{DedupWindow: time.Hour})
	app := ensureApp(t, db, "a")
	id := testProfileID(1)
	const workers, rounds = 8, 100
	testutil.Concurrently(t, workers, func(int) error {
		for range rounds {
			if err := func() error {
				txn, err := db.BeginProfiles(app, testNow)
				if err != nil {
					return err
				}
				defer txn.Close()
				b, _, err := txn.Profile(id)
				if err != nil {
					return err
				}
				n, _ := strconv.Atoi(string(b))
				txn.PutProfile(id, []byte(strconv.Itoa(n+1)))
				return txn.Commit()
			}(); err != nil {
				return err
			}
		}
		return nil
	})
	if got, want := readProfile(t, db, app, ProfileLookup{ID: &id}), fmt.Sprint(workers*rounds); got != want {
		t.Fatalf("counter is %s; want %s", got, want)
	}
	if keys, _ := nsKeys(t, db, nsChange, app); len(keys) != 1 {
		t.Fatalf("got %d change keys; want 1", len(keys))
	}
}

// TestProfileTxnAppsIndependent checks that an open transaction of one app
// does not hold up another app's. (TestProfileTxnSerialises covers one
// app's.)
func TestProfileTxnAppsIndependent(t *testing.T) {
	db := openTestDB(t, Options{DedupWindow: time.Hour})
	a, b := ensureApp(t, db, "a"), ensureApp(t, db, "b")
	txnA := beginProfiles(t, db, a, testNow)
	done := make(chan error, 1)
	go func() {
		txn, err := db.BeginProfiles(b, testNow)
		if err == nil {
			txn.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a transaction of app b waited for app a's")
	}
	txnA.Close()
}

// TestProfileTxnClosedDB: an open transaction holds the store open, so it
// still commits while Close waits for it; after Close none begins.
func TestProfileTxnClosedDB(t *testing.T) {
	db := openTestDB(t, Options{DedupWindow: time.Hour})
	app := ensureApp(t, db, "a")
	txn := beginProfiles(t, db, app, testNow)
	txn.PutProfile(testProfileID(1), []byte(`{}`))
	closed := make(chan error, 1)
	go func() { closed <- db.Close() }()
	testutil.WaitFor(t, 10*time.Second, func() error {
		if !db.closed.Load() {
			return errors.New("Close has not begun")
		}
		return nil
	})
	if _, err := db.BeginProfiles(app, testNow); !errors.Is(err, ErrClosed) {
		t.Fatalf("BeginProfiles while Close waits: got %v; want ErrClosed", err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatalf("Commit of a transaction begun before Close: %v", err)
	}
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a transaction was open", err)
	default:
	}
	txn.Close()
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := db.BeginProfiles(app, testNow); !errors.Is(err, ErrClosed) {
		t.Fatalf("BeginProfiles on a closed DB: got %v; want ErrClosed", err)
	}
}
