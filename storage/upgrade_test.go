package storage

// The upgrade fixtures (issue 12). testdata/v1store is a data directory that
// Trove wrote at commit 836b928, the last of the first storage format:
// block values version 1 (zstd, S2 and uncompressed), the dedup index 0x20
// app|messageId, idempotency keys 0x43 app|key. testdata/v2store is that
// directory served on by commit 5b772a6, the last of the second: columnar
// blocks (version 4), the dedup index 0x21 slice|app|fingerprint with seq
// and legacy refs, idempotency keys 0x46. testdata/v1store.md and
// v2store.md say how they were made; each -expected directory holds what
// its server exported, byte for byte, and manifest.json which request
// produced which file. Whatever the format becomes, a store opened on either
// directory must give back the same events, on the first start after the
// upgrade (converting, or reading both formats) and on every start after
// it.

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-json"
)

// upgradeFixture is one of the fixtures above.
type upgradeFixture struct {
	name     string
	store    string // the Pebble directory inside the data directory
	expected string
	// fresh: the fixture holds groups the merger has not merged yet.
	fresh bool
}

var upgradeFixtures = []upgradeFixture{
	{name: "v1", store: "testdata/v1store/store", expected: "testdata/v1store-expected", fresh: true},
	{name: "v2", store: "testdata/v2store/store", expected: "testdata/v2store-expected"},
}

// v1Manifest is a fixture's manifest.json (testdata/v1store-expected's
// format, which v2store-expected shares).
type v1Manifest struct {
	dir   string // the fixture's expected directory
	Files []struct {
		File      string            `json:"file"`
		Request   string            `json:"request"`
		Kind      string            `json:"kind"` // events, profiles, rejected, profile, admin
		App       string            `json:"app"`
		Params    map[string]string `json:"params"`
		Status    int               `json:"status"`
		Watermark string            `json:"watermark"`
	} `json:"files"`
	Watermarks   map[string]uint64   `json:"watermarks"`
	ClientIDs    map[string]string   `json:"clientIdFiles"`
	GeneratedIDs map[string]string   `json:"generatedIdFiles"`
	RejectedIDs  map[string][]string `json:"rejectedMessageIds"`
	DeletedUser  struct {
		App       string   `json:"app"`
		UserID    string   `json:"userId"`
		ClientIDs []string `json:"clientIds"`
	} `json:"deletedUser"`
	Idempotent struct {
		Key        string `json:"idempotencyKey"`
		AnswerFile string `json:"answerFile"`
	} `json:"idempotentProfileRequest"`
	ReceivedAt struct {
		Min string `json:"min"`
		Max string `json:"max"`
	} `json:"receivedAt"`
}

func loadV1Manifest(t *testing.T, fx upgradeFixture) *v1Manifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fx.expected, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	m := &v1Manifest{dir: fx.expected}
	if err := json.Unmarshal(b, m); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	return m
}

// receivedAt parses one of the manifest's receivedAt bounds.
func (m *v1Manifest) receivedAt(t *testing.T, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("manifest receivedAt %q: %v", s, err)
	}
	return at
}

