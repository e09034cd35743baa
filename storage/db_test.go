package storage

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"trove/internal/testutil"
)

// testNow is the server time the tests write at.
var testNow = time.Unix(1_796_076_444, 0)

// openTestDB opens an in-memory DB that is closed when the test ends.
func openTestDB(t testing.TB, opts Options) *DB {
	t.Helper()
	opts.InMemory = true
	if opts.Now == nil {
		opts.Now = func() time.Time { return testNow }
	}
	db, err := Open("", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// openDiskDB opens the DB in dir; the caller closes it.
func openDiskDB(t testing.TB, dir string, opts Options) *DB {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return testNow }
	}
	db, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func ensureApp(t testing.TB, db *DB, appKey string) uint32 {
	t.Helper()
	id, err := db.EnsureApp(appKey)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// event is one stored event as a reader sees it.
type event struct {
	seq  uint64
	time int64
	body string
}

func (e event) String() string { return fmt.Sprintf("{%d %d %s}", e.seq, e.time, e.body) }

// newEvent is an event to write.
type newEvent struct {
	app  uint32
	time int64
	body string
}

// commitEvents writes evs in one Writer, giving them consecutive sequences
// in order, and returns what was stored.
func commitEvents(t testing.TB, db *DB, evs ...newEvent) []event {
	t.Helper()
	w := db.NewWriter(testNow)
	defer w.Close()
	first, err := w.Alloc(len(evs))
	if err != nil {
		t.Fatal(err)
	}
	stored := make([]event, len(evs))
	for i, e := range evs {
		w.AddEvent(e.app, first+uint64(i), e.time, []byte(e.body))
		stored[i] = event{seq: first + uint64(i), time: e.time, body: e.body}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	return stored
}

func newSnapshot(t testing.TB, db *DB) *Snapshot {
	t.Helper()
	s, err := db.NewSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// withSnapshot calls fn with a snapshot that is closed when fn returns, for
// tests that close the DB before they end.
func withSnapshot(t testing.TB, db *DB, fn func(s *Snapshot)) {
	t.Helper()
	s, err := db.NewSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fn(s)
}

func eventsBySeq(t testing.TB, s *Snapshot, app uint32, since, until uint64) []event {
	t.Helper()
	var got []event
	err := s.EventsBySeq(app, since, until, func(seq uint64, tm int64, body []byte) error {
		got = append(got, event{seq: seq, time: tm, body: string(body)})
		return nil
	})
	if err != nil {
		t.Fatalf("EventsBySeq(%d, %d, %d): %v", app, since, until, err)
	}
	return got
}

func eventsByTime(t testing.TB, s *Snapshot, app uint32, from, to int64) []event {
	t.Helper()
	var got []event
	err := s.EventsByTime(app, from, to, func(seq uint64, tm int64, body []byte) error {
		got = append(got, event{seq: seq, time: tm, body: string(body)})
		return nil
	})
	if err != nil {
		t.Fatalf("EventsByTime(%d, %d, %d): %v", app, from, to, err)
	}
	return got
}

// filterEvents returns the events of evs that keep accepts, in seq order or,
// if byTime, in (time, seq) order.
func filterEvents(evs []event, byTime bool, keep func(event) bool) []event {
	var out []event
	for _, e := range evs {
		if keep(e) {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b event) int {
		if byTime {
			return cmp.Or(cmp.Compare(a.time, b.time), cmp.Compare(a.seq, b.seq))
		}
		return cmp.Compare(a.seq, b.seq)
	})
	return out
}

func checkEvents(t testing.TB, what string, got, want []event) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s:\ngot  %v\nwant %v", what, got, want)
	}
}

// storeTwoApps writes four commits across two apps and several days and
// returns app 1's and app 2's stored events.
func storeTwoApps(t *testing.T, db *DB) (app1, app2 uint32, evs1, evs2 []event) {
	app1, app2 = ensureApp(t, db, "a"), ensureApp(t, db, "b")
	d := int64(20250) * dayUs
	split := func(stored []event, evs []newEvent) {
		for i, e := range evs {
			if e.app == app1 {
				evs1 = append(evs1, stored[i])
			} else {
				evs2 = append(evs2, stored[i])
			}
		}
	}
	for _, c := range [][]newEvent{
		// Out of time order within a commit, across two days.
		{{app1, d + 500, `{"n":1}`}, {app1, d + 100, `{"n":2}`}, {app1, d + dayUs + 7, `{"n":3}`}},
		{{app2, d + 100, `{"n":4}`}, {app2, d + 200, `{"n":5}`}},
		// Both apps; a tie in time with commit 1; before the epoch.
		{{app2, d, `{"n":6}`}, {app1, d + 100, `{"n":7}`}, {app1, -1, `{"n":8}`}, {app1, d + 100, `{"n":9}`}},
		{{app1, d + 2*dayUs, "\x00\xff not JSON"}},
		{{app1, d + dayUs - 1, `{"n":11}`}, {app1, d + dayUs, `{"n":12}`}, {app1, -dayUs, `{"n":13}`}},
	} {
		split(commitEvents(t, db, c...), c)
	}
	return app1, app2, evs1, evs2
}

func TestEventsBySeq(t *testing.T) {
	db := openTestDB(t, Options{})
	app1, app2, evs1, evs2 := storeTwoApps(t, db)
	s := newSnapshot(t, db)
	wm := s.Watermark()
	if want := evs1[len(evs1)-1].seq; wm != want {
		t.Fatalf("got watermark %d; want %d", wm, want)
	}
	checkEvents(t, "app 1", eventsBySeq(t, s, app1, 0, math.MaxUint64), evs1)
	checkEvents(t, "app 2", eventsBySeq(t, s, app2, 0, math.MaxUint64), evs2)
	checkEvents(t, "unknown app", eventsBySeq(t, s, 99, 0, math.MaxUint64), nil)

	seqIn := func(since, until uint64) func(event) bool {
		return func(e event) bool { return e.seq > since && e.seq <= until }
	}
	tests := []struct {
		name         string
		since, until uint64
	}{
		{name: "everything", since: 0, until: math.MaxUint64},
		{name: "since inside a group", since: evs1[0].seq, until: math.MaxUint64},
		{name: "since at a group's end", since: evs1[2].seq, until: math.MaxUint64},
		{name: "since in another app's group", since: evs2[0].seq, until: math.MaxUint64},
		{name: "until inside a group", since: 0, until: evs1[4].seq},
		{name: "one event", since: evs1[3].seq - 1, until: evs1[3].seq},
		{name: "empty range", since: evs1[3].seq, until: evs1[3].seq},
		{name: "reversed range", since: evs1[4].seq, until: evs1[3].seq},
		{name: "since at the watermark", since: wm, until: math.MaxUint64},
		{name: "since past the watermark", since: wm + 10, until: math.MaxUint64},
		{name: "since max", since: math.MaxUint64, until: math.MaxUint64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkEvents(t, "app 1", eventsBySeq(t, s, app1, tt.since, tt.until), filterEvents(evs1, false, seqIn(tt.since, tt.until)))
		})
	}
	t.Run("every range", func(t *testing.T) {
		for since := range wm + 2 {
			for until := since; until <= wm+2; until++ {
				want := filterEvents(evs1, false, seqIn(since, until))
				checkEvents(t, fmt.Sprintf("(%d, %d]", since, until), eventsBySeq(t, s, app1, since, until), want)
			}
		}
	})
	t.Run("fn error stops the scan", func(t *testing.T) {
		errStop := errors.New("stop")
		n := 0
		err := s.EventsBySeq(app1, 0, math.MaxUint64, func(uint64, int64, []byte) error {
			n++
			if n == 4 {
				return errStop
			}
			return nil
		})
		if !errors.Is(err, errStop) || n != 4 {
			t.Fatalf("got %v after %d events; want errStop after 4", err, n)
		}
	})
}

func TestEventsByTime(t *testing.T) {
	// The default budget holds a day whole; a budget of one byte cuts every
	// day into as many windows as it has buckets with events, and one of
	// 64 bytes into windows of a few events each, so that blocks straddle
	// window edges.
	for _, budget := range []int{0, 1, 64} {
		t.Run(fmt.Sprintf("budget=%d", budget), func(t *testing.T) {
			testEventsByTime(t, Options{ReadBudget: budget})
		})
	}
}

func testEventsByTime(t *testing.T, opts Options) {
	db := openTestDB(t, opts)
	app1, app2, evs1, evs2 := storeTwoApps(t, db)
	s := newSnapshot(t, db)
	d := int64(20250) * dayUs

	checkEvents(t, "app 1", eventsByTime(t, s, app1, math.MinInt64, math.MaxInt64), filterEvents(evs1, true, func(event) bool { return true }))
	checkEvents(t, "app 2", eventsByTime(t, s, app2, math.MinInt64, math.MaxInt64), filterEvents(evs2, true, func(event) bool { return true }))

	timeIn := func(from, to int64) func(event) bool {
		return func(e event) bool { return e.time >= from && e.time < to }
	}
	tests := []struct {
		name     string
		from, to int64
	}{
		{name: "everything", from: math.MinInt64, to: math.MaxInt64},
		{name: "one day", from: d, to: d + dayUs},
		{name: "ties in time", from: d + 100, to: d + 101},
		{name: "from is inclusive", from: d + 500, to: d + dayUs},
		{name: "to is exclusive", from: d, to: d + 500},
		{name: "across a day boundary", from: d + dayUs - 1, to: d + dayUs + 1},
		{name: "before the epoch", from: math.MinInt64, to: 0},
		{name: "the day before the epoch", from: -dayUs, to: 0},
		{name: "empty", from: d + 100, to: d + 100},
		{name: "reversed", from: d + dayUs, to: d},
		{name: "no events", from: d + 3*dayUs, to: d + 30*dayUs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkEvents(t, "app 1", eventsByTime(t, s, app1, tt.from, tt.to), filterEvents(evs1, true, timeIn(tt.from, tt.to)))
		})
	}
	t.Run("every range", func(t *testing.T) {
		// Every event's time and its neighbours, and every day boundary.
		var points []int64
		for _, e := range append(slices.Clone(evs1), evs2...) {
			points = append(points, e.time-1, e.time, e.time+1, int64(DayOf(e.time))*dayUs, int64(DayOf(e.time)+1)*dayUs)
		}
		slices.Sort(points)
		points = slices.Compact(points)
		for _, from := range points {
			for _, to := range points {
				want := filterEvents(evs1, true, timeIn(from, to))
				checkEvents(t, fmt.Sprintf("[%d, %d)", from, to), eventsByTime(t, s, app1, from, to), want)
			}
		}
	})
}

