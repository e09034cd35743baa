// Package e2e holds Trove's end-to-end tests: they drive the real server
// over real HTTP, and have no code outside its test files.
//
// Two kinds of test live here, and the rule for each:
//
//   - In process (most files): startServer (harness_test.go) runs
//     server.Serve on 127.0.0.1:0 with a config file and a data directory of
//     the test's own, and with the server.Hooks the test gives it (a clock,
//     a crashable file system, an in-memory listener, the free space, a
//     commit hook, a shorter shutdown plan). Nothing global is set, so these
//     tests call t.Parallel, except those that share process state or time:
//     a test that sets an environment variable (t.Setenv), changes a
//     package variable (export.StreamHeartbeat), reads counters from
//     /metrics (the obs metrics are one set per process), measures time
//     closely (shutdown deadlines, rate limits, power loss, trove bench), or
//     drives an outside tool (Chromium, systemd-analyze).
//   - The binary (crash_test.go, crash_replay_test.go, crashloop_test.go,
//     diskfull_linux_test.go, docker_test.go, hostile_test.go,
//     memflood_test.go, soak_test.go, and TestE2ESinkKillMidUpload):
//     troveBinary builds it once per run from the module root (with -race
//     when the tests have it) and startChild runs it as a child process, to
//     kill it with SIGKILL, fill its disk or measure its memory. These skip
//     under -short, and never run in parallel: they measure the process.
//
// Files outside this directory are reached through moduleRoot: the
// Dockerfile, config.example.toml, deploy/systemd, docs/ (the console's
// screenshots), and the fixtures, read in place: testdata/ at the root
// (import and SDK files, which the README's commands also use) and
// storage/testdata/v1store.
//
// This directory is a module of its own (go.mod here, with replace trove =>
// ../): the modules only these tests use (chromedp, kin-openapi, the Segment,
// RudderStack and PostHog SDKs, gofakes3, go-containerregistry) are its
// requirements, not the product's, so go build . at the root never needs
// them. Run the tests with go test -C e2e ./... (or from this directory);
// go test ./... at the root does not reach them.
package e2e
