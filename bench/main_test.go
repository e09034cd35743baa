package bench

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goccy/go-json"
	"github.com/klauspost/compress/gzip"
	"github.com/valyala/fasthttp"
)

// testServer is a stand-in for Trove's POST /v1/events: it decodes and checks
// every event it gets, keeps them, and answers with a fixed status and, for
// 202, counts of accepted and duplicate events as Trove's deduplication by
// messageId would give them.
type testServer struct {
	url    string
	status int
	lie    string // "duplicates", "rejected" or "no counts": answer what a buggy server would

	mu struct {
		sync.Mutex
		events   [][]byte // owned copies, in arrival order
		ids      map[string]bool
		requests int
		auth     map[string]bool
		ctypes   map[string]bool
		problems []string
	}
}

// startServer serves on a loopback port until the test ends.
func startServer(t *testing.T, status int) *testServer {
	t.Helper()
	s := &testServer{status: status}
	s.mu.auth = map[string]bool{}
	s.mu.ctypes = map[string]bool{}
	s.mu.ids = map[string]bool{}
	s.url = serveLoopback(t, s.handle)
	return s
}

// serveLoopback serves handler on a loopback port until the test ends and
// returns its URL: the stand-ins of Trove's APIs (testServer,
// profileServer) serve this way.
func serveLoopback(t *testing.T, handler fasthttp.RequestHandler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("cannot listen: %v", err)
	}
	srv := &fasthttp.Server{Handler: handler, MaxRequestBodySize: 64 << 20}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Shutdown()
		// Shutdown misses a listener that Serve has not registered yet (a
		// test that sends nothing ends that fast); closing it ends Serve
		// either way.
		ln.Close()
		<-done
	})
	return "http://" + ln.Addr().String()
}

// closedAddr returns a loopback address that nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("cannot listen: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	return addr
}

// checkContains fails for each of wants that output, named name in the
// message, lacks.
func checkContains(t *testing.T, name, output string, wants []string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(output, want) {
			t.Errorf("%s lacks %q:\n%s", name, want, output)
		}
	}
}

// checkReceived checks that the server got n items (what: "events",
// "profiles"): want of them, or with want -1 (a run that -duration stops)
// some, in whole batches of 50.
func checkReceived(t *testing.T, what string, n, want int) {
	t.Helper()
	switch {
	case want >= 0 && n != want:
		t.Errorf("server got %d %s; want %d", n, what, want)
	case want < 0 && (n == 0 || n%50 != 0):
		t.Errorf("server got %d %s; want some, in whole batches of 50", n, what)
	}
}

// badFlags is a run of Main that its flags stop: the exit code and a part
// of stderr it must give; stdout must stay empty.
type badFlags struct {
	name       string
	args       []string
	wantCode   int
	wantStderr string
}

// checkBadFlags runs Main with prefix (the subcommand, if any) and each
// case's args.
func checkBadFlags(t *testing.T, prefix []string, tests []badFlags) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runMain(t, append(slices.Clone(prefix), tt.args...)...)
			if code != tt.wantCode {
				t.Errorf("exit code %d; want %d", code, tt.wantCode)
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.wantStderr, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout = %q; want nothing", stdout)
			}
		})
	}
}

// checkSameWhateverTheConns runs run over one connection and then over
// five and fails unless the server got the same items (what: "events",
// "profiles") both times, in whatever order.
func checkSameWhateverTheConns(t *testing.T, what string, run func(t *testing.T, conns string) [][]byte) {
	t.Helper()
	tests := []struct {
		name  string
		conns string
	}{
		{name: "one connection", conns: "1"},
		{name: "five connections", conns: "5"},
	}
	var want [][]byte
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := run(t, tt.conns)
			slices.SortFunc(got, bytes.Compare)
			if want == nil {
				want = got
				return
			}
			if !slices.EqualFunc(got, want, bytes.Equal) {
				t.Errorf("the %s differ from those sent over one connection", what)
			}
		})
	}
}

