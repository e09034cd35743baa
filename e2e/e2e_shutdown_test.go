package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"trove/internal/testutil"
	"trove/server"
)

// commitGate holds the store's commits (its commit, the server's
// Hooks.Commit) while it is closed, as a slow fsync would hold them.
type commitGate struct {
	hold    atomic.Bool
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func newCommitGate(t *testing.T) *commitGate {
	g := &commitGate{entered: make(chan struct{}, 64), release: make(chan struct{})}
	t.Cleanup(g.open)
	return g
}

func (g *commitGate) commit() {
	if g.hold.Load() {
		g.entered <- struct{}{}
		<-g.release
	}
}

func (g *commitGate) open() { g.once.Do(func() { close(g.release) }) }

// gated returns the option of a server whose commits g holds and whose
// shutdown follows plan.
func gated(g *commitGate, plan server.ShutdownPlan) serverOption {
	return withHooks(server.Hooks{Commit: g.commit, Shutdown: &plan})
}

// stopAsync cancels the server's Serve, as SIGTERM does, and returns a
// channel that receives how long Serve took to return.
func stopAsync(stop func()) <-chan time.Duration {
	took := make(chan time.Duration, 1)
	go func() {
		t := time.Now()
		stop()
		took <- time.Since(t)
	}()
	return took
}

// slowUpload starts a POST /v1/events whose body is declared but only
// begun, and returns its connection.
func slowUpload(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(c, "POST /v1/events HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n[%s,", addr, event("slow", "slow-1"))
	return c
}

// TestE2EShutdownRacesCommits: requests still committing when the drain
// ends (held in the store's commit hook) finish with 202 and are stored:
// the store's close waits for them instead of closing under them (which
// panicked: "BUG: handler panicked: pebble: closed", a 500). A request
// still sending its body when the drain ends gets 503 with Retry-After,
// not a reset. Serve returns 0 within the plan.
func TestE2EShutdownRacesCommits(t *testing.T) {
	gate := newCommitGate(t)
	hooks := gated(gate, server.ShutdownPlan{Drain: 300 * time.Millisecond, Closed: 8 * time.Second, End: 9 * time.Second})
	dir := t.TempDir()
	srv := startServer(t, testConfig, inDir(dir), hooks)
	addr, logs, stop := srv.addr, srv.logs, srv.stop
	gate.hold.Store(true)

	const events = 4
	type result struct {
		what   string
		status int
		err    error
	}
	results := make(chan result, events+1)
	post := func(what, path, body string, header ...string) {
		req, _ := http.NewRequest("POST", "http://"+addr+path, strings.NewReader(body))
		for _, h := range header {
			k, v, _ := strings.Cut(h, ": ")
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			results <- result{what, 0, err}
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		results <- result{what, resp.StatusCode, nil}
	}
	for i := range events {
		go post(fmt.Sprintf("event %d", i), "/v1/events", event("racing", fmt.Sprintf("race-%d", i)), jsonType)
	}
	go post("profile", "/users/profile", `{"appKey":"`+demoApp+`","user_profiles":[{"customer_id":"racer","first_name":"R"}]}`,
		jsonType, "Authorization: Bearer "+backendSecret)
	for range events + 1 {
		select {
		case <-gate.entered:
		case <-time.After(10 * time.Second):
			t.Fatal("the requests did not reach the store's commit")
		}
	}
	upload := slowUpload(t, addr)

	took := stopAsync(stop)
	testutil.WaitFor(t, 10*time.Second, testutil.Until("the drain ends", func() bool { return strings.Contains(logs.String(), "refusing them with 503") }))

	// The upload still sending its body is refused, with an answer.
	resp, err := http.ReadResponse(bufio.NewReader(upload), nil)
	if err != nil {
		t.Fatalf("the upload in flight when the drain ended: %v; want a 503", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), `"unavailable"`) {
		t.Errorf("the upload in flight when the drain ended: %d %v %s; want 503 unavailable with Retry-After", resp.StatusCode, resp.Header, body)
	}

	// The store waits for the commits in flight.
	select {
	case d := <-took:
		t.Fatalf("Serve returned (after %v) while commits were held", d)
	default:
	}
	gate.open()
	for range events + 1 {
		r := <-results
		if r.err != nil || r.status != http.StatusAccepted {
			t.Errorf("%s, committing when the drain ended: %d %v; want 202", r.what, r.status, r.err)
		}
	}
	tookD := <-took
	if tookD > 10*time.Second {
		t.Errorf("Serve took %v to return after the signal; want under 10s", tookD)
	}
	if l := logs.String(); strings.Contains(l, "panicked") || strings.Contains(l, "did not close") {
		t.Errorf("server log:\n%s\nwant no panic, and the store closed", l)
	}

	// Everything acknowledged is there after a restart.
	gate.hold.Store(false)
	addr = startServer(t, testConfig, inDir(dir), hooks).addr
	got := map[string]bool{}
	for _, id := range messageIDs(t, exportEvents(t, addr, "").lines) {
		got[id] = true
	}
	for i := range events {
		if id := fmt.Sprintf("race-%d", i); !got[id] {
			t.Errorf("%s was acknowledged but is not exported after a restart (exported %v)", id, got)
		}
	}
	if got["slow-1"] {
		t.Error("the refused upload's event was stored")
	}
	if st, p := getProfile(t, addr, "userId=racer"); st != http.StatusOK || p["first_name"] != "R" {
		t.Errorf("profile of racer after a restart: %d %v; want the acknowledged one", st, p)
	}
	if !t.Failed() {
		t.Logf("SHUTDOWNRACE: held_commits=%d acked=%d lost=0 panics=0 upload_in_flight=503 exit_ms=%d", events+1, events+1, tookD.Milliseconds())
	}
}

// TestE2EShutdownWithinBudget: a commit that never finishes holds the
// store's close, and so the shutdown, only until the plan's deadlines:
// Serve returns 0 in time all the same. The default plan ends within the
// 10 s that docker stop and Kubernetes wait.
func TestE2EShutdownWithinBudget(t *testing.T) {
	if p := server.DefaultShutdown(); p.Drain <= 0 || p.Drain >= p.Closed || p.Closed >= p.End || p.End > 10*time.Second {
		t.Errorf("default shutdown plan %+v; want 0 < drain < closed < end <= 10s", p)
	}
	gate := newCommitGate(t)
	plan := server.ShutdownPlan{Drain: 200 * time.Millisecond, Closed: 700 * time.Millisecond, End: 1200 * time.Millisecond}
	srv := startServer(t, testConfig, gated(gate, plan))
	addr, logs, stop := srv.addr, srv.logs, srv.stop
	gate.hold.Store(true)
	stuck := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest("POST", "http://"+addr+"/v1/events", strings.NewReader(event("stuck", "stuck-1")))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		stuck <- err
	}()
	<-gate.entered
	d := <-stopAsync(stop)
	if d > plan.End+2*time.Second {
		t.Errorf("Serve took %v to return with a commit that never ends; want about the plan's end (%v)", d, plan.End)
	}
	if !strings.Contains(logs.String(), "did not close within the shutdown plan") {
		t.Errorf("server log:\n%s\nwant it to say the store did not close in time", logs)
	}
	// The connection of the stuck request was closed at the end.
	select {
	case err := <-stuck:
		if err == nil {
			t.Error("the stuck request got an answer; want its connection closed at the plan's end")
		}
	case <-time.After(5 * time.Second):
		t.Error("the stuck request's connection is still open after the shutdown")
	}
	// The store closes once the commit ends, before the test removes its
	// directory.
	gate.open()
	testutil.WaitFor(t, 10*time.Second, testutil.Until("the store closes", func() bool { return strings.Contains(logs.String(), "store closed after the shutdown plan") }))
}
