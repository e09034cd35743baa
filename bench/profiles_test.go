package bench

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"
)

// profileServer is a stand-in for Trove's User Profiles API: it checks every
// update request and profile it gets, remembers the users it has seen, and
// answers reads of those users with 200 and of others with 404.
type profileServer struct {
	url        string
	postStatus int  // status of every update request
	readsFail  bool // answer every read with 404

	mu struct {
		sync.Mutex
		profiles [][]byte // owned copies, in arrival order
		requests int
		users    map[string]bool // userIds of accepted profiles
		reads    int
		auth     map[string]bool
		problems []string
	}
}

// startProfileServer serves on a loopback port until the test ends.
func startProfileServer(t *testing.T, postStatus int, readsFail bool) *profileServer {
	t.Helper()
	s := &profileServer{postStatus: postStatus, readsFail: readsFail}
	s.mu.users = map[string]bool{}
	s.mu.auth = map[string]bool{}
	s.url = serveLoopback(t, s.handle)
	return s
}

func (s *profileServer) handle(ctx *fasthttp.RequestCtx) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.auth[string(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization))] = true
	ctx.SetContentType("application/json")
	if string(ctx.Path()) != profilesPath {
		s.fail(ctx, fasthttp.StatusNotFound, fmt.Sprintf("unexpected %s %s", ctx.Method(), ctx.Path()))
		return
	}
	switch {
	case ctx.IsGet():
		s.readLocked(ctx)
	case ctx.IsPost():
		s.updateLocked(ctx)
	default:
		s.fail(ctx, fasthttp.StatusMethodNotAllowed, fmt.Sprintf("unexpected method %s", ctx.Method()))
	}
}

// fail records problem and answers with an error body of SPEC.md section 2.
func (s *profileServer) fail(ctx *fasthttp.RequestCtx, status int, problem string) {
	s.mu.problems = append(s.mu.problems, problem)
	ctx.SetStatusCode(status)
	ctx.SetBodyString(`{"error":"invalid","message":"fake server: ` + strings.ReplaceAll(problem, `"`, `'`) + `","field":""}`)
}

func (s *profileServer) updateLocked(ctx *fasthttp.RequestCtx) {
	s.mu.requests++
	if ct := string(ctx.Request.Header.ContentType()); ct != "application/json" {
		s.fail(ctx, fasthttp.StatusUnsupportedMediaType, fmt.Sprintf("unexpected Content-Type %q", ct))
		return
	}
	var req testProfileRequest
	if err := json.Unmarshal(ctx.Request.Body(), &req); err != nil {
		s.fail(ctx, fasthttp.StatusBadRequest, fmt.Sprintf("bad JSON: %v", err))
		return
	}
	if req.AppKey == nil || *req.AppKey != DefaultAppKey || len(req.Profiles) < 1 || len(req.Profiles) > 1000 {
		s.fail(ctx, fasthttp.StatusBadRequest, fmt.Sprintf("appKey %v with %d profiles", req.AppKey, len(req.Profiles)))
		return
	}
	type answer struct {
		PyzeID  string `json:"pyze_id"`
		UserID  string `json:"userId,omitempty"`
		Created bool   `json:"created"`
	}
	answers := make([]answer, 0, len(req.Profiles))
	for _, raw := range req.Profiles {
		p, problem := profileProblem(raw)
		if problem != "" {
			s.fail(ctx, fasthttp.StatusBadRequest, problem)
			return
		}
		h := mix64(uint64(len(s.mu.profiles)))
		answers = append(answers, answer{
			PyzeID:  string(appendUUID(nil, h, mix64(h))),
			UserID:  p.userID,
			Created: p.userID != "" && !s.mu.users[p.userID],
		})
	}
	if s.postStatus != fasthttp.StatusAccepted {
		ctx.SetStatusCode(s.postStatus)
		ctx.SetBodyString(`{"error":"invalid","message":"test server says no","field":"user_profiles"}`)
		return
	}
	for i, raw := range req.Profiles {
		s.mu.profiles = append(s.mu.profiles, bytes.Clone(raw))
		if u := answers[i].UserID; u != "" {
			s.mu.users[u] = true
		}
	}
	body, err := json.Marshal(struct {
		Accepted int      `json:"accepted"`
		Profiles []answer `json:"profiles"`
	}{len(answers), answers})
	if err != nil {
		s.fail(ctx, fasthttp.StatusInternalServerError, err.Error())
		return
	}
	ctx.SetStatusCode(fasthttp.StatusAccepted)
	ctx.SetBody(body)
}

