package e2e

// The harness: the one way these tests start a server in this process
// (startServer) and run a command as main dispatches it (runCmd). They
// wait for a condition with testutil.WaitFor and collect a log in a
// testutil.SyncBuffer. The tests that build and run the binary start it
// with troveBinary and startChild (crash_test.go).

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"trove/cli"
	"trove/config"
	"trove/internal/testutil"
	"trove/server"
)

// moduleRoot is the repository's root, relative to this directory: main.go
// (the binary's package), the Dockerfile, config.example.toml, deploy/ and
// the fixtures of testdata/ and storage/testdata/ are there.
const moduleRoot = ".."

// testVersion is the version of the servers run in this process (main's
// version is set by -ldflags; this package has no main).
const testVersion = "dev"

// TestMain unsets, once for the package, every variable that configures
// trove, so that the environment of whoever runs the tests cannot override
// their config files; a test that sets one does so with t.Setenv, and so
// does not run in parallel. It removes the built binaries at the end.
func TestMain(m *testing.M) {
	os.Unsetenv("TROVE_CONFIG")
	os.Unsetenv("TROVE_DATA")
	for _, v := range config.EnvVars() {
		os.Unsetenv(v.Name)
	}
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// testServer is a server that startServer runs.
type testServer struct {
	addr    string // the bound address, host:port
	dataDir string
	logs    *testutil.SyncBuffer
	// stop cancels Serve's context, as SIGTERM does, and checks that it
	// returns 0 in time; it runs once, at the latest when the test ends.
	stop func()
}

// serverSetup is how startServer runs a server; serverOptions change it.
type serverSetup struct {
	dataDir string
	args    []string
	hooks   server.Hooks
}

// serverOption changes a serverSetup.
type serverOption func(*serverSetup)

// inDir serves dataDir instead of a fresh directory (restarts, restores).
func inDir(dataDir string) serverOption { return func(s *serverSetup) { s.dataDir = dataDir } }

// withArgs appends flags to serve's command line.
func withArgs(args ...string) serverOption {
	return func(s *serverSetup) { s.args = append(s.args, args...) }
}

// withHooks gives the server hooks (OnReady is the harness's own).
func withHooks(h server.Hooks) serverOption { return func(s *serverSetup) { s.hooks = h } }

// startServer runs `trove serve` in this process with cfgText as its config
// file, on 127.0.0.1:0 and a fresh data directory unless an option says
// otherwise, and returns once it serves.
func startServer(t *testing.T, cfgText string, opts ...serverOption) *testServer {
	t.Helper()
	setup := serverSetup{}
	for _, o := range opts {
		o(&setup)
	}
	if setup.dataDir == "" {
		setup.dataDir = t.TempDir()
	}
	cfgPath := filepath.Join(t.TempDir(), "trove.toml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	h := setup.hooks
	h.OnReady = func(addr string) { ready <- addr }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	s := &testServer{dataDir: setup.dataDir, logs: &testutil.SyncBuffer{}}
	args := append([]string{"-config", cfgPath, "-data", setup.dataDir, "-listen", "127.0.0.1:0"}, setup.args...)
	go func() {
		done <- server.Serve(ctx, args, io.Discard, s.logs, server.Options{Version: testVersion, Hooks: h})
	}()
	select {
	case s.addr = <-ready:
	case code := <-done:
		cancel()
		t.Fatalf("Serve returned %d before serving; log:\n%s", code, s.logs)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatalf("the server did not start within 30s; log:\n%s", s.logs)
	}
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case code := <-done:
				if code != 0 {
					t.Errorf("Serve returned %d after its context was cancelled; want 0", code)
				}
			case <-time.After(15 * time.Second):
				t.Errorf("Serve did not return within 15s of its context being cancelled")
			}
			httpClient.CloseIdleConnections()
			if t.Failed() {
				t.Logf("server log:\n%s", s.logs)
			}
		})
	}
	t.Cleanup(s.stop)
	return s
}

// command is a trove command as main dispatches it (cli.Import,
// bench.Main, server.CheckConfig, …).
type command func(ctx context.Context, args []string, stdout, stderr io.Writer) int

// runCmd runs cmd with args in this process and returns its exit code,
// stdout and stderr.
func runCmd(t *testing.T, cmd command, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = cmd(t.Context(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// The commands whose functions take other arguments than main's command
// signature, as main calls them (schemas reads no terminal here).
var (
	serveCmd command = func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
		return server.Serve(ctx, args, stdout, stderr, server.Options{Version: testVersion})
	}
	checkConfigCmd command = func(_ context.Context, args []string, stdout, stderr io.Writer) int {
		return server.CheckConfig(args, stdout, stderr)
	}
	schemasCmd command = func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
		return cli.Schemas(ctx, args, strings.NewReader(""), stdout, stderr)
	}
)