func readV1Expected(t *testing.T, m *v1Manifest, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(m.dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readV1Lines returns the non-empty lines of an expected file.
func readV1Lines(t *testing.T, m *v1Manifest, name string) []string {
	t.Helper()
	var lines []string
	for l := range strings.Lines(string(readV1Expected(t, m, name))) {
		if l = strings.TrimSuffix(l, "\n"); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// copyV1Store copies the fixture's Pebble directory into a fresh temporary
// directory (opening a store writes to it) and returns the copy.
func copyV1Store(t *testing.T, fx upgradeFixture) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "store")
	if err := os.CopyFS(dir, os.DirFS(fx.store)); err != nil {
		t.Fatal(err)
	}
	return dir
}

// v1Options are the options trove serve uses by default, except that the
// background merger is off so that what is read is what the fixture holds
// (the test merges on purpose, see TestUpgradeStore).
func v1Options() Options {
	return Options{Sync: true, DedupWindow: 720 * time.Hour}
}

// v1Events answers an events export as export/events.go does: the deleted
// users' events are left out (DB.Forgotten), an eventTime range alone is
// read in eventTime order, anything else in ingest order.
func v1Events(db *DB, snap *Snapshot, app uint32, params map[string]string) ([]byte, error) {
	from, to := int64(math.MinInt64), int64(math.MaxInt64)
	var since uint64
	timed, seqRange := false, false
	for k, v := range params {
		switch k {
		case "from", "to":
			at, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				if at, err = time.Parse(time.DateOnly, v); err != nil {
					return nil, err
				}
			}
			if k == "from" {
				from = at.UnixMicro()
			} else {
				to = at.UnixMicro()
			}
			timed = true
		case "since":
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return nil, err
			}
			since, seqRange = n, true
		case "userId", "event":
		default:
			return nil, fmt.Errorf("parameter %q is not handled here", k)
		}
	}
	deleted := db.Forgotten(app)
	var out bytes.Buffer
	emit := func(seq uint64, t int64, body []byte) error {
		if t < from || t >= to {
			return nil
		}
		var head struct {
			Event  string `json:"event"`
			UserID string `json:"userId"`
		}
		if err := json.Unmarshal(body, &head); err != nil {
			return err
		}
		if bound, ok := deleted[head.UserID]; ok && seq <= bound ||
			(params["userId"] != "" && head.UserID != params["userId"]) ||
			(params["event"] != "" && head.Event != params["event"]) {
			return nil
		}
		out.Write(body)
		return out.WriteByte('\n')
	}
	var err error
	if timed && !seqRange {
		err = snap.EventsByTime(app, from, to, emit)
	} else {
		err = snap.EventsBySeq(app, since, math.MaxUint64, emit)
	}
	return out.Bytes(), err
}

func v1Since(params map[string]string) (uint64, error) {
	if v, ok := params["since"]; ok {
		return strconv.ParseUint(v, 10, 64)
	}
	return 0, nil
}

// checkSameBytes fails with the first line where got and want differ.
func checkSameBytes(t *testing.T, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			t.Fatalf("%d lines, %d bytes; want %d lines, %d bytes; first difference at line %d:\ngot  %s\nwant %s",
				bytes.Count(got, []byte("\n")), len(got), bytes.Count(want, []byte("\n")), len(want), i+1, gl, wl)
		}
	}
	// Only empty lines at the end differ, which the loop reads as "".
	t.Fatalf("%d lines, %d bytes; want %d lines, %d bytes: the same lines, with a different number of empty lines at the end",
		bytes.Count(got, []byte("\n")), len(got), bytes.Count(want, []byte("\n")), len(want))
}

