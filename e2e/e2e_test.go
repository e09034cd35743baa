package e2e

// End-to-end tests of the Events and Export APIs, and the helpers that
// every test here uses to talk to a server over real HTTP.

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-json"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

const (
	demoApp       = "yz1Jn-0pSnekg58etEQO4A"
	otherApp      = "other-app-key-0001"
	backendSecret = "s3cret-backend"
	otherSecret   = "s3cret-other-app"
	ingestSecret  = "s3cret-ingest-only"
	adminSecret   = "adm1n-s3cret-for-tests"
)

// backendToken is the TOML of backendSecret's token, which can ingest and
// export the demo app: the configs here that have it declare it with this.
const backendToken = `
[[tokens]]
name = "backend"
secret = "` + backendSecret + `"
scopes = ["ingest", "export"]
apps = ["` + demoApp + `"]
`

// testConfig declares two apps, a token for each, an ingest-only token and
// the admin token.
const testConfig = `
admin_token = "` + adminSecret + `"
log_level = "debug"

[[apps]]
name = "demo"
app_key = "` + demoApp + `"

[[apps]]
name = "other"
app_key = "` + otherApp + `"
` + backendToken + `
[[tokens]]
name = "other"
secret = "` + otherSecret + `"
scopes = ["ingest", "export"]
apps = ["` + otherApp + `"]

[[tokens]]
name = "ingest-only"
secret = "` + ingestSecret + `"
scopes = ["ingest"]
apps = ["` + demoApp + `"]
`

// seedExample is the body of the curl example of the Pyze Events API page
// (SPEC.md, seed/000_52436bf4e01addcf.txt), byte for byte.
const seedExample = `{
    "type": "event",
    "event": "test-event",
    "userId": "Username",
    "eventTime": "2020-06-03T17:03:48-07:00",
    "attributes": {
      "key": "value"
    },
    "appKey": "yz1Jn-0pSnekg58etEQO4A"
}`

var httpClient = &http.Client{Timeout: 30 * time.Second}

type response struct {
	status int
	header http.Header
	body   []byte
}

// request sends one request; header holds "Name: value" pairs.
func request(t *testing.T, method, url string, body io.Reader, header ...string) response {
	t.Helper()
	r, err := tryRequest(method, url, body, header...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// tryRequest is request for a caller that copes with a failed exchange
// itself: the error names the method and the URL.
func tryRequest(method, url string, body io.Reader, header ...string) (response, error) {
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return response{}, err
	}
	for _, h := range header {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: reading the body: %v", method, url, err)
	}
	return response{resp.StatusCode, resp.Header, b}, nil
}

const jsonType = "Content-Type: application/json"

func postEvents(t *testing.T, addr, body string, header ...string) response {
	t.Helper()
	if len(header) == 0 {
		header = []string{jsonType}
	}
	return request(t, "POST", "http://"+addr+"/v1/events", strings.NewReader(body), header...)
}

// answer is the body of a 202, and of a 400 for a batch.
type answer struct {
	Accepted   int  `json:"accepted"`
	Duplicates int  `json:"duplicates"`
	Rejected   int  `json:"rejected"`
	Validated  bool `json:"validated"`
	Errors     []struct {
		Index     *int   `json:"index"`
		Line      *int   `json:"line"`
		MessageID string `json:"messageId"`
		Field     string `json:"field"`
		Message   string `json:"message"`
	} `json:"errors"`
	Error   string `json:"error"`
	Message string `json:"message"`
	Field   string `json:"field"`
}

func decodeAnswer(t *testing.T, r response, wantStatus int) answer {
	t.Helper()
	if r.status != wantStatus {
		t.Fatalf("status %d (%s); want %d", r.status, r.body, wantStatus)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q; want application/json", ct)
	}
	var a answer
	if err := json.Unmarshal(r.body, &a); err != nil {
		t.Fatalf("answer %q is not JSON: %v", r.body, err)
	}
	return a
}

// exported is one export's lines and watermark.
type exported struct {
	lines     []string
	watermark uint64
}

func exportFrom(t *testing.T, addr, path, app, query string, header ...string) exported {
	t.Helper()
	url := exportURL(addr, path, app, query)
	return parseExport(t, url, request(t, "GET", url, nil, exportHeader(header)...))
}

func exportURL(addr, path, app, query string) string {
	url := "http://" + addr + path + "?appKey=" + app
	if query != "" {
		url += "&" + query
	}
	return url
}

// exportHeader is header, or the backend token when it is empty.
func exportHeader(header []string) []string {
	if len(header) == 0 {
		return []string{"Authorization: Bearer " + backendSecret}
	}
	return header
}

// parseExport checks the answer r to an export of url and splits its lines.
func parseExport(t *testing.T, url string, r response) exported {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("GET %s: status %d (%s); want 200", url, r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("GET %s: Content-Type %q; want application/x-ndjson", url, ct)
	}
	var e exported
	if wm := r.header.Get("X-Trove-Watermark"); wm != "" {
		var err error
		if e.watermark, err = strconv.ParseUint(wm, 10, 64); err != nil {
			t.Errorf("X-Trove-Watermark %q is not a number", wm)
		}
	} else {
		t.Errorf("GET %s: no X-Trove-Watermark header", url)
	}
	if len(r.body) > 0 && r.body[len(r.body)-1] != '\n' {
		t.Errorf("GET %s: the body does not end with a newline: %q", url, r.body)
	}
	for line := range strings.Lines(string(r.body)) {
		e.lines = append(e.lines, strings.TrimSuffix(line, "\n"))
	}
	return e
}

func exportEvents(t *testing.T, addr, query string) exported {
	t.Helper()
	return exportFrom(t, addr, "/v1/export/events", demoApp, query)
}

// messageIDs decodes each line and returns its messageId.
func messageIDs(t *testing.T, lines []string) []string {
	t.Helper()
	var ids []string
	for _, l := range lines {
		var ev struct {
			MessageID string `json:"messageId"`
		}
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("export line %q is not JSON: %v", l, err)
		}
		ids = append(ids, ev.MessageID)
	}
	return ids
}

