package e2e

// Configuration from flags, the environment and the file, in that order of
// precedence (SPEC section 1), and the log format and level from each.

import (
	"strings"
	"testing"
)

// TestConfigEnvErrors checks that check-config and serve refuse a bad
// environment, naming each variable, and an invalid value from a flag.
func TestConfigEnvErrors(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		cmd  command
		args []string
		want []string
	}{
		{"bad values and an unknown key", map[string]string{"TROVE_INGEST_DEDUP_WINDOW": "a month", "TROVE_STORAGE_CACHE_SZE": "1GiB"},
			checkConfigCmd, nil, []string{"the environment is not valid", `TROVE_INGEST_DEDUP_WINDOW (ingest.dedup_window): invalid duration "a month"`,
				"TROVE_STORAGE_CACHE_SZE: not a configuration key"}},
		{"valid syntax, invalid value", map[string]string{"TROVE_STORAGE_CACHE_SIZE": "1MiB"},
			serveCmd, []string{"-check-config"}, []string{"storage.cache_size: must be at least 8MiB"}},
		{"log format from a flag", nil, serveCmd, []string{"-check-config", "-log-format", "xml"},
			[]string{`log_format: "xml" is not one of auto, json, text`}},
		{"log level from the environment", map[string]string{"TROVE_LOG_LEVEL": "chatty"}, checkConfigCmd, nil,
			[]string{`log_level: "chatty" is not one of debug, info, warn, error`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			if code, stdout, stderr := runCmd(t, tc.cmd, tc.args...); code != 1 {
				t.Errorf("exit %d; want 1 (stdout %q)", code, stdout)
			} else {
				for _, w := range tc.want {
					if !strings.Contains(stderr, w) {
						t.Errorf("stderr:\n%s\nwant it to contain %q", stderr, w)
					}
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
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			// Serve until it serves, make one request that logs at debug,
			// stop it and read its log.
			srv := startServer(t, "", withArgs(tc.flags...))
			request(t, "GET", "http://"+srv.addr+"/healthz", nil)
			srv.stop()
			logs := srv.logs.String()
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
