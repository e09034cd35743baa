package e2e

// End-to-end tests of GET /metrics and of the request log. Counters are
// process-wide and other tests' servers move them too, so these tests
// assert on deltas between two scrapes of their own server.

import (
	"bufio"
	"encoding/base64"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-json"

	"trove/internal/testutil"
)

// scrape fetches /metrics and returns each series (name and labels, as
// written) with its value.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	r := request(t, "GET", "http://"+addr+"/metrics", nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET /metrics: status %d (%s); want 200", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("GET /metrics: Content-Type %q; want text/plain", ct)
	}
	out := map[string]float64{}
	for line := range strings.Lines(string(r.body)) {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("GET /metrics: line %q has no value", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("GET /metrics: line %q: %v", line, err)
		}
		if _, dup := out[line[:i]]; dup {
			t.Errorf("GET /metrics: series %s appears twice", line[:i])
		}
		out[line[:i]] = v
	}
	return out
}

// delta is after[name] - before[name], where a missing series counts as 0.
func delta(before, after map[string]float64, name string) float64 {
	return after[name] - before[name]
}

func TestE2EMetricsEvents(t *testing.T) {
	addr := startServer(t, testConfig).addr
	accepted := `trove_events_accepted_total{app="` + demoApp + `"}`
	duplicate := `trove_events_duplicate_total{app="` + demoApp + `"}`
	rejected := `trove_events_rejected_total{app="` + demoApp + `"}`
	otherAccepted := `trove_events_accepted_total{app="` + otherApp + `"}`
	stored := "trove_events_stored_total"
	ok202 := `trove_http_requests_total{method="POST",route="/v1/events",code="202"}`
	before := scrape(t, addr)

	// Two valid events and one without a userId: 2 accepted, 1 rejected.
	bad := `{"type":"event","event":"e","eventTime":"2020-06-03T17:03:48Z","appKey":"` + demoApp + `","messageId":"bad"}`
	a := decodeAnswer(t, postEvents(t, addr, "["+event("e", "m1")+","+event("e", "m2")+","+bad+"]"), http.StatusAccepted)
	if a.Accepted != 2 || a.Rejected != 1 {
		t.Fatalf("first batch: %+v; want 2 accepted, 1 rejected", a)
	}
	// m1 again and a new one: 1 accepted, 1 duplicate.
	a = decodeAnswer(t, postEvents(t, addr, "["+event("e", "m1")+","+event("e", "m3")+"]"), http.StatusAccepted)
	if a.Accepted != 1 || a.Duplicates != 1 {
		t.Fatalf("second batch: %+v; want 1 accepted, 1 duplicate", a)
	}
	// ?validate=1 stores, and counts, nothing.
	decodeAnswer(t, postEvents(t, addr, event("e", "m4"), jsonType), http.StatusAccepted)
	decodeAnswer(t, request(t, "POST", "http://"+addr+"/v1/events?validate=1", strings.NewReader(event("e", "m5")), jsonType), http.StatusAccepted)
	// The other app's counters move for its own events only.
	otherEvent := strings.Replace(event("e", "o1"), demoApp, otherApp, 1)
	decodeAnswer(t, postEvents(t, addr, otherEvent, jsonType, "Authorization: Bearer "+otherSecret), http.StatusAccepted)

	after := scrape(t, addr)
	for _, c := range []struct {
		series string
		want   float64
	}{
		{accepted, 4},
		{duplicate, 1},
		{rejected, 1},
		{otherAccepted, 1},
		{stored, 5},
		{ok202, 5},
	} {
		if got := delta(before, after, c.series); got != c.want {
			t.Errorf("%s moved by %v; want %v", c.series, got, c.want)
		}
	}
}