func TestWatermarkOutOfOrderCommits(t *testing.T) {
	db := openTestDB(t, Options{})
	app := ensureApp(t, db, "a")
	wmStart, moved := db.Watermark()

	wA := db.NewWriter(testNow)
	defer wA.Close()
	firstA, err := wA.Alloc(2)
	if err != nil {
		t.Fatal(err)
	}
	wB := db.NewWriter(testNow)
	defer wB.Close()
	firstB, err := wB.Alloc(3)
	if err != nil {
		t.Fatal(err)
	}
	if firstA != wmStart+1 || firstB != firstA+2 {
		t.Fatalf("got ranges from %d and %d after watermark %d; want consecutive ranges", firstA, firstB, wmStart)
	}
	wA.AddEvent(app, firstA, 1000, []byte("a0"))
	wA.AddEvent(app, firstA+1, 3000, []byte("a1"))
	wB.AddEvent(app, firstB, 2000, []byte("b0"))
	wB.AddEvent(app, firstB+1, 500, []byte("b1"))
	wB.AddRejected(app, firstB+2, []byte(`{"bad":true}`))

	// B commits first: the watermark must not pass A's range.
	if err := wB.Commit(); err != nil {
		t.Fatal(err)
	}
	wB.Close()
	if wm, _ := db.Watermark(); wm != wmStart {
		t.Fatalf("after B committed: got watermark %d; want %d (A, from %d, is not done)", wm, wmStart, firstA)
	}
	select {
	case <-moved:
		t.Fatal("the watermark channel closed, but the watermark did not move")
	default:
	}
	before := newSnapshot(t, db)
	checkBefore := func() {
		t.Helper()
		if before.Watermark() != wmStart {
			t.Fatalf("got snapshot watermark %d; want %d", before.Watermark(), wmStart)
		}
		checkEvents(t, "EventsBySeq before A", eventsBySeq(t, before, app, 0, math.MaxUint64), nil)
		checkEvents(t, "EventsByTime before A", eventsByTime(t, before, app, math.MinInt64, math.MaxInt64), nil)
		checkRejected(t, before, app, 0, nil)
	}
	checkBefore()

	if err := wA.Commit(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-moved:
	default:
		t.Fatal("the watermark moved, but its channel did not close")
	}
	if wm, _ := db.Watermark(); wm != firstB+2 {
		t.Fatalf("after A committed: got watermark %d; want %d", wm, firstB+2)
	}
	after := newSnapshot(t, db)
	checkEvents(t, "EventsBySeq after A", eventsBySeq(t, after, app, 0, math.MaxUint64),
		[]event{{firstA, 1000, "a0"}, {firstA + 1, 3000, "a1"}, {firstB, 2000, "b0"}, {firstB + 1, 500, "b1"}})
	checkEvents(t, "EventsByTime after A", eventsByTime(t, after, app, math.MinInt64, math.MaxInt64),
		[]event{{firstB + 1, 500, "b1"}, {firstA, 1000, "a0"}, {firstB, 2000, "b0"}, {firstA + 1, 3000, "a1"}})
	checkRejected(t, after, app, 0, []rejected{{firstB + 2, `{"bad":true}`}})
	// The earlier snapshot still shows the earlier state.
	checkBefore()
}