// checkV1Reads compares everything the store reads back with what the old
// server exported.
func checkV1Reads(t *testing.T, db *DB, m *v1Manifest) {
	t.Helper()
	snap, err := db.NewSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	if wm, old := snap.Watermark(), m.Watermarks["endB"]; wm < old {
		t.Errorf("watermark %d; want at least %d, the old server's, so that since=<old watermark> repeats nothing", wm, old)
	}
	for _, f := range m.Files {
		if f.Kind == "admin" {
			continue // tokens and apps: see upgrade_e2e_test.go
		}
		t.Run(f.File, func(t *testing.T) {
			want := readV1Expected(t, m, f.File)
			app, err := db.App(f.App)
			if err != nil {
				t.Fatal(err)
			}
			var got []byte
			switch f.Kind {
			case "events":
				got, err = v1Events(db, snap, app, f.Params)
			case "rejected", "profiles":
				var since uint64
				if since, err = v1Since(f.Params); err != nil {
					break
				}
				var out bytes.Buffer
				line := func(_ uint64, b []byte) error {
					out.Write(b)
					return out.WriteByte('\n')
				}
				if f.Kind == "rejected" {
					err = snap.Rejected(app, since, line)
				} else {
					err = snap.ProfileChanges(app, since, line)
				}
				got = out.Bytes()
			case "profile":
				var l ProfileLookup
				switch {
				case f.Params["userId"] != "":
					l.UserID = []byte(f.Params["userId"])
				case f.Params["alias_label"] != "":
					l.AliasLabel, l.AliasID = []byte(f.Params["alias_label"]), []byte(f.Params["alias_id"])
				case f.Params["pyze_id"] != "":
					var id []byte
					if id, err = hex.DecodeString(strings.ReplaceAll(f.Params["pyze_id"], "-", "")); err != nil || len(id) != 16 {
						t.Fatalf("pyze_id %q: %v", f.Params["pyze_id"], err)
					}
					l.ID = (*ProfileID)(id)
				}
				var found bool
				got, found, err = db.ReadProfile(app, l)
				if f.Status == 404 {
					if found {
						t.Fatalf("found %s; want no profile (the old server answered 404)", got)
					}
					return
				}
				if err == nil && !found {
					t.Fatalf("no profile; want %s", want)
				}
			default:
				t.Fatalf("kind %q is not handled here", f.Kind)
			}
			if err != nil {
				t.Fatal(err)
			}
			checkSameBytes(t, got, want)
		})
	}
	deleted := db.Forgotten(mustApp(t, db, m.DeletedUser.App))
	if _, ok := deleted[m.DeletedUser.UserID]; len(deleted) != 1 || !ok {
		t.Errorf("deleted users %v; want only %q", deleted, m.DeletedUser.UserID)
	}
}

func mustApp(t *testing.T, db *DB, appKey string) uint32 {
	t.Helper()
	id, err := db.App(appKey)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// checkV1Dedup checks the dedup index and the idempotency keys: within the
// dedup window of the fixture's receivedAt, every client messageId stored
// (the deleted user's too) is a duplicate and nothing else is; past it,
// none is.
func checkV1Dedup(t *testing.T, db *DB, m *v1Manifest) {
	t.Helper()
	first := m.receivedAt(t, m.ReceivedAt.Min)
	last := m.receivedAt(t, m.ReceivedAt.Max)
	within := last.Add(24 * time.Hour)                           // every id is a day old
	past := first.Add(v1Options().DedupWindow + 30*24*time.Hour) // every id is a month past the window
	type key struct {
		app string
		id  string
		dup bool // within the window
	}
	var keys []key
	for app, file := range m.ClientIDs {
		ids := readV1Lines(t, m, file)
		if len(ids) < 50 {
			t.Fatalf("%s: %d client messageIds; the fixture has more", file, len(ids))
		}
		for _, id := range ids {
			keys = append(keys, key{app, id, true})
		}
		// Never stored: refused events, and ids never sent.
		for _, id := range m.RejectedIDs[app] {
			keys = append(keys, key{app, id, false})
		}
		keys = append(keys, key{app, "5f0c2b7e-8d1a-4c3b-9e6f-0a1b2c3d4e5f", false}, key{app, "never-sent", false})
	}
	// The deleted user's ids are among them: their events went, their
	// messageIds stay known, so a resent event is not stored again.
	for _, id := range m.DeletedUser.ClientIDs {
		if !slices.Contains(keys, key{m.DeletedUser.App, id, true}) {
			t.Fatalf("the deleted user's messageId %q is not listed in %s", id, m.ClientIDs[m.DeletedUser.App])
		}
	}
	// An id of one app is not a duplicate in another.
	keys = append(keys, key{m.DeletedUser.App, readV1Lines(t, m, m.ClientIDs[otherV1App(t, m, m.DeletedUser.App)])[0], false})

	tests := []struct {
		name   string
		now    time.Time
		within bool
	}{
		{name: "within the window", now: within, within: true},
		{name: "past the window", now: past},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dks := make([]DedupKey, len(keys))
			for i, k := range keys {
				dks[i] = DedupKey{App: mustApp(t, db, k.app), MessageID: []byte(k.id)}
			}
			w := db.NewWriter(tc.now)
			defer w.Close() // never committed: the check changes nothing
			dup, err := w.CheckDuplicates(dks)
			if err != nil {
				t.Fatal(err)
			}
			for i, k := range keys {
				if want := k.dup && tc.within; dup[i] != want {
					t.Errorf("app %s messageId %q at %s: duplicate %v; want %v", k.app, k.id, tc.now.Format(time.RFC3339), dup[i], want)
				}
			}

			app := mustApp(t, db, m.DeletedUser.App)
			txn, err := db.BeginProfiles(app, tc.now)
			if err != nil {
				t.Fatal(err)
			}
			defer txn.Close()
			answer, ok, err := txn.Idempotent([]byte(m.Idempotent.Key))
			if err != nil {
				t.Fatal(err)
			}
			if ok != tc.within {
				t.Fatalf("Idempotency-Key %q recorded: %v; want %v", m.Idempotent.Key, ok, tc.within)
			}
			if want := readV1Expected(t, m, m.Idempotent.AnswerFile); ok && !bytes.Equal(answer, want) {
				t.Errorf("Idempotency-Key %q answer %s; want %s", m.Idempotent.Key, answer, want)
			}
			if _, ok, _ := txn.Idempotent([]byte("never-used")); ok {
				t.Errorf("Idempotency-Key never-used is recorded; want not")
			}
		})
	}
}