func (s *profileServer) readLocked(ctx *fasthttp.RequestCtx) {
	s.mu.reads++
	args := ctx.QueryArgs()
	app, user := string(args.Peek("appKey")), string(args.Peek("userId"))
	if app != DefaultAppKey || !puserRE.MatchString(user) || args.Len() != 2 {
		s.fail(ctx, fasthttp.StatusBadRequest, fmt.Sprintf("unexpected query %s", args))
		return
	}
	if s.readsFail || !s.mu.users[user] {
		ctx.SetStatusCode(fasthttp.StatusNotFound)
		ctx.SetBodyString(`{"error":"not_found","message":"no such profile","field":"userId"}`)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetBodyString(`{"userId":"` + user + `","pyze_id":"ca1ab028-185d-4833-a3af-5b5d46b62771","custom-logins":3}`)
}

// snapshot returns what the server has seen so far.
func (s *profileServer) snapshot() (profiles [][]byte, requests, reads int, auth, problems []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.mu.auth {
		auth = append(auth, k)
	}
	return slices.Clone(s.mu.profiles), s.mu.requests, s.mu.reads, auth, slices.Clone(s.mu.problems)
}

// readsLine matches the report's reads line.
var readsLine = regexp.MustCompile(`\nreads: (\d+) at [0-9.,]+/s \(target [0-9.,]+/s\), latency p50 \S+ p99 \S+ max \S+, errors (\d+)\n`)

func TestProfilesMain(t *testing.T) {
	t.Setenv("TROVE_TOKEN", "")
	tests := []struct {
		name         string
		args         []string
		postStatus   int
		readsFail    bool
		wantCode     int
		wantProfiles int // -1: stopped by -duration, so only "some"
		wantRequests int
		wantReads    bool // the run reads, and the report counts what the server got
		wantStdout   []string
		wantStderr   []string
	}{
		{
			name:         "batches",
			args:         []string{"-n", "2000", "-batch", "100", "-conns", "4"},
			wantProfiles: 2000,
			wantRequests: 20,
			wantStdout: []string{"profiles: 2000 updates in ", " updates/s, ", " MB/s (raw JSON), requests 20, latency p50 ",
				" p99 ", " max ", ", errors 0\n", "client: batch 100 (json, profiles), conns 4, seed 1, generation ", " ns/update "},
		},
		{
			name:         "W3 label",
			args:         []string{"-n", "1000", "-batch", "100", "-conns", "8"},
			wantProfiles: 1000,
			wantRequests: 10,
			wantStdout:   []string{"W3 profiles: 1000 updates in ", "errors 0\n"},
		},
		{
			name:         "last batch partial",
			args:         []string{"-n", "250", "-batch", "100", "-conns", "3"},
			wantProfiles: 250,
			wantRequests: 3,
			wantStdout:   []string{"profiles: 250 updates in ", "requests 3,"},
		},
		{
			name:         "calibrate",
			args:         []string{"-n", "2000", "-batch", "100", "-conns", "4", "-calibrate"},
			wantProfiles: 2000,
			wantRequests: 20,
			wantStdout: []string{"ceiling (in-process fasthttp, discards bodies): 2000 updates in ",
				"\nprofiles: 2000 updates in ", "\nratio: ", " updates/s)\n"},
		},
		{
			name:         "duration cap with reads",
			args:         []string{"-n", "1000000000", "-batch", "50", "-conns", "2", "-duration", "300ms", "-reads", "400"},
			wantProfiles: -1,
			wantReads:    true,
			wantStdout:   []string{"errors 0\n", "(target 400/s)"},
		},
		{
			name:         "calibrate with reads",
			args:         []string{"-n", "1000000000", "-batch", "50", "-conns", "2", "-duration", "200ms", "-reads", "300", "-calibrate"},
			wantProfiles: -1,
			wantReads:    true,
			wantStdout:   []string{"\nceiling reads: ", "\nratio: "},
		},
		{
			name:         "server answers 400",
			args:         []string{"-n", "2000", "-batch", "100", "-conns", "4", "-reads", "100"},
			postStatus:   fasthttp.StatusBadRequest,
			wantCode:     1,
			wantRequests: 20,
			wantStdout:   []string{"profiles: 0 updates in ", "requests 20,", "errors 20\n", "\nreads: 0 at 0/s (target 100/s)"},
			wantStderr:   []string{"trove bench profiles: 20 of 20 requests failed; first: HTTP 400: ", "test server says no"},
		},
		{
			name:         "reads answered 404",
			args:         []string{"-n", "1000000000", "-batch", "50", "-conns", "2", "-duration", "300ms", "-reads", "400"},
			readsFail:    true,
			wantCode:     1,
			wantProfiles: -1,
			wantReads:    true,
			wantStdout:   []string{"updates/s", ", errors 0\nreads: "},
			wantStderr: []string{" reads failed; first: GET http://", profilesPath + "?appKey=" + DefaultAppKey + "&userId=puser-",
				": HTTP 404: {\"error\":\"not_found\""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status := tt.postStatus
			if status == 0 {
				status = fasthttp.StatusAccepted
			}
			srv := startProfileServer(t, status, tt.readsFail)
			args := append([]string{"profiles", "-server", srv.url, "-token", "s3cret"}, tt.args...)
			code, stdout, stderr := runMain(t, args...)
			if code != tt.wantCode {
				t.Errorf("exit code %d; want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, stdout, stderr)
			}
			profiles, requests, reads, auth, problems := srv.snapshot()
			for _, p := range problems {
				t.Errorf("server: %s", p)
			}
			checkReceived(t, "profiles", len(profiles), tt.wantProfiles)
			if want := fmt.Sprintf("profiles: %d updates in ", len(profiles)); !strings.Contains(stdout, want) {
				t.Errorf("stdout does not report the %d profiles the server got:\n%s", len(profiles), stdout)
			}
			if tt.wantRequests > 0 && requests != tt.wantRequests {
				t.Errorf("server got %d requests; want %d", requests, tt.wantRequests)
			}
			if want := []string{"Bearer s3cret"}; !slices.Equal(auth, want) {
				t.Errorf("Authorization headers %q; want %q", auth, want)
			}
			m := readsLine.FindStringSubmatch(stdout)
			switch {
			case !tt.wantReads && reads > 0:
				t.Errorf("server got %d reads; want none", reads)
			case !tt.wantReads:
			case m == nil:
				t.Errorf("stdout has no reads line:\n%s", stdout)
			case reads == 0 || m[1] != strconv.Itoa(reads):
				t.Errorf("stdout reports %s reads and the server got %d; want the same, more than 0:\n%s", m[1], reads, stdout)
			case tt.readsFail != (m[2] == m[1]):
				t.Errorf("stdout reports %s read errors of %s; want all when the server fails them, else none", m[2], m[1])
			}
			checkContains(t, "stdout", stdout, tt.wantStdout)
			checkContains(t, "stderr", stderr, tt.wantStderr)
		})
	}
}

func TestProfilesSameWhateverTheConns(t *testing.T) {
	checkSameWhateverTheConns(t, "profiles", func(t *testing.T, conns string) [][]byte {
		srv := startProfileServer(t, fasthttp.StatusAccepted, false)
		code, _, stderr := runMain(t, "profiles", "-server", srv.url, "-token", "t", "-n", "1000", "-batch", "40", "-conns", conns, "-seed", "7")
		if code != 0 {
			t.Fatalf("exit code %d; want 0\n%s", code, stderr)
		}
		got, _, _, _, _ := srv.snapshot()
		return got
	})
}

func TestProfilesToken(t *testing.T) {
	tests := []struct {
		name     string
		env      string
		args     []string
		wantCode int
		wantAuth string
	}{
		{name: "from the environment", env: "env-secret", wantAuth: "Bearer env-secret"},
		{name: "flag wins", env: "env-secret", args: []string{"-token", "flag-secret"}, wantAuth: "Bearer flag-secret"},
		{name: "empty flag", env: "env-secret", args: []string{"-token", ""}, wantCode: 2},
		{name: "neither", wantCode: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("TROVE_TOKEN", tt.env)
			srv := startProfileServer(t, fasthttp.StatusAccepted, false)
			args := append([]string{"profiles", "-server", srv.url, "-n", "10", "-batch", "5", "-conns", "1"}, tt.args...)
			code, stdout, stderr := runMain(t, args...)
			if code != tt.wantCode {
				t.Fatalf("exit code %d; want %d\n%s", code, tt.wantCode, stderr)
			}
			_, requests, _, auth, _ := srv.snapshot()
			if tt.wantCode == 2 {
				if want := "a token is required"; !strings.Contains(stderr, want) || stdout != "" || requests != 0 {
					t.Errorf("stderr lacks %q, or something was sent (%d requests, stdout %q):\n%s", want, requests, stdout, stderr)
				}
				return
			}
			if !slices.Equal(auth, []string{tt.wantAuth}) {
				t.Errorf("Authorization headers %q; want %q", auth, []string{tt.wantAuth})
			}
			if _, _, stderr := runMain(t, "profiles", "-h"); strings.Contains(stderr, tt.env) {
				t.Errorf("-h prints the token from TROVE_TOKEN:\n%s", stderr)
			}
		})
	}
}

func TestProfilesBadFlags(t *testing.T) {
	t.Setenv("TROVE_TOKEN", "tok")
	checkBadFlags(t, []string{"profiles"}, []badFlags{
		{name: "unknown flag", args: []string{"-ndjson"}, wantCode: 2, wantStderr: "flag provided but not defined: -ndjson"},
		{name: "zero batch", args: []string{"-batch", "0"}, wantCode: 2, wantStderr: "-batch must be >= 1"},
		{name: "zero conns", args: []string{"-conns", "0"}, wantCode: 2, wantStderr: "-conns must be >= 1"},
		{name: "zero updates", args: []string{"-n", "0"}, wantCode: 2, wantStderr: "-n must be >= 1"},
		{name: "negative reads", args: []string{"-reads", "-1"}, wantCode: 2, wantStderr: "-reads must be a rate >= 0"},
		{name: "reads not a number", args: []string{"-reads", "NaN"}, wantCode: 2, wantStderr: "-reads must be a rate >= 0"},
		{name: "infinite reads", args: []string{"-reads", "+Inf"}, wantCode: 2, wantStderr: "-reads must be a rate >= 0"},
		{name: "stray argument", args: []string{"extra"}, wantCode: 2, wantStderr: "unexpected arguments"},
		{name: "bad scheme", args: []string{"-server", "ftp://127.0.0.1:1"}, wantCode: 2, wantStderr: `trove bench profiles: -server: unsupported scheme "ftp"`},
		{name: "help", args: []string{"-h"}, wantCode: 0, wantStderr: "Usage: trove bench profiles [flags]"},
	})
}

func TestProfilesServerDown(t *testing.T) {
	addr := closedAddr(t)
	code, stdout, stderr := runMain(t, "profiles", "-server", addr, "-token", "t", "-n", "100000", "-batch", "10", "-conns", "4", "-reads", "50")
	if code != 1 {
		t.Errorf("exit code %d; want 1", code)
	}
	if want := "first: POST http://" + addr + profilesPath + ": "; !strings.Contains(stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr)
	}
	// A request without an answer stops the run: at most one per worker.
	if !strings.Contains(stdout, "profiles: 0 updates") || strings.Contains(stdout, "requests 10000") || !strings.Contains(stdout, "\nreads: 0 at") {
		t.Errorf("stdout = %s; want 0 updates, 0 reads and an early stop", stdout)
	}
}