// event returns a valid event of the demo app.
func event(name, messageID string) string {
	return `{"type":"event","event":"` + name + `","userId":"u1","eventTime":"2020-06-03T17:03:48Z","appKey":"` + demoApp + `","messageId":"` + messageID + `"}`
}

var receivedAtRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

func TestE2ESeedExample(t *testing.T) {
	t.Parallel()
	addr := startServer(t, testConfig).addr
	before := time.Now().UTC().Truncate(time.Millisecond)
	a := decodeAnswer(t, postEvents(t, addr, seedExample), http.StatusAccepted)
	after := time.Now().UTC()
	if a.Accepted != 1 || a.Duplicates != 0 || a.Rejected != 0 || len(a.Errors) != 0 {
		t.Errorf("answer %+v; want accepted 1 and nothing else", a)
	}
	e := exportEvents(t, addr, "")
	if len(e.lines) != 1 {
		t.Fatalf("export has %d lines %q; want 1", len(e.lines), e.lines)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(e.lines[0]), &got); err != nil {
		t.Fatal(err)
	}
	var sent map[string]any
	if err := json.Unmarshal([]byte(seedExample), &sent); err != nil {
		t.Fatal(err)
	}
	for k, v := range sent {
		if !jsonEqual(got[k], v) {
			t.Errorf("exported %s = %v; want %v as sent", k, got[k], v)
		}
	}
	ra, _ := got["receivedAt"].(string)
	if !receivedAtRE.MatchString(ra) {
		t.Errorf("receivedAt %q; want UTC RFC 3339 with milliseconds", ra)
	} else if ts, _ := time.Parse(time.RFC3339, ra); ts.Before(before) || ts.After(after) {
		t.Errorf("receivedAt %s is not between %s and %s", ts, before, after)
	}
	if id, _ := got["messageId"].(string); id == "" {
		t.Errorf("messageId %v; want one generated", got["messageId"])
	}
	if ctx, _ := got["context"].(map[string]any); ctx == nil || ctx["ip"] != "127.0.0.1" {
		t.Errorf("context %v; want {\"ip\":\"127.0.0.1\"}", got["context"])
	}
	// The stored form keeps the members in the order sent.
	want := `{"type":"event","event":"test-event","userId":"Username","eventTime":"2020-06-03T17:03:48-07:00","attributes":{"key":"value"},"appKey":"yz1Jn-0pSnekg58etEQO4A",`
	if !strings.HasPrefix(e.lines[0], want) {
		t.Errorf("stored form %s; want it to start with %s", e.lines[0], want)
	}
	// Exports may be repeated.
	if again := exportEvents(t, addr, ""); !slices.Equal(again.lines, e.lines) {
		t.Errorf("second export %q; want %q", again.lines, e.lines)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func TestE2EBatches(t *testing.T) {
	t.Parallel()
	addr := startServer(t, testConfig).addr

	t.Run("one bad event", func(t *testing.T) {
		body := `[` + event("first", "b-1") + `,
			{"type":"event","userId":"u1","eventTime":"2020-06-03T17:03:48Z","appKey":"` + demoApp + `","messageId":"b-2"},
			` + event("third", "b-3") + `]`
		a := decodeAnswer(t, postEvents(t, addr, body), http.StatusAccepted)
		if a.Accepted != 2 || a.Rejected != 1 || a.Duplicates != 0 || len(a.Errors) != 1 {
			t.Fatalf("answer %+v; want accepted 2, rejected 1, one error", a)
		}
		if e := a.Errors[0]; e.Index == nil || *e.Index != 1 || e.Line != nil || e.MessageID != "b-2" || e.Field != "event" || e.Message == "" {
			t.Errorf("error %+v; want index 1, messageId b-2, field event and a message", e)
		}
		if ids := messageIDs(t, exportEvents(t, addr, "").lines); !slices.Equal(ids, []string{"b-1", "b-3"}) {
			t.Errorf("exported %q; want [b-1 b-3]", ids)
		}
		rej := exportFrom(t, addr, "/v1/export/rejected", demoApp, "")
		if len(rej.lines) != 1 {
			t.Fatalf("quarantine has %q; want one line", rej.lines)
		}
		var q struct {
			Index      *int            `json:"index"`
			MessageID  string          `json:"messageId"`
			Field      string          `json:"field"`
			Message    string          `json:"message"`
			ReceivedAt string          `json:"receivedAt"`
			Event      json.RawMessage `json:"event"`
		}
		if err := json.Unmarshal([]byte(rej.lines[0]), &q); err != nil {
			t.Fatal(err)
		}
		if q.Index == nil || *q.Index != 1 || q.MessageID != "b-2" || q.Field != "event" || q.Message == "" ||
			!receivedAtRE.MatchString(q.ReceivedAt) || !bytes.Contains(q.Event, []byte(`"messageId":"b-2"`)) {
			t.Errorf("quarantined %s; want index 1, messageId b-2, field event, the reason, receivedAt and the event", rej.lines[0])
		}
	})

	t.Run("all bad", func(t *testing.T) {
		body := `[{"type":"event","event":"x","eventTime":"2020-06-03T17:03:48Z","appKey":"` + demoApp + `"},
			{"type":"event","event":"x","userId":"u","eventTime":"yesterday","appKey":"` + demoApp + `"}]`
		a := decodeAnswer(t, postEvents(t, addr, body), http.StatusBadRequest)
		if a.Error != "invalid_event" || a.Field != "userId" || a.Message == "" || a.Accepted != 0 || a.Rejected != 2 || len(a.Errors) != 2 {
			t.Fatalf("answer %+v; want error invalid_event naming userId, rejected 2", a)
		}
		if e := a.Errors[1]; e.Index == nil || *e.Index != 1 || e.Field != "eventTime" {
			t.Errorf("errors[1] %+v; want index 1, field eventTime", e)
		}
	})

	t.Run("single bad event", func(t *testing.T) {
		body := strings.Replace(seedExample, `"userId": "Username",`, ``, 1)
		a := decodeAnswer(t, postEvents(t, addr, body), http.StatusBadRequest)
		if a.Field != "userId" || !strings.Contains(a.Message, "userId") {
			t.Errorf("answer %+v; want field userId", a)
		}
	})

	t.Run("not JSON", func(t *testing.T) {
		a := decodeAnswer(t, postEvents(t, addr, `[{"type":`), http.StatusBadRequest)
		if a.Error != "invalid_request" || a.Message == "" {
			t.Errorf("answer %+v; want error invalid_request with a message", a)
		}
	})

	t.Run("NDJSON with a bad line", func(t *testing.T) {
		body := event("nd", "nd-1") + "\n" +
			`{"type":"event","event":"nd","userId":"","eventTime":"2020-06-03T17:03:48Z","appKey":"` + demoApp + `","messageId":"nd-2"}` + "\n" +
			"\n" +
			"not json\n" +
			event("nd", "nd-3") + "\n"
		a := decodeAnswer(t, postEvents(t, addr, body, "Content-Type: application/x-ndjson"), http.StatusAccepted)
		if a.Accepted != 2 || a.Rejected != 2 || len(a.Errors) != 2 {
			t.Fatalf("answer %+v; want accepted 2, rejected 2", a)
		}
		for i, want := range []struct {
			line  int
			field string
		}{{2, "userId"}, {4, ""}} {
			e := a.Errors[i]
			if e.Line == nil || *e.Line != want.line || e.Index != nil || e.Field != want.field {
				t.Errorf("errors[%d] %+v; want line %d (no index), field %q", i, e, want.line, want.field)
			}
		}
	})
}

func TestE2EDeduplication(t *testing.T) {
	t.Parallel()
	srv := startServer(t, testConfig)
	addr, dataDir, stop := srv.addr, srv.dataDir, srv.stop
	ev := event("dup", "dup-1")
	if a := decodeAnswer(t, postEvents(t, addr, ev), http.StatusAccepted); a.Accepted != 1 || a.Duplicates != 0 {
		t.Fatalf("first send: %+v; want accepted 1", a)
	}
	if a := decodeAnswer(t, postEvents(t, addr, ev), http.StatusAccepted); a.Accepted != 0 || a.Duplicates != 1 {
		t.Errorf("second send: %+v; want duplicates 1, accepted 0", a)
	}
	// Within one batch too.
	if a := decodeAnswer(t, postEvents(t, addr, "["+event("dup", "dup-2")+","+event("dup", "dup-2")+"]"), http.StatusAccepted); a.Accepted != 1 || a.Duplicates != 1 {
		t.Errorf("a batch holding the same messageId twice: %+v; want accepted 1, duplicates 1", a)
	}
	if ids := messageIDs(t, exportEvents(t, addr, "").lines); !slices.Equal(ids, []string{"dup-1", "dup-2"}) {
		t.Errorf("exported %q; want [dup-1 dup-2]", ids)
	}
	stop()

	addr = startServer(t, testConfig, inDir(dataDir)).addr
	if a := decodeAnswer(t, postEvents(t, addr, ev), http.StatusAccepted); a.Accepted != 0 || a.Duplicates != 1 {
		t.Errorf("after a restart: %+v; want duplicates 1, accepted 0", a)
	}
	// The same messageId in another app is another event.
	other := strings.Replace(ev, demoApp, otherApp, 1)
	if a := decodeAnswer(t, postEvents(t, addr, other), http.StatusAccepted); a.Accepted != 1 {
		t.Errorf("the same messageId for another app: %+v; want accepted 1", a)
	}
	if ids := messageIDs(t, exportEvents(t, addr, "").lines); !slices.Equal(ids, []string{"dup-1", "dup-2"}) {
		t.Errorf("exported after the restart %q; want [dup-1 dup-2]", ids)
	}
}

func TestE2EAuth(t *testing.T) {
	t.Parallel()
	addr := startServer(t, testConfig).addr
	decodeAnswer(t, postEvents(t, addr, event("auth", "auth-1")), http.StatusAccepted)
	url := "http://" + addr + "/v1/export/events?appKey=" + demoApp
	basic := func(userPass string) string {
		return "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(userPass))
	}
	tests := []struct {
		name   string
		header []string
		status int
	}{
		{"no token", nil, http.StatusUnauthorized},
		{"unknown token", []string{"Authorization: Bearer nope-nope-nope"}, http.StatusUnauthorized},
		{"malformed header", []string{"Authorization: Bearer"}, http.StatusUnauthorized},
		{"token for another app", []string{"Authorization: Bearer " + otherSecret}, http.StatusForbidden},
		{"ingest-only token", []string{"Authorization: Bearer " + ingestSecret}, http.StatusForbidden},
		{"bearer", []string{"Authorization: Bearer " + backendSecret}, http.StatusOK},
		{"lowercase bearer", []string{"Authorization: bearer " + backendSecret}, http.StatusOK},
		{"basic, token as user name", []string{basic(backendSecret + ":")}, http.StatusOK},
		{"basic, wrong token", []string{basic("nope-nope-nope:")}, http.StatusUnauthorized},
		{"admin token", []string{"Authorization: Bearer " + adminSecret}, http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := request(t, "GET", url, nil, tc.header...)
			if r.status != tc.status {
				t.Fatalf("status %d (%s); want %d", r.status, r.body, tc.status)
			}
			if tc.status == http.StatusOK {
				if n := bytes.Count(r.body, []byte("\n")); n != 1 {
					t.Errorf("export has %d lines; want 1", n)
				}
				return
			}
			var e struct{ Error, Message string }
			if err := json.Unmarshal(r.body, &e); err != nil || e.Error == "" || e.Message == "" {
				t.Errorf("error body %q; want JSON with error and message", r.body)
			}
		})
	}

	ingestTests := []struct {
		name   string
		body   string
		header []string
		status int
	}{
		{"unknown appKey", strings.Replace(event("a", "i-1"), demoApp, "unknown-app-key", 1), nil, http.StatusUnauthorized},
		{"token for another app", event("a", "i-2"), []string{jsonType, "Authorization: Bearer " + otherSecret}, http.StatusForbidden},
		{"unknown token", event("a", "i-3"), []string{jsonType, "Authorization: Bearer nope-nope-nope"}, http.StatusUnauthorized},
		{"ingest-only token", event("a", "i-4"), []string{jsonType, "Authorization: Bearer " + ingestSecret}, http.StatusAccepted},
		{"basic auth", event("a", "i-5"), []string{jsonType, basic(backendSecret + ":")}, http.StatusAccepted},
		{"a batch mixing apps the token does not all cover", "[" + event("a", "i-6") + "," + strings.Replace(event("a", "i-7"), demoApp, otherApp, 1) + "]",
			[]string{jsonType, "Authorization: Bearer " + backendSecret}, http.StatusForbidden},
		{"a batch mixing apps with the admin token", "[" + event("a", "i-8") + "," + strings.Replace(event("a", "i-9"), demoApp, otherApp, 1) + "]",
			[]string{jsonType, "Authorization: Bearer " + adminSecret}, http.StatusAccepted},
	}
	for _, tc := range ingestTests {
		t.Run("ingest/"+tc.name, func(t *testing.T) {
			r := postEvents(t, addr, tc.body, tc.header...)
			if r.status != tc.status {
				t.Errorf("status %d (%s); want %d", r.status, r.body, tc.status)
			}
		})
	}
	if ids := messageIDs(t, exportEvents(t, addr, "").lines); !slices.Equal(ids, []string{"auth-1", "i-4", "i-5", "i-8"}) {
		t.Errorf("exported %q; want [auth-1 i-4 i-5 i-8]", ids)
	}
}

func TestE2EBodies(t *testing.T) {
	t.Parallel()
	addr := startServer(t, testConfig).addr
	compress := func(enc string, body string) []byte {
		var buf bytes.Buffer
		var w io.WriteCloser
		switch enc {
		case "gzip":
			w = gzip.NewWriter(&buf)
		case "deflate":
			w = zlib.NewWriter(&buf)
		case "raw deflate":
			w, _ = flate.NewWriter(&buf, flate.DefaultCompression)
		case "zstd":
			w, _ = zstd.NewWriter(&buf)
		}
		io.WriteString(w, body)
		w.Close()
		return buf.Bytes()
	}
	n := 0
	for _, enc := range []string{"gzip", "deflate", "raw deflate", "zstd"} {
		t.Run("Content-Encoding "+enc, func(t *testing.T) {
			n++
			body := compress(enc, "["+event("enc", "enc-"+strconv.Itoa(n))+"]")
			header := strings.TrimPrefix(enc, "raw ")
			r := request(t, "POST", "http://"+addr+"/v1/events", bytes.NewReader(body), jsonType, "Content-Encoding: "+header)
			if a := decodeAnswer(t, r, http.StatusAccepted); a.Accepted != 1 {
				t.Errorf("answer %+v; want accepted 1", a)
			}
		})
	}
	if got := len(exportEvents(t, addr, "").lines); got != n {
		t.Errorf("export has %d events; want %d", got, n)
	}

	t.Run("unknown Content-Encoding", func(t *testing.T) {
		r := request(t, "POST", "http://"+addr+"/v1/events", strings.NewReader(event("x", "x")), jsonType, "Content-Encoding: br")
		if a := decodeAnswer(t, r, http.StatusUnsupportedMediaType); a.Field != "Content-Encoding" {
			t.Errorf("answer %+v; want field Content-Encoding", a)
		}
	})

	t.Run("form Content-Type", func(t *testing.T) {
		r := postEvents(t, addr, event("x", "form"), "Content-Type: application/x-www-form-urlencoded")
		if a := decodeAnswer(t, r, http.StatusUnsupportedMediaType); a.Error != "unsupported_media_type" || a.Field != "Content-Type" {
			t.Errorf("answer %+v; want unsupported_media_type naming Content-Type", a)
		}
	})

	t.Run("gzip bomb", func(t *testing.T) {
		// 1 GiB of zeros as 128 gzip members of 8 MiB each (a valid
		// multi-member gzip stream), about 2 MiB on the wire, so that the
		// whole of it is read and the decompressed size is what trips the
		// limit. Compressing one member only keeps the test fast.
		var member bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&member, gzip.BestSpeed)
		zw.Write(make([]byte, 8<<20))
		zw.Close()
		pr, pw := io.Pipe()
		go func() {
			for range 128 {
				if _, err := pw.Write(member.Bytes()); err != nil {
					return // the request is over
				}
			}
			pw.Close()
		}()
		r := request(t, "POST", "http://"+addr+"/v1/events", pr, jsonType, "Content-Encoding: gzip")
		pr.CloseWithError(io.ErrClosedPipe)
		if a := decodeAnswer(t, r, http.StatusRequestEntityTooLarge); a.Error != "payload_too_large" || !strings.Contains(a.Message, "decompressed") {
			t.Errorf("answer %+v; want payload_too_large about the decompressed body", a)
		}
		if r := request(t, "GET", "http://"+addr+"/healthz", nil); r.status != http.StatusOK {
			t.Errorf("/healthz after the bomb: %d; want 200", r.status)
		}
		if a := decodeAnswer(t, postEvents(t, addr, event("after-bomb", "after-bomb")), http.StatusAccepted); a.Accepted != 1 {
			t.Errorf("an event after the bomb: %+v; want accepted 1", a)
		}
	})

	t.Run("Content-Length over the limit", func(t *testing.T) {
		// Only the first 8 KiB of the body are sent, which fasthttp reads
		// before it calls the handler: megabytes the server does not read
		// could make its close reset the connection before the answer is
		// read.
		conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(30 * time.Second))
		fmt.Fprintf(conn, "POST /v1/events HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", addr, 5<<20+1)
		conn.Write(bytes.Repeat([]byte(" "), 8<<10))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if a := decodeAnswer(t, response{resp.StatusCode, resp.Header, body}, http.StatusRequestEntityTooLarge); a.Error != "payload_too_large" {
			t.Errorf("answer %+v; want payload_too_large", a)
		}
		if !resp.Close {
			t.Errorf("no Connection: close after a 413 whose body was not read")
		}
	})

	t.Run("big integers come back byte-exact", func(t *testing.T) {
		attrs := `{"n19":1234567890123456789,"max":9223372036854775807,"min":-9223372036854775808,"n20":12345678901234567890,"f":0.10000000000000000555,"e":6.02214076e23,"s":"\u00e9\"","nested":{"a":[1,2.50,null,true]}}`
		body := `{"type":"event","event":"big","userId":"u1","eventTime":"2020-06-03T17:03:48Z","appKey":"` + demoApp + `","messageId":"bigint-1","attributes":` + attrs + `}`
		decodeAnswer(t, postEvents(t, addr, body), http.StatusAccepted)
		for _, l := range exportEvents(t, addr, "").lines {
			if strings.Contains(l, `"bigint-1"`) {
				if !strings.Contains(l, `"attributes":`+attrs+`,`) {
					t.Errorf("stored %s; want attributes %s byte for byte", l, attrs)
				}
				return
			}
		}
		t.Errorf("event bigint-1 is not exported")
	})
}