func TestWatermarkPassesHoles(t *testing.T) {
	db := openTestDB(t, Options{})
	app := ensureApp(t, db, "a")
	wm0, _ := db.Watermark()
	alloc := func(n int) (*Writer, uint64) {
		w := db.NewWriter(testNow)
		first, err := w.Alloc(n)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			w.AddEvent(app, first+uint64(i), int64(i), fmt.Appendf(nil, "%d", first+uint64(i)))
		}
		return w, first
	}
	checkWatermark := func(what string, want uint64) {
		t.Helper()
		if wm, _ := db.Watermark(); wm != want {
			t.Fatalf("%s: got watermark %d; want %d", what, wm, want)
		}
	}
	wA, firstA := alloc(2)
	wB, firstB := alloc(2)
	wC, firstC := alloc(1)
	if err := wB.Commit(); err != nil {
		t.Fatal(err)
	}
	wB.Close()
	checkWatermark("after B", wm0)

	// A is closed without committing: its range becomes an empty hole.
	wA.Close()
	checkWatermark("after A closed", firstB+1)
	withSnapshot(t, db, func(s *Snapshot) {
		checkEvents(t, "after A closed", eventsBySeq(t, s, app, 0, math.MaxUint64), []event{{firstB, 0, fmt.Sprint(firstB)}, {firstB + 1, 1, fmt.Sprint(firstB + 1)}})
	})
	if firstA+2 != firstB {
		t.Fatalf("BUG: ranges %d and %d are not adjacent", firstA, firstB)
	}

	// C's commit fails: its range is a hole too.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := wC.Commit(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Commit on a closed DB: got %v; want ErrClosed", err)
	}
	checkWatermark("after C failed", firstB+1)
	wC.Close()
	checkWatermark("after C closed", firstC)
}

type rejected struct {
	seq  uint64
	line string
}

func checkRejected(t testing.TB, s *Snapshot, app uint32, since uint64, want []rejected) {
	t.Helper()
	var got []rejected
	err := s.Rejected(app, since, func(seq uint64, line []byte) error {
		got = append(got, rejected{seq, string(line)})
		return nil
	})
	if err != nil {
		t.Fatalf("Rejected(%d, %d): %v", app, since, err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Rejected(%d, %d):\ngot  %v\nwant %v", app, since, got, want)
	}
}

func TestRejected(t *testing.T) {
	db := openTestDB(t, Options{})
	app1, app2 := ensureApp(t, db, "a"), ensureApp(t, db, "b")

	w := db.NewWriter(testNow)
	f1, err := w.Alloc(4)
	if err != nil {
		t.Fatal(err)
	}
	w.AddEvent(app1, f1, 5, []byte("ok"))
	// Added out of order; read back in seq order.
	w.AddRejected(app1, f1+3, []byte(`{"line":4}`))
	w.AddRejected(app1, f1+1, []byte(`{"line":2}`))
	w.AddRejected(app2, f1+2, []byte(`{"line":3}`))
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	w.Close()

	w = db.NewWriter(testNow)
	f2, err := w.Alloc(1)
	if err != nil {
		t.Fatal(err)
	}
	line := []byte("not json at all")
	w.AddRejected(app1, f2, line)
	line[0] = 'X' // AddRejected copies.
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	w.Close()

	// Not committed yet, so not visible.
	open := db.NewWriter(testNow)
	defer open.Close()
	f3, err := open.Alloc(1)
	if err != nil {
		t.Fatal(err)
	}
	open.AddRejected(app1, f3, []byte("pending"))

	s := newSnapshot(t, db)
	all1 := []rejected{{f1 + 1, `{"line":2}`}, {f1 + 3, `{"line":4}`}, {f2, "not json at all"}}
	tests := []struct {
		name  string
		app   uint32
		since uint64
		want  []rejected
	}{
		{name: "app 1", app: app1, since: 0, want: all1},
		{name: "app 2", app: app2, since: 0, want: []rejected{{f1 + 2, `{"line":3}`}}},
		{name: "since", app: app1, since: f1 + 1, want: all1[1:]},
		{name: "since the last", app: app1, since: f2, want: nil},
		{name: "since max", app: app1, since: math.MaxUint64, want: nil},
		{name: "unknown app", app: 77, since: 0, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkRejected(t, s, tt.app, tt.since, tt.want)
		})
	}
}

func dedupKeys(app uint32, ids ...string) []DedupKey {
	keys := make([]DedupKey, len(ids))
	for i, id := range ids {
		keys[i] = DedupKey{App: app, MessageID: []byte(id)}
	}
	return keys
}

// storeOnce writes the ids of keys that are not duplicates as events, one
// Writer at now, and returns the duplicate flags.
func storeOnce(db *DB, now time.Time, keys []DedupKey) ([]bool, error) {
	w := db.NewWriter(now)
	defer w.Close()
	dup, err := w.CheckDuplicates(keys)
	if err != nil {
		return nil, err
	}
	n := 0
	for _, d := range dup {
		if !d {
			n++
		}
	}
	first, err := w.Alloc(n)
	if err != nil {
		return nil, err
	}
	seq := first
	for i, k := range keys {
		if !dup[i] {
			w.AddKeyedEvent(i, seq, 1000, storedBody(k.MessageID, now))
			seq++
		}
	}
	return dup, w.Commit()
}