func TestKnownUsers(t *testing.T) {
	tests := []struct {
		name  string
		adds  [][]uint64
		wantN uint64 // users that pick may return: the last min(all, knownSlots) added
	}{
		{name: "one", adds: [][]uint64{{7}}, wantN: 1},
		{name: "a few requests", adds: [][]uint64{{1, 2, 3}, {}, {4, 5}}, wantN: 5},
		{name: "wraps around", adds: [][]uint64{seq(0, knownSlots), seq(knownSlots, 100)}, wantN: knownSlots},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newKnownUsers()
			var all []uint64
			for _, a := range tt.adds {
				k.add(a)
				all = append(all, a...)
			}
			select {
			case <-k.ready:
			default:
				t.Fatalf("ready not closed after adding %d users", len(all))
			}
			want := map[uint64]bool{}
			for _, u := range all[len(all)-int(tt.wantN):] {
				want[u] = true
			}
			for r := range uint64(3 * knownSlots) {
				if u := k.pick(r); !want[u] {
					t.Fatalf("pick(%d) = %d; want one of the last %d added", r, u, tt.wantN)
				}
			}
		})
	}
}

func TestProfilesTarget(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want target
	}{
		{name: "default", in: "http://127.0.0.1:8080", want: target{addr: "127.0.0.1:8080", uri: "http://127.0.0.1:8080/v1/users/profile"}},
		{name: "path prefix", in: "https://example.test/trove/", want: target{addr: "example.test:443", isTLS: true, uri: "https://example.test:443/trove/v1/users/profile"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tgt, err := parseServer(tt.in)
			if err != nil {
				t.Fatalf("parseServer(%q): %v", tt.in, err)
			}
			if got := tgt.profiles(); got != tt.want {
				t.Errorf("parseServer(%q).profiles() = %+v; want %+v", tt.in, got, tt.want)
			}
		})
	}
}
