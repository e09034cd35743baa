package e2e

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCrashReplay kills trove with SIGKILL in the middle of a quarantine
// replay, then runs the replay again: every entry ends up stored exactly
// once. Right after the crash, the stored entries and those still in the
// quarantine are disjoint and together are all of them: a chunk stores its
// events and deletes their entries in one write.
func TestCrashReplay(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	const n, batch = 40_000, 500
	cfg := filepath.Join(t.TempDir(), "trove.toml")
	if err := os.WriteFile(cfg, []byte(schemaConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	c := startChild(t, cfg, dataDir)
	adminCall(t, c.addr, adminSecret, "PUT", schemaPath, checkoutSchema, http.StatusOK, nil)
	id := func(i int) string { return fmt.Sprintf("rp-%05d", i) }
	for i := 0; i < n; i += batch {
		var b strings.Builder
		b.WriteByte('[')
		for j := i; j < i+batch; j++ {
			if j > i {
				b.WriteByte(',')
			}
			// A string revenue: refused by the strict contract.
			b.WriteString(checkout(demoApp, id(j), fmt.Sprintf(`{"revenue":"%d","currency":"EUR"}`, j)))
		}
		b.WriteByte(']')
		r := postEvents(t, c.addr, b.String(), jsonType)
		if r.status != http.StatusBadRequest {
			t.Fatalf("a batch of violating events: %d %s; want 400 (none valid)", r.status, r.body)
		}
	}
	// A looser contract: every quarantined event now passes.
	adminCall(t, c.addr, adminSecret, "PUT", schemaPath, `{"properties":{"attributes":{"properties":{"revenue":{"type":["number","string"]}}}}}`, http.StatusOK, nil)
	w0 := exportEvents(t, c.addr, "limit=1").watermark

	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", "http://"+c.addr+"/admin/quarantine/replay?appKey="+demoApp, nil)
		req.Header.Set("Authorization", "Bearer "+adminSecret)
		resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	// Kill once the first chunk is stored, a little later at random.
	// (Polled every 2 ms, not with testutil.WaitFor, whose pauses grow: the kill
	// must land early in the replay.)
	deadline := time.Now().Add(30 * time.Second)
	for len(exportEvents(t, c.addr, fmt.Sprintf("since=%d&limit=1", w0)).lines) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the replay stored nothing within 30 s")
		}
		time.Sleep(2 * time.Millisecond)
	}
	time.Sleep(time.Duration(rand.Int64N(int64(50 * time.Millisecond))))
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	c.waitExit(t, 10*time.Second)
	if status := <-done; status == http.StatusOK {
		t.Fatalf("the replay of %d entries finished before the kill; the test needs it cut short", n)
	}

	c = startChild(t, cfg, dataDir)
	stored := map[string]int{}
	for _, mid := range messageIDs(t, exportEvents(t, c.addr, "").lines) {
		stored[mid]++
	}
	queued := map[string]bool{}
	for _, q := range quarantineLines(t, c.addr, "") {
		mid, _ := q["messageId"].(string)
		if stored[mid] > 0 {
			t.Errorf("%s is both stored and still in the quarantine after the crash", mid)
		}
		queued[mid] = true
	}
	for mid, k := range stored {
		if k != 1 {
			t.Errorf("%s is stored %d times after the crash", mid, k)
		}
	}
	if len(stored) == 0 || len(stored)+len(queued) != n {
		t.Fatalf("after the crash: %d stored, %d in the quarantine; want some stored and %d in all", len(stored), len(queued), n)
	}
	t.Logf("killed after %d of %d entries were replayed", len(stored), n)

	res := replay(t, c.addr, "")
	if res.Replayed+res.Duplicates != len(queued) || res.StillRejected != 0 {
		t.Errorf("the replay run again: %+v; want the %d entries left replayed, none still rejected", res, len(queued))
	}
	clear(stored)
	for _, mid := range messageIDs(t, exportEvents(t, c.addr, "").lines) {
		stored[mid]++
	}
	for i := range n {
		if k := stored[id(i)]; k != 1 {
			t.Errorf("%s is stored %d times; want once", id(i), k)
		}
	}
	if len(stored) != n {
		t.Errorf("the export holds %d distinct events; want %d", len(stored), n)
	}
	if q := quarantineLines(t, c.addr, ""); len(q) != 0 {
		t.Errorf("the quarantine after both replays holds %d entries; want none", len(q))
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	if code := c.waitExit(t, 10*time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM; want 0", code)
	}
}
