package sinks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/goccy/go-json"
	"github.com/klauspost/compress/zstd"

	"trove/config"
	"trove/storage"
)

func TestFileKey(t *testing.T) {
	for _, c := range []struct {
		prefix, format, app, day string
		from, to                 uint64
		want                     string
	}{
		{"trove/", "parquet", "app1", "2026-12-03", 1, 500, "trove/app1/dt=2026-12-03/1-500.parquet"},
		{"", "ndjson.zst", "app1", "2026-01-31", 501, 501, "app1/dt=2026-01-31/501-501.ndjson.zst"},
		{"a/b/", "parquet", "k", "2026-12-31", 18446744073709551614, 18446744073709551615, "a/b/k/dt=2026-12-31/18446744073709551614-18446744073709551615.parquet"},
	} {
		s := &sink{cfg: config.Sink{Prefix: c.prefix, Format: c.format}}
		got := s.fileKey(c.app, c.day, c.from, c.to)
		if got != c.want {
			t.Errorf("fileKey(%q, %q, %d, %d) with prefix %q, format %q = %q; want %q", c.app, c.day, c.from, c.to, c.prefix, c.format, got, c.want)
		}
		if again := s.fileKey(c.app, c.day, c.from, c.to); again != got {
			t.Errorf("fileKey is not deterministic: %q then %q", got, again)
		}
	}
	if ct := contentType("parquet"); ct == contentType("ndjson.zst") || ct == "" {
		t.Errorf("content types of parquet and ndjson.zst: %q, %q; want two", ct, contentType("ndjson.zst"))
	}
}

func TestReceivedAt(t *testing.T) {
	for _, c := range []struct {
		body string
		want string // RFC 3339 in UTC, or "" for an error
	}{
		{`{"event":"a","receivedAt":"2026-12-03T23:59:59.999Z"}`, "2026-12-03T23:59:59.999Z"},
		// The last receivedAt is the server's, even when attributes hold one.
		{`{"attributes":{"receivedAt":"2001-01-01T00:00:00Z"},"receivedAt":"2026-12-04T00:00:00Z"}`, "2026-12-04T00:00:00Z"},
		{`{"receivedAt":"2026-12-04T01:00:00+02:00"}`, "2026-12-03T23:00:00Z"},
		{`{"event":"a"}`, ""},
		{`{"receivedAt":"2026-12-04`, ""},
		{`{"receivedAt":"yesterday"}`, ""},
	} {
		got, err := receivedAt([]byte(c.body))
		switch {
		case c.want == "" && err == nil:
			t.Errorf("receivedAt(%s) = %v; want an error", c.body, got)
		case c.want != "" && err != nil:
			t.Errorf("receivedAt(%s): %v", c.body, err)
		case c.want != "" && got.UTC().Format(time.RFC3339Nano) != c.want:
			t.Errorf("receivedAt(%s) = %s; want %s", c.body, got.UTC().Format(time.RFC3339Nano), c.want)
		}
	}
}

// TestBackoff checks the wait after n failures: within the upper half of a
// doubling step capped at a minute, and not always the same (jitter).
func TestBackoff(t *testing.T) {
	s := &sink{cfg: config.Sink{Every: config.Duration(5 * time.Minute)}}
	for _, c := range []struct {
		n    int
		step time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {7, time.Minute}, {100, time.Minute}} {
		seen := map[time.Duration]bool{}
		for range 50 {
			d := s.backoff(c.n)
			if d < c.step/2 || d > c.step {
				t.Fatalf("backoff(%d) = %s; want within [%s, %s]", c.n, d, c.step/2, c.step)
			}
			seen[d] = true
		}
		if len(seen) < 2 {
			t.Errorf("backoff(%d) was %v 50 times; want jitter", c.n, seen)
		}
	}
	short := &sink{cfg: config.Sink{Every: config.Duration(200 * time.Millisecond)}}
	if d := short.backoff(1); d < 100*time.Millisecond || d > 200*time.Millisecond {
		t.Errorf("backoff(1) with every = 200ms is %s; want within [100ms, 200ms]", d)
	}
}