func (s *testServer) handle(ctx *fasthttp.RequestCtx) {
	events, problem := decodeRequest(ctx)
	s.mu.Lock()
	s.mu.requests++
	s.mu.auth[string(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization))] = true
	s.mu.ctypes[string(ctx.Request.Header.ContentType())] = true
	if problem != "" {
		s.mu.problems = append(s.mu.problems, problem)
	}
	s.mu.events = append(s.mu.events, events...)
	dups := 0
	if s.status == fasthttp.StatusAccepted {
		for _, e := range events {
			var ev testEvent
			json.Unmarshal(e, &ev) // decodeRequest has checked it
			if ev.MessageID == nil {
				continue
			}
			if s.mu.ids[*ev.MessageID] {
				dups++
			}
			s.mu.ids[*ev.MessageID] = true
		}
	}
	s.mu.Unlock()
	if s.status != fasthttp.StatusAccepted {
		ctx.SetStatusCode(s.status)
		ctx.SetBodyString(`{"error":"invalid","message":"test server says no","field":"event"}`)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusAccepted)
	accepted, rejected := len(events)-dups, 0
	switch s.lie {
	case "duplicates":
		accepted, dups = accepted-1, dups+1
	case "rejected":
		accepted, rejected = accepted-1, rejected+1
	case "no counts":
		ctx.SetBodyString(`{"ok":true}`)
		return
	}
	fmt.Fprintf(ctx, `{"accepted":%d,"duplicates":%d,"rejected":%d,"errors":[]}`, accepted, dups, rejected)
}

// decodeRequest returns copies of the events in the request, or what is wrong with it.
func decodeRequest(ctx *fasthttp.RequestCtx) ([][]byte, string) {
	if !ctx.IsPost() || string(ctx.Path()) != "/v1/events" {
		return nil, fmt.Sprintf("unexpected %s %s", ctx.Method(), ctx.Path())
	}
	body := ctx.Request.Body()
	switch enc := string(ctx.Request.Header.ContentEncoding()); enc {
	case "":
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Sprintf("bad gzip: %v", err)
		}
		if body, err = io.ReadAll(zr); err != nil {
			return nil, fmt.Sprintf("bad gzip: %v", err)
		}
	default:
		return nil, fmt.Sprintf("unexpected Content-Encoding %q", enc)
	}
	var raws [][]byte
	switch ct := string(ctx.Request.Header.ContentType()); {
	case ct == "application/x-ndjson":
		if !bytes.HasSuffix(body, []byte("\n")) {
			return nil, "NDJSON body does not end in a newline"
		}
		raws = bytes.Split(bytes.TrimSuffix(body, []byte("\n")), []byte("\n"))
	case ct == "application/json" && bytes.HasPrefix(body, []byte("[")):
		var arr []json.RawMessage
		if err := json.Unmarshal(body, &arr); err != nil {
			return nil, fmt.Sprintf("bad JSON array: %v", err)
		}
		for _, r := range arr {
			raws = append(raws, r)
		}
	case ct == "application/json":
		raws = [][]byte{body}
	default:
		return nil, fmt.Sprintf("unexpected Content-Type %q", ct)
	}
	events := make([][]byte, 0, len(raws))
	for _, raw := range raws {
		var ev testEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, fmt.Sprintf("bad event %s: %v", raw, err)
		}
		if _, err := time.Parse(time.RFC3339Nano, ev.EventTime); err != nil ||
			ev.Type != "event" || ev.Event == "" || ev.UserID == "" || ev.AppKey == "" {
			return nil, fmt.Sprintf("invalid event %s", raw)
		}
		events = append(events, bytes.Clone(raw))
	}
	return events, ""
}

// snapshot returns what the server has seen so far.
func (s *testServer) snapshot() (events [][]byte, requests int, auth, ctypes []string, problems []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.mu.auth {
		auth = append(auth, k)
	}
	for k := range s.mu.ctypes {
		ctypes = append(ctypes, k)
	}
	return slices.Clone(s.mu.events), s.mu.requests, auth, ctypes, slices.Clone(s.mu.problems)
}

