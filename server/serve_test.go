package server

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"trove/config"
)

// clearTroveEnv empties, for the test, every variable that configures trove
// (an empty variable counts as unset), so that the environment of whoever
// runs the tests cannot override their config files.
func clearTroveEnv(t *testing.T) {
	t.Helper()
	t.Setenv("TROVE_CONFIG", "")
	t.Setenv("TROVE_DATA", "")
	for _, v := range config.EnvVars() {
		t.Setenv(v.Name, "")
	}
}

// TestConfigPrecedence checks flag > environment > file > default for keys
// with a flag, top-level keys without one and keys of sections, through
// loadConfig as serve and check-config call it.
func TestConfigPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "trove.toml")
	os.WriteFile(file, []byte(`listen = "127.0.0.1:1001"
data_dir = "/file/data"
log_level = "warn"
log_format = "text"
retention = "10d"

[ingest]
dedup_window = "1h"

[storage]
cache_size = "16MiB"
`), 0o600)
	type want struct {
		listen, data, level, format string
		retention, dedup            time.Duration
		cache                       config.Size
	}
	def := config.Default()
	tests := []struct {
		name  string
		file  bool
		env   map[string]string
		flags []string
		want  want
	}{
		{"defaults", false, nil, nil,
			want{def.Listen, def.DataDir, def.LogLevel, def.LogFormat, 0, def.Ingest.DedupWindow.Std(), def.Storage.CacheSize}},
		{"file over defaults", true, nil, nil,
			want{"127.0.0.1:1001", "/file/data", "warn", "text", 10 * 24 * time.Hour, time.Hour, 16 << 20}},
		{"environment over file", true, map[string]string{
			"TROVE_LISTEN": "127.0.0.1:1002", "TROVE_DATA_DIR": "/env/data", "TROVE_LOG_LEVEL": "error",
			"TROVE_LOG_FORMAT": "json", "TROVE_RETENTION": "20d", "TROVE_INGEST_DEDUP_WINDOW": "2h",
			"TROVE_STORAGE_CACHE_SIZE": "32MiB",
		}, nil, want{"127.0.0.1:1002", "/env/data", "error", "json", 20 * 24 * time.Hour, 2 * time.Hour, 32 << 20}},
		{"environment without a file", false, map[string]string{"TROVE_INGEST_DEDUP_WINDOW": "3h", "TROVE_DATA": "/old/name"}, nil,
			want{def.Listen, "/old/name", def.LogLevel, def.LogFormat, 0, 3 * time.Hour, def.Storage.CacheSize}},
		{"flags over environment", true, map[string]string{
			"TROVE_LISTEN": "127.0.0.1:1002", "TROVE_DATA": "/env/data", "TROVE_LOG_LEVEL": "error", "TROVE_LOG_FORMAT": "json",
		}, []string{"-listen", "127.0.0.1:1003", "-data", "/flag/data", "-log-level", "debug", "-log-format", "text"},
			want{"127.0.0.1:1003", "/flag/data", "debug", "text", 10 * 24 * time.Hour, time.Hour, 16 << 20}},
		{"the file named by TROVE_CONFIG", false, map[string]string{"TROVE_CONFIG": file}, nil,
			want{"127.0.0.1:1001", "/file/data", "warn", "text", 10 * 24 * time.Hour, time.Hour, 16 << 20}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clearTroveEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			args := tc.flags
			if tc.file {
				args = append([]string{"-config", file}, args...)
			}
			f, err := parseServeFlags("serve", args, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := loadConfig(f)
			if err != nil {
				t.Fatalf("loadConfig: %v", err)
			}
			got := want{cfg.Listen, cfg.DataDir, cfg.LogLevel, cfg.LogFormat, cfg.Retention.Std(), cfg.Ingest.DedupWindow.Std(), cfg.Storage.CacheSize}
			if got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}