// storedBody returns a stored event body carrying messageID, received at
// now, as dedup verification reads it.
func storedBody(messageID []byte, now time.Time) []byte {
	return fmt.Appendf(nil, `{"messageId":%q,"receivedAt":%q}`, messageID, now.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
}

func mustStoreOnce(t testing.TB, db *DB, now time.Time, keys []DedupKey) []bool {
	t.Helper()
	dup, err := storeOnce(db, now, keys)
	if err != nil {
		t.Fatal(err)
	}
	return dup
}

func TestCheckDuplicates(t *testing.T) {
	t.Run("within a batch", func(t *testing.T) {
		db := openTestDB(t, Options{DedupWindow: time.Hour})
		keys := append(dedupKeys(1, "a", "b", "a", "c", "b", "b"), dedupKeys(2, "a")...)
		got := mustStoreOnce(t, db, testNow, keys)
		if want := []bool{false, false, true, false, true, true, false}; !slices.Equal(got, want) {
			t.Fatalf("got %v; want %v", got, want)
		}
	})
	t.Run("across writers", func(t *testing.T) {
		db := openTestDB(t, Options{DedupWindow: time.Hour})
		mustStoreOnce(t, db, testNow, dedupKeys(1, "x", "y"))
		got := mustStoreOnce(t, db, testNow, append(dedupKeys(1, "y", "z", "x"), dedupKeys(2, "x")...))
		if want := []bool{true, false, true, false}; !slices.Equal(got, want) {
			t.Fatalf("got %v; want %v", got, want)
		}
	})
	t.Run("writer closed without commit", func(t *testing.T) {
		db := openTestDB(t, Options{DedupWindow: time.Hour})
		w := db.NewWriter(testNow)
		if dup, err := w.CheckDuplicates(dedupKeys(1, "q")); err != nil || dup[0] {
			t.Fatalf("got %v, %v; want [false]", dup, err)
		}
		w.Close()
		if got := mustStoreOnce(t, db, testNow, dedupKeys(1, "q")); got[0] {
			t.Fatal("an uncommitted messageId counts as stored")
		}
	})
	t.Run("waits for the writer holding the key", func(t *testing.T) {
		db := openTestDB(t, Options{DedupWindow: time.Hour})
		w := db.NewWriter(testNow)
		defer w.Close()
		if dup, err := w.CheckDuplicates(dedupKeys(1, "r")); err != nil || dup[0] {
			t.Fatalf("got %v, %v; want [false]", dup, err)
		}
		result := make(chan []bool)
		go func() {
			dup, err := storeOnce(db, testNow, dedupKeys(1, "r"))
			if err != nil {
				dup = nil
			}
			result <- dup
		}()
		first, err := w.Alloc(1)
		if err != nil {
			t.Fatal(err)
		}
		w.AddKeyedEvent(0, first, 1000, storedBody([]byte("r"), testNow))
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		w.Close()
		if got := <-result; !slices.Equal(got, []bool{true}) {
			t.Fatalf("the second writer got %v; want [true]", got)
		}
	})
	t.Run("window", func(t *testing.T) {
		db := openTestDB(t, Options{DedupWindow: time.Minute})
		keys := dedupKeys(1, "m")
		mustStoreOnce(t, db, testNow, keys)
		tests := []struct {
			name  string
			after time.Duration
			want  bool
		}{
			{name: "inside the window", after: 30 * time.Second, want: true},
			{name: "just inside", after: 59 * time.Second, want: true},
			{name: "at the window's end", after: time.Minute, want: false},
			// Storing it again above restarted the window.
			{name: "inside the new window", after: time.Minute + 30*time.Second, want: true},
			{name: "far in the future", after: 365 * 24 * time.Hour, want: false},
		}
		for _, tt := range tests {
			if got := mustStoreOnce(t, db, testNow.Add(tt.after), keys); got[0] != tt.want {
				t.Fatalf("%s: got duplicate=%v; want %v", tt.name, got[0], tt.want)
			}
		}
	})
	t.Run("no window means forever", func(t *testing.T) {
		db := openTestDB(t, Options{})
		mustStoreOnce(t, db, testNow, dedupKeys(1, "f"))
		if got := mustStoreOnce(t, db, testNow.Add(100*365*24*time.Hour), dedupKeys(1, "f")); !got[0] {
			t.Fatal("got not a duplicate; want a duplicate")
		}
	})
	t.Run("survives reopen", func(t *testing.T) {
		dir := t.TempDir()
		db := openDiskDB(t, dir, Options{DedupWindow: time.Hour, Sync: true})
		app := ensureApp(t, db, "a")
		mustStoreOnce(t, db, testNow, dedupKeys(app, "p1", "p2"))
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		db = openDiskDB(t, dir, Options{DedupWindow: time.Hour, Sync: true})
		defer db.Close()
		got := mustStoreOnce(t, db, testNow.Add(time.Minute), dedupKeys(app, "p2", "p3", "p1"))
		if want := []bool{true, false, true}; !slices.Equal(got, want) {
			t.Fatalf("got %v; want %v", got, want)
		}
	})
}

// TestConcurrentDuplicates stores the same 200 messageIds from 8 goroutines
// at once, each in its own order and batch sizes: each must be stored once.
func TestConcurrentDuplicates(t *testing.T) {
	const goroutines, ids = 8, 200
	db := openTestDB(t, Options{DedupWindow: time.Hour})
	app := ensureApp(t, db, "a")
	testutil.Concurrently(t, goroutines, func(g int) error {
		r := rand.New(rand.NewPCG(uint64(g), 42))
		perm := r.Perm(ids)
		for len(perm) > 0 {
			n := min(len(perm), 1+r.IntN(40))
			var keys []DedupKey
			for _, id := range perm[:n] {
				keys = append(keys, dedupKeys(app, fmt.Sprintf("id-%03d", id))...)
			}
			// Some batches repeat an id.
			if r.IntN(4) == 0 {
				keys = append(keys, keys[0])
			}
			perm = perm[n:]
			if _, err := storeOnce(db, testNow, keys); err != nil {
				return err
			}
		}
		return nil
	})
	count := map[string]int{}
	for _, e := range eventsBySeq(t, newSnapshot(t, db), app, 0, math.MaxUint64) {
		count[e.body]++
	}
	if len(count) != ids {
		t.Errorf("got %d distinct ids stored; want %d", len(count), ids)
	}
	for id, n := range count {
		if n != 1 {
			t.Errorf("id %s stored %d times; want once", id, n)
		}
	}
}

func TestSequenceLeaseSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	var maxOld uint64
	var stored []event
	for round := range 3 {
		db := openDiskDB(t, dir, Options{})
		app := ensureApp(t, db, "a")
		if wm, _ := db.Watermark(); wm < maxOld {
			t.Fatalf("round %d: got watermark %d; want at least %d", round, wm, maxOld)
		}
		// Everything from earlier rounds is still there.
		withSnapshot(t, db, func(s *Snapshot) {
			checkEvents(t, fmt.Sprintf("round %d", round), eventsBySeq(t, s, app, 0, math.MaxUint64), stored)
		})

		evs := commitEvents(t, db, newEvent{app, 1, "x"}, newEvent{app, 2, "y"})
		if evs[0].seq <= maxOld {
			t.Fatalf("round %d: got sequence %d; want more than %d, the largest before the restart", round, evs[0].seq, maxOld)
		}
		stored = append(stored, evs...)
		// A range larger than a lease step, allocated and abandoned.
		w := db.NewWriter(testNow)
		first, err := w.Alloc(leaseStep + 10)
		if err != nil {
			t.Fatal(err)
		}
		w.Close()
		maxOld = first + leaseStep + 9
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAppsAndMetaSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	db := openDiskDB(t, dir, Options{})
	a, b := ensureApp(t, db, "a"), ensureApp(t, db, "b")
	if a == b || a == 0 || b == 0 {
		t.Fatalf("got app ids %d and %d; want distinct non-zero ids", a, b)
	}
	if again := ensureApp(t, db, "a"); again != a {
		t.Fatalf("EnsureApp again: got %d; want %d", again, a)
	}
	if _, err := db.App("nope"); !errors.Is(err, ErrUnknownApp) {
		t.Fatalf("App of an unknown key: got %v; want ErrUnknownApp", err)
	}
	if v, err := db.GetMeta("m"); v != nil || err != nil {
		t.Fatalf("GetMeta of a missing name: got %q, %v; want nil, nil", v, err)
	}
	if err := db.SetMeta("m", []byte("value")); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openDiskDB(t, dir, Options{})
	defer db.Close()
	if id, err := db.App("b"); err != nil || id != b {
		t.Fatalf("App after reopen: got %d, %v; want %d", id, err, b)
	}
	if c := ensureApp(t, db, "c"); c == a || c == b {
		t.Fatalf("new app after reopen got a used id %d", c)
	}
	if v, err := db.GetMeta("m"); string(v) != "value" || err != nil {
		t.Fatalf("GetMeta after reopen: got %q, %v; want \"value\"", v, err)
	}
}

func TestClose(t *testing.T) {
	db := openTestDB(t, Options{})
	w := db.NewWriter(testNow)
	if err := db.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := db.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: got %v; want ErrClosed", err)
	}
	if _, err := db.NewSnapshot(); !errors.Is(err, ErrClosed) {
		t.Errorf("NewSnapshot: got %v; want ErrClosed", err)
	}
	if _, err := w.CheckDuplicates(dedupKeys(1, "a")); !errors.Is(err, ErrClosed) {
		t.Errorf("CheckDuplicates: got %v; want ErrClosed", err)
	}
	if _, err := w.Alloc(1); !errors.Is(err, ErrClosed) {
		t.Errorf("Alloc: got %v; want ErrClosed", err)
	}
	if err := w.Commit(); !errors.Is(err, ErrClosed) {
		t.Errorf("Commit: got %v; want ErrClosed", err)
	}
	w.Close()
	// Every other write, and the reads that go to Pebble, refuse too:
	// none may reach a closed Pebble, which panics.
	if _, err := db.EnsureApp("new-app"); !errors.Is(err, ErrClosed) {
		t.Errorf("EnsureApp: got %v; want ErrClosed", err)
	}
	if err := db.SetMeta("m", []byte("v")); !errors.Is(err, ErrClosed) {
		t.Errorf("SetMeta: got %v; want ErrClosed", err)
	}
	if _, err := db.GetMeta("m"); !errors.Is(err, ErrClosed) {
		t.Errorf("GetMeta: got %v; want ErrClosed", err)
	}
	if err := db.PutApp(AppRecord{AppKey: "new-app", Name: "n"}); !errors.Is(err, ErrClosed) {
		t.Errorf("PutApp: got %v; want ErrClosed", err)
	}
	if _, err := db.AppRecords(); !errors.Is(err, ErrClosed) {
		t.Errorf("AppRecords: got %v; want ErrClosed", err)
	}
	if _, err := db.BeginProfiles(1, testNow); !errors.Is(err, ErrClosed) {
		t.Errorf("BeginProfiles: got %v; want ErrClosed", err)
	}
}

