package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"trove/internal/testutil"
)

// TestE2ERetention: events stored under no retention are removed when the
// server starts with one that makes them too old, day by day; younger ones
// stay, events that old are refused at ingest from then on, and /metrics
// counts what went.
func TestE2ERetention(t *testing.T) {
	srv := startServer(t, testConfig)
	addr, dir, stop := srv.addr, srv.dataDir, srv.stop
	now := time.Now().UTC()
	var batch []string
	for _, age := range []int{20, 12, 9, 2, 0} {
		at := now.Add(-time.Duration(age) * 24 * time.Hour).Format(time.RFC3339)
		batch = append(batch, fmt.Sprintf(`{"type":"event","event":"age-%d","userId":"u","eventTime":%q,"appKey":%q}`, age, at, demoApp))
	}
	decodeAnswer(t, postEvents(t, addr, "["+strings.Join(batch, ",")+"]"), http.StatusAccepted)
	stop()

	addr = startServer(t, strings.Replace(testConfig, `log_level = "debug"`, `log_level = "debug"
retention = "7d"`, 1), inDir(dir)).addr
	// The first pass runs as the store opens.
	testutil.WaitFor(t, 30*time.Second, func() error {
		lines := exportEvents(t, addr, "").lines
		names := strings.Join(lines, "\n")
		if strings.Contains(names, "age-20") || strings.Contains(names, "age-12") || strings.Contains(names, "age-9") {
			return fmt.Errorf("events older than 7 days are still exported: %v", lines)
		}
		if len(lines) != 2 || !strings.Contains(names, "age-2") || !strings.Contains(names, "age-0") {
			t.Fatalf("after retention: %d lines %v; want age-2 and age-0", len(lines), lines)
		}
		return nil
	})
	// Counted once the pass has compacted what it removed: 3 days, in seconds.
	testutil.WaitFor(t, 30*time.Second, func() error {
		if v := scrape(t, addr)["trove_retention_removed_seconds_total"]; v != 3*86400 {
			return fmt.Errorf("trove_retention_removed_seconds_total = %v; want 3 days (259200)", v)
		}
		return nil
	})
	old := now.Add(-8 * 24 * time.Hour).Format(time.RFC3339)
	a := decodeAnswer(t, postEvents(t, addr, fmt.Sprintf(`{"type":"event","event":"late","userId":"u","eventTime":%q,"appKey":%q}`, old, demoApp)), http.StatusBadRequest)
	if len(a.Errors) != 1 || a.Errors[0].Field != "eventTime" || !strings.Contains(a.Errors[0].Message, "retention of 7d") {
		t.Errorf("an event older than the retention: %+v; want a 400 naming eventTime and the retention", a)
	}
}
