package main

// Configuration from flags, the environment and the file, in that order of
// precedence (SPEC section 1), and the log format and level from each.

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"trove/server"
)

// TestConfigEnvErrors checks that check-config and serve refuse a bad
// environment, naming each variable, and an invalid value from a flag.
func TestConfigEnvErrors(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"bad values and an unknown key", map[string]string{"TROVE_INGEST_DEDUP_WINDOW": "a month", "TROVE_STORAGE_CACHE_SZE": "1GiB"},
			[]string{"check-config"}, []string{"the environment is not valid", `TROVE_INGEST_DEDUP_WINDOW (ingest.dedup_window): invalid duration "a month"`,
				"TROVE_STORAGE_CACHE_SZE: not a configuration key"}},
		{"valid syntax, invalid value", map[string]string{"TROVE_STORAGE_CACHE_SIZE": "1MiB"},
			[]string{"serve", "-check-config"}, []string{"storage.cache_size: must be at least 8MiB"}},
		{"log format from a flag", nil, []string{"serve", "-check-config", "-log-format", "xml"},
			[]string{`log_format: "xml" is not one of auto, json, text`}},
		{"log level from the environment", map[string]string{"TROVE_LOG_LEVEL": "chatty"}, []string{"check-config"},
			[]string{`log_level: "chatty" is not one of debug, info, warn, error`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clearTroveEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), tc.args, &stdout, &stderr); code != 1 {
				t.Errorf("exit %d; want 1 (stdout %q)", code, stdout.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr:\n%s\nwant it to contain %q", stderr.String(), w)
				}
			}
		})
	}
}

// TestLogFormatAndLevel serves with the log format and level from a flag
// and from the environment, and reads the log lines.
func TestLogFormatAndLevel(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		flags    []string
		want     string // in the log
		wantNot  string // not in the log
		jsonLine bool   // every line is a JSON object
	}{
		{"default: JSON when not a terminal", nil, nil, `"msg":"listening on http://`, "", true},
		{"text from the flag", nil, []string{"-log-format", "text"}, `level=INFO msg="listening on http://`, `"msg"`, false},
		{"text from the environment", map[string]string{"TROVE_LOG_FORMAT": "text"}, nil, `level=INFO msg="store opened"`, `"msg"`, false},
		{"flag over environment", map[string]string{"TROVE_LOG_FORMAT": "text"}, []string{"-log-format", "json"}, `"msg":"store opened"`, "level=INFO", true},
		{"level from the flag", nil, []string{"-log-level", "warn"}, "", "listening on", true},
		{"level from the environment", map[string]string{"TROVE_LOG_LEVEL": "debug"}, nil, `"level":"DEBUG"`, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clearTroveEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			logs := serveBriefly(t, append([]string{"-data", t.TempDir(), "-listen", "127.0.0.1:0"}, tc.flags...))
			if !strings.Contains(logs, tc.want) {
				t.Errorf("log lacks %q:\n%s", tc.want, logs)
			}
			if tc.wantNot != "" && strings.Contains(logs, tc.wantNot) {
				t.Errorf("log has %q:\n%s", tc.wantNot, logs)
			}
			if tc.jsonLine {
				for line := range strings.Lines(logs) {
					if !strings.HasPrefix(line, "{") {
						t.Errorf("log line %q is not JSON", line)
					}
				}
			}
		})
	}
}

// serveBriefly runs trove serve with args until it serves, makes one request that
// logs at debug, stops it and returns its log.
func serveBriefly(t *testing.T, args []string) string {
	t.Helper()
	ready := make(chan string, 1)
	h := server.Hooks{OnReady: func(addr string) { ready <- addr }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &syncBuffer{}
	done := make(chan int, 1)
	go func() { done <- server.Serve(ctx, args, io.Discard, logs, server.Options{Version: version, Hooks: h}) }()
	select {
	case addr := <-ready:
		request(t, "GET", "http://"+addr+"/healthz", nil)
		httpClient.CloseIdleConnections()
	case code := <-done:
		t.Fatalf("run returned %d before serving; log:\n%s", code, logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("the server did not start within 30s; log:\n%s", logs)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("run returned %d; want 0; log:\n%s", code, logs)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("run did not return within 15s of its context being cancelled")
	}
	return logs.String()
}