// runMain runs Main and returns its exit code, stdout and stderr.
func runMain(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Main(t.Context(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestMainAgainstServer(t *testing.T) {
	t.Setenv("TROVE_TOKEN", "")
	tests := []struct {
		name         string
		args         []string
		status       int
		wantCode     int
		wantEvents   int // -1: stopped by -duration, so only "some"
		wantRequests int
		wantCtype    string
		wantAuth     string
		wantNoIDs    bool // no event has a messageId; else every one a distinct UUID
		wantStdout   []string
		wantStderr   []string
		lie          string // testServer.lie
	}{
		{
			name:         "json arrays",
			args:         []string{"-n", "2000", "-batch", "100", "-conns", "4"},
			wantEvents:   2000,
			wantRequests: 20,
			wantCtype:    "application/json",
			wantStdout: []string{"\ningest with messageIds: 2000 events in ", " events/s, ", "MB/s (raw JSON), requests 20, latency p50 ",
				" p99 ", " max ", ", errors 0; server: accepted 2000, duplicates 0, rejected 0\n",
				"client: batch 100 (json), conns 4, seed 1, messageIds fresh for this run (salt ", "), generation "},
		},
		{
			name:         "single objects",
			args:         []string{"-n", "300", "-batch", "1", "-conns", "4"},
			wantEvents:   300,
			wantRequests: 300,
			wantCtype:    "application/json",
			wantStdout:   []string{"\ningest with messageIds: 300 events in ", "requests 300,", "(json object)", "accepted 300, duplicates 0,"},
		},
		{
			name:         "ndjson, gzip and message ids as before",
			args:         []string{"-n", "2000", "-batch", "100", "-conns", "4", "-ndjson", "-gzip", "-message-ids"},
			wantEvents:   2000,
			wantRequests: 20,
			wantCtype:    "application/x-ndjson",
			wantStdout:   []string{"\ningest with messageIds: 2000 events in ", "MB/s gzip on the wire", "errors 0", "(ndjson)", "gzip "},
		},
		{
			name:         "W1n",
			args:         []string{"-n", "1000", "-batch", "500", "-conns", "8", "-no-message-ids"},
			wantEvents:   1000,
			wantRequests: 2,
			wantCtype:    "application/json",
			wantNoIDs:    true,
			wantStdout: []string{"\nW1n ingest without messageIds: 1000 events in ", "; server: accepted 1000, duplicates 0, rejected 0\n",
				"seed 1, no messageIds (the server generates them), generation "},
		},
		{
			name:         "W2",
			args:         []string{"-n", "256", "-batch", "1", "-conns", "64"},
			wantEvents:   256,
			wantRequests: 256,
			wantCtype:    "application/json",
			wantStdout:   []string{"\nW2 ingest with messageIds: 256 events in ", "accepted 256, duplicates 0, rejected 0\n"},
		},
		{
			name:         "W2 shape without messageIds is not W2",
			args:         []string{"-n", "64", "-batch", "1", "-conns", "64", "-no-message-ids"},
			wantEvents:   64,
			wantRequests: 64,
			wantCtype:    "application/json",
			wantNoIDs:    true,
			wantStdout:   []string{"\ningest without messageIds: 64 events in "},
		},
		{
			name:         "explicit seed",
			args:         []string{"-n", "200", "-batch", "100", "-conns", "2", "-seed", "7"},
			wantEvents:   200,
			wantRequests: 2,
			wantCtype:    "application/json",
			wantStdout:   []string{"seed 7, messageIds from -seed 7 (repeatable), generation "},
		},
		{
			name:         "last batch partial",
			args:         []string{"-n", "250", "-batch", "100", "-conns", "3"},
			wantEvents:   250,
			wantRequests: 3,
			wantCtype:    "application/json",
			wantStdout:   []string{"\ningest with messageIds: 250 events in ", "requests 3,", "accepted 250,"},
		},
		{
			name:         "token and W1 label",
			args:         []string{"-n", "1000", "-batch", "500", "-conns", "8", "-token", "s3cret", "-server", "SERVER/"},
			wantEvents:   1000,
			wantRequests: 2,
			wantCtype:    "application/json",
			wantAuth:     "Bearer s3cret",
			wantStdout:   []string{"\nW1 ingest with messageIds: 1000 events in ", "accepted 1000,"},
		},
		{
			name:         "calibrate",
			args:         []string{"-n", "2000", "-batch", "100", "-conns", "4", "-calibrate"},
			wantEvents:   2000,
			wantRequests: 20,
			wantCtype:    "application/json",
			wantStdout: []string{"ceiling (in-process fasthttp, discards bodies): 2000 events in ", "errors 0\n",
				"\ningest with messageIds: 2000 events in ", "errors 0; server: accepted 2000, duplicates 0, rejected 0\n", "\nratio: "},
		},
		{
			name:       "duration cap",
			args:       []string{"-n", "1000000000", "-batch", "50", "-conns", "2", "-duration", "150ms"},
			wantEvents: -1,
			wantCtype:  "application/json",
			wantStdout: []string{"errors 0"},
		},
		{
			name:         "server answers 400",
			args:         []string{"-n", "2000", "-batch", "100", "-conns", "4"},
			status:       fasthttp.StatusBadRequest,
			wantCode:     1,
			wantEvents:   2000,
			wantRequests: 20,
			wantCtype:    "application/json",
			wantStdout:   []string{"\ningest with messageIds: 0 events in ", "requests 20,", "errors 20; server: accepted 0, duplicates 0, rejected 0\n"},
			wantStderr:   []string{"20 of 20 requests failed; first: HTTP 400: ", "test server says no"},
		},
		{
			name:         "server counts duplicates of fresh ids",
			args:         []string{"-n", "200", "-batch", "100", "-conns", "2"},
			lie:          "duplicates",
			wantCode:     1,
			wantEvents:   200,
			wantRequests: 2,
			wantCtype:    "application/json",
			wantStdout:   []string{"; server: accepted 198, duplicates 2 (expected 0: the messageIds were fresh), rejected 0\n"},
			wantStderr:   []string{"the server counted 2 events as duplicates although every messageId was fresh: a bug"},
		},
		{
			name:         "server counts duplicates without ids",
			args:         []string{"-n", "200", "-batch", "100", "-conns", "2", "-no-message-ids"},
			lie:          "duplicates",
			wantCode:     1,
			wantEvents:   200,
			wantRequests: 2,
			wantCtype:    "application/json",
			wantNoIDs:    true,
			wantStdout:   []string{"duplicates 2 (expected 0: the events had no messageIds)"},
			wantStderr:   []string{"although no event had a messageId: a bug"},
		},
		{
			name:         "server rejects generated events",
			args:         []string{"-n", "200", "-batch", "100", "-conns", "2"},
			lie:          "rejected",
			wantCode:     1,
			wantEvents:   200,
			wantRequests: 2,
			wantCtype:    "application/json",
			wantStdout:   []string{"; server: accepted 198, duplicates 0, rejected 2\n"},
			wantStderr:   []string{"the server rejected 2 generated events"},
		},
		{
			name:         "server answers without counts",
			args:         []string{"-n", "200", "-batch", "100", "-conns", "2"},
			lie:          "no counts",
			wantCode:     1,
			wantEvents:   200,
			wantRequests: 2,
			wantCtype:    "application/json",
			wantStdout:   []string{"; server: accepted 0, duplicates 0, rejected 0, no counts in 2 answers\n"},
			wantStderr:   []string{"2 of 2 answers had no accepted, duplicates and rejected counts"},
		},
		{
			name:         "server answers 200, not 202",
			args:         []string{"-n", "10", "-batch", "5", "-conns", "1"},
			status:       fasthttp.StatusOK,
			wantCode:     1,
			wantEvents:   10,
			wantRequests: 2,
			wantCtype:    "application/json",
			wantStderr:   []string{"first: HTTP 200: "},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status := tt.status
			if status == 0 {
				status = fasthttp.StatusAccepted
			}
			srv := startServer(t, status)
			srv.lie = tt.lie
			args := slices.Clone(tt.args)
			if i := slices.Index(args, "SERVER/"); i >= 0 {
				args[i] = srv.url + "/"
			} else {
				args = append(args, "-server", srv.url)
			}
			code, stdout, stderr := runMain(t, args...)
			if code != tt.wantCode {
				t.Errorf("exit code %d; want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, stdout, stderr)
			}
			events, requests, auth, ctypes, problems := srv.snapshot()
			for _, p := range problems {
				t.Errorf("server: %s", p)
			}
			checkReceived(t, "events", len(events), tt.wantEvents)
			if tt.wantEvents < 0 {
				if want := fmt.Sprintf("ingest with messageIds: %d events in ", len(events)); !strings.Contains(stdout, want) {
					t.Errorf("stdout does not report the %d events the server got:\n%s", len(events), stdout)
				}
			}
			if tt.wantRequests > 0 && requests != tt.wantRequests {
				t.Errorf("server got %d requests; want %d", requests, tt.wantRequests)
			}
			if want := []string{tt.wantCtype}; !slices.Equal(ctypes, want) {
				t.Errorf("Content-Types %q; want %q", ctypes, want)
			}
			if want := []string{tt.wantAuth}; !slices.Equal(auth, want) {
				t.Errorf("Authorization headers %q; want %q", auth, want)
			}
			if tt.wantNoIDs {
				for _, e := range events {
					if bytes.Contains(e, []byte(`"messageId"`)) {
						t.Fatalf("event with a messageId: %s", e)
					}
				}
			} else {
				checkFreshIDs(t, events)
			}
			// A leading newline in a wantStdout pins a label to the start of a line.
			checkContains(t, "stdout", "\n"+stdout, tt.wantStdout)
			// A run of -duration lasts many clock ticks; a short one may
			// last none, and then says nothing of the machine.
			if _, ok := readMachineCPU(); ok && tt.wantEvents == -1 && tt.wantCode == 0 && !strings.Contains(stdout, "; this machine's CPUs ") {
				t.Errorf("the client line does not say what the machine's CPUs did:\n%s", stdout)
			}
			checkContains(t, "stderr", stderr, tt.wantStderr)
		})
	}
}

// checkFreshIDs checks that every event carries a UUID-shaped messageId and
// that no two carry the same.
func checkFreshIDs(t *testing.T, events [][]byte) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	for _, e := range events {
		var ev testEvent
		if err := json.Unmarshal(e, &ev); err != nil || ev.MessageID == nil {
			t.Fatalf("event without messageId: %s", e)
		}
		if !uuidRE.MatchString(*ev.MessageID) {
			t.Fatalf("messageId %q is not a UUID", *ev.MessageID)
		}
		ids[*ev.MessageID] = true
	}
	if len(ids) != len(events) {
		t.Errorf("%d distinct messageIds in %d events; want all distinct", len(ids), len(events))
	}
	return ids
}

// TestMainMessageIDsPerRun runs trove bench twice against one server that
// deduplicates: with the default settings the second run's ids are new and
// nothing is a duplicate, while the same -seed given twice sends the same
// ids and the second run is all duplicates, which the summary says and
// which is not an error.
func TestMainMessageIDsPerRun(t *testing.T) {
	t.Setenv("TROVE_TOKEN", "")
	tests := []struct {
		name       string
		args       []string
		wantSecond string // in the second run's summary
	}{
		{name: "default", wantSecond: "; server: accepted 600, duplicates 0, rejected 0\n"},
		{name: "explicit seed", args: []string{"-seed", "1"},
			wantSecond: "; server: accepted 0, duplicates 600 (the messageIds of -seed 1 repeat those of any earlier run with it), rejected 0\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t, fasthttp.StatusAccepted)
			args := append([]string{"-server", srv.url, "-n", "600", "-batch", "50", "-conns", "3"}, tt.args...)
			var runs [][][]byte
			var stdouts []string
			for range 2 {
				before, _, _, _, _ := srv.snapshot()
				code, stdout, stderr := runMain(t, args...)
				if code != 0 {
					t.Fatalf("exit code %d; want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
				}
				all, _, _, _, _ := srv.snapshot()
				runs = append(runs, all[len(before):])
				stdouts = append(stdouts, stdout)
			}
			if !strings.Contains(stdouts[0], "; server: accepted 600, duplicates 0, rejected 0\n") {
				t.Errorf("first run's summary lacks 600 accepted and no duplicates:\n%s", stdouts[0])
			}
			if !strings.Contains(stdouts[1], tt.wantSecond) {
				t.Errorf("second run's summary lacks %q:\n%s", tt.wantSecond, stdouts[1])
			}
			first, second := checkFreshIDs(t, runs[0]), checkFreshIDs(t, runs[1])
			common := 0
			for id := range second {
				if first[id] {
					common++
				}
			}
			wantCommon := 0
			if tt.args != nil {
				wantCommon = len(second)
			}
			if common != wantCommon {
				t.Errorf("%d messageIds common to both runs; want %d", common, wantCommon)
			}
			// Whatever the ids, the events are those of the seed.
			strip := func(evs [][]byte) [][]byte {
				var out [][]byte
				for _, e := range evs {
					out = append(out, messageIDRE.ReplaceAll(e, nil))
				}
				slices.SortFunc(out, bytes.Compare)
				return out
			}
			if !slices.EqualFunc(strip(runs[0]), strip(runs[1]), bytes.Equal) {
				t.Errorf("the two runs' events differ beyond their messageIds")
			}
		})
	}
}

// TestEveryModeSendsMessageIDs builds one request of each kind from the
// default flags and checks that every event in it has a messageId.
func TestEveryModeSendsMessageIDs(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int // events in the request
	}{
		{name: "W1", args: nil, want: 500},
		{name: "W2", args: []string{"-batch", "1", "-conns", "64"}, want: 1},
		{name: "ndjson", args: []string{"-ndjson", "-batch", "20"}, want: 20},
		{name: "segment", args: []string{"-segment", "-batch", "20"}, want: 20},
		{name: "calibrate", args: []string{"-calibrate", "-batch", "20"}, want: 20},
		{name: "gzip", args: []string{"-gzip", "-batch", "20"}, want: 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseFlags(tt.args, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if !o.messageIDs || o.seedSet || o.idSalt == 0 {
				t.Fatalf("options %+v; want salted messageIds", o)
			}
			o.gzip = false // so that the body can be read
			w := newWorker(&shared{o: o, requests: 1})
			body := w.build(3, o.batch)
			ids := messageIDRE.FindAllSubmatch(body, -1)
			if len(ids) != tt.want {
				t.Fatalf("%d messageIds in a request of %d events:\n%s", len(ids), tt.want, body)
			}
			for _, m := range ids {
				if !uuidRE.Match(m[1]) {
					t.Errorf("messageId %q is not a UUID", m[1])
				}
			}
		})
	}
}

func TestMainSameEventsWhateverTheConns(t *testing.T) {
	t.Setenv("TROVE_TOKEN", "")
	checkSameWhateverTheConns(t, "events", func(t *testing.T, conns string) [][]byte {
		srv := startServer(t, fasthttp.StatusAccepted)
		if code, _, stderr := runMain(t, "-server", srv.url, "-n", "1000", "-batch", "40", "-conns", conns, "-seed", "7"); code != 0 {
			t.Fatalf("exit code %d; want 0\n%s", code, stderr)
		}
		got, _, _, _, _ := srv.snapshot()
		return got
	})
}

func TestMainBadFlags(t *testing.T) {
	checkBadFlags(t, nil, []badFlags{
		{name: "unknown flag", args: []string{"-nope"}, wantCode: 2, wantStderr: "flag provided but not defined: -nope"},
		{name: "zero batch", args: []string{"-batch", "0"}, wantCode: 2, wantStderr: "-batch must be >= 1"},
		{name: "negative conns", args: []string{"-conns", "-1"}, wantCode: 2, wantStderr: "-conns must be >= 1"},
		{name: "zero events", args: []string{"-n", "0"}, wantCode: 2, wantStderr: "-n must be >= 1"},
		{name: "negative duration", args: []string{"-duration", "-1s"}, wantCode: 2, wantStderr: "-duration must be >= 0"},
		{name: "not a number", args: []string{"-n", "many"}, wantCode: 2, wantStderr: `invalid value "many" for flag -n`},
		{name: "stray argument", args: []string{"extra"}, wantCode: 2, wantStderr: "unexpected arguments"},
		{name: "bad scheme", args: []string{"-server", "ftp://127.0.0.1:1"}, wantCode: 2, wantStderr: `unsupported scheme "ftp"`},
		{name: "contradicting id flags", args: []string{"-message-ids", "-no-message-ids"}, wantCode: 2, wantStderr: "-message-ids and -no-message-ids contradict each other"},
		{name: "settle without data dir", args: []string{"-settle", "1m"}, wantCode: 2, wantStderr: "-settle needs -data-dir"},
		{name: "negative settle", args: []string{"-settle", "-1s", "-data-dir", "."}, wantCode: 2, wantStderr: "-settle must be >= 0"},
		{name: "missing data dir", args: []string{"-data-dir", "/nonexistent/trove-data"}, wantCode: 2, wantStderr: "-data-dir: stat /nonexistent/trove-data: no such file or directory"},
		{name: "data dir is a file", args: []string{"-data-dir", "main_test.go"}, wantCode: 2, wantStderr: "-data-dir: main_test.go is not a directory"},
		{name: "help", args: []string{"-h"}, wantCode: 0, wantStderr: "Usage: trove bench [flags]"},
		{name: "help explains messageIds", args: []string{"-h"}, wantCode: 0, wantStderr: "Without -seed the\nmessageIds get a random salt per run"},
	})
}

func TestMainServerDown(t *testing.T) {
	addr := closedAddr(t)
	code, stdout, stderr := runMain(t, "-server", addr, "-n", "100000", "-batch", "10", "-conns", "4")
	if code != 1 {
		t.Errorf("exit code %d; want 1", code)
	}
	if want := "first: POST http://" + addr + "/v1/events: "; !strings.Contains(stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr)
	}
	// A request without an answer stops the run: at most one per worker.
	if !strings.Contains(stdout, "ingest with messageIds: 0 events") || strings.Contains(stdout, "requests 10000") {
		t.Errorf("stdout = %s; want 0 events and an early stop", stdout)
	}
}