// otherV1App returns the fixture's app that is not app.
func otherV1App(t *testing.T, m *v1Manifest, app string) string {
	t.Helper()
	for a := range m.ClientIDs {
		if a != app {
			return a
		}
	}
	t.Fatal("the fixture has one app; it has two")
	return ""
}

// TestUpgradeStore opens a copy of each fixture and reads it back as the
// old server exported it, then does the same after a restart (the second
// start after an upgrade), after merging its fresh groups with today's
// merger, and after one more restart.
func TestUpgradeStore(t *testing.T) {
	for _, fx := range upgradeFixtures {
		t.Run(fx.name, func(t *testing.T) { testUpgradeStore(t, fx) })
	}
}

func testUpgradeStore(t *testing.T, fx upgradeFixture) {
	m := loadV1Manifest(t, fx)
	dir := copyV1Store(t, fx)
	var wm uint64
	steps := []struct {
		name  string
		merge bool // merge every group first, as the background merger would
	}{
		{name: "first open"},
		{name: "second open"},
		{name: "merged", merge: true},
		{name: "open after merge"},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			db := openDiskDB(t, dir, v1Options())
			defer func() {
				if err := db.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}()
			if step.merge {
				n, err := db.MergeAll()
				if err != nil {
					t.Fatal(err)
				}
				if fx.fresh && n == 0 {
					t.Errorf("merged %d groups; want the fixture's fresh groups merged", n)
				}
			}
			// The old dedup namespaces are converted, whole.
			for _, ns := range []Namespace{nsDedup, nsDedupSlice} {
				if n := countKeys(t, db, []byte{byte(ns)}, []byte{byte(ns) + 1}); n != 0 {
					t.Errorf("%d keys left in the old dedup namespace %02x", n, ns)
				}
			}
			if n := countKeys(t, db, []byte{byte(nsDedupIndex)}, []byte{byte(nsDedupIndex) + 1}); n == 0 {
				t.Errorf("no dedup index bucket; want the converted entries")
			}
			// Reopening without writes moves no sequence.
			got, _ := db.Watermark()
			if wm != 0 && got != wm {
				t.Errorf("watermark %d; want %d, as at the previous open", got, wm)
			}
			wm = got
			checkV1Reads(t, db, m)
			checkV1Dedup(t, db, m)
		})
	}
}
