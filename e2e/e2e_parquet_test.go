package e2e

// Parquet export (SPEC section 8): every export of a range as Parquet,
// read back with DuckDB, must hold the same events, in the same order, as
// the NDJSON export of that range, with the columns and types of the spec.

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-json"

	"trove/cli"
	"trove/internal/duckdbtest"
)

// parquetEvents posts n varied events to app: names, users, offsets,
// microseconds, clock skew, user agents, escapes and missing attributes.
func parquetEvents(t *testing.T, addr, app, secret string, first, n int) {
	t.Helper()
	names := []string{"signup", "click", "buy", `say "hi"`}
	offsets := []string{"Z", "+02:00", "-07:00", "+05:30"}
	var batch []string
	for i := first; i < first+n; i++ {
		ts := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * 17 * time.Minute).Add(time.Duration(i%1000) * time.Microsecond)
		off := offsets[i%len(offsets)]
		loc := time.UTC
		if off != "Z" {
			tt, _ := time.Parse("-07:00", off)
			loc = tt.Location()
		}
		et := ts.In(loc).Format("2006-01-02T15:04:05.999999Z07:00")
		ev := map[string]any{
			"type": "event", "event": names[i%len(names)], "userId": fmt.Sprintf("user-%d", i%7),
			"eventTime": et, "appKey": app, "messageId": fmt.Sprintf("pq-%s-%d", app[:4], i),
		}
		if i%3 != 0 {
			ev["attributes"] = map[string]any{"i": i, "plan": "pro", "tags": []any{"a", i%2 == 0}, "note": "é \u2603 \"q\"", "nested": map[string]any{"x": nil}}
		}
		if i%4 == 1 {
			ev["context"] = map[string]any{"userAgent": "agent/" + strconv.Itoa(i%3), "ip": "10.0.0." + strconv.Itoa(i%9)}
		}
		if i%10 == 5 {
			ev["sentAt"] = time.Now().Add(-2 * time.Hour).UTC().Format(time.RFC3339) // a slow clock: eventTime is corrected
		}
		b, _ := json.Marshal(ev)
		batch = append(batch, string(b))
		if len(batch) == 50 || i == first+n-1 {
			r := postEvents(t, addr, "["+strings.Join(batch, ",")+"]", jsonType, "Authorization: Bearer "+secret)
			if a := decodeAnswer(t, r, http.StatusAccepted); a.Accepted != len(batch) {
				t.Fatalf("accepted %d of %d: %s", a.Accepted, len(batch), r.body)
			}
			batch = batch[:0]
		}
	}
}