// TestCloseWaitsForWrites: writes that passed their check that the store
// is open while Close begins (held in CommitHook, as a slow fsync would
// hold them) finish and are durable; Close waits for them, and what starts
// meanwhile is refused with ErrClosed, never a panic of a closed Pebble.
func TestCloseWaitsForWrites(t *testing.T) {
	dir := t.TempDir()
	var hold atomic.Bool
	entered := make(chan struct{}, 16)
	release := make(chan struct{})
	opts := Options{DedupWindow: time.Hour, Now: func() time.Time { return testNow }, CommitHook: func() {
		if hold.Load() {
			entered <- struct{}{}
			<-release
		}
	}}
	db := openDiskDB(t, dir, opts)
	app := ensureApp(t, db, "a")
	hold.Store(true)

	const writers = 4
	errs := make(chan error, writers+1)
	for i := range writers {
		go func() {
			_, err := storeOnce(db, testNow, dedupKeys(app, fmt.Sprintf("id-%d", i)))
			errs <- err
		}()
	}
	go func() {
		txn, err := db.BeginProfiles(app, testNow)
		if err != nil {
			errs <- err
			return
		}
		defer txn.Close()
		txn.PutProfile(testProfileID(1), []byte(`{"userId":"u1"}`))
		txn.SetUser([]byte("u1"), testProfileID(1))
		errs <- txn.Commit()
	}()
	for range writers + 1 {
		<-entered
	}

	var closeDone atomic.Bool
	closed := make(chan error, 1)
	go func() {
		err := db.Close()
		closeDone.Store(true)
		closed <- err
	}()
	testutil.WaitFor(t, 10*time.Second, func() error {
		if !db.closed.Load() {
			return errors.New("Close has not begun")
		}
		return nil
	})
	// Started while Close waits: refused at once.
	if _, err := storeOnce(db, testNow, dedupKeys(app, "late")); !errors.Is(err, ErrClosed) {
		t.Errorf("a write begun while Close waits: got %v; want ErrClosed", err)
	}
	if _, err := db.EnsureApp("late-app"); !errors.Is(err, ErrClosed) {
		t.Errorf("EnsureApp while Close waits: got %v; want ErrClosed", err)
	}
	if closeDone.Load() {
		t.Fatal("Close returned while writes were committing")
	}
	close(release)
	for range writers + 1 {
		if err := <-errs; err != nil {
			t.Errorf("a write in flight when Close began: %v; want it committed", err)
		}
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}

	hold.Store(false)
	db = openDiskDB(t, dir, opts)
	defer db.Close()
	withSnapshot(t, db, func(s *Snapshot) {
		if got := eventsBySeq(t, s, app, 0, ^uint64(0)); len(got) != writers {
			t.Errorf("after reopening: %d events %v; want the %d committed while Close waited", len(got), got, writers)
		}
	})
	if got := readProfile(t, db, app, ProfileLookup{UserID: []byte("u1")}); got == "" {
		t.Error("after reopening: the profile committed while Close waited is missing")
	}
}