func openDB(t *testing.T) *storage.DB {
	t.Helper()
	db, err := storage.Open("", storage.Options{InMemory: true, DedupWindow: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestProgressRoundTrip(t *testing.T) {
	db := openDB(t)
	if p, err := loadProgress(db, "lake", "app1"); err != nil || p != (progress{}) {
		t.Fatalf("progress of a sink that never ran = %+v, %v; want zero", p, err)
	}
	for _, p := range []progress{
		{Done: 500, Files: 1, Bytes: 1234, LastFile: "trove/app1/dt=2026-12-03/1-500.parquet"},
		{Done: 500, Pending: &pendingFile{To: 900, Day: "2026-12-04"}, Files: 1, Bytes: 1234},
	} {
		if err := saveProgress(db, "lake", "app1", p); err != nil {
			t.Fatal(err)
		}
		got, err := loadProgress(db, "lake", "app1")
		if err != nil {
			t.Fatal(err)
		}
		if got.Done != p.Done || got.Files != p.Files || got.Bytes != p.Bytes || got.LastFile != p.LastFile ||
			(got.Pending == nil) != (p.Pending == nil) || (p.Pending != nil && *got.Pending != *p.Pending) {
			t.Errorf("progress %+v read back as %+v", p, got)
		}
	}
	// The stored format is JSON with these names (add, never rename).
	v, _ := db.GetMeta(metaName("lake", "app1"))
	if want := `{"done":500,"pending":{"to":900,"day":"2026-12-04"},"files":1,"bytes":1234}`; string(v) != want {
		t.Errorf("stored progress = %s; want %s", v, want)
	}
	if p, err := loadProgress(db, "other", "app1"); err != nil || p.Done != 0 {
		t.Errorf("another sink's progress = %+v, %v; want its own (zero)", p, err)
	}
	db.SetMeta(metaName("lake", "bad"), []byte("{"))
	if _, err := loadProgress(db, "lake", "bad"); err == nil {
		t.Errorf("a corrupt progress loaded without an error")
	}
}

// memStore is an object store in memory that can refuse puts.
type memStore struct {
	mu      sync.Mutex
	objects map[string][]byte
	puts    map[string]int
	refuse  int // puts of files to refuse before accepting
	// refusePut is how many Puts (of _watermark.json) to refuse, and
	// watermarkPuts counts those accepted.
	refusePut, watermarkPuts int
}

func (m *memStore) PutNew(_ context.Context, key string, body []byte, _ string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.refuse > 0 {
		m.refuse--
		return errors.New("503 Service Unavailable")
	}
	if _, ok := m.objects[key]; ok {
		return errExists
	}
	m.objects[key] = bytes.Clone(body)
	m.puts[key]++
	return nil
}

func (m *memStore) Put(_ context.Context, key string, body []byte, _ string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.refusePut > 0 {
		m.refusePut--
		return errors.New("503 Service Unavailable")
	}
	m.watermarkPuts++
	m.objects[key] = bytes.Clone(body)
	return nil
}

func addEvents(t *testing.T, db *storage.DB, app string, users ...string) {
	t.Helper()
	id, err := db.EnsureApp(app)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	w := db.NewWriter(now)
	defer w.Close()
	seq, err := w.Alloc(len(users))
	if err != nil {
		t.Fatal(err)
	}
	for i, u := range users {
		body := fmt.Sprintf(`{"event":"e","userId":%q,"eventTime":"2026-12-03T12:00:00Z","n":%d,"receivedAt":"2026-12-03T12:00:00Z"}`, u, i)
		w.AddEvent(id, seq+uint64(i), now.UnixMilli(), []byte(body))
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

// objectLines decodes every ndjson.zst object of st, by key.
func objectLines(t *testing.T, st *memStore) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for k, v := range st.objects {
		if !bytes.HasSuffix([]byte(k), []byte(".ndjson.zst")) {
			continue
		}
		zr, err := zstd.NewReader(bytes.NewReader(v))
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(zr)
		zr.Close()
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		for _, l := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
			out[k] = append(out[k], string(l))
		}
	}
	return out
}

// TestStepOutageAndExisting drives a sink over a store that refuses, then
// recovers, and over a store that already holds a pending file (a crash
// after the upload, before the progress was stored): each event ends in
// exactly one object, and no object is put twice.
func TestStepOutageAndExisting(t *testing.T) {
	db := openDB(t)
	st := &memStore{objects: map[string][]byte{}, puts: map[string]int{}, refuse: 3}
	s := &sink{cfg: config.Sink{Name: "lake", Prefix: "p/", Format: "ndjson.zst", Every: config.Duration(time.Hour), MaxEvents: 4},
		db: db, store: st, log: slog.New(slog.DiscardHandler), now: time.Now, apps: map[string]*appState{"app1": {key: "app1"}}}
	addEvents(t, db, "app1", "u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8", "u9")
	ctx := context.Background()
	// The events' receivedAt is "now": none is older than every.
	s.now = func() time.Time { return time.Date(2026, 12, 3, 12, 0, 1, 0, time.UTC) }
	for range 3 {
		if err := s.cycle(ctx); err == nil {
			t.Fatal("a cycle over a refusing store succeeded")
		}
	}
	a := s.apps["app1"]
	a.mu.Lock()
	if a.mu.errors != 3 || a.mu.lastError == "" || a.mu.p.Pending == nil || a.mu.p.Pending.To != 4 {
		t.Errorf("after 3 refusals: errors %d, last error %q, pending %+v; want 3, the error, (0, 4]", a.mu.errors, a.mu.lastError, a.mu.p.Pending)
	}
	a.mu.Unlock()
	if err := s.cycle(ctx); err != nil {
		t.Fatal(err)
	}
	// Two files of 4; the 9th waits for max_events or every.
	want := []string{"p/app1/dt=2026-12-03/1-4.ndjson.zst", "p/app1/dt=2026-12-03/5-8.ndjson.zst"}
	for _, k := range want {
		if st.puts[k] != 1 {
			t.Errorf("%s put %d times; want 1 (puts: %v)", k, st.puts[k], st.puts)
		}
	}
	if len(st.puts) != 2 {
		t.Errorf("puts %v; want %v", st.puts, want)
	}

	// A crash after uploading (9, 12] but before storing that it was done:
	// the restarted sink finds the object and keeps it.
	addEvents(t, db, "app1", "u10", "u11", "u12")
	p, _ := loadProgress(db, "lake", "app1")
	p.Pending = &pendingFile{To: 12, Day: "2026-12-03"}
	saveProgress(db, "lake", "app1", p)
	kept := []byte("the object uploaded before the crash")
	st.objects["p/app1/dt=2026-12-03/9-12.ndjson.zst"] = kept
	s2 := &sink{cfg: s.cfg, db: db, store: st, log: s.log, now: s.now, apps: map[string]*appState{"app1": {key: "app1"}}}
	if err := s2.cycle(ctx); err != nil {
		t.Fatal(err)
	}
	if got := st.objects["p/app1/dt=2026-12-03/9-12.ndjson.zst"]; !bytes.Equal(got, kept) {
		t.Errorf("the object stored before the crash was rewritten")
	}
	if p, _ := loadProgress(db, "lake", "app1"); p.Done != 12 || p.Pending != nil {
		t.Errorf("progress after the restart = %+v; want done 12", p)
	}
	delete(st.objects, "p/app1/dt=2026-12-03/9-12.ndjson.zst")
	seen := map[string]string{}
	for k, lines := range objectLines(t, st) {
		for _, l := range lines {
			if prev, ok := seen[l]; ok {
				t.Errorf("event %s in %s and %s", l, prev, k)
			}
			seen[l] = k
		}
	}
	if len(seen) != 8 {
		t.Errorf("%d events in the files; want 8", len(seen))
	}
}

// TestWatermarkCatchesUp: _watermark.json is put again when it is behind
// the progress and no file is due, after a failed put of it and after a
// restart (the process may have died before putting it), and not again
// once it is up to date.
func TestWatermarkCatchesUp(t *testing.T) {
	db := openDB(t)
	st := &memStore{objects: map[string][]byte{}, puts: map[string]int{}, refusePut: 1}
	cfg := config.Sink{Name: "lake", Prefix: "p/", Format: "ndjson.zst", Every: config.Duration(time.Hour), MaxEvents: 4}
	now := func() time.Time { return time.Date(2026, 12, 3, 12, 0, 1, 0, time.UTC) }
	newSink := func() *sink {
		return &sink{cfg: cfg, db: db, store: st, log: slog.New(slog.DiscardHandler), now: now, apps: map[string]*appState{"app1": {key: "app1"}}}
	}
	watermark := func() uint64 {
		t.Helper()
		var w watermarkFile
		if b, ok := st.objects["p/app1/_watermark.json"]; ok {
			if err := json.Unmarshal(b, &w); err != nil {
				t.Fatal(err)
			}
		}
		return w.Watermark
	}
	ctx := context.Background()
	addEvents(t, db, "app1", "u1", "u2", "u3", "u4")
	s := newSink()
	if err := s.cycle(ctx); err == nil {
		t.Fatal("a cycle whose put of _watermark.json failed succeeded")
	}
	if st.puts["p/app1/dt=2026-12-03/1-4.ndjson.zst"] != 1 || watermark() != 0 {
		t.Fatalf("after the failed put: puts %v, watermark %d; want the file and no watermark", st.puts, watermark())
	}
	// No new event: the next cycle puts the watermark all the same.
	if err := s.cycle(ctx); err != nil {
		t.Fatal(err)
	}
	if watermark() != 4 {
		t.Errorf("after the store came back, _watermark.json says %d; want 4", watermark())
	}
	for range 3 {
		s.cycle(ctx)
	}
	if st.watermarkPuts != 1 {
		t.Errorf("_watermark.json put %d times; want once while it is up to date", st.watermarkPuts)
	}

	// A restart that finds the object behind its progress (the process
	// died between storing the progress and putting the object).
	st.objects["p/app1/_watermark.json"] = []byte(`{"watermark":0}`)
	if err := newSink().cycle(ctx); err != nil {
		t.Fatal(err)
	}
	if watermark() != 4 || len(st.puts) != 1 {
		t.Errorf("after a restart: _watermark.json says %d, puts %v; want 4 and no new file", watermark(), st.puts)
	}
}