// parquetExport fetches the Parquet export of query into a file and
// returns its path and the response.
func parquetExport(t *testing.T, addr, query string) (string, response) {
	t.Helper()
	u := "http://" + addr + "/v1/export/events?appKey=" + demoApp + "&format=parquet"
	if query != "" {
		u += "&" + query
	}
	r := request(t, "GET", u, nil, "Authorization: Bearer "+backendSecret, "Accept-Encoding: zstd, gzip")
	if r.status != http.StatusOK {
		t.Fatalf("GET %s: status %d (%s); want 200", u, r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/vnd.apache.parquet" {
		t.Errorf("GET %s: Content-Type %q; want application/vnd.apache.parquet", u, ct)
	}
	if ce := r.header.Get("Content-Encoding"); ce != "" {
		t.Errorf("GET %s: Content-Encoding %q; want none (the columns are compressed)", u, ce)
	}
	path := filepath.Join(t.TempDir(), "export.parquet")
	if err := os.WriteFile(path, r.body, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, r
}

// parquetQuery selects every column, times as µs since the epoch.
func parquetQuery(path string) string {
	return `SELECT seq, appKey, event, userId, messageId, epoch_us(eventTime) AS eventTime, epoch_us(receivedAt) AS receivedAt,
		epoch_us(originalEventTime) AS originalEventTime, clockSkewMs, context_ip, context_userAgent, attributes, raw
		FROM read_parquet(` + duckdbtest.Literal(path) + `)`
}

// micros parses an RFC 3339 member of ev into µs since the epoch.
func micros(t *testing.T, ev map[string]any, name string) any {
	t.Helper()
	s, ok := ev[name].(string)
	if !ok {
		return nil
	}
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("%s %q: %v", name, s, err)
	}
	return strconv.FormatInt(tm.UnixMicro(), 10)
}

// compareRows checks that the DuckDB rows are the NDJSON lines, one for
// one, column by column, and returns the rows' sequences.
func compareRows(t *testing.T, rows []map[string]any, lines []string) []uint64 {
	t.Helper()
	if len(rows) != len(lines) {
		t.Fatalf("Parquet has %d rows; the NDJSON export %d lines", len(rows), len(lines))
	}
	var seqs []uint64
	for i, line := range lines {
		row := rows[i]
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatal(err)
		}
		ctx, _ := ev["context"].(map[string]any)
		str := func(m map[string]any, k string) any {
			if v, ok := m[k].(string); ok {
				return v
			}
			return nil
		}
		var skew any
		if v, ok := ev["clockSkewMs"].(float64); ok {
			skew = strconv.FormatInt(int64(v), 10)
		}
		want := map[string]any{
			"appKey": ev["appKey"], "event": ev["event"], "userId": ev["userId"], "messageId": ev["messageId"],
			"eventTime": micros(t, ev, "eventTime"), "receivedAt": micros(t, ev, "receivedAt"),
			"originalEventTime": micros(t, ev, "originalEventTime"), "clockSkewMs": skew,
			"context_ip": str(ctx, "ip"), "context_userAgent": str(ctx, "userAgent"), "raw": line,
		}
		for k, w := range want {
			if row[k] != w {
				t.Fatalf("row %d: %s = %#v; want %#v (line %s)", i, k, row[k], w, line)
			}
		}
		switch a := row["attributes"].(type) {
		case nil:
			if ev["attributes"] != nil {
				t.Fatalf("row %d: attributes null; want %v", i, ev["attributes"])
			}
		case string:
			var got any
			if err := json.Unmarshal([]byte(a), &got); err != nil || !jsonEqual(got, ev["attributes"]) {
				t.Fatalf("row %d: attributes %q; want %v", i, a, ev["attributes"])
			}
		default:
			t.Fatalf("row %d: attributes %#v is not a string", i, a)
		}
		seq, err := strconv.ParseUint(fmt.Sprint(row["seq"]), 10, 64)
		if err != nil {
			t.Fatalf("row %d: seq %#v: %v", i, row["seq"], err)
		}
		seqs = append(seqs, seq)
	}
	return seqs
}

