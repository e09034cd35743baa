package e2e

// Crash tests: the real binary as a child process, killed with SIGKILL or
// stopped with SIGTERM while writers send to it, then restarted on the same
// data directory. Every batch answered 202 must be exported, once.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/goccy/go-json"

	"trove/internal/testutil"
)

var (
	binDirOnce sync.Once
	binDir     string // the built binaries, removed by TestMain
	binDirErr  error
)

// builtBinary is a binary that go build makes once per test run, in binDir.
type builtBinary struct {
	once sync.Once
	path string
	err  error
}

// get builds the binary the first time it is asked for, with go build -o
// binDir/name args... run in dir ("" for the e2e module), and returns its
// path.
func (b *builtBinary) get(t *testing.T, name, dir string, args ...string) string {
	t.Helper()
	b.once.Do(func() {
		binDirOnce.Do(func() { binDir, binDirErr = os.MkdirTemp("", "trove-e2e-bin-") })
		if b.err = binDirErr; b.err != nil {
			return
		}
		b.path = filepath.Join(binDir, name)
		goCmd, err := exec.LookPath("go")
		if err != nil {
			goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		full := append([]string{"build", "-o", b.path}, args...)
		cmd := exec.Command(goCmd, full...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go %s: %v\n%s", strings.Join(full, " "), err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

var troveBin builtBinary

// troveBinary builds the binary once per test run, with -race when the
// tests run with it.
func troveBinary(t *testing.T) string {
	t.Helper()
	if raceEnabled() {
		return troveBin.get(t, "trove", moduleRoot, "-race", ".")
	}
	return troveBin.get(t, "trove", moduleRoot, ".")
}

func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// child is a trove process.
type child struct {
	cmd    *exec.Cmd
	addr   string
	logs   *testutil.SyncBuffer
	exited chan struct{} // closed once the process has exited and err is set
	err    error         // from cmd.Wait
}

// startChild starts trove serving dataDir and waits until it logs the
// address it listens on.
func startChild(t *testing.T, cfgPath, dataDir string) *child {
	t.Helper()
	return startChildBin(t, troveBinary(t), cfgPath, dataDir)
}

// startChildBin is startChild with the binary bin.
func startChildBin(t *testing.T, bin, cfgPath, dataDir string) *child {
	t.Helper()
	cmd := exec.Command(bin, "serve", "-config", cfgPath, "-data", dataDir, "-listen", "127.0.0.1:0")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TROVE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, logs: &testutil.SyncBuffer{}, exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrCh := make(chan string, 1)
	go func() {
		// The log is JSON lines, since stderr is not a terminal.
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			c.logs.Write(append(line, '\n'))
			var rec struct {
				Msg string `json:"msg"`
			}
			if json.Unmarshal(line, &rec) == nil {
				if addr, ok := strings.CutPrefix(rec.Msg, "listening on http://"); ok {
					select {
					case addrCh <- addr:
					default:
						t.Errorf("trove logged %q twice", rec.Msg)
					}
				}
			}
		}
		io.Copy(io.Discard, stderr)
		// Wait only after the last read from the pipe.
		c.err = cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-c.exited:
		default:
			cmd.Process.Kill()
			<-c.exited
		}
		if t.Failed() {
			t.Logf("log of trove pid %d:\n%s", cmd.Process.Pid, c.logs)
		}
	})
	select {
	case c.addr = <-addrCh:
	case <-c.exited:
		t.Fatalf("trove exited before serving (%v); log:\n%s", c.err, c.logs)
	case <-time.After(60 * time.Second):
		t.Fatalf("trove did not log its address within 60s; log:\n%s", c.logs)
	}
	return c
}

// waitExit waits for the process to exit and returns its exit code.
func (c *child) waitExit(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-c.exited:
	case <-time.After(timeout):
		t.Fatalf("trove did not exit within %s", timeout)
	}
	var ee *exec.ExitError
	switch {
	case c.err == nil:
		return 0
	case errors.As(c.err, &ee):
		return ee.ExitCode() // -1 when killed by a signal
	}
	t.Fatalf("waiting for trove: %v", c.err)
	return -1
}

const batchSize = 50

// writers is a set of goroutines sending batches of events with unique
// messageIds and recording which batches were acknowledged.
type writers struct {
	mu struct {
		sync.Mutex
		acked map[string]bool // batch id -> answered 202
		sent  map[string]bool // every batch id sent, answered or not
	}
	firstAck chan struct{} // closed at the first 202
	once     sync.Once
	stop     chan struct{}
	wg       sync.WaitGroup
}

// startWriters starts n writers against addr. They stop when stop is
// closed or their server stops answering.
func startWriters(t *testing.T, addr string, n int) *writers {
	return startWritersPrefix(t, addr, n, "", nil)
}

// startWritersPrefix is startWriters with batch ids that begin with prefix,
// sending the batches of resend (ids of batches sent before, whose events
// get the same messageIds) before new ones.
func startWritersPrefix(t *testing.T, addr string, n int, prefix string, resend []string) *writers {
	w := &writers{firstAck: make(chan struct{}), stop: make(chan struct{})}
	// A resent batch may have been stored before the crash: its events
	// are then duplicates, acknowledged and not stored again.
	resent := map[string]bool{}
	for _, id := range resend {
		resent[id] = true
	}
	w.mu.acked = map[string]bool{}
	w.mu.sent = map[string]bool{}
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	for g := range n {
		w.wg.Go(func() {
			defer client.CloseIdleConnections()
			for b := 0; ; b++ {
				select {
				case <-w.stop:
					return
				default:
				}
				id := fmt.Sprintf("%sw%d-b%d", prefix, g, b)
				w.mu.Lock()
				if len(resend) > 0 {
					id, resend = resend[0], resend[1:]
					b--
				}
				w.mu.Unlock()
				body := bytes.NewReader(idBatch("crash", "2024-01-02T03:04:05.678Z", id, g, batchSize))
				w.mu.Lock()
				w.mu.sent[id] = true
				w.mu.Unlock()
				resp, err := client.Post("http://"+addr+"/v1/events", "application/json", body)
				if err != nil {
					return // the server is gone
				}
				answer, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					// 503 while shutting down is fair; anything else is not.
					if resp.StatusCode != http.StatusServiceUnavailable {
						t.Errorf("batch %s: status %d (%s); want 202", id, resp.StatusCode, answer)
					}
					return
				}
				var a struct{ Accepted, Duplicates, Rejected int }
				if err := json.Unmarshal(answer, &a); err != nil || a.Accepted+a.Duplicates != batchSize || a.Rejected != 0 ||
					(a.Duplicates != 0 && !resent[id]) {
					t.Errorf("batch %s: answer %s; want accepted %d", id, answer, batchSize)
				}
				w.mu.Lock()
				w.mu.acked[id] = true
				w.mu.Unlock()
				w.once.Do(func() { close(w.firstAck) })
			}
		})
	}
	return w
}

