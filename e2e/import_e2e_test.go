package e2e

// `trove import`, end to end: the vendors' export files of testdata/import
// sent to a real server by the real command, then compared with the
// export; a second run stores nothing; --state resumes; 429 with
// Retry-After is waited out; JSON arrays and profiles.

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"trove/cli"

	"github.com/goccy/go-json"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// copyFixture copies testdata/import/name into a new directory (the
// rejected lines are written beside the input) and returns its path.
func copyFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleRoot, "testdata", "import", name))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// runImport runs `trove import` in-process against addr and returns its
// exit status and stderr.
func runImport(t *testing.T, addr string, args ...string) (int, string) {
	t.Helper()
	args = append(args, "--app", demoApp, "--server", "http://"+addr, "--token", backendSecret)
	code, _, stderr := runCmd(t, cli.Import, args...)
	return code, stderr
}

// keyFields are the fields of an exported event that the want files give.
type keyFields struct {
	MessageID string `json:"messageId"`
	Event     string `json:"event"`
	UserID    string `json:"userId"`
	EventTime string `json:"eventTime"`
}

func readKeyFields(t *testing.T, lines []string) map[string]keyFields {
	t.Helper()
	out := map[string]keyFields{}
	for _, l := range lines {
		var k keyFields
		if err := json.Unmarshal([]byte(l), &k); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if _, dup := out[k.MessageID]; dup {
			t.Errorf("messageId %s twice", k.MessageID)
		}
		out[k.MessageID] = k
	}
	return out
}

func fileLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for l := range strings.Lines(string(b)) {
		out = append(out, strings.TrimSuffix(l, "\n"))
	}
	return out
}

// TestImportVendorFiles: each vendor's export format becomes exactly the
// events of its want file; its invalid line is rejected into
// FILE.rejected.ndjson; a second import stores nothing.
func TestImportVendorFiles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file, want, format string
		rejectedLine       int // 1-based line of the fixture that is invalid
	}{
		{"segment.ndjson", "segment.want.ndjson", "segment", 5},
		{"mixpanel.ndjson", "mixpanel.want.ndjson", "mixpanel", 4},
		{"amplitude.json.gz", "amplitude.want.ndjson", "amplitude", 3},
		{"trove.ndjson.zst", "trove.want.ndjson", "trove", 4},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			addr := startServer(t, testConfig).addr
			in := copyFixture(t, tc.file)
			code, out := runImport(t, addr, "events", in) // --format auto
			if code != 0 || !strings.Contains(out, "("+tc.format+")") {
				t.Fatalf("exit %d, stderr %s; want 0 and the format %s detected", code, out, tc.format)
			}
			want := readKeyFields(t, fileLines(t, filepath.Join(moduleRoot, "testdata", "import", tc.want)))
			got := readKeyFields(t, exportEvents(t, addr, "").lines)
			if len(got) != len(want) {
				t.Errorf("exported %d events; want %d", len(got), len(want))
			}
			for id, w := range want {
				if got[id] != w {
					t.Errorf("event %s exported as %+v; want %+v", id, got[id], w)
				}
			}
			rej := fileLines(t, in+".rejected.ndjson")
			src := plainLines(t, filepath.Join(moduleRoot, "testdata", "import", tc.file))
			if len(rej) != 1 || rej[0] != src[tc.rejectedLine-1] {
				t.Errorf("rejected lines %q; want line %d of the input, %q", rej, tc.rejectedLine, src[tc.rejectedLine-1])
			}
			if !strings.Contains(out, fmt.Sprintf("rejected line %d:", tc.rejectedLine)) {
				t.Errorf("summary %q does not name rejected line %d", out, tc.rejectedLine)
			}
			code, out = runImport(t, addr, "events", in, "--format", tc.format)
			if code != 0 || !strings.Contains(out, fmt.Sprintf("0 stored, %d duplicates", len(want))) {
				t.Errorf("second import: exit %d, %s; want every event a duplicate", code, out)
			}
			if n := len(exportEvents(t, addr, "").lines); n != len(want) {
				t.Errorf("after the second import %d events; want %d", n, len(want))
			}
		})
	}
}

