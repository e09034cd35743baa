package e2e

// The crash loop: the built binary, killed with SIGKILL at random moments
// while eight writers send batches with unique messageIds, restarted on the
// same data directory, again and again; batches that were not acknowledged
// are sent again after each restart. At the end every acknowledged event is
// exported, once, and nothing that was never sent.

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

var crashCycles = flag.Int("crashloop.cycles", 4, "kill -9 cycles of TestCrashLoop (RELIABILITY.md: 20)")

type crashLoopResult struct {
	sent, acked, lost, dup, phantom, partial int
}

func TestCrashLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	r := crashLoop(t, "CRASHLOOP", testConfig, *crashCycles)
	if r.acked == 0 {
		t.Fatal("no batch was acknowledged: the test saw nothing")
	}
	if r.lost+r.dup+r.phantom+r.partial > 0 {
		t.Errorf("%+v: want no loss, no duplicate, nothing never sent, no partial batch", r)
	}
}

// TestCrashLoopControl is the negative control: with ingest.sync = false a
// 202 comes before the write reaches the operating system, so kill -9 can
// lose acknowledged events, and the harness must see it.
func TestCrashLoopControl(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	cfg := strings.Replace(testConfig, `log_level = "debug"`, "log_level = \"debug\"\n[ingest]\nsync = false", 1)
	r := crashLoop(t, "CRASHLOOP-CONTROL", cfg, *crashCycles)
	if r.lost == 0 {
		t.Errorf("with sync off, no acknowledged batch was lost in %d kills (%d acknowledged): the harness cannot tell", *crashCycles, r.acked)
	}
}

// crashLoop runs cycles of start, write, kill -9; then a clean restart that
// checks the export.
func crashLoop(t *testing.T, name, cfgText string, cycles int) crashLoopResult {
	t.Helper()
	cfg := writeConfigText(t, cfgText)
	dataDir := t.TempDir()
	troveBinary(t) // built before the first restart is timed
	sent, acked := map[string]bool{}, map[string]bool{}
	var pending []string
	var restartTotal, restartMax time.Duration
	var res crashLoopResult
	start := time.Now()
	for c := range cycles {
		t0 := time.Now()
		child := startChild(t, cfg, dataDir)
		took := time.Since(t0)
		restartTotal += took
		restartMax = max(restartMax, took)
		w := startWritersPrefix(t, child.addr, 8, fmt.Sprintf("c%d", c), pending)
		w.waitFirstAck(t)
		time.Sleep(time.Duration(100+rand.IntN(500)) * time.Millisecond)
		if err := child.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		child.waitExit(t, 10*time.Second)
		w.finish()
		for id := range w.mu.sent {
			sent[id] = true
		}
		for id := range w.mu.acked {
			acked[id] = true
		}
		pending = pending[:0]
		for id := range sent {
			if !acked[id] {
				pending = append(pending, id)
			}
		}
	}
	// A clean run: what is still pending is sent again, then a SIGTERM.
	child := startChild(t, cfg, dataDir)
	w := startWritersPrefix(t, child.addr, 8, "final", pending)
	w.waitFirstAck(t)
	time.Sleep(200 * time.Millisecond)
	child.cmd.Process.Signal(syscall.SIGTERM)
	if code := child.waitExit(t, 10*time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM; want 0", code)
	}
	w.finish()
	for id := range w.mu.sent {
		sent[id] = true
	}
	for id := range w.mu.acked {
		acked[id] = true
	}

	child = startChild(t, cfg, dataDir)
	perBatch, _, dups := exportedBatches(t, child.addr)
	res.dup = dups
	for b, n := range perBatch {
		switch {
		case !sent[b]:
			res.phantom++
			t.Errorf("batch %s is exported but was never sent", b)
		case n != batchSize:
			res.partial++
			t.Errorf("batch %s has %d of its %d events exported; want all or none", b, n, batchSize)
		}
	}
	for b := range acked {
		if perBatch[b] != batchSize {
			res.lost++
			if res.lost <= 5 {
				t.Logf("batch %s was acknowledged and %d of its events are exported", b, perBatch[b])
			}
		}
	}
	child.cmd.Process.Signal(syscall.SIGTERM)
	child.waitExit(t, 10*time.Second)
	res.sent, res.acked = len(sent), len(acked)
	summary := fmt.Sprintf("%s: cycles=%d writers=8 batch=%d sent_batches=%d acked_batches=%d lost=%d duplicates=%d phantom=%d partial=%d restart_avg_ms=%d restart_max_ms=%d took=%s",
		name, cycles, batchSize, res.sent, res.acked, res.lost, res.dup, res.phantom, res.partial,
		(restartTotal / time.Duration(max(cycles, 1))).Milliseconds(), restartMax.Milliseconds(), time.Since(start).Round(time.Second))
	t.Log(summary)
	fmt.Println(summary)
	return res
}

func writeConfigText(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "trove.toml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