// countGroups returns the number of group keys in the store.
func countGroups(t testing.TB, db *DB) int {
	t.Helper()
	return countKeys(t, db, []byte{byte(nsGroup)}, []byte{byte(nsGroup) + 1})
}

// countKeys returns the number of keys in [lo, hi) in the store.
func countKeys(t testing.TB, db *DB, lo, hi []byte) int {
	t.Helper()
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for it.First(); it.Valid(); it.Next() {
		n++
	}
	return n
}

// checkConsistency checks the invariants that tie groups to their blocks:
// every day a group lists has a block, every block belongs to a group that
// lists its day, the group's count and rawBytes are its blocks' totals, each
// block's events lie in its group's range and its day, sorted by (time,
// seq), and one app's groups do not overlap.
func checkConsistency(t testing.TB, db *DB) {
	t.Helper()
	snap := db.pdb.NewSnapshot()
	defer snap.Close()
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: []byte{byte(nsGroup)}, UpperBound: []byte{byte(nsGroup) + 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	type blockID struct {
		app   uint32
		day   int32
		first uint64
	}
	listed := map[blockID]bool{}
	var d decodedBlock
	prevApp, prevLast := uint32(0), uint64(0)
	for it.First(); it.Valid(); it.Next() {
		app, first, err := decodeGroupKey(it.Key())
		if err != nil {
			t.Fatal(err)
		}
		var g groupValue
		if err := decodeGroupValue(it.Value(), &g); err != nil {
			t.Fatal(err)
		}
		if app == prevApp && first <= prevLast {
			t.Fatalf("group (%d, %d) overlaps the one before it, which ends at %d", app, first, prevLast)
		}
		prevApp, prevLast = app, g.last
		if !slices.IsSorted(g.days) || len(slices.Compact(slices.Clone(g.days))) != len(g.days) {
			t.Fatalf("group (%d, %d) has days %v; want ascending and distinct", app, first, g.days)
		}
		count, rawBytes := 0, 0
		for _, day := range g.days {
			listed[blockID{app, day, first}] = true
			v, closer, err := snap.Get(appendBlockKey(nil, app, day, first))
			if err != nil {
				t.Fatalf("block (%d, %d, %d) of group: %v", app, day, first, err)
			}
			err = d.decode(v)
			closer.Close()
			if err != nil {
				t.Fatal(err)
			}
			for i := range d.len() {
				seq, tm, body := d.event(i)
				if seq < first || seq > g.last || DayOf(tm) != day {
					t.Fatalf("block (%d, %d, %d) holds event (seq=%d, time=%d) outside its group [%d, %d] or day", app, day, first, seq, tm, first, g.last)
				}
				if i > 0 {
					pseq, ptm, _ := d.event(i - 1)
					if cmp.Or(cmp.Compare(ptm, tm), cmp.Compare(pseq, seq)) >= 0 {
						t.Fatalf("block (%d, %d, %d) is not sorted by (time, seq) at %d", app, day, first, i)
					}
				}
				rawBytes += len(body)
			}
			count += d.len()
		}
		if count != g.count || rawBytes != g.rawBytes {
			t.Fatalf("group (%d, %d) says %d events of %d bytes; its blocks hold %d of %d", app, first, g.count, g.rawBytes, count, rawBytes)
		}
	}
	bit, err := snap.NewIter(&pebble.IterOptions{LowerBound: []byte{byte(nsBlock)}, UpperBound: []byte{byte(nsBlock) + 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer bit.Close()
	blocks := 0
	for bit.First(); bit.Valid(); bit.Next() {
		app, day, first, err := decodeBlockKey(bit.Key())
		if err != nil {
			t.Fatal(err)
		}
		if !listed[blockID{app, day, first}] {
			t.Fatalf("block (%d, %d, %d) belongs to no group", app, day, first)
		}
		blocks++
	}
	if blocks != len(listed) {
		t.Fatalf("got %d blocks; groups list %d", blocks, len(listed))
	}
}

// readAll returns, per app, everything EventsBySeq and EventsByTime return,
// over the whole range and over some parts of it.
func readAll(t testing.TB, s *Snapshot, apps []uint32, days []int64) map[string][]event {
	t.Helper()
	out := map[string][]event{}
	wm := s.Watermark()
	for _, app := range apps {
		out[fmt.Sprintf("app %d by seq", app)] = eventsBySeq(t, s, app, 0, math.MaxUint64)
		out[fmt.Sprintf("app %d by seq, second half", app)] = eventsBySeq(t, s, app, wm/2, math.MaxUint64)
		out[fmt.Sprintf("app %d by seq, middle", app)] = eventsBySeq(t, s, app, wm/3, 2*wm/3)
		out[fmt.Sprintf("app %d by time", app)] = eventsByTime(t, s, app, math.MinInt64, math.MaxInt64)
		for _, d := range days {
			out[fmt.Sprintf("app %d on day %d", app, d)] = eventsByTime(t, s, app, d*dayUs, (d+1)*dayUs)
			out[fmt.Sprintf("app %d from noon on day %d", app, d)] = eventsByTime(t, s, app, d*dayUs+dayUs/2, (d+2)*dayUs)
		}
	}
	return out
}

func checkReadAll(t testing.TB, what string, got, want map[string][]event) {
	t.Helper()
	for k, w := range want {
		checkEvents(t, what+": "+k, got[k], w)
	}
}

// storeSmallCommits writes n commits of 1 to 4 events over apps and 5
// days, with ties in time, and returns the days.
func storeSmallCommits(t testing.TB, db *DB, r *rand.Rand, n int, apps []uint32) []int64 {
	days := []int64{-1, 20250, 20251, 20253, 20254}
	for i := range n {
		evs := make([]newEvent, 1+r.IntN(4))
		for j := range evs {
			day := days[r.IntN(len(days))]
			evs[j] = newEvent{
				app:  apps[r.IntN(len(apps))],
				time: day*dayUs + int64(r.IntN(50))*1_000_000, // few distinct times: ties
				body: fmt.Sprintf(`{"commit":%d,"i":%d,"pad":"%x"}`, i, j, r.Uint64()),
			}
		}
		commitEvents(t, db, evs...)
	}
	return days
}

func TestMergeAll(t *testing.T) {
	tests := []struct {
		name        string
		targetBytes int
		wantGroups  int // after merging; 0 means do not check
	}{
		{name: "one group per app", targetBytes: 0, wantGroups: 3},
		{name: "small target", targetBytes: 2000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openTestDB(t, Options{MergeTargetBytes: tt.targetBytes})
			apps := []uint32{ensureApp(t, db, "a"), ensureApp(t, db, "b"), ensureApp(t, db, "c")}
			days := storeSmallCommits(t, db, rand.New(rand.NewPCG(1, 2)), 200, apps)
			checkConsistency(t, db)
			groupsBefore := countGroups(t, db)
			old := newSnapshot(t, db)
			want := readAll(t, old, apps, days)

			n, err := db.MergeAll()
			if err != nil {
				t.Fatal(err)
			}
			groupsAfter := countGroups(t, db)
			if n == 0 || groupsAfter != groupsBefore-n {
				t.Fatalf("MergeAll merged %d groups away; groups went from %d to %d", n, groupsBefore, groupsAfter)
			}
			if tt.wantGroups != 0 && groupsAfter != tt.wantGroups {
				t.Fatalf("got %d groups after merging; want %d", groupsAfter, tt.wantGroups)
			}
			checkConsistency(t, db)
			checkReadAll(t, "after merging", readAll(t, newSnapshot(t, db), apps, days), want)
			checkReadAll(t, "snapshot from before merging", readAll(t, old, apps, days), want)
			if n, err := db.MergeAll(); n != 0 || err != nil {
				t.Fatalf("second MergeAll: got %d, %v; want 0, nil", n, err)
			}
		})
	}
}

// TestMergeStopsAtWatermark checks that groups above the watermark are left
// alone until every write below them has finished.
func TestMergeStopsAtWatermark(t *testing.T) {
	db := openTestDB(t, Options{})
	apps := []uint32{ensureApp(t, db, "a")}
	r := rand.New(rand.NewPCG(3, 4))
	days := storeSmallCommits(t, db, r, 5, apps)
	pending := db.NewWriter(testNow)
	defer pending.Close()
	first, err := pending.Alloc(1)
	if err != nil {
		t.Fatal(err)
	}
	pending.AddEvent(apps[0], first, 20250*dayUs, []byte("late"))
	storeSmallCommits(t, db, r, 5, apps)

	if n, err := db.MergeAll(); n != 4 || err != nil {
		t.Fatalf("MergeAll with a write in flight: got %d, %v; want 4 (the 5 groups below it), nil", n, err)
	}
	if got := countGroups(t, db); got != 6 {
		t.Fatalf("got %d groups; want 6", got)
	}
	checkConsistency(t, db)

	if err := pending.Commit(); err != nil {
		t.Fatal(err)
	}
	pending.Close()
	want := readAll(t, newSnapshot(t, db), apps, days)
	if n, err := db.MergeAll(); n != 6 || err != nil {
		t.Fatalf("MergeAll after the write: got %d, %v; want 6, nil", n, err)
	}
	checkConsistency(t, db)
	checkReadAll(t, "after merging", readAll(t, newSnapshot(t, db), apps, days), want)
}

// TestMergedAwayBlocksLeaveTheStore checks that once ingest is quiet, the
// blocks the background merger replaced stop taking space: the live
// sstables reference no more blob bytes than the blocks they hold. The app
// merges away far less than the 16 MiB after which every pass compacts, so
// before settleMerged its replaced blocks stayed until later writes pushed
// compactions through them. The compactions Pebble would start on a store
// this small but not on a large one are off (fewCompactions): they did not
// run in the store of 1 M events where the replaced blocks stayed (S1).
func TestMergedAwayBlocksLeaveTheStore(t *testing.T) {
	db := openTestDB(t, Options{MergeInterval: 20 * time.Millisecond, fewCompactions: true})
	app := ensureApp(t, db, benchAppKey)
	writeBenchEvents(t, db, app, generateBenchEventsIDs(t, 10_000, true))
	// The small groups' blocks go to sstables, as a busy server's do.
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, func() error {
		if n := countGroups(t, db); n != 1 {
			return fmt.Errorf("%d groups, not yet merged into one", n)
		}
		live := 0
		it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: []byte{byte(nsBlock)}, UpperBound: []byte{byte(nsBlock) + 1}})
		if err != nil {
			t.Fatal(err)
		}
		for it.First(); it.Valid(); it.Next() {
			v, err := it.ValueAndErr()
			if err != nil {
				t.Fatal(err)
			}
			live += len(v)
		}
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
		m := db.pdb.Metrics()
		var refs uint64
		for i := range m.Levels {
			refs += m.Levels[i].EstimatedReferencesSize
		}
		if refs > uint64(live)*11/10 {
			return fmt.Errorf("sstables reference %d bytes of blob values; the live blocks are %d", refs, live)
		}
		return nil
	})
}