func TestParseServer(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    target
		wantErr bool
	}{
		{name: "default", in: "http://127.0.0.1:8080", want: target{addr: "127.0.0.1:8080", uri: "http://127.0.0.1:8080/v1/events"}},
		{name: "no scheme", in: "localhost:9000", want: target{addr: "localhost:9000", uri: "http://localhost:9000/v1/events"}},
		{name: "no port", in: "http://example.test", want: target{addr: "example.test:80", uri: "http://example.test:80/v1/events"}},
		{name: "https", in: "https://example.test/trove/", want: target{addr: "example.test:443", isTLS: true, uri: "https://example.test:443/trove/v1/events"}},
		{name: "ipv6", in: "http://[::1]:8080", want: target{addr: "[::1]:8080", uri: "http://[::1]:8080/v1/events"}},
		{name: "bad scheme", in: "unix:///tmp/x", wantErr: true},
		{name: "no host", in: "http://:8080", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseServer(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseServer(%q) error = %v; want error %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("parseServer(%q) = %+v; want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestFormatting(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{name: "digits small", got: groupDigits(999), want: "999"},
		{name: "digits thousands", got: groupDigits(203600), want: "203,600"},
		{name: "digits millions", got: groupDigits(1234567), want: "1,234,567"},
		{name: "digits negative", got: groupDigits(-1234), want: "-1,234"},
		{name: "latency µs", got: fmtLatency(850 * time.Microsecond), want: "850µs"},
		{name: "latency ms", got: fmtLatency(2140 * time.Microsecond), want: "2.1ms"},
		{name: "latency tens of ms", got: fmtLatency(14200 * time.Microsecond), want: "14ms"},
		{name: "latency s", got: fmtLatency(1250 * time.Millisecond), want: "1.25s"},
		{name: "p50", got: percentile([]time.Duration{1, 2, 3, 4}, 0.5).String(), want: "2ns"},
		{name: "p99", got: percentile([]time.Duration{1, 2, 3, 4}, 0.99).String(), want: "4ns"},
		{name: "max", got: percentile([]time.Duration{1, 2, 3, 4}, 1).String(), want: "4ns"},
		{name: "none", got: percentile(nil, 0.5).String(), want: "0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q; want %q", tt.got, tt.want)
			}
		})
	}
}

