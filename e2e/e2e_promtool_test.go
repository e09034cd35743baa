package e2e

// /metrics as a stock Prometheus sees it: `promtool check metrics` (the
// exposition parser and the naming lints of Prometheus itself) on a real
// server's scrape after some traffic of every kind.

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// promtool returns the path of promtool, or fails the test saying how to
// install it, unless TROVE_TEST_PROMTOOL is "skip" (.ci/run installs it and
// never sets that).
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err == nil {
		return p
	}
	const how = "promtool is not installed: on Debian or Ubuntu, apt-get install -y prometheus (it ships /usr/bin/promtool; .ci/run installs it)"
	if os.Getenv("TROVE_TEST_PROMTOOL") == "skip" {
		t.Skip(how + " (TROVE_TEST_PROMTOOL=skip)")
	}
	t.Fatal(how + "; or set TROVE_TEST_PROMTOOL=skip to skip this test")
	return ""
}

func TestE2EMetricsPromtool(t *testing.T) {
	tool := promtool(t)
	addr := startServer(t, testConfig).addr

	// Traffic that creates series of every family: accepted, duplicate and
	// rejected events; a profile update; each export kind; 401s and 404s;
	// latencies in several buckets.
	bad := `{"type":"event","event":"e","eventTime":"2020-06-03T17:03:48Z","appKey":"` + demoApp + `"}`
	decodeAnswer(t, postEvents(t, addr, "["+event("e", "p1")+","+event("e", "p2")+","+bad+"]"), http.StatusAccepted)
	decodeAnswer(t, postEvents(t, addr, event("e", "p1"), jsonType), http.StatusAccepted)
	if r := postProfiles(t, addr, seedProfiles); r.status != http.StatusAccepted {
		t.Fatalf("POST /users/profile: %d %s; want 202", r.status, r.body)
	}
	exportEvents(t, addr, "")
	auth := "Authorization: Bearer " + backendSecret
	for _, path := range []string{"/v1/export/profiles", "/v1/export/rejected"} {
		if r := request(t, "GET", "http://"+addr+path+"?appKey="+demoApp, nil, auth); r.status != http.StatusOK {
			t.Fatalf("GET %s: %d %s; want 200", path, r.status, r.body)
		}
	}
	request(t, "GET", "http://"+addr+"/v1/export/events?appKey="+demoApp, nil, "Authorization: Bearer wrong")
	request(t, "GET", "http://"+addr+"/no/such/path", nil)
	request(t, "GET", "http://"+addr+"/healthz", nil)

	r := request(t, "GET", "http://"+addr+"/metrics", nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s; want 200", r.status, r.body)
	}
	for _, want := range []string{
		"# TYPE trove_http_request_duration_seconds histogram\n",
		`trove_http_request_duration_seconds_bucket{method="POST",route="/v1/events",le="+Inf"} `,
		"# TYPE trove_events_accepted_total counter\n",
		"# TYPE trove_storage_open gauge\n",
		"# HELP trove_retention_removed_seconds_total ",
	} {
		if !bytes.Contains(r.body, []byte(want)) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if bytes.Contains(r.body, []byte("vmrange=")) {
		t.Errorf("/metrics has vmrange buckets, which Prometheus cannot aggregate; want le buckets")
	}

	cmd := exec.Command(tool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(r.body)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("promtool check metrics on /metrics: %v\n%s\n(the scrape:)\n%s", err, out, firstLines(string(r.body), 400))
	}
	families, histograms := bytes.Count(r.body, []byte("# TYPE ")), bytes.Count(r.body, []byte(" histogram\n"))
	t.Logf("PROMTOOL: families=%d histograms=%d vmrange_buckets=0 promtool_problems=0", families, histograms)
}

// firstLines returns at most n lines of s.
func firstLines(s string, n int) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		if n == 0 {
			b.WriteString("…\n")
			break
		}
		b.WriteString(line)
		n--
	}
	return b.String()
}