// TestEventsByTimeWindows merges days much larger than the read budget, with
// blocks that span a whole day and blocks that span minutes, and checks the
// order and the contents against a sort of everything.
func TestEventsByTimeWindows(t *testing.T) {
	db := openTestDB(t, Options{ReadBudget: 4 << 10})
	app := ensureApp(t, db, "a")
	rng := rand.New(rand.NewPCG(7, 7))
	d := int64(20250) * dayUs
	var all []event
	for c := range 60 {
		evs := make([]newEvent, 40)
		for i := range evs {
			var tm int64
			switch c % 3 {
			case 0: // anywhere in three days
				tm = d + rng.Int64N(3*dayUs)
			case 1: // a few minutes of the first day
				tm = d + 3_600_000 + rng.Int64N(300_000)
			default: // a handful of instants, so that times tie
				tm = d + dayUs + int64(rng.IntN(4))*60_000
			}
			evs[i] = newEvent{app, tm, strings.Repeat("x", rng.IntN(200)) + fmt.Sprint(c, i)}
		}
		all = append(all, commitEvents(t, db, evs...)...)
	}
	s := newSnapshot(t, db)
	for _, r := range [][2]int64{
		{math.MinInt64, math.MaxInt64},
		{d + 3_600_000 + 60_000, d + 3_600_000 + 120_000},
		{d + dayUs/2, d + 2*dayUs + 1},
		{d + dayUs, d + dayUs + 60_001},
	} {
		want := filterEvents(all, true, func(e event) bool { return e.time >= r[0] && e.time < r[1] })
		checkEvents(t, fmt.Sprintf("[%d, %d)", r[0], r[1]), eventsByTime(t, s, app, r[0], r[1]), want)
	}
}