func TestE2EMetricsHTTPAndExport(t *testing.T) {
	addr := startServer(t, testConfig).addr
	var batch []string
	for i := range 50 {
		batch = append(batch, event("e", "x"+strconv.Itoa(i)))
	}
	bad := `{"type":"event","event":"e","eventTime":"2020-06-03T17:03:48Z","appKey":"` + demoApp + `"}`
	decodeAnswer(t, postEvents(t, addr, "["+strings.Join(append(batch, bad), ",")+"]"), http.StatusAccepted)

	notFound := `trove_http_requests_total{method="GET",route="other",code="404"}`
	unauthorized := `trove_http_requests_total{method="GET",route="/v1/export/events",code="401"}`
	exported := `trove_http_requests_total{method="GET",route="/v1/export/events",code="200"}`
	latency := `trove_http_request_duration_seconds_count{method="GET",route="/v1/export/events"}`
	before := scrape(t, addr)

	if r := request(t, "GET", "http://"+addr+"/no/such/path-12345", nil); r.status != http.StatusNotFound {
		t.Fatalf("GET /no/such/path-12345: status %d; want 404", r.status)
	}
	if r := request(t, "GET", "http://"+addr+"/v1/export/events?appKey="+demoApp, nil); r.status != http.StatusUnauthorized {
		t.Fatalf("export without a token: status %d; want 401", r.status)
	}
	// identity, so that the body read is the body sent.
	events := request(t, "GET", "http://"+addr+"/v1/export/events?appKey="+demoApp, nil,
		"Authorization: Bearer "+backendSecret, "Accept-Encoding: identity")
	if events.status != http.StatusOK || strings.Count(string(events.body), "\n") != 50 {
		t.Fatalf("export: status %d, %d lines; want 200, 50 lines", events.status, strings.Count(string(events.body), "\n"))
	}
	rejected := request(t, "GET", "http://"+addr+"/v1/export/rejected?appKey="+demoApp, nil,
		"Authorization: Bearer "+backendSecret, "Accept-Encoding: identity")
	if rejected.status != http.StatusOK || strings.Count(string(rejected.body), "\n") != 1 {
		t.Fatalf("rejected export: status %d, body %q; want 200, one line", rejected.status, rejected.body)
	}
	// A compressed export counts the bytes on the wire.
	gz := request(t, "GET", "http://"+addr+"/v1/export/events?appKey="+demoApp, nil,
		"Authorization: Bearer "+backendSecret, "Accept-Encoding: zstd")
	if gz.status != http.StatusOK || gz.header.Get("Content-Encoding") != "zstd" {
		t.Fatalf("zstd export: status %d, Content-Encoding %q", gz.status, gz.header.Get("Content-Encoding"))
	}

	// A stream's series move when it ends, after the client has its body:
	// scrape until they have.
	var after map[string]float64
	testutil.WaitFor(t, 10*time.Second, testutil.Until("the exports are counted", func() bool {
		after = scrape(t, addr)
		return delta(before, after, exported) == 2
	}))
	for _, c := range []struct {
		series string
		want   float64
	}{
		{notFound, 1},
		{unauthorized, 1},
		{exported, 2},
		{latency, 3},
		{`trove_export_bytes_total{kind="events"}`, float64(len(events.body) + len(gz.body))},
		{`trove_export_lines_total{kind="events"}`, 100},
		{`trove_export_bytes_total{kind="rejected"}`, float64(len(rejected.body))},
		{`trove_export_lines_total{kind="rejected"}`, 1},
	} {
		if got := delta(before, after, c.series); got != c.want {
			t.Errorf("%s moved by %v; want %v", c.series, got, c.want)
		}
	}
	for name := range after {
		if strings.Contains(name, "path-12345") {
			t.Errorf("series %s holds a raw path", name)
		}
	}
}