func TestE2EValidateStoresNothing(t *testing.T) {
	t.Parallel()
	addr := startServer(t, testConfig).addr
	body := "[" + event("v", "v-1") + `,{"type":"event","appKey":"` + demoApp + `"}]`
	r := request(t, "POST", "http://"+addr+"/v1/events?validate=1", strings.NewReader(body), jsonType)
	a := decodeAnswer(t, r, http.StatusAccepted)
	if a.Accepted != 1 || a.Rejected != 1 || !a.Validated {
		t.Errorf("answer %+v; want accepted 1, rejected 1, validated", a)
	}
	if e := exportEvents(t, addr, ""); len(e.lines) != 0 {
		t.Errorf("export after ?validate=1: %q; want nothing", e.lines)
	}
	if e := exportFrom(t, addr, "/v1/export/rejected", demoApp, ""); len(e.lines) != 0 {
		t.Errorf("quarantine after ?validate=1: %q; want nothing", e.lines)
	}
	// And the event may then be sent for real: validate recorded no messageId.
	if a := decodeAnswer(t, postEvents(t, addr, event("v", "v-1")), http.StatusAccepted); a.Accepted != 1 || a.Duplicates != 0 {
		t.Errorf("sending after validating: %+v; want accepted 1", a)
	}
}

func TestE2EWatermark(t *testing.T) {
	t.Parallel()
	addr := startServer(t, testConfig).addr
	decodeAnswer(t, postEvents(t, addr, "["+event("w", "w-1")+","+event("w", "w-2")+"]"), http.StatusAccepted)
	first := exportEvents(t, addr, "")
	if ids := messageIDs(t, first.lines); !slices.Equal(ids, []string{"w-1", "w-2"}) {
		t.Fatalf("first export %q; want [w-1 w-2]", ids)
	}
	if first.watermark == 0 {
		t.Fatalf("watermark 0 after two events")
	}
	decodeAnswer(t, postEvents(t, addr, "["+event("w", "w-3")+","+event("w", "w-4")+"]"), http.StatusAccepted)
	decodeAnswer(t, postEvents(t, addr, event("w", "w-5")), http.StatusAccepted)
	second := exportEvents(t, addr, "since="+strconv.FormatUint(first.watermark, 10))
	if ids := messageIDs(t, second.lines); !slices.Equal(ids, []string{"w-3", "w-4", "w-5"}) {
		t.Errorf("export since %d: %q; want exactly [w-3 w-4 w-5]", first.watermark, ids)
	}
	if second.watermark <= first.watermark {
		t.Errorf("watermark went from %d to %d; want it to grow", first.watermark, second.watermark)
	}
	third := exportEvents(t, addr, "since="+strconv.FormatUint(second.watermark, 10))
	if len(third.lines) != 0 || third.watermark != second.watermark {
		t.Errorf("export since %d: %q, watermark %d; want nothing and the same watermark", second.watermark, third.lines, third.watermark)
	}
	// limit and until narrow the range.
	if ids := messageIDs(t, exportEvents(t, addr, "limit=2").lines); !slices.Equal(ids, []string{"w-1", "w-2"}) {
		t.Errorf("limit=2: %q; want [w-1 w-2]", ids)
	}
	if ids := messageIDs(t, exportEvents(t, addr, "until="+strconv.FormatUint(first.watermark, 10)).lines); !slices.Equal(ids, []string{"w-1", "w-2"}) {
		t.Errorf("until=%d: %q; want [w-1 w-2]", first.watermark, ids)
	}
	r := request(t, "GET", "http://"+addr+"/v1/export/events?appKey="+demoApp+"&since=yesterday", nil, "Authorization: Bearer "+backendSecret)
	if a := decodeAnswer(t, r, http.StatusBadRequest); a.Field != "since" {
		t.Errorf("since=yesterday: %+v; want a 400 naming since", a)
	}
}