// waitFirstAck waits for the first acknowledged batch.
func (w *writers) waitFirstAck(t *testing.T) {
	t.Helper()
	select {
	case <-w.firstAck:
	case <-time.After(30 * time.Second):
		t.Fatal("no batch was acknowledged within 30s")
	}
}

// finish stops the writers and waits for them.
func (w *writers) finish() {
	close(w.stop)
	w.wg.Wait()
}

// checkExport exports every event of the demo app from addr and checks it
// against what the writers recorded: every acknowledged batch is there,
// each event once, every batch is whole or absent, nothing else appears.
func (w *writers) checkExport(t *testing.T, addr string) (sent, acked, missing int) {
	t.Helper()
	perBatch, events, _ := exportedBatches(t, addr)
	w.mu.Lock()
	defer w.mu.Unlock()
	for b, n := range perBatch {
		if !w.mu.sent[b] {
			t.Errorf("batch %s (%d events) is exported but was never sent", b, n)
		} else if n != batchSize {
			t.Errorf("batch %s has %d of its %d events exported; want all or none (one atomic write)", b, n, batchSize)
		}
	}
	missing = 0
	for b := range w.mu.acked {
		if perBatch[b] != batchSize {
			missing++
			if missing <= 5 {
				t.Errorf("batch %s was acknowledged with 202, but %d of its %d events are exported", b, perBatch[b], batchSize)
			}
		}
	}
	if missing > 5 {
		t.Errorf("... %d acknowledged batches are missing or short in all", missing)
	}
	t.Logf("%d batches sent, %d acknowledged, %d exported (%d events)", len(w.mu.sent), len(w.mu.acked), len(perBatch), events)
	return len(w.mu.sent), len(w.mu.acked), missing
}

// startChildWithWriters starts the binary on testConfig and a data
// directory of its own, with four writers sending to it, and returns once
// the first batch is acknowledged; restartChild starts the binary again on
// the same directory.
func startChildWithWriters(t *testing.T) (c *child, w *writers, restartChild func() *child) {
	t.Helper()
	cfg, dataDir := writeConfigText(t, testConfig), t.TempDir()
	c = startChild(t, cfg, dataDir)
	w = startWriters(t, c.addr, 4)
	w.waitFirstAck(t)
	return c, w, func() *child { return startChild(t, cfg, dataDir) }
}