func TestMainTokenFromEnv(t *testing.T) {
	tests := []struct {
		name     string
		env      string
		args     []string
		wantAuth string
	}{
		{name: "from the environment", env: "env-secret", wantAuth: "Bearer env-secret"},
		{name: "flag wins", env: "env-secret", args: []string{"-token", "flag-secret"}, wantAuth: "Bearer flag-secret"},
		{name: "empty flag sends none", env: "env-secret", args: []string{"-token", ""}, wantAuth: ""},
		{name: "neither", wantAuth: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("TROVE_TOKEN", tt.env)
			srv := startServer(t, fasthttp.StatusAccepted)
			args := append([]string{"-server", srv.url, "-n", "10", "-batch", "5", "-conns", "1"}, tt.args...)
			if code, _, stderr := runMain(t, args...); code != 0 {
				t.Fatalf("exit code %d; want 0\n%s", code, stderr)
			}
			if _, _, auth, _, _ := srv.snapshot(); !slices.Equal(auth, []string{tt.wantAuth}) {
				t.Errorf("Authorization headers %q; want %q", auth, []string{tt.wantAuth})
			}
			if _, _, stderr := runMain(t, "-h"); tt.env != "" && strings.Contains(stderr, tt.env) {
				t.Errorf("-h prints the token from TROVE_TOKEN:\n%s", stderr)
			}
		})
	}
}

func TestAnswerCount(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		key    string
		want   int64
		wantOK bool
	}{
		{name: "trove", body: `{"accepted":498,"duplicates":2,"rejected":0,"errors":[]}`, key: `"duplicates":`, want: 2, wantOK: true},
		{name: "first member", body: `{"accepted":498,"duplicates":2}`, key: `"accepted":`, want: 498, wantOK: true},
		{name: "zero", body: `{"rejected":0}`, key: `"rejected":`, want: 0, wantOK: true},
		{name: "space after the colon", body: `{"accepted": 17}`, key: `"accepted":`, want: 17, wantOK: true},
		{name: "segment", body: `{"success":true,"accepted":3,"duplicates":0,"rejected":1,"errors":[]}`, key: `"rejected":`, want: 1, wantOK: true},
		{name: "missing", body: `{"ok":true}`, key: `"accepted":`},
		{name: "not a number", body: `{"accepted":null}`, key: `"accepted":`},
		{name: "only inside a string", body: `{"message":"\"accepted\":5"}`, key: `"accepted":`},
		{name: "empty", body: ``, key: `"accepted":`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := answerCount([]byte(tt.body), tt.key)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("answerCount(%s, %s) = %d, %v; want %d, %v", tt.body, tt.key, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