func TestE2EParquetExport(t *testing.T) {
	t.Parallel()
	duckdbtest.Dir(t) // fail first, saying how to install it
	addr := startServer(t, testConfig).addr
	parquetEvents(t, addr, demoApp, backendSecret, 0, 240)
	parquetEvents(t, addr, otherApp, otherSecret, 0, 30) // sequences of another app in between
	parquetEvents(t, addr, demoApp, backendSecret, 240, 60)
	all := exportEvents(t, addr, "")
	if len(all.lines) != 300 {
		t.Fatalf("NDJSON export has %d lines; want 300", len(all.lines))
	}

	t.Run("schema", func(t *testing.T) {
		path, _ := parquetExport(t, addr, "")
		want := []string{
			"seq BIGINT", "appKey VARCHAR", "event VARCHAR", "userId VARCHAR", "messageId VARCHAR",
			"eventTime TIMESTAMP WITH TIME ZONE", "receivedAt TIMESTAMP WITH TIME ZONE", "originalEventTime TIMESTAMP WITH TIME ZONE",
			"clockSkewMs BIGINT", "context_ip VARCHAR", "context_userAgent VARCHAR", "attributes VARCHAR", "raw VARCHAR",
		}
		var got []string
		for _, r := range duckdbtest.Query(t, "DESCRIBE SELECT * FROM read_parquet("+duckdbtest.Literal(path)+")") {
			got = append(got, fmt.Sprint(r["column_name"], " ", r["column_type"]))
		}
		if strings.Join(got, ", ") != strings.Join(want, ", ") {
			t.Errorf("columns\n  %s\nwant\n  %s", strings.Join(got, ", "), strings.Join(want, ", "))
		}
		for _, r := range duckdbtest.Query(t, "SELECT DISTINCT compression FROM parquet_metadata("+duckdbtest.Literal(path)+")") {
			if r["compression"] != "ZSTD" {
				t.Errorf("a column chunk is compressed with %v; want ZSTD only", r["compression"])
			}
		}
	})

	for _, tc := range []struct{ name, query string }{
		{"everything", ""},
		{"from and to", "from=2026-11-01T12:00:00Z&to=2026-11-03"},
		{"from with an offset and microseconds", "from=" + url.QueryEscape("2026-11-02T01:08:00.000123+02:00")},
		{"event names", "event=" + url.QueryEscape(`click,say "hi"`)},
		{"one user", "userId=user-3"},
		{"since and until", "since=40&until=280"},
		{"limit", "limit=17"},
		{"everything together", "from=2026-11-01&to=2026-11-04&event=click,buy&userId=user-2&limit=5"},
		{"since the watermark: empty", "since=" + strconv.FormatUint(all.watermark, 10)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nd := exportEvents(t, addr, tc.query)
			path, r := parquetExport(t, addr, tc.query)
			if wm := r.header.Get("X-Trove-Watermark"); wm != strconv.FormatUint(nd.watermark, 10) {
				t.Errorf("X-Trove-Watermark %q; want %d as the NDJSON export's", wm, nd.watermark)
			}
			seqs := compareRows(t, duckdbtest.Query(t, parquetQuery(path)), nd.lines)
			if tc.name == "everything" && len(seqs) != 300 {
				t.Errorf("%d rows; want 300", len(seqs))
			}
			for i, s := range seqs {
				if s == 0 || s > nd.watermark {
					t.Errorf("row %d: seq %d outside (0, watermark %d]", i, s, nd.watermark)
				}
			}
		})
	}

	// The seq column is the ingest sequence: since=seq-1 starts at that row.
	t.Run("seq is the ingest sequence", func(t *testing.T) {
		path, _ := parquetExport(t, addr, "")
		rows := duckdbtest.Query(t, parquetQuery(path))
		seqs := compareRows(t, rows, all.lines)
		for i := 1; i < len(seqs); i++ {
			if seqs[i] <= seqs[i-1] {
				t.Fatalf("row %d: seq %d after %d; want increasing in ingest order", i, seqs[i], seqs[i-1])
			}
		}
		for i := 0; i < len(seqs); i += 23 {
			next := exportEvents(t, addr, fmt.Sprintf("since=%d&limit=1", seqs[i]-1))
			if len(next.lines) != 1 || next.lines[0] != all.lines[i] {
				t.Errorf("since=%d&limit=1 gave %q; want row %d, %s", seqs[i]-1, next.lines, i, all.lines[i])
			}
		}
	})

	t.Run("download name", func(t *testing.T) {
		_, r := parquetExport(t, addr, "download=1&since=10")
		if cd := r.header.Get("Content-Disposition"); !strings.HasPrefix(cd, `attachment; filename="trove-`) || !strings.HasSuffix(cd, `-since-10.parquet"`) {
			t.Errorf("Content-Disposition %q; want an attachment named trove-…-since-10.parquet", cd)
		}
	})

	t.Run("bad format", func(t *testing.T) {
		r := request(t, "GET", "http://"+addr+"/v1/export/events?appKey="+demoApp+"&format=csv", nil, "Authorization: Bearer "+backendSecret)
		a := decodeAnswer(t, r, http.StatusBadRequest)
		if a.Field != "format" || !strings.Contains(a.Message, "parquet") {
			t.Errorf("answer %s; want field format and a message naming parquet", r.body)
		}
	})

	t.Run("cli", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "events.parquet")
		code, _, stderr := runCmd(t, cli.Export, "events", "--server", addr, "--token", backendSecret,
			"--app", demoApp, "--from", "2026-11-02", "-o", out)
		if code != 0 {
			t.Fatalf("trove export exited %d: %s", code, stderr)
		}
		nd := exportEvents(t, addr, "from=2026-11-02")
		if !strings.Contains(stderr, fmt.Sprintf("exported %d events", len(nd.lines))) {
			t.Errorf("summary %q; want it to count %d events", stderr, len(nd.lines))
		}
		compareRows(t, duckdbtest.Query(t, parquetQuery(out)), nd.lines)
	})
}
