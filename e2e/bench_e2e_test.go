package e2e

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"trove/bench"
)

// TestBenchE2E loads a real server with `trove bench` the way users load
// it (issue 12): by default every event has a fresh messageId, so two runs
// in a row are both accepted in full and the server counts no duplicates;
// the same -seed twice is all duplicates the second time; -no-message-ids
// is W1n; and what the summaries say was accepted is what the server
// exports.
func TestBenchE2E(t *testing.T) {
	srv := startServer(t, testConfig)
	addr, dataDir := srv.addr, srv.dataDir
	common := []string{"-server", "http://" + addr, "-token", backendSecret, "-app", demoApp, "-n", "2000"}
	tests := []struct {
		name         string
		args         []string
		wantAccepted int
		wantStdout   []string
	}{
		{name: "W1", wantAccepted: 2000, wantStdout: []string{"W1 ingest with messageIds: 2000 events in ",
			"; server: accepted 2000, duplicates 0, rejected 0\n", "messageIds fresh for this run (salt "}},
		{name: "W1 again", wantAccepted: 2000, wantStdout: []string{"W1 ingest with messageIds: 2000 events in ",
			"; server: accepted 2000, duplicates 0, rejected 0\n"}},
		{name: "explicit seed", args: []string{"-seed", "5"}, wantAccepted: 2000, wantStdout: []string{
			"; server: accepted 2000, duplicates 0, rejected 0\n", "messageIds from -seed 5 (repeatable)"}},
		{name: "explicit seed again", args: []string{"-seed", "5"}, wantStdout: []string{
			"; server: accepted 0, duplicates 2000 (the messageIds of -seed 5 repeat those of any earlier run with it), rejected 0\n"}},
		{name: "W1n", args: []string{"-no-message-ids"}, wantAccepted: 2000, wantStdout: []string{
			"W1n ingest without messageIds: 2000 events in ", "; server: accepted 2000, duplicates 0, rejected 0\n"}},
		{name: "W2 shape", args: []string{"-n", "128", "-batch", "1", "-conns", "64"}, wantAccepted: 128, wantStdout: []string{
			"W2 ingest with messageIds: 128 events in ", "; server: accepted 128, duplicates 0, rejected 0\n"}},
		{name: "segment", args: []string{"-segment", "-n", "1000"}, wantAccepted: 1000, wantStdout: []string{
			"segment with messageIds: 1000 events in ", "; server: accepted 1000, duplicates 0, rejected 0\n"}},
		{name: "calibrate", args: []string{"-n", "1000", "-calibrate"}, wantAccepted: 1000, wantStdout: []string{
			"ceiling (in-process fasthttp, discards bodies): 1000 events in ", "\nW1 ingest with messageIds: 1000 events in ",
			"; server: accepted 1000, duplicates 0, rejected 0\n", "\nratio: "}},
	}
	accepted := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, bench.Main, append(common, tt.args...)...)
			if code != 0 {
				t.Fatalf("exit code %d; want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			for _, want := range tt.wantStdout {
				if !strings.Contains(stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout)
				}
			}
			accepted += tt.wantAccepted
		})
	}
	if got := len(exportEvents(t, addr, "").lines); got != accepted {
		t.Errorf("the server exports %d events; the summaries say %d were accepted", got, accepted)
	}

	t.Run("S1", func(t *testing.T) {
		code, stdout, stderr := runCmd(t, bench.Main, append(common, "-data-dir", dataDir, "-settle", "0")...)
		if code != 0 {
			t.Fatalf("exit code %d; want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
		re := regexp.MustCompile(`\nS1: ([0-9.]+) bytes/event \(du of ` + regexp.QuoteMeta(dataDir) + `: (\d+) bytes, 2000 events\)\n`)
		m := re.FindStringSubmatch(stdout)
		if m == nil {
			t.Fatalf("stdout lacks the S1 line:\n%s", stdout)
		}
		perEvent, _ := strconv.ParseFloat(m[1], 64)
		total, _ := strconv.ParseInt(m[2], 10, 64)
		if want := fmt.Sprintf("%.1f", float64(total)/2000); m[1] != want || perEvent <= 0 {
			t.Errorf("S1 %s bytes/event; want %s (%d bytes / 2000)", m[1], want, total)
		}
	})
}
