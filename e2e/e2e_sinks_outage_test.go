package e2e

// A sink through an outage of its object store and two restarts of Trove:
// every event ends in exactly one ndjson.zst object, and no object name is
// ever written with two different bodies.

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goccy/go-json"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/klauspost/compress/zstd"

	"trove/internal/testutil"
)

// flakyS3 is an S3 server that answers 503 to everything while down is
// set, and records the hash of every object body that reached the store.
type flakyS3 struct {
	next    http.Handler
	down    atomic.Bool
	refused atomic.Int64
	mu      sync.Mutex
	bodies  map[string]map[[32]byte]bool // key → hashes of the bodies PUT
	// gate, when set, holds the next PUT of a file: the key goes to
	// arrived, and the PUT goes on to the store only if release says so.
	gate atomic.Pointer[putGate]
}

type putGate struct {
	arrived chan string
	release chan bool
}

func newGate() *putGate { return &putGate{arrived: make(chan string, 1), release: make(chan bool, 1)} }

// held waits for the gate's PUT to arrive.
func (g *putGate) held(t *testing.T) string {
	t.Helper()
	select {
	case k := <-g.arrived:
		return k
	case <-time.After(30 * time.Second):
		t.Fatal("no file PUT within 30s")
		return ""
	}
}

func (f *flakyS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.down.Load() {
		f.refused.Add(1)
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>ServiceUnavailable</Code><Message>down for the test</Message></Error>`)
		return
	}
	if r.Method == http.MethodPut {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if g := f.gate.Load(); g != nil && !strings.HasSuffix(r.URL.Path, "/_watermark.json") && f.gate.CompareAndSwap(g, nil) {
			g.arrived <- r.URL.Path
			if !<-g.release {
				w.WriteHeader(http.StatusInternalServerError)
				return
			}
		}
		f.mu.Lock()
		if f.bodies[r.URL.Path] == nil {
			f.bodies[r.URL.Path] = map[[32]byte]bool{}
		}
		f.bodies[r.URL.Path][sha256.Sum256(body)] = true
		f.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	f.next.ServeHTTP(w, r)
}

// zstdLines decompresses an ndjson.zst object into its lines.
func zstdLines(t *testing.T, key string, b []byte) []string {
	t.Helper()
	d, err := zstd.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var lines []string
	sc := bufio.NewScanner(d)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("object %s is not a whole zstd stream of lines: %v", key, err)
	}
	return lines
}

// sinkApp returns GET /admin/sinks for app.
func sinkApp(t *testing.T, addr, app string) (a struct {
	Watermark uint64
	Errors    int64
	LastError string
}) {
	t.Helper()
	r := request(t, "GET", "http://"+addr+"/admin/sinks", nil, "Authorization: Bearer "+adminSecret)
	var st sinkStatus
	if r.status != http.StatusOK || json.Unmarshal(r.body, &st) != nil {
		t.Fatalf("GET /admin/sinks: %d %s", r.status, r.body)
	}
	for _, s := range st.Sinks {
		for _, x := range s.Apps {
			if x.AppKey == app {
				a.Watermark, a.Errors, a.LastError = x.Watermark, x.Errors, x.LastError
			}
		}
	}
	return a
}

// sinkConfig is the test config with one ndjson.zst sink to endpoint.
func sinkConfig(endpoint string) string {
	return testConfig + `
[[sinks]]
name = "lake"
endpoint = "` + endpoint + `"
bucket = "lake"
prefix = "p/"
access_key_env = ""
secret_key_env = ""
format = "ndjson.zst"
every = "200ms"
max_events = 50
`
}

// newFlakyS3 starts a flakyS3 on 127.0.0.1 with the bucket "lake".
func newFlakyS3(t *testing.T) (*flakyS3, *s3mem.Backend, string) {
	t.Helper()
	be := s3mem.New()
	if err := be.CreateBucket("lake"); err != nil {
		t.Fatal(err)
	}
	flaky := &flakyS3{next: gofakes3.New(be).Server(), bodies: map[string]map[[32]byte]bool{}}
	srv := httptest.NewServer(flaky)
	t.Cleanup(srv.Close)
	return flaky, be, srv.URL
}

// checkSinkObjects checks that the app's objects tile its sequence and
// hold the export's lines, each once and in order, and that no object was
// PUT with two different bodies. It returns the number of files, of
// exported events in none, and of events in more than one.
func checkSinkObjects(t *testing.T, flaky *flakyS3, be *s3mem.Backend, all exported) (files, lost, dups int) {
	t.Helper()
	// _watermark.json is written after the progress /admin/sinks shows.
	var wm struct {
		Watermark uint64 `json:"watermark"`
	}
	var objs map[string][]byte
	testutil.WaitFor(t, 10*time.Second, func() error {
		objs = objects(t, be, "lake", "p/"+demoApp+"/")
		if json.Unmarshal(objs["p/"+demoApp+"/_watermark.json"], &wm) != nil || wm.Watermark < all.watermark {
			return fmt.Errorf("_watermark.json %s; want a watermark of at least %d", objs["p/"+demoApp+"/_watermark.json"], all.watermark)
		}
		return nil
	})
	var keys []string
	for k := range objs {
		if !strings.HasSuffix(k, "/_watermark.json") {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return seqRange(t, keys[i])[0] < seqRange(t, keys[j])[0] })
	var lines []string
	next := uint64(1)
	for _, k := range keys {
		if !strings.HasSuffix(k, ".ndjson.zst") || !strings.Contains(k, "/dt=") {
			t.Errorf("object %s is not named {prefix}{app}/dt=DAY/{from}-{to}.ndjson.zst", k)
		}
		r := seqRange(t, k)
		if r[0] != next {
			t.Errorf("object %s starts at %d; want %d, right after the previous one", k, r[0], next)
		}
		next = r[1] + 1
		lines = append(lines, zstdLines(t, k, objs[k])...)
	}
	seen := map[string]int{}
	for _, l := range lines {
		if seen[l]++; seen[l] == 2 {
			dups++
		}
	}
	for _, l := range all.lines {
		if seen[l] == 0 {
			lost++
		}
	}
	if strings.Join(lines, "\n") != strings.Join(all.lines, "\n") {
		t.Errorf("the objects hold %d events; want the %d of the export, in order, each once", len(lines), len(all.lines))
	}
	flaky.mu.Lock()
	for key, hashes := range flaky.bodies {
		if len(hashes) > 1 && !strings.HasSuffix(key, "/_watermark.json") {
			t.Errorf("object %s was PUT with %d different bodies; a file is never rewritten", key, len(hashes))
		}
	}
	flaky.mu.Unlock()
	return len(keys), lost, dups
}

// TestE2ESinkKillMidUpload kills trove with SIGKILL while a file's PUT is
// in flight, twice: once the store then keeps the object (the crash came
// after the upload, before trove recorded it), once it does not. After the
// restarts every event is in exactly one object.
func TestE2ESinkKillMidUpload(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	flaky, be, url := newFlakyS3(t)
	cfg, dataDir := writeConfigText(t, sinkConfig(url)), t.TempDir()
	for i, stored := range []bool{true, false} {
		g := newGate()
		flaky.gate.Store(g)
		c := startChild(t, cfg, dataDir)
		parquetEvents(t, c.addr, demoApp, backendSecret, i*100, 100)
		key := g.held(t)
		if err := c.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		c.waitExit(t, 10*time.Second)
		g.release <- stored
		t.Logf("killed during the PUT of %s; the store kept it: %v", key, stored)
	}
	c := startChild(t, cfg, dataDir)
	parquetEvents(t, c.addr, demoApp, backendSecret, 200, 60)
	all := exportEvents(t, c.addr, "")
	if len(all.lines) != 260 {
		t.Fatalf("the export holds %d events; want the 260 acknowledged", len(all.lines))
	}
	waitSinkDone(t, c.addr, demoApp, all.watermark)
	n, lost, dups := checkSinkObjects(t, flaky, be, all)
	summary := fmt.Sprintf("SINKKILL9: kills=2 events=%d objects=%d lost=%d duplicates=%d", len(all.lines), n, lost, dups)
	if t.Failed() {
		summary = "SINKKILL9: FAILED (see above)"
	}
	t.Log(summary)
	fmt.Println(summary)
}

func TestE2ESinkOutageAndRestarts(t *testing.T) {
	t.Parallel()
	flaky, be, url := newFlakyS3(t)
	cfg := sinkConfig(url)
	srv := startServer(t, cfg)
	addr, dataDir, stop := srv.addr, srv.dataDir, srv.stop

	// The store refuses: ingest goes on, the sink counts its errors.
	flaky.down.Store(true)
	parquetEvents(t, addr, demoApp, backendSecret, 0, 120)
	testutil.WaitFor(t, 30*time.Second, func() error {
		if st := sinkApp(t, addr, demoApp); st.Errors == 0 || st.LastError == "" || flaky.refused.Load() == 0 {
			return fmt.Errorf("no sink error shown while the store refuses: %+v", st)
		}
		return nil
	})

	// A restart while the store is still down, more events, then the
	// store comes back.
	stop()
	srv = startServer(t, cfg, inDir(dataDir))
	addr, stop = srv.addr, srv.stop
	parquetEvents(t, addr, demoApp, backendSecret, 120, 60)
	flaky.down.Store(false)
	waitSinkDone(t, addr, demoApp, exportEvents(t, addr, "").watermark)

	// Another restart, and events after it.
	stop()
	srv = startServer(t, cfg, inDir(dataDir))
	addr, stop = srv.addr, srv.stop
	defer stop()
	parquetEvents(t, addr, demoApp, backendSecret, 180, 70)
	all := exportEvents(t, addr, "")
	if len(all.lines) != 250 {
		t.Fatalf("the export holds %d events; want the 250 acknowledged", len(all.lines))
	}
	waitSinkDone(t, addr, demoApp, all.watermark)

	n, lost, dups := checkSinkObjects(t, flaky, be, all)
	t.Logf("%d objects for %d events (%d lost, %d duplicated); %d requests refused during the outage", n, len(all.lines), lost, dups, flaky.refused.Load())
}

// TestE2ESinkDeletedUser checks the rule for deleted users: the files
// built after DELETE /v1/users/profile leave out the user's events stored
// before it, even those still waiting for their file when it came (the
// store was down); the user's later events are a new start and go out;
// files written before are left as they are.
func TestE2ESinkDeletedUser(t *testing.T) {
	t.Parallel()
	flaky, be, url := newFlakyS3(t)
	srv := startServer(t, sinkConfig(url))
	addr, stop := srv.addr, srv.stop
	defer stop()
	post := func(users []string, from, n int) {
		t.Helper()
		var batch []string
		for i := from; i < from+n; i++ {
			for _, u := range users {
				batch = append(batch, userEvent(u, i))
			}
		}
		decodeAnswer(t, postEvents(t, addr, "["+strings.Join(batch, ",")+"]"), http.StatusAccepted)
	}
	post([]string{"alice", "bob"}, 0, 30)
	before := exportEvents(t, addr, "")
	waitSinkDone(t, addr, demoApp, before.watermark)
	written := objects(t, be, "lake", "p/"+demoApp+"/")

	flaky.down.Store(true)
	post([]string{"alice", "bob"}, 30, 20) // waiting for a file
	if r := deleteUser(t, addr, "appKey="+demoApp+"&userId=alice", "Authorization: Bearer "+adminSecret); r.status != http.StatusOK {
		t.Fatalf("DELETE alice: %d %s", r.status, r.body)
	}
	post([]string{"alice", "bob"}, 50, 5) // after the deletion: a new start
	flaky.down.Store(false)
	after := exportEvents(t, addr, "since="+strconv.FormatUint(before.watermark, 10))
	waitSinkDone(t, addr, demoApp, after.watermark)

	objs := objects(t, be, "lake", "p/"+demoApp+"/")
	var keys []string
	for k := range objs {
		if strings.HasSuffix(k, "/_watermark.json") {
			continue
		}
		if old, ok := written[k]; ok {
			if !bytes.Equal(old, objs[k]) {
				t.Errorf("object %s, written before the deletion, was rewritten", k)
			}
			continue
		}
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return seqRange(t, keys[i])[0] < seqRange(t, keys[j])[0] })
	var lines []string
	for _, k := range keys {
		lines = append(lines, zstdLines(t, k, objs[k])...)
	}
	if strings.Join(lines, "\n") != strings.Join(after.lines, "\n") {
		t.Errorf("the files after the deletion hold %d events; want the %d the export gives after watermark %d", len(lines), len(after.lines), before.watermark)
	}
	oldAlice, newAlice := 0, 0
	for _, l := range lines {
		for i := 30; i < 55; i++ {
			if strings.Contains(l, fmt.Sprintf(`"marker":"alice-%d"`, i)) {
				if i < 50 {
					oldAlice++
				} else {
					newAlice++
				}
			}
		}
	}
	if oldAlice != 0 || newAlice != 5 {
		t.Errorf("files after the deletion hold %d of alice's events from before it and %d of the 5 after; want 0 and 5", oldAlice, newAlice)
	}
	t.Logf("%d files before the deletion kept, %d after with %d events (bob's 25, alice's 5 new)", len(written)-1, len(keys), len(lines))
}

// TestE2ESinkHeldUploadDoesNotHoldIngest holds a sink's file PUT open
// while clients go on sending: the sink reads committed events, like an
// export, so every request is still acknowledged and exported while its
// upload hangs, and the sink's watermark stays where it was until the
// store answers. Then everything goes out, each event in one object.
func TestE2ESinkHeldUploadDoesNotHoldIngest(t *testing.T) {
	t.Parallel()
	flaky, be, url := newFlakyS3(t)
	srv := startServer(t, sinkConfig(url))
	addr, stop := srv.addr, srv.stop
	defer stop()
	g := newGate()
	flaky.gate.Store(g)
	parquetEvents(t, addr, demoApp, backendSecret, 0, 100)
	key := g.held(t)
	held := sinkApp(t, addr, demoApp).Watermark

	// 40 more requests while the PUT hangs; each is acknowledged (the
	// helper fails on anything but a 202) and exported at once.
	for i := range 40 {
		parquetEvents(t, addr, demoApp, backendSecret, 100+i*25, 25)
	}
	during := exportEvents(t, addr, "")
	if len(during.lines) != 1100 {
		t.Fatalf("while the sink's PUT of %s hangs, the export holds %d events; want the 1100 acknowledged", key, len(during.lines))
	}
	if w := sinkApp(t, addr, demoApp).Watermark; w != held {
		t.Errorf("the sink's watermark moved from %d to %d while its PUT hung", held, w)
	}

	g.release <- true
	waitSinkDone(t, addr, demoApp, during.watermark)
	n, lost, dups := checkSinkObjects(t, flaky, be, during)
	t.Logf("PUT of %s held during 40 requests; then %d objects for %d events (%d lost, %d duplicated)", key, n, len(during.lines), lost, dups)
}