// plainLines reads a fixture's lines, decompressing .gz.
func plainLines(t *testing.T, path string) []string {
	t.Helper()
	if !strings.HasSuffix(path, ".gz") && !strings.HasSuffix(path, ".zst") {
		return fileLines(t, path)
	}
	if strings.HasSuffix(path, ".zst") {
		r, closeFn, err := openFixtureZstd(path)
		if err != nil {
			t.Fatal(err)
		}
		defer closeFn()
		return scanLines(t, r)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	return scanLines(t, zr)
}

func scanLines(t *testing.T, r interface{ Read([]byte) (int, error) }) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// troveLines returns n Trove events, as an export holds them.
func troveLines(n int, prefix string) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"type":"event","event":"imported","userId":"u%d","eventTime":"2026-07-01T00:00:%02dZ","appKey":"%s","messageId":"%s-%05d"}`+"\n", i%7, i%60, demoApp, prefix, i)
	}
	return b.String()
}

func writeGzip(t *testing.T, path, s string) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(s))
	zw.Close()
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestImportResume: a run that stopped after 1,200 of 2,000 lines (its
// --state file says so) is continued by the next run, which sends only the
// rest; a run after that finds nothing to do.
func TestImportResume(t *testing.T) {
	t.Parallel()
	addr := startServer(t, testConfig).addr
	dir := t.TempDir()
	in := filepath.Join(dir, "events.ndjson.gz")
	writeGzip(t, in, troveLines(2000, "res"))
	abs, _ := filepath.Abs(in)
	state := filepath.Join(dir, "import.state")
	b, _ := json.Marshal(map[string]any{"files": map[string]int{abs: 1200}})
	os.WriteFile(state, b, 0o644)
	code, out := runImport(t, addr, "events", in, "--state", state, "--concurrency", "3", "--batch", "128")
	if code != 0 || !strings.Contains(out, "800 lines sent, 800 stored") {
		t.Fatalf("resumed import: exit %d, %s; want the 800 lines after line 1200 sent", code, out)
	}
	ids := messageIDs(t, exportEvents(t, addr, "").lines)
	if len(ids) != 800 {
		t.Fatalf("exported %d events; want 800", len(ids))
	}
	for _, id := range ids {
		var n int
		if _, err := fmt.Sscanf(id, "res-%d", &n); err != nil || n < 1200 {
			t.Errorf("exported %s; want only lines after 1200", id)
		}
	}
	var st struct{ Files map[string]int }
	b, _ = os.ReadFile(state)
	if json.Unmarshal(b, &st) != nil || st.Files[abs] != 2000 {
		t.Errorf("state %s; want 2000 lines done", b)
	}
	code, out = runImport(t, addr, "events", in, "--state", state)
	if code != 0 || !strings.Contains(out, "nothing to import") {
		t.Errorf("third run: exit %d, %s; want nothing to import", code, out)
	}
}

// TestImportRetryAfter: an app limited to 200 events/s answers 429 with
// Retry-After; the import waits as told and stores every event once.
func TestImportRetryAfter(t *testing.T) {
	// Not in parallel: under load the import may not outrun the rate.
	cfg := strings.Replace(testConfig, `app_key = "`+demoApp+`"`, `app_key = "`+demoApp+`"`+"\nrate_limit = 200\nrate_burst = 200", 1)
	srv := startServer(t, cfg)
	addr, logs := srv.addr, srv.logs
	in := filepath.Join(t.TempDir(), "events.ndjson")
	os.WriteFile(in, []byte(troveLines(700, "ra")), 0o644)
	code, out := runImport(t, addr, "events", in, "--batch", "100", "--concurrency", "2")
	if code != 0 || !strings.Contains(out, "700 lines sent, 700 stored, 0 duplicates, 0 rejected") {
		t.Fatalf("exit %d, %s; want all 700 stored", code, out)
	}
	if !strings.Contains(logs.String(), `"status":429`) {
		t.Errorf("the server never answered 429; the test proves nothing")
	}
	if n := len(exportEvents(t, addr, "").lines); n != 700 {
		t.Errorf("exported %d; want 700", n)
	}
}

// TestImportJSONArrayAndProfiles: a JSON array of events, Trove's profile
// export and Mixpanel's profile export.
func TestImportJSONArrayAndProfiles(t *testing.T) {
	t.Parallel()
	addr := startServer(t, testConfig).addr
	arr := filepath.Join(t.TempDir(), "events.json")
	os.WriteFile(arr, []byte("[\n"+strings.ReplaceAll(strings.TrimSpace(troveLines(3, "arr")), "\n", ",\n")+"\n]\n"), 0o644)
	if code, out := runImport(t, addr, "events", arr); code != 0 || !strings.Contains(out, "3 lines sent, 3 stored") {
		t.Errorf("JSON array: exit %d, %s", code, out)
	}
	tp := copyFixture(t, "trove-profiles.ndjson")
	code, out := runImport(t, addr, "profiles", tp)
	if code != 0 || !strings.Contains(out, "3 lines sent, 2 stored, 0 duplicates, 1 rejected") {
		t.Errorf("trove profiles: exit %d, %s", code, out)
	}
	if rej := fileLines(t, tp+".rejected.ndjson"); len(rej) != 1 || !strings.Contains(rej[0], "tp-u3") {
		t.Errorf("rejected profiles %q; want tp-u3's", rej)
	}
	p := profileOf(t, addr, "tp-u1")
	if p["pyze_id"] != "0b7f1d2e-1111-4a2b-8c3d-000000000001" || p["email_id"] != "ada@example.com" || p["ltv"] != float64(35) {
		t.Errorf("tp-u1 = %v; want its pyze_id, email_id and ltv kept", p)
	}
	if code, out := runImport(t, addr, "profiles", copyFixture(t, "mixpanel-profiles.ndjson")); code != 0 || !strings.Contains(out, "(mixpanel)") {
		t.Errorf("mixpanel profiles: exit %d, %s", code, out)
	}
	if p := profileOf(t, addr, "mpp-u1"); p["email_id"] != "mpp@example.com" || p["first_name"] != "Mia" || p["plan"] != "team" {
		t.Errorf("mpp-u1 = %v; want $email, $first_name and plan set", p)
	}
}

// openFixtureZstd opens a .zst fixture.
func openFixtureZstd(path string) (*zstd.Decoder, func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	zr, err := zstd.NewReader(f)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return zr, func() { zr.Close(); f.Close() }, nil
}

// TestImportStopsAndResumes: a server refuses a request (413: one line
// makes the 13th batch larger than its max_request_bytes); the import
// stops there, its --state recording the 1,200 lines before that batch,
// and the next run, against a server that takes the batch, sends only
// the lines from 1,201 on.
func TestImportStopsAndResumes(t *testing.T) {
	t.Parallel()
	small := strings.Replace(testConfig, `log_level = "debug"`, "log_level = \"debug\"\n[ingest]\nmax_request_bytes = 65536", 1)
	addr1 := startServer(t, small).addr
	lines := strings.Split(strings.TrimSuffix(troveLines(2000, "stop"), "\n"), "\n")
	lines[1250] = `{"type":"event","event":"huge","userId":"u","eventTime":"2026-07-01T00:00:00Z","appKey":"` + demoApp + `","messageId":"stop-huge","attributes":{"blob":"` + strings.Repeat("x", 70000) + `"}}`
	dir := t.TempDir()
	in := filepath.Join(dir, "events.ndjson")
	os.WriteFile(in, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	state := filepath.Join(dir, "state.json")
	code, out := runImport(t, addr1, "events", in, "--state", state, "--concurrency", "1", "--batch", "100")
	if code != 1 || !strings.Contains(out, "413") || !strings.Contains(out, "before line 1201 are done") {
		t.Fatalf("first run: exit %d, %s; want 1 with the 413 and the lines done", code, out)
	}
	if n := len(exportEvents(t, addr1, "").lines); n != 1200 {
		t.Errorf("the first server has %d events; want the 1200 before the refused batch", n)
	}
	addr2 := startServer(t, testConfig).addr
	code, out = runImport(t, addr2, "events", in, "--state", state, "--concurrency", "4", "--batch", "100")
	if code != 0 || !strings.Contains(out, "800 lines sent, 799 stored, 0 duplicates, 1 rejected") {
		t.Fatalf("second run: exit %d, %s; want lines 1201-2000 sent, the huge one rejected", code, out)
	}
	for _, id := range messageIDs(t, exportEvents(t, addr2, "").lines) {
		var n int
		if _, err := fmt.Sscanf(id, "stop-%d", &n); err != nil || n < 1200 {
			t.Errorf("the second server has %s; want only lines from 1201 on", id)
		}
	}
}