func TestE2EMetricsStore(t *testing.T) {
	addr := startServer(t, testConfig).addr
	decodeAnswer(t, postEvents(t, addr, event("e", "s1")), http.StatusAccepted)
	exportEvents(t, addr, "") // reads blocks through the cache
	m := scrape(t, addr)
	positive := []string{
		"trove_storage_disk_usage_bytes",
		"trove_storage_memtable_bytes",
		"trove_storage_wal_bytes",
		"trove_storage_watermark",
		"trove_data_dir_free_bytes",
		"trove_data_dir_capacity_bytes",
		"trove_events_stored_total",
		"go_goroutines",
	}
	present := []string{
		"trove_storage_compaction_debt_bytes",
		"trove_storage_compactions_running",
		"trove_storage_l0_sublevels",
		"trove_storage_l0_files",
		"trove_storage_read_amp",
		"trove_storage_block_cache_bytes",
		"trove_storage_block_cache_hits_total",
		"trove_storage_block_cache_misses_total",
		"trove_groups_merged_total",
		"trove_retention_removed_seconds_total",
		"trove_retention_removed_bytes_total",
		"trove_deleted_users_purged_total",
		"trove_deleted_user_events_purged_total",
	}
	for _, name := range positive {
		if v, ok := m[name]; !ok || !(v > 0) {
			t.Errorf("%s = %v (present %v); want > 0", name, v, ok)
		}
	}
	for _, name := range present {
		if v, ok := m[name]; !ok || v < 0 || math.IsNaN(v) {
			t.Errorf("%s = %v (present %v); want >= 0", name, v, ok)
		}
	}
	if m["trove_data_dir_free_bytes"] > m["trove_data_dir_capacity_bytes"] {
		t.Errorf("free %v > capacity %v", m["trove_data_dir_free_bytes"], m["trove_data_dir_capacity_bytes"])
	}
	if m["trove_storage_open"] != 1 {
		t.Errorf("trove_storage_open = %v; want 1", m["trove_storage_open"])
	}
	if m["trove_storage_read_amp"] < m["trove_storage_l0_sublevels"] {
		t.Errorf("read amp %v < L0 sublevels %v", m["trove_storage_read_amp"], m["trove_storage_l0_sublevels"])
	}
	build := false
	for name, v := range m {
		if strings.HasPrefix(name, `trove_build_info{version="`+testVersion+`",goversion="go`) && v == 1 {
			build = true
		}
	}
	if !build {
		t.Errorf("no trove_build_info{version=%q,…} 1", testVersion)
	}
	// Public, like /healthz: bad credentials do not matter.
	if r := request(t, "GET", "http://"+addr+"/metrics", nil, "Authorization: Bearer wrong"); r.status != http.StatusOK {
		t.Errorf("/metrics with a bad token: status %d; want 200", r.status)
	}
}

func base64Std(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// requestLines returns the log's "request" lines, decoded, by request id.
func requestLines(t *testing.T, logs string) map[string][]map[string]any {
	t.Helper()
	out := map[string][]map[string]any{}
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l map[string]any
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("log line %q is not JSON: %v", sc.Text(), err)
		}
		if l["msg"] == "request" {
			id, _ := l["request_id"].(string)
			out[id] = append(out[id], l)
		}
	}
	return out
}