func TestE2EHTTP(t *testing.T) {
	t.Parallel()
	addr := startServer(t, testConfig).addr
	base := "http://" + addr

	t.Run("CORS preflight", func(t *testing.T) {
		r := request(t, "OPTIONS", base+"/v1/events", nil,
			"Origin: https://shop.example", "Access-Control-Request-Method: POST", "Access-Control-Request-Headers: content-type")
		if r.status != http.StatusNoContent {
			t.Errorf("status %d; want 204", r.status)
		}
		for k, want := range map[string]string{
			"Access-Control-Allow-Origin":   "https://shop.example",
			"Access-Control-Allow-Methods":  "POST",
			"Access-Control-Allow-Headers":  "Content-Type",
			"Access-Control-Expose-Headers": "Retry-After",
		} {
			if got := r.header.Get(k); !strings.Contains(got, want) {
				t.Errorf("%s = %q; want it to contain %q", k, got, want)
			}
		}
	})

	t.Run("browser send", func(t *testing.T) {
		r := postEvents(t, addr, event("cors", "cors-1"), jsonType, "Origin: https://shop.example")
		decodeAnswer(t, r, http.StatusAccepted)
		if got := r.header.Get("Access-Control-Allow-Origin"); got != "https://shop.example" {
			t.Errorf("Access-Control-Allow-Origin = %q; want the origin", got)
		}
	})

	// What a page of another site can make a browser that holds admin
	// credentials for Trove do (issue 13): read nothing, change nothing.
	t.Run("foreign origin with credentials", func(t *testing.T) {
		basic := "Authorization: Basic " + base64Std(adminSecret+":")
		const evil = "Origin: https://evil.example"
		for _, path := range []string{"/admin/tokens", "/admin/apps", "/v1/export/events?appKey=" + demoApp, "/v1/users/profile?appKey=" + demoApp + "&userId=u1"} {
			r := request(t, "GET", base+path, nil, basic, evil, "Sec-Fetch-Site: cross-site")
			if r.header.Get("Access-Control-Allow-Origin") != "" || r.header.Get("Access-Control-Allow-Credentials") != "" {
				t.Errorf("GET %s from another origin: CORS headers %v; want none, so that the page cannot read it", path, r.header)
			}
			p := request(t, "OPTIONS", base+path, nil, evil, "Access-Control-Request-Method: GET", "Access-Control-Request-Headers: authorization")
			if p.header.Get("Access-Control-Allow-Origin") != "" {
				t.Errorf("preflight of GET %s: Access-Control-Allow-Origin %q; want none", path, p.header.Get("Access-Control-Allow-Origin"))
			}
		}
		// A form post (a simple request, sent without a preflight).
		r := request(t, "POST", base+"/admin/apps", strings.NewReader(`{"name":"planted"}`), basic, evil, "Sec-Fetch-Site: cross-site", "Content-Type: text/plain")
		if r.status != http.StatusForbidden {
			t.Errorf("cross-site POST /admin/apps: %d %s; want 403", r.status, r.body)
		}
		if list := request(t, "GET", base+"/admin/apps", nil, "Authorization: Bearer "+adminSecret); strings.Contains(string(list.body), "planted") {
			t.Errorf("the cross-site POST created an app: %s", list.body)
		}
		p := request(t, "OPTIONS", base+"/v1/users/profile", nil, evil, "Access-Control-Request-Method: DELETE")
		if p.header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight of DELETE /v1/users/profile: Access-Control-Allow-Origin %q; want none", p.header.Get("Access-Control-Allow-Origin"))
		}
	})

	for _, path := range []string{"/healthz", "/readyz"} {
		t.Run(path, func(t *testing.T) {
			if r := request(t, "GET", base+path, nil); r.status != http.StatusOK {
				t.Errorf("status %d (%s); want 200", r.status, r.body)
			}
		})
	}

	t.Run("unknown route", func(t *testing.T) {
		r := request(t, "GET", base+"/v2/nothing", nil)
		if a := decodeAnswer(t, r, http.StatusNotFound); a.Error != "not_found" || a.Message == "" {
			t.Errorf("answer %+v; want not_found with a message", a)
		}
	})
}

