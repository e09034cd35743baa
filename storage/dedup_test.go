package storage

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

func TestIDFilterFalsePositives(t *testing.T) {
	const n = 100_000
	f := newIDFilter(n)
	r := rand.New(rand.NewPCG(1, 2))
	in := make([]uint64, n)
	for i := range in {
		in[i] = r.Uint64()
		f.add(in[i])
	}
	for _, fp := range in {
		if !f.has(fp) {
			t.Fatalf("the filter lost %x", fp)
		}
	}
	const probes = 1_000_000
	fpos := 0
	for range probes {
		if f.has(r.Uint64()) {
			fpos++
		}
	}
	if rate := float64(fpos) / probes; rate > 0.012 {
		t.Fatalf("false-positive rate %.4f; want at most 0.012 at %d bits per key", rate, bloomBitsPerKey)
	}
}

// collideAll makes every messageId of every app share one fingerprint for
// the rest of the test, so that only the verification against the stored
// event tells ids apart.
func collideAll(t *testing.T) {
	t.Cleanup(func() { fingerprint = xxFingerprint })
	fingerprint = func(uint32, []byte) uint64 { return 42 }
}

func TestDedupFingerprintCollisions(t *testing.T) {
	collideAll(t)
	dir := t.TempDir()
	db := openDiskDB(t, dir, Options{DedupWindow: time.Hour, Sync: true})
	a := ensureApp(t, db, "a")
	b := ensureApp(t, db, "b")
	if got, want := mustStoreOnce(t, db, testNow, append(dedupKeys(a, "x", "y", "x"), dedupKeys(b, "x")...)), []bool{false, false, true, false}; !slices.Equal(got, want) {
		t.Fatalf("first batch: got %v; want %v", got, want)
	}
	if got, want := mustStoreOnce(t, db, testNow.Add(time.Minute), append(dedupKeys(a, "z", "y"), dedupKeys(b, "x", "w")...)), []bool{false, true, true, false}; !slices.Equal(got, want) {
		t.Fatalf("second batch: got %v; want %v", got, want)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openDiskDB(t, dir, Options{DedupWindow: time.Hour, Sync: true})
	defer db.Close()
	if got, want := mustStoreOnce(t, db, testNow.Add(2*time.Minute), append(dedupKeys(a, "w", "x", "y", "z"), dedupKeys(b, "w", "v")...)), []bool{false, true, true, true, true, false}; !slices.Equal(got, want) {
		t.Fatalf("after reopening: got %v; want %v", got, want)
	}
	withSnapshot(t, db, func(s *Snapshot) {
		for app, want := range map[uint32]int{a: 4, b: 3} {
			if got := len(eventsBySeq(t, s, app, 0, ^uint64(0))); got != want {
				t.Errorf("app %d: %d events stored; want %d", app, got, want)
			}
		}
	})
}

// TestDedupWindowAcrossSlices sends one id again and again over hours of
// server time: it is a duplicate exactly while it lies inside the window,
// whichever slices that spans, and expired slices leave the store.
func TestDedupWindowAcrossSlices(t *testing.T) {
	const window = 3 * time.Hour
	db := openTestDB(t, Options{DedupWindow: window})
	if got := time.Duration(db.dedup.slice) * time.Second; got != time.Hour {
		t.Fatalf("slice is %v; want an hour for a 3h window", got)
	}
	app := ensureApp(t, db, "a")
	t0 := testNow.Truncate(time.Hour).Add(40 * time.Minute) // slices do not start at t0
	steps := []struct {
		after time.Duration
		dup   bool
	}{
		{0, false},
		{time.Minute, true},
		{time.Hour, true},
		{2*time.Hour + 30*time.Minute, true},
		{window - time.Second, true},
		{window, false}, // stored again: the window restarts here
		{window + 2*time.Hour, true},
		{2*window - time.Second, true},
		{10 * window, false},
	}
	for _, s := range steps {
		got := mustStoreOnce(t, db, t0.Add(s.after), dedupKeys(app, "m"))
		if got[0] != s.dup {
			t.Fatalf("at t0+%v: duplicate=%v; want %v", s.after, got[0], s.dup)
		}
	}
	if got := len(eventsBySeq(t, newSnapshot(t, db), app, 0, ^uint64(0))); got != 3 {
		t.Fatalf("%d copies stored; want 3", got)
	}
	// Only the last store's slice is live after expiring at its time.
	end := t0.Add(10 * window)
	if _, err := db.ExpireDedup(end); err != nil {
		t.Fatal(err)
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	first := db.dedup.firstLive(end)
	for _, ns := range []Namespace{nsDedupIndex} {
		n := countKeys(t, db, []byte{byte(ns)}, sliceStart(ns, first))
		if n != 0 {
			t.Errorf("namespace %02x: %d keys left in expired slices", ns, n)
		}
	}
	if n := countKeys(t, db, sliceStart(nsDedupIndex, first), []byte{byte(nsDedupIndex) + 1}); n != 1 {
		t.Errorf("%d buckets in live slices; want 1", n)
	}
	if st := db.DedupStats(); st.Slices != 1 || st.IDs != 1 {
		t.Errorf("filters after expiry: %+v; want one slice with one id", st)
	}
	if got := mustStoreOnce(t, db, end.Add(time.Minute), dedupKeys(app, "m")); !got[0] {
		t.Fatal("the id stored in the live slice is no longer a duplicate")
	}
}

// TestDedupConvertsOldIndex opens a store holding the old dedup index
// (0x20) and idempotency keys (0x43): what is inside the window is still a
// duplicate, the old namespaces are gone, and what had expired is dropped.
func TestDedupConvertsOldIndex(t *testing.T) {
	dir := t.TempDir()
	db := openDiskDB(t, dir, Options{DedupWindow: time.Hour, Sync: true})
	app := ensureApp(t, db, "a")
	b := db.pdb.NewBatch()
	for i := range 120_000 { // more than one conversion chunk
		id := fmt.Appendf(nil, "old-%d", i)
		b.Set(appendDedupKey(nil, app, id), appendDedupValue(nil, testNow.Add(-30*time.Minute).Unix()), nil)
	}
	b.Set(appendDedupKey(nil, app, []byte("expired")), appendDedupValue(nil, testNow.Add(-2*time.Hour).Unix()), nil)
	idem := append([]byte{valueV1}, appendUvarint(testNow.Add(-10*time.Minute).Unix())...)
	b.Set(appendIdempotencyKey(nil, app, []byte("retry-1")), append(idem, `{"accepted":1}`...), nil)
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for round := range 2 { // the second open finds nothing left to convert
		db = openDiskDB(t, dir, Options{DedupWindow: time.Hour, Sync: true})
		for _, ns := range []Namespace{nsDedup, nsIdempotent} {
			if n := countKeys(t, db, []byte{byte(ns)}, []byte{byte(ns) + 1}); n != 0 {
				t.Fatalf("round %d: %d keys left in the old namespace %02x", round, n, ns)
			}
		}
		keys := dedupKeys(app, "old-0", "old-119999", "old-77777", "expired", fmt.Sprintf("new-%d", round))
		if got, want := mustStoreOnce(t, db, testNow, keys), []bool{true, true, true, round == 1, false}; !slices.Equal(got, want) {
			t.Fatalf("round %d: got %v; want %v", round, got, want)
		}
		txn := beginProfiles(t, db, app, testNow)
		answer, ok, err := txn.Idempotent([]byte("retry-1"))
		txn.Close()
		if err != nil || !ok || string(answer) != `{"accepted":1}` {
			t.Fatalf("round %d: idempotency key: got %q, %v, %v; want the old answer", round, answer, ok, err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func appendUvarint(x int64) []byte {
	var b []byte
	for u := uint64(x); ; u >>= 7 {
		if u < 0x80 {
			return append(b, byte(u))
		}
		b = append(b, byte(u)|0x80)
	}
}

// TestDedupFilterBudget gives the filters no memory at all: every lookup
// goes to Pebble, and dedup stays exact.
func TestDedupFilterBudget(t *testing.T) {
	db := openTestDB(t, Options{DedupWindow: time.Hour, DedupFilterBytes: 1})
	app := ensureApp(t, db, "a")
	mustStoreOnce(t, db, testNow, dedupKeys(app, "a", "b"))
	if got, want := mustStoreOnce(t, db, testNow.Add(time.Second), dedupKeys(app, "b", "c", "a")), []bool{true, false, true}; !slices.Equal(got, want) {
		t.Fatalf("got %v; want %v", got, want)
	}
	if st := db.DedupStats(); st.Unfiltered == 0 || st.Bytes != 0 {
		t.Fatalf("stats %+v; want unfiltered slices and no filter memory", st)
	}
}

func TestIdempotencyKeysExpire(t *testing.T) {
	db := openTestDB(t, Options{DedupWindow: 2 * time.Hour})
	app := ensureApp(t, db, "a")
	txn := beginProfiles(t, db, app, testNow)
	txn.PutIdempotent([]byte("k"), []byte("answer"))
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	txn.Close()
	for _, tt := range []struct {
		after time.Duration
		want  bool
	}{{time.Minute, true}, {90 * time.Minute, true}, {2*time.Hour - time.Second, true}, {2 * time.Hour, false}, {48 * time.Hour, false}} {
		txn := beginProfiles(t, db, app, testNow.Add(tt.after))
		_, ok, err := txn.Idempotent([]byte("k"))
		txn.Close()
		if err != nil || ok != tt.want {
			t.Fatalf("after %v: got %v, %v; want %v", tt.after, ok, err, tt.want)
		}
	}
	if _, err := db.ExpireDedup(testNow.Add(48 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := countKeys(t, db, []byte{byte(nsIdemSlice)}, []byte{byte(nsIdemSlice) + 1}); n != 0 {
		t.Fatalf("%d idempotency keys left after the window; want 0", n)
	}
}

func TestDedupRefsRoundTrip(t *testing.T) {
	for _, refs := range [][]dedupRef{
		{{seq: 1}},
		{{seq: 1}, {seq: 1 << 40}},
		{{legacy: true, received: 1_796_076_444, id: []byte("abc")}},
		{{seq: 7}, {legacy: true, received: 5, id: []byte{}}, {seq: 9}},
	} {
		v := appendDedupRefs(nil, refs)
		got, err := decodeDedupRefs(nil, v)
		if err != nil {
			t.Fatalf("%x: %v", v, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(refs) {
			t.Fatalf("%x decodes to %v; want %v", v, got, refs)
		}
	}
}

func FuzzDecodeDedupRefs(f *testing.F) {
	f.Add(appendDedupRefs(nil, []dedupRef{{seq: 3}}))
	f.Add(appendDedupRefs(nil, []dedupRef{{seq: 3}, {legacy: true, received: 9, id: []byte("x")}}))
	f.Add([]byte{2, 1, 0xff, 0xff, 0xff, 0xff, 0x0f, 0xff})
	f.Fuzz(func(t *testing.T, v []byte) {
		refs, err := decodeDedupRefs(nil, v)
		if err != nil {
			return
		}
		again, err := decodeDedupRefs(nil, appendDedupRefs(nil, refs))
		if err != nil || fmt.Sprint(again) != fmt.Sprint(refs) {
			t.Fatalf("%x decodes to %v, which re-encodes to %v (%v)", v, refs, again, err)
		}
	})
}

// TestDedupEntriesRoundTrip appends entries as the flusher does (one bucket
// value, several operands concatenated) and reads each fingerprint's refs
// back.
func TestDedupEntriesRoundTrip(t *testing.T) {
	type entry struct {
		fp  uint64
		ref dedupRef
	}
	entries := []entry{
		{fp: 0xabcd_0000_0001, ref: dedupRef{seq: 1}},
		{fp: 0xabcd_ffff_ffff, ref: dedupRef{seq: 1 << 40}},
		{fp: 0xabcd_0000_0001, ref: dedupRef{legacy: true, received: 1_796_076_444, id: []byte("abc")}},
		{fp: 0xabcd_1234_5678, ref: dedupRef{legacy: true, received: 5, id: []byte{}}},
		{fp: 0xabcd_0000_0001, ref: dedupRef{seq: 127}},
		{fp: 0xabcd_0000_0001, ref: dedupRef{seq: 128}},
	}
	var v []byte
	for _, e := range entries {
		v = appendDedupEntry(v, e.fp, e.ref)
	}
	for _, fp := range []uint64{0xabcd_0000_0001, 0xabcd_ffff_ffff, 0xabcd_1234_5678, 0xabcd_0000_0002} {
		var want []dedupRef
		for _, e := range entries {
			if e.fp == fp {
				want = append(want, e.ref)
			}
		}
		got, err := appendBucketRefs(nil, v, fp)
		if err != nil {
			t.Fatalf("%x: %v", v, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("refs of %x: %v; want %v", fp, got, want)
		}
	}
	// Cut anywhere but between entries, a value is corrupt, never misread.
	ends := map[int]bool{0: true}
	n := 0
	for _, e := range entries {
		n = len(appendDedupEntry(v[:0:0], e.fp, e.ref)) + n
		ends[n] = true
	}
	for cut := range len(v) {
		if _, err := appendBucketRefs(nil, v[:cut], 1); (err == nil) != ends[cut] {
			t.Errorf("value cut at %d of %d: error %v", cut, len(v), err)
		}
	}
}

// FuzzDedupEntries checks that any bucket value either reads as entries that
// re-encode to the same bytes, or is an error.
func FuzzDedupEntries(f *testing.F) {
	f.Add(appendDedupEntry(nil, 3, dedupRef{seq: 3}))
	f.Add(appendDedupEntry(appendDedupEntry(nil, 1, dedupRef{seq: 300}), 9, dedupRef{legacy: true, received: 9, id: []byte("x")}))
	f.Add([]byte{0, 0, 0, 1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 0xff})
	f.Fuzz(func(t *testing.T, v []byte) {
		e := dedupEntries{r: byteReader{b: v}}
		var again []byte
		for low, r, ok := e.next(); ok; low, r, ok = e.next() {
			again = appendDedupEntry(again, uint64(low), r)
		}
		if e.err() != nil {
			return
		}
		// uvarints decode from non-minimal forms no encoder writes:
		// compare what the re-encoding reads as.
		e2 := dedupEntries{r: byteReader{b: again}}
		e1 := dedupEntries{r: byteReader{b: v}}
		for {
			l1, r1, ok1 := e1.next()
			l2, r2, ok2 := e2.next()
			if ok1 != ok2 || l1 != l2 || fmt.Sprint(r1) != fmt.Sprint(r2) {
				t.Fatalf("%x reads as (%x, %v, %v), its re-encoding %x as (%x, %v, %v)", v, l1, r1, ok1, again, l2, r2, ok2)
			}
			if !ok1 {
				break
			}
		}
		if e2.err() != nil {
			t.Fatalf("%x re-encodes to %x, which is corrupt", v, again)
		}
	})
}

// TestDedupKeepsPurgedIDs deletes a user whose events carried client ids:
// once purged, their events are gone, and a late retry of one of them is
// still a duplicate, not a way back in.
func TestDedupKeepsPurgedIDs(t *testing.T) {
	db := openTestDB(t, Options{DedupWindow: time.Hour, ColumnarBlocks: true})
	app := ensureApp(t, db, "a")
	store := func(now time.Time, users []string, ids ...string) []bool {
		t.Helper()
		w := db.NewWriter(now)
		defer w.Close()
		keys := dedupKeys(app, ids...)
		dup, err := w.CheckDuplicates(keys)
		if err != nil {
			t.Fatal(err)
		}
		first, err := w.Alloc(len(keys))
		if err != nil {
			t.Fatal(err)
		}
		for i := range keys {
			if !dup[i] {
				body := fmt.Appendf(nil, `{"userId":%q,"messageId":%q,"receivedAt":%q}`, users[i], ids[i], now.UTC().Format(time.RFC3339Nano))
				w.AddKeyedEvent(i, first+uint64(i), 1000, body)
			}
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		return dup
	}
	store(testNow, []string{"alice", "bob", "alice"}, "a1", "b1", "a2")
	mergeEverything(t, db)
	txn := beginProfiles(t, db, app, testNow)
	txn.Forget([]byte("alice"), false)
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	txn.Close()
	if _, err := db.PurgeForgotten(); err != nil {
		t.Fatal(err)
	}
	if users, events := db.PurgedTotals(); users != 1 || events != 2 {
		t.Fatalf("purged %d users, %d events; want 1, 2", users, events)
	}
	got := store(testNow.Add(time.Minute), []string{"alice", "alice", "bob", "carol"}, "a2", "a1", "b1", "c1")
	if want := []bool{true, true, true, false}; !slices.Equal(got, want) {
		t.Fatalf("after the purge: got %v; want %v", got, want)
	}
	if got := store(testNow.Add(time.Hour+time.Minute), []string{"alice"}, "a1"); got[0] {
		t.Fatal("a purged id is still a duplicate after the window")
	}
}

// TestDedupRecoversPendingEntries cuts the power while the index entries
// of synced commits are still pending (or in an unsynced flush): the next
// Open rebuilds them from the stored events, so every id is still a
// duplicate, and a generated id is never indexed.
func TestDedupRecoversPendingEntries(t *testing.T) {
	fs := NewCrashableMemFS()
	opts := Options{DedupWindow: time.Hour, Sync: true, MemFS: fs, Now: func() time.Time { return testNow }}
	db, err := Open("store", opts)
	if err != nil {
		t.Fatal(err)
	}
	app := ensureApp(t, db, "a")
	mustStoreOnce(t, db, testNow, dedupKeys(app, "a", "b"))
	if err := db.flushDedup(); err != nil { // a and b reach Pebble, unsynced
		t.Fatal(err)
	}
	mustStoreOnce(t, db, testNow, dedupKeys(app, "c", "d")) // pending only
	// An event stored without a client id, as ingest stores it.
	w := db.NewWriter(testNow)
	first, err := w.Alloc(1)
	if err != nil {
		t.Fatal(err)
	}
	w.AddEvent(app, first, 1000, storedBody(fmt.Appendf(nil, "trv-%016x", first), testNow))
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	for _, unsynced := range []int{0, 100} {
		crashed := fs.CrashClone(1, unsynced)
		db2, err := Open("store", Options{DedupWindow: time.Hour, Sync: true, MemFS: crashed, Now: opts.Now})
		if err != nil {
			t.Fatal(err)
		}
		got := mustStoreOnce(t, db2, testNow.Add(time.Minute), dedupKeys(app, "a", "b", "c", "d", "e", fmt.Sprintf("trv-%016x", first)))
		if want := []bool{true, true, true, true, false, false}; !slices.Equal(got, want) {
			t.Errorf("after a crash keeping %d%% of unsynced writes: got %v; want %v", unsynced, got, want)
		}
		db2.Close()
	}
	db.Close()
}

// TestDedupVerifiesEscapedIDs checks ids that the stored JSON escapes
// against merged (columnar) and fresh blocks, every fingerprint colliding
// so that only the stored event tells them apart.
func TestDedupVerifiesEscapedIDs(t *testing.T) {
	collideAll(t)
	db := openTestDB(t, Options{DedupWindow: time.Hour, ColumnarBlocks: true})
	app := ensureApp(t, db, "a")
	ids := []string{`quote"d`, `back\slash`, "tab\tbed", "ünï"}
	mustStoreOnce(t, db, testNow, dedupKeys(app, ids[:2]...))
	mustStoreOnce(t, db, testNow, dedupKeys(app, ids[2:]...))
	mergeEverything(t, db)
	mustStoreOnce(t, db, testNow, dedupKeys(app, "fresh"))
	got := mustStoreOnce(t, db, testNow.Add(time.Minute), dedupKeys(app, append(ids, "fresh", `quote\"d`, "new")...))
	if want := []bool{true, true, true, true, true, false, false}; !slices.Equal(got, want) {
		t.Fatalf("got %v; want %v", got, want)
	}
}
