package e2e

// The power-loss test: the real server, in process, with its store on a
// crashable in-memory file system and its HTTP served over an in-memory
// listener. Writers send batches with unique messageIds; at a random moment
// the file system is cloned as a power cut would leave it (what was synced,
// and at random some of what was not); a new server opened on the clone
// must export every event acknowledged before the cut, once, and nothing
// that was never sent.

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp/fasthttputil"

	"trove/server"
	"trove/storage"
)

var powerLossIterations = flag.Int("powerloss.iterations", 10, "power cuts TestPowerLoss makes (RELIABILITY.md: 200)")

const powerLossConfig = `
admin_token = "` + adminSecret + `"
log_level = "warn"

[storage]
min_free_disk = "0"          # the in-memory file system reports no free space
merge_interval = "100ms"     # merges run during the test, and are cut too
merge_min_age = "0s"

[[apps]]
name = "demo"
app_key = "` + demoApp + `"
` + backendToken

// memServer runs trove on fs, served over an in-memory listener, until
// stop is called.
func memServer(t *testing.T, fs *storage.MemFS, cfgText, dataDir string) (client *http.Client, stop func()) {
	t.Helper()
	ln := fasthttputil.NewInmemoryListener()
	srv := startServer(t, cfgText, inDir(dataDir), withHooks(server.Hooks{StoreFS: fs, Listener: ln}))
	tr := &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) { return ln.Dial() }}
	client = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	return client, func() {
		srv.stop()
		tr.CloseIdleConnections()
	}
}

func TestPowerLoss(t *testing.T) {
	r := powerLoss(t, "POWERLOSS", powerLossConfig, *powerLossIterations, func(rng *rand.Rand) int { return rng.IntN(101) })
	if r.acked == 0 {
		t.Fatalf("no batch was acknowledged before any power cut: the test saw nothing")
	}
	if r.lost+r.dup+r.phantom > 0 {
		t.Errorf("lost %d acknowledged events, exported %d twice and %d never sent; want 0", r.lost, r.dup, r.phantom)
	}
}

// TestPowerLossControl is the negative control: with ingest.sync = false a
// 202 comes before the fsync, so a power cut that keeps nothing unsynced
// loses acknowledged events, and the harness must see it.
func TestPowerLossControl(t *testing.T) {
	cfg := strings.Replace(powerLossConfig, "[storage]", "[ingest]\nsync = false\n\n[storage]", 1)
	r := powerLoss(t, "POWERLOSS-CONTROL", cfg, 3, func(*rand.Rand) int { return 0 })
	if r.lost == 0 {
		t.Fatalf("with sync off and nothing unsynced kept, no acknowledged event was lost (%d acknowledged): the harness cannot see losses", r.acked)
	}
}

type powerLossResult struct{ sent, acked, lost, dup, phantom int }

// powerLoss runs iterations of write, cut, reopen and check, and prints a
// summary line. unsynced gives each cut's percentage of unsynced writes
// that survive.
func powerLoss(t *testing.T, name, cfgText string, iterations int, unsynced func(*rand.Rand) int) powerLossResult {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 1))
	var res powerLossResult
	var restartTotal, maxRestart time.Duration
	start := time.Now()
	for it := range iterations {
		fs := storage.NewCrashableMemFS()
		dataDir := t.TempDir() // the admin token file; the store is in fs
		client, stop := memServer(t, fs, cfgText, dataDir)

		var mu sync.Mutex
		cut := false
		var ackedIDs []string
		sentIDs := map[string]bool{}
		var wg sync.WaitGroup
		writersDone := make(chan struct{})
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for b := 0; ; b++ {
					select {
					case <-writersDone:
						return
					default:
					}
					var ids []string
					var body strings.Builder
					body.WriteByte('[')
					for i := range 1 + (b*7+w)%40 {
						id := fmt.Sprintf("i%d-w%d-b%d-e%d", it, w, b, i)
						ids = append(ids, id)
						if i > 0 {
							body.WriteByte(',')
						}
						body.WriteString(event("e", id))
					}
					body.WriteByte(']')
					mu.Lock()
					for _, id := range ids {
						sentIDs[id] = true
					}
					mu.Unlock()
					resp, err := client.Post("http://trove/v1/events", "application/json", strings.NewReader(body.String()))
					if err != nil {
						return // the server is going away
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					// Recorded under the lock the cut takes: a 202 recorded
					// here was synced before the cut.
					mu.Lock()
					if resp.StatusCode == http.StatusAccepted && !cut {
						ackedIDs = append(ackedIDs, ids...)
					}
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond)
		mu.Lock()
		cut = true
		clone := fs.CrashClone(int64(rng.Uint64()>>1), unsynced(rng))
		mu.Unlock()
		close(writersDone)
		stop()
		wg.Wait()

		t0 := time.Now()
		client, stop = memServer(t, clone, cfgText, dataDir)
		took := time.Since(t0)
		restartTotal += took
		maxRestart = max(maxRestart, took)
		req, _ := http.NewRequest("GET", "http://trove/v1/export/events?appKey="+demoApp, nil)
		req.Header.Set("Authorization", "Bearer "+backendSecret)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("iteration %d: export after the cut: %v", it, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("iteration %d: export after the cut: %d %v", it, resp.StatusCode, err)
		}
		stop()
		present := map[string]int{}
		for line := range strings.Lines(string(b)) {
			var ev struct {
				MessageID string `json:"messageId"`
			}
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatalf("iteration %d: export line %q: %v", it, line, err)
			}
			present[ev.MessageID]++
		}
		for id, n := range present {
			if n > 1 {
				res.dup++
				t.Logf("iteration %d: %s exported %d times", it, id, n)
			}
			if !sentIDs[id] {
				res.phantom++
				t.Logf("iteration %d: %s exported but never sent", it, id)
			}
		}
		for _, id := range ackedIDs {
			if present[id] == 0 {
				res.lost++
				if res.lost <= 10 && name == "POWERLOSS" {
					t.Logf("iteration %d: %s was acknowledged before the power cut and is gone", it, id)
				}
			}
		}
		res.sent += len(sentIDs)
		res.acked += len(ackedIDs)
	}
	summary := fmt.Sprintf("%s: iterations=%d seed=%d sent=%d acked=%d lost=%d duplicates=%d phantom=%d restart_avg_ms=%.1f restart_max_ms=%d took=%s",
		name, iterations, seed, res.sent, res.acked, res.lost, res.dup, res.phantom,
		float64(restartTotal.Microseconds())/1000/float64(max(iterations, 1)), maxRestart.Milliseconds(), time.Since(start).Round(time.Second))
	t.Log(summary)
	fmt.Println(summary)
	return res
}