func TestE2ERequestLog(t *testing.T) {
	srv := startServer(t, testConfig)
	addr, logs := srv.addr, srv.logs
	const querySecret = "q-s3cret-in-a-query"
	base := "http://" + addr
	bearer := "Authorization: Bearer " + backendSecret
	type sent struct {
		name, method, url, body string
		header                  []string
		wantID                  string // "" when the server makes one
		wantStatus              int
		wantRoute               string
		wantLevel               string
		wantToken               string
		streamed                bool
	}
	reqs := []sent{
		{name: "ingest", method: "POST", url: base + "/v1/events", body: event("e", "l1"),
			header: []string{jsonType, bearer, "X-Request-Id: client-id-1"}, wantID: "client-id-1",
			wantStatus: 202, wantRoute: "/v1/events", wantLevel: "INFO", wantToken: "backend"},
		{name: "export", method: "GET", url: base + "/v1/export/events?appKey=" + demoApp,
			header: []string{bearer, "Accept-Encoding: identity", "X-Request-Id: client-id-2"}, wantID: "client-id-2",
			wantStatus: 200, wantRoute: "/v1/export/events", wantLevel: "INFO", wantToken: "backend", streamed: true},
		{name: "basic auth and a secret in the query", method: "GET", url: base + "/v1/export/events?appKey=" + demoApp + "&token=" + querySecret,
			header:     []string{"Authorization: Basic " + base64Std(backendSecret+":"), "X-Request-Id: bad id with spaces"},
			wantStatus: 400, wantRoute: "/v1/export/events", wantLevel: "INFO", wantToken: "backend"},
		{name: "a wrong token", method: "GET", url: base + "/v1/export/events?appKey=" + demoApp,
			header:     []string{"Authorization: Bearer " + backendSecret + "-but-wrong"},
			wantStatus: 401, wantRoute: "/v1/export/events", wantLevel: "INFO"},
		{name: "no route", method: "GET", url: base + "/nowhere", header: []string{"X-Request-Id: " + strings.Repeat("x", 65)},
			wantStatus: 404, wantRoute: "", wantLevel: "INFO"},
		{name: "health", method: "GET", url: base + "/healthz", header: []string{"X-Request-Id: probe-1"}, wantID: "probe-1",
			wantStatus: 200, wantRoute: "/healthz", wantLevel: "DEBUG"},
		{name: "metrics", method: "GET", url: base + "/metrics", wantStatus: 200, wantRoute: "/metrics", wantLevel: "DEBUG"},
	}
	ids := make([]string, len(reqs))
	bodies := make([][]byte, len(reqs))
	for i, rq := range reqs {
		r := request(t, rq.method, rq.url, strings.NewReader(rq.body), rq.header...)
		if r.status != rq.wantStatus {
			t.Fatalf("%s: status %d (%s); want %d", rq.name, r.status, r.body, rq.wantStatus)
		}
		ids[i], bodies[i] = r.header.Get("X-Request-Id"), r.body
		if rq.wantID != "" && ids[i] != rq.wantID {
			t.Errorf("%s: X-Request-Id %q; want %q echoed", rq.name, ids[i], rq.wantID)
		}
		if ids[i] == "" || strings.ContainsAny(ids[i], " \t") || len(ids[i]) > 64 {
			t.Errorf("%s: X-Request-Id %q; want a short token", rq.name, ids[i])
		}
	}
	var byID map[string][]map[string]any
	testutil.WaitFor(t, 10*time.Second, testutil.Until("every request is logged", func() bool {
		byID = requestLines(t, logs.String())
		for _, id := range ids {
			if len(byID[id]) == 0 {
				return false
			}
		}
		return true
	}))
	for i, rq := range reqs {
		lines := byID[ids[i]]
		if len(lines) != 1 {
			t.Errorf("%s: %d log lines for request %s; want 1: %v", rq.name, len(lines), ids[i], lines)
			continue
		}
		l := lines[0]
		if l["status"] != float64(rq.wantStatus) || l["route"] != rq.wantRoute || l["level"] != rq.wantLevel || l["method"] != rq.method {
			t.Errorf("%s: line %v; want status %d, route %q, level %s, method %s", rq.name, l, rq.wantStatus, rq.wantRoute, rq.wantLevel, rq.method)
		}
		if _, ok := l["duration_ms"].(float64); !ok {
			t.Errorf("%s: line %v has no duration_ms", rq.name, l)
		}
		if l["remote_ip"] != "127.0.0.1" {
			t.Errorf("%s: remote_ip %v; want 127.0.0.1", rq.name, l["remote_ip"])
		}
		if name, _ := l["token"].(string); name != rq.wantToken {
			t.Errorf("%s: token %q; want %q", rq.name, name, rq.wantToken)
		}
		if rq.wantToken != "" && l["token_id"] == "" {
			t.Errorf("%s: no token_id", rq.name)
		}
		if rq.streamed || rq.wantStatus < 300 {
			if got, ok := l["bytes_out"].(float64); !ok || int(got) != len(bodies[i]) {
				t.Errorf("%s: bytes_out %v; want %d", rq.name, l["bytes_out"], len(bodies[i]))
			}
		}
		if rq.wantStatus >= 400 && rq.wantStatus < 500 && l["err"] == nil {
			t.Errorf("%s: line %v has no err", rq.name, l)
		}
	}
	if l := byID[ids[0]][0]; l["bytes_in"] != float64(len(reqs[0].body)) {
		t.Errorf("ingest: bytes_in %v; want %d", l["bytes_in"], len(reqs[0].body))
	}
	if l := byID[ids[4]][0]; l["path"] != "/nowhere" {
		t.Errorf("no route: path %v; want /nowhere", l["path"])
	}
	if q, _ := byID[ids[2]][0]["query"].(string); !strings.Contains(q, "token=REDACTED") || !strings.Contains(q, "appKey="+demoApp) {
		t.Errorf("query %q; want appKey kept and token redacted", q)
	}
	out := logs.String()
	for _, secret := range []string{backendSecret, base64Std(backendSecret + ":"), querySecret, adminSecret} {
		if strings.Contains(out, secret) {
			t.Errorf("the log holds the secret %q:\n%s", secret, out)
		}
	}
}
