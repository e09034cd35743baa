package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"trove/server"
)

// simClock is a clock that tests move by hand.
type simClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *simClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *simClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// TestE2EDedupWindowOverHours resends the same messageIds over a day of
// simulated server time, across restarts, with a 6-hour dedup window: they
// are duplicates exactly while they lie inside the window, and stored again
// once they are past it. Printed: one DEDUPWINDOW summary line.
func TestE2EDedupWindowOverHours(t *testing.T) {
	t.Parallel()
	clock := &simClock{t: time.Now().UTC().Truncate(time.Hour).Add(17 * time.Minute)}
	t0 := clock.now()
	cfg := testConfig + "\n[ingest]\ndedup_window = \"6h\"\n"
	cfg = strings.Replace(cfg, `log_level = "debug"`, `log_level = "warn"`, 1)

	batch := func(prefix string, n int) string {
		var b strings.Builder
		b.WriteByte('[')
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"type":"event","event":"e","userId":"u%d","eventTime":%q,"appKey":%q,"messageId":"%s-%d"}`,
				i%7, t0.Format(time.RFC3339Nano), demoApp, prefix, i)
		}
		b.WriteByte(']')
		return b.String()
	}
	const n = 300
	a, b := batch("a", n), batch("b", n)
	dataDir := t.TempDir()
	srv := startServer(t, cfg, inDir(dataDir), withHooks(server.Hooks{Clock: clock.now}))
	addr, stop := srv.addr, srv.stop
	restart := func() {
		stop()
		srv := startServer(t, cfg, inDir(dataDir), withHooks(server.Hooks{Clock: clock.now}))
		addr, stop = srv.addr, srv.stop
	}
	steps := []struct {
		after   time.Duration
		restart bool
		body    string
		name    string
		dups    int // of n
	}{
		{0, false, a, "a", 0},
		{time.Minute, false, a, "a", n},
		{time.Hour, false, b, "b", 0},
		{3 * time.Hour, true, a, "a after a restart", n},
		{3 * time.Hour, false, b, "b after a restart", n},
		{6*time.Hour - time.Minute, false, a, "a just inside the window", n},
		{6*time.Hour + time.Minute, false, a, "a just past the window", 0},
		{6*time.Hour + 2*time.Minute, false, a, "a again: its window restarted", n},
		{6*time.Hour + 30*time.Minute, false, b, "b still inside its window", n},
		{7*time.Hour + time.Minute, true, b, "b past its window, after a restart", 0},
		{20 * time.Hour, true, a, "a hours after every window", 0},
		{20 * time.Hour, false, b, "b hours after every window", 0},
		{20*time.Hour + time.Second, false, a + "", "a once more", n},
	}
	want := map[string]int{}
	for _, s := range steps {
		clock.set(t0.Add(s.after))
		if s.restart {
			restart()
		}
		ans := decodeAnswer(t, postEvents(t, addr, s.body), http.StatusAccepted)
		if ans.Duplicates != s.dups || ans.Accepted != n-s.dups {
			t.Fatalf("t0+%v, %s: accepted %d, duplicates %d; want %d duplicates", s.after, s.name, ans.Accepted, ans.Duplicates, s.dups)
		}
		want[s.name[:1]] += n - s.dups
	}
	count := map[string]int{}
	for _, id := range messageIDs(t, exportEvents(t, addr, "").lines) {
		count[id[:1]]++
	}
	if count["a"] != want["a"] || count["b"] != want["b"] {
		t.Fatalf("exported %v; want %v", count, want)
	}
	t.Logf("DEDUPWINDOW: window=6h simulated_hours=20 restarts=3 ids=%d sends=%d stored_a=%d stored_b=%d lost=0 extra=0", 2*n, len(steps), count["a"], count["b"])
}