// TestCrashKill kills trove with SIGKILL while four writers send to it.
func TestCrashKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	c, w, restartChild := startChildWithWriters(t)
	// Kill at a random moment of the next 1.5 s.
	delay := time.Duration(rand.Int64N(int64(1500 * time.Millisecond)))
	<-time.After(delay)
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if code := c.waitExit(t, 10*time.Second); code != -1 {
		t.Errorf("exit code %d after SIGKILL; want -1 (killed)", code)
	}
	w.finish()
	t.Logf("killed %s after the first acknowledgement", delay.Round(time.Millisecond))

	t0 := time.Now()
	c = restartChild()
	restart := time.Since(t0)
	sent, acked, missing := w.checkExport(t, c.addr)
	summary := fmt.Sprintf("KILL9: killed_after_ms=%d restart_ms=%d writers=4 sent_batches=%d acked_batches=%d lost=%d", delay.Milliseconds(), restart.Milliseconds(), sent, acked, missing)
	t.Log(summary)
	fmt.Println(summary)
	// The restarted server takes writes, and the ids written before the
	// crash are still known to deduplication.
	a := decodeAnswer(t, postEvents(t, c.addr, event("after", "w0-b0-e0")), http.StatusAccepted)
	// Writers are done: w.mu needs no lock.
	if w.mu.acked["w0-b0"] && (a.Duplicates != 1 || a.Accepted != 0) {
		t.Errorf("resending an acknowledged event after the crash: %+v; want duplicates 1", a)
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	if code := c.waitExit(t, 10*time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM; want 0", code)
	}
}

// TestCrashTerm stops trove with SIGTERM while four writers send to it: it
// must drain, flush and exit 0, keeping every acknowledged event.
func TestCrashTerm(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	c, w, restartChild := startChildWithWriters(t)
	<-time.After(time.Duration(rand.Int64N(int64(1000 * time.Millisecond))))
	start := time.Now()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code := c.waitExit(t, 10*time.Second)
	took := time.Since(start)
	w.finish()
	if code != 0 {
		t.Errorf("exit code %d after SIGTERM; want 0", code)
	}
	t.Logf("exited %s after SIGTERM", took.Round(time.Millisecond))
	for _, msg := range []string{"shutting down", "server stopped", "store closed"} {
		if !strings.Contains(c.logs.String(), msg) {
			t.Errorf("the log does not say %q", msg)
		}
	}

	c = restartChild()
	sent, acked, missing := w.checkExport(t, c.addr)
	c.cmd.Process.Signal(syscall.SIGTERM)
	if code := c.waitExit(t, 10*time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM; want 0", code)
	}
	summary := fmt.Sprintf("SHUTDOWN: exit=%d took_ms=%d writers=4 sent_batches=%d acked_batches=%d lost=%d", code, took.Milliseconds(), sent, acked, missing)
	t.Log(summary)
	fmt.Println(summary)
	if took > 10*time.Second {
		t.Errorf("SIGTERM to exit took %s; want under 10 s", took)
	}
}

// exportedBatches exports every event of the demo app from addr and
// returns how many events of each batch it holds (the writers' messageIds
// are <batch>-e<event>), how many events in all, and how many messageIds
// came more than once, each reported as an error.
func exportedBatches(t *testing.T, addr string) (perBatch map[string]int, events, dups int) {
	t.Helper()
	e := exportFrom(t, addr, "/v1/export/events", demoApp, "", "Authorization: Bearer "+adminSecret)
	seen := map[string]bool{}
	perBatch = map[string]int{}
	for _, id := range messageIDs(t, e.lines) {
		if seen[id] {
			dups++
			t.Errorf("messageId %s is exported twice", id)
		}
		seen[id] = true
		batch := id
		if i := strings.LastIndex(id, "-e"); i > 0 {
			batch = id[:i]
		}
		perBatch[batch]++
	}
	return perBatch, len(e.lines), dups
}

// idBatch is a JSON array of n events of the demo app from writer g, named
// event at eventTime, whose messageIds are id-e0 … id-e<n-1>: the writers
// of the crash and cluster tests find each batch in an export by them.
func idBatch(event, eventTime, id string, g, n int) []byte {
	var body bytes.Buffer
	body.WriteByte('[')
	for i := range n {
		if i > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"type":"event","event":%q,"userId":"u%d","eventTime":%q,"appKey":"%s","messageId":"%s-e%d","attributes":{"i":%d}}`,
			event, g, eventTime, demoApp, id, i, i)
	}
	body.WriteByte(']')
	return body.Bytes()
}