func TestDayMergeWindows(t *testing.T) {
	const day = 20250
	start := int64(day) * dayUs
	m := dayMerge{}
	m.reset(day)
	// 10 MiB spread over the whole day, and 10 MiB in its first minute.
	m.add([]byte("a"), blockHeader{minTime: start, maxTime: start + dayUs - 1, rawLen: 10 << 20})
	m.add([]byte("b"), blockHeader{minTime: start, maxTime: start + 59_999, rawLen: 10 << 20})
	if got := m.windows(start, start+dayUs, 32<<20); !slices.Equal(got, []int64{start + dayUs}) {
		t.Errorf("within the budget: windows %v, want one", got)
	}
	got := m.windows(start, start+dayUs, 4<<20)
	if len(got) < 3 || got[len(got)-1] != start+dayUs || !slices.IsSorted(got) {
		t.Fatalf("windows %v: want several, ascending, ending at the day's end", got)
	}
	// The first minute is more than the budget: its bucket is a window of
	// its own; the rest of the day, 10 MiB spread evenly, takes three more.
	if want := []int64{start + dayUs/dayBuckets}; got[0] != want[0] || len(got) != 4 {
		t.Errorf("windows %v: want the first to end at %d, and four in all", got, want[0])
	}
	// A range inside the day is cut within that range.
	lo, hi := start+dayUs/2, start+dayUs/2+1000
	if got := m.windows(lo, hi, 1); got[len(got)-1] != hi || got[0] <= lo {
		t.Errorf("windows(%d, %d) = %v: want ends in (lo, hi]", lo, hi, got)
	}
}

func TestAppKeys(t *testing.T) {
	db, err := Open("db", Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := db.AppKeys(); len(got) != 0 {
		t.Errorf("a new store: got %q; want no app", got)
	}
	for _, k := range []string{"zz-app-key-2", "aa-app-key-1", "zz-app-key-2"} {
		if _, err := db.EnsureApp(k); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := db.AppKeys(), []string{"aa-app-key-1", "zz-app-key-2"}; !slices.Equal(got, want) {
		t.Errorf("got %q; want %q", got, want)
	}
}

// TestEventsBySeqMissingBlock deletes one day block of a group behind its
// group key's back: an ingest-order read, which decodes a group's blocks
// side by side, fails with ErrCorrupt naming it, and a read of the
// remaining groups after it is unaffected.
func TestEventsBySeqMissingBlock(t *testing.T) {
	for _, merged := range []bool{false, true} {
		t.Run(fmt.Sprintf("merged=%v", merged), func(t *testing.T) {
			db := openTestDB(t, Options{ColumnarBlocks: merged})
			app := ensureApp(t, db, benchAppKey)
			evs := generateBenchEvents(t, 4000)
			writeBenchEvents(t, db, app, evs[:3000])
			if merged {
				mergeEverything(t, db) // one group of 3000 events, columnar
			}
			writeBenchEvents(t, db, app, evs[3000:])
			// The first group's second day block.
			it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: appendGroupKey(nil, app, 0), UpperBound: appUpperBound(nsGroup, app)})
			if err != nil {
				t.Fatal(err)
			}
			if !it.First() {
				t.Fatal("no group")
			}
			_, first, err := decodeGroupKey(it.Key())
			if err != nil {
				t.Fatal(err)
			}
			var g groupValue
			if err := decodeGroupValue(it.Value(), &g); err != nil {
				t.Fatal(err)
			}
			var next uint64
			if it.Next() {
				_, next, _ = decodeGroupKey(it.Key())
			}
			it.Close()
			if len(g.days) < 2 || next == 0 {
				t.Fatalf("first group has %d days, next group at %d; want several of each", len(g.days), next)
			}
			if err := db.pdb.Delete(appendBlockKey(nil, app, g.days[1], first), pebble.Sync); err != nil {
				t.Fatal(err)
			}
			snap := newSnapshot(t, db)
			n := 0
			err = snap.EventsBySeq(app, 0, ^uint64(0), func(uint64, int64, []byte) error { n++; return nil })
			if !errors.Is(err, ErrCorrupt) || n != 0 {
				t.Fatalf("read over the damaged group: %d events, error %v; want none and ErrCorrupt", n, err)
			}
			if err := snap.EventsBySeq(app, next-1, ^uint64(0), func(uint64, int64, []byte) error { n++; return nil }); err != nil || n == 0 {
				t.Fatalf("read after the damaged group: %d events, error %v; want events and no error", n, err)
			}
		})
	}
}