// TestE2ECheckConfig runs the check-config command, and serve with
// -check-config, on the example file and on bad ones. (main_test.go at the
// root checks main's own answers: version, help, an unknown command.)
func TestE2ECheckConfig(t *testing.T) {
	t.Parallel()
	bad := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(bad, []byte("listen = \"8080\"\nlissten = 1\n"), 0o600)
	example := filepath.Join(moduleRoot, "config.example.toml")
	tests := []struct {
		name        string
		cmd         command
		args        []string
		code        int
		out, errOut string
	}{
		{"check-config", checkConfigCmd, []string{"-config", example}, 0, "configuration is valid", ""},
		{"serve", serveCmd, []string{"-check-config", "-config", example}, 0, "configuration is valid", ""},
		{"check-config", checkConfigCmd, []string{"-config", bad}, 1, "", `unknown key "lissten"`},
		{"check-config", checkConfigCmd, []string{"-config", filepath.Join(t.TempDir(), "missing.toml")}, 1, "", "cannot read config file"},
		{"serve", serveCmd, []string{"extra"}, 2, "", `unexpected argument "extra"`},
		{"serve", serveCmd, []string{"-h"}, 0, "", "-listen"},
		{"check-config", checkConfigCmd, []string{"-h"}, 0, "", "-config"},
		{"serve", serveCmd, []string{"-nope"}, 2, "", "flag provided but not defined"},
	}
	for _, tc := range tests {
		t.Run(tc.name+" "+strings.Join(tc.args, " "), func(t *testing.T) {
			code, stdout, stderr := runCmd(t, tc.cmd, tc.args...)
			if code != tc.code || !strings.Contains(stdout, tc.out) || !strings.Contains(stderr, tc.errOut) {
				t.Errorf("got %d, stdout %q, stderr %q; want %d, stdout with %q, stderr with %q",
					code, stdout, stderr, tc.code, tc.out, tc.errOut)
			}
		})
	}
}
