package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// envCases gives, for every variable, a value to set it to and the field
// value it must give. TestEnvEveryKey fails while a key of Config has no
// row, so a new key cannot go untested.
var envCases = map[string]struct {
	value string
	want  any
}{
	"TROVE_LISTEN":      {"127.0.0.1:9090", "127.0.0.1:9090"},
	"TROVE_DATA_DIR":    {"/var/lib/trove", "/var/lib/trove"},
	"TROVE_ADMIN_TOKEN": {"an-admin-secret", "an-admin-secret"},
	"TROVE_RETENTION":   {"400d", Duration(400 * 24 * time.Hour)},
	"TROVE_LOG_LEVEL":   {"debug", "debug"},
	"TROVE_LOG_FORMAT":  {"json", "json"},

	"TROVE_INGEST_SYNC":              {"false", false},
	"TROVE_INGEST_DEDUP_WINDOW":      {"24h", Duration(24 * time.Hour)},
	"TROVE_INGEST_SKEW_THRESHOLD":    {"2m", Duration(2 * time.Minute)},
	"TROVE_INGEST_MAX_FUTURE":        {"2d", Duration(48 * time.Hour)},
	"TROVE_INGEST_MAX_EVENT_BYTES":   {"65536", int64(65536)},
	"TROVE_INGEST_MAX_REQUEST_BYTES": {"10485760", int64(10 << 20)},
	"TROVE_INGEST_MAX_ATTRIBUTES":    {"100", 100},
	"TROVE_INGEST_CORS_ORIGINS":      {"https://a.example, https://b.example", []string{"https://a.example", "https://b.example"}},
	"TROVE_INGEST_SCHEMA_MODE":       {"reject", "reject"},
	"TROVE_INGEST_SCHEMA_UNKNOWN":    {"warn", "warn"},

	"TROVE_PROFILES_MAX_PROFILES": {"500", 500},
	"TROVE_PROFILES_MAX_FIELDS":   {"80", 80},

	"TROVE_STORAGE_MIN_FREE_DISK":       {"2GiB", Size(2 << 30)},
	"TROVE_STORAGE_CACHE_SIZE":          {"128MiB", Size(128 << 20)},
	"TROVE_STORAGE_MERGE_INTERVAL":      {"10s", Duration(10 * time.Second)},
	"TROVE_STORAGE_MERGE_MIN_AGE":       {"1m", Duration(time.Minute)},
	"TROVE_STORAGE_DEDUP_FILTER_MEMORY": {"32MiB", Size(32 << 20)},
	"TROVE_STORAGE_COLUMNAR_BLOCKS":     {"true", true},

	"TROVE_HTTP_READ_TIMEOUT":     {"30s", Duration(30 * time.Second)},
	"TROVE_HTTP_WRITE_TIMEOUT":    {"90s", Duration(90 * time.Second)},
	"TROVE_HTTP_IDLE_TIMEOUT":     {"5m", Duration(5 * time.Minute)},
	"TROVE_HTTP_CONCURRENCY":      {"1024", 1024},
	"TROVE_HTTP_MAX_CONNS_PER_IP": {"64", 64},
	"TROVE_HTTP_MAX_HEADER_BYTES": {"32KiB", Size(32 << 10)},
	"TROVE_HTTP_MAX_BODY_MEMORY":  {"256MiB", Size(256 << 20)},

	"TROVE_CLUSTER_NATS_URL":         {"nats://n1:4222,nats://n2:4222", "nats://n1:4222,nats://n2:4222"},
	"TROVE_CLUSTER_STREAM":           {"EVENTS", "EVENTS"},
	"TROVE_CLUSTER_REPLICAS":         {"5", 5},
	"TROVE_CLUSTER_NODE":             {"trove-2", "trove-2"},
	"TROVE_CLUSTER_MAX_LAG":          {"10s", Duration(10 * time.Second)},
	"TROVE_CLUSTER_CREDENTIALS_FILE": {"/etc/trove/nats.creds", "/etc/trove/nats.creds"},
}

// TestEnvEveryKey walks the Config struct itself (not EnvVars) and checks
// that each key outside the arrays of tables has its variable, named
// TROVE_<SECTION>_<KEY>, with a row in envCases; then that setting each
// variable sets its key, and only it.
func TestEnvEveryKey(t *testing.T) {
	byName := map[string]EnvVar{}
	for _, ev := range EnvVars() {
		if _, dup := byName[ev.Name]; dup {
			t.Errorf("two keys share the variable %s", ev.Name)
		}
		byName[ev.Name] = ev
	}
	var keys []string
	var walk func(typ reflect.Type, path string)
	walk = func(typ reflect.Type, path string) {
		for f := range typ.Fields() {
			key, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			full := key
			if path != "" {
				full = path + "." + key
			}
			switch {
			case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
				// [[apps]], [[tokens]]: no environment form.
			case f.Type.Kind() == reflect.Struct && !reflect.PointerTo(f.Type).Implements(textUnmarshaler):
				walk(f.Type, full)
			default:
				keys = append(keys, full)
			}
		}
	}
	walk(reflect.TypeFor[Config](), "")
	if len(keys) != len(byName) {
		t.Errorf("the struct has %d keys with an environment form; EnvVars has %d", len(keys), len(byName))
	}
	for _, key := range keys {
		name := "TROVE_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
		ev, ok := byName[name]
		if !ok || ev.Key != key {
			t.Errorf("key %s: no variable %s in EnvVars (got %+v)", key, name, ev)
		}
		if _, ok := envCases[name]; !ok {
			t.Errorf("key %s: no row for %s in envCases: add one", key, name)
		}
	}
	for name := range envCases {
		if _, ok := byName[name]; !ok {
			t.Errorf("envCases has a row for %s, which is no variable of EnvVars", name)
		}
	}

	for _, ev := range EnvVars() {
		tc, ok := envCases[ev.Name]
		if !ok {
			continue
		}
		t.Run(ev.Name, func(t *testing.T) {
			cfg := Default()
			if err := cfg.ApplyEnv([]string{ev.Name + "=" + tc.value}); err != nil {
				t.Fatalf("ApplyEnv(%s=%s): %v", ev.Name, tc.value, err)
			}
			got := reflect.ValueOf(&cfg).Elem().FieldByIndex(ev.field)
			if !reflect.DeepEqual(got.Interface(), tc.want) {
				t.Errorf("%s=%s: %s = %#v; want %#v", ev.Name, tc.value, ev.Key, got.Interface(), tc.want)
			}
			if reflect.DeepEqual(tc.want, reflect.ValueOf(Default()).FieldByIndex(ev.field).Interface()) {
				t.Errorf("the row's value for %s is the default; pick another so that the test shows it is applied", ev.Name)
			}
			// Every other key keeps its default.
			got.Set(reflect.ValueOf(Default()).FieldByIndex(ev.field))
			if !reflect.DeepEqual(cfg, Default()) {
				t.Errorf("%s=%s changed another key:\ngot  %+v\nwant %+v", ev.Name, tc.value, cfg, Default())
			}
		})
	}
}

func TestApplyEnv(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		check   func(c Config) bool
		want    string // what check verifies, for the failure message
	}{
		{"empty counts as unset", []string{"TROVE_LISTEN=", "TROVE_INGEST_SYNC="},
			func(c Config) bool { return reflect.DeepEqual(c, Default()) }, "Default()"},
		{"older name TROVE_DATA", []string{"TROVE_DATA=/srv/trove"},
			func(c Config) bool { return c.DataDir == "/srv/trove" }, "data_dir /srv/trove"},
		{"older and newer name agreeing", []string{"TROVE_DATA=/srv/trove", "TROVE_DATA_DIR=/srv/trove"},
			func(c Config) bool { return c.DataDir == "/srv/trove" }, "data_dir /srv/trove"},
		{"list as a TOML array", []string{`TROVE_INGEST_CORS_ORIGINS=["https://a.example", "https://b,c.example"]`},
			func(c Config) bool {
				return reflect.DeepEqual(c.Ingest.CORSOrigins, []string{"https://a.example", "https://b,c.example"})
			}, "two origins"},
		{"empty list as a TOML array", []string{"TROVE_INGEST_CORS_ORIGINS=[]"},
			func(c Config) bool { return c.Ingest.CORSOrigins != nil && len(c.Ingest.CORSOrigins) == 0 }, "no origin"},
		{"other variables ignored", []string{"TROVE_TOKEN=x", "TROVE_S3_SECRET_KEY=y", "TROVE_TEST_LOOPMOUNT=skip", "PATH=/bin", "TROVE_CONFIG=/etc/trove.toml"},
			func(c Config) bool { return reflect.DeepEqual(c, Default()) }, "Default()"},
		{"no value after =", []string{"TROVE_LISTEN"},
			func(c Config) bool { return reflect.DeepEqual(c, Default()) }, "Default()"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			if err := c.ApplyEnv(tc.environ); err != nil {
				t.Fatalf("ApplyEnv: %v", err)
			}
			if !tc.check(c) {
				t.Errorf("got %+v; want %s", c, tc.want)
			}
		})
	}
}

// TestApplyEnvErrors checks that every bad variable is reported at once,
// each by name.
func TestApplyEnvErrors(t *testing.T) {
	c := Default()
	err := c.ApplyEnv([]string{
		"TROVE_INGEST_SYNC=yes please",
		"TROVE_INGEST_DEDUP_WINDOW=30 days",
		"TROVE_STORAGE_CACHE_SIZE=lots",
		"TROVE_HTTP_CONCURRENCY=many",
		"TROVE_INGEST_MAX_EVENT_BYTES=1.5",
		"TROVE_INGEST_CORS_ORIGINS=[1, 2]",
		"TROVE_INGEST_SYNK=true",
		"TROVE_DATA=/a", "TROVE_DATA_DIR=/b",
	})
	if err == nil {
		t.Fatal("got no error; want one per bad variable")
	}
	for _, want := range []string{
		`TROVE_INGEST_SYNC (ingest.sync): invalid boolean "yes please"`,
		`TROVE_INGEST_DEDUP_WINDOW (ingest.dedup_window): invalid duration "30 days"`,
		`TROVE_STORAGE_CACHE_SIZE (storage.cache_size): invalid size "lots"`,
		`TROVE_HTTP_CONCURRENCY (http.concurrency): invalid integer "many"`,
		`TROVE_INGEST_MAX_EVENT_BYTES (ingest.max_event_bytes): invalid integer "1.5"`,
		`TROVE_INGEST_CORS_ORIGINS (ingest.cors_origins): invalid list [1, 2]`,
		"TROVE_INGEST_SYNK: not a configuration key",
		"TROVE_DATA_DIR and TROVE_DATA: both set, to different values",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got error:\n%v\nwant it to contain %q", err, want)
		}
	}
	if n := len(err.(interface{ Unwrap() []error }).Unwrap()); n != 8 {
		t.Errorf("got %d errors; want 8:\n%v", n, err)
	}
}

// TestExampleDocumentsEnv checks that config.example.toml says how the
// environment sets keys: the rule at the top, each top-level key's variable
// on its line, and each section's prefix inside that section.
func TestExampleDocumentsEnv(t *testing.T) {
	b, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	head, _, _ := strings.Cut(text, "\nlisten")
	for _, want := range []string{"TROVE_<SECTION>_<KEY>", "TROVE_<KEY>", "TROVE_DATA", "[[apps]]", "empty"} {
		if !strings.Contains(head, want) {
			t.Errorf("the note at the top of %s does not mention %q", examplePath, want)
		}
	}
	sections := map[string]string{} // section -> its text, up to the next table
	cur := ""
	for line := range strings.Lines(text) {
		if l := strings.TrimSpace(line); strings.HasPrefix(l, "[") && !strings.HasPrefix(l, "[[") {
			cur = strings.Trim(l, "[]")
		} else if strings.HasPrefix(l, "[[") {
			cur = "-"
		}
		sections[cur] += line
	}
	checked := map[string]bool{}
	for _, ev := range EnvVars() {
		if checked[ev.Section] && ev.Section != "" {
			continue
		}
		checked[ev.Section] = true
		if ev.Section == "" {
			if !strings.Contains(sections[""], ev.Name) {
				t.Errorf("%s: the line of top-level key %s does not name %s", examplePath, ev.Key, ev.Name)
			}
			continue
		}
		prefix := "TROVE_" + strings.ToUpper(ev.Section) + "_"
		if !strings.Contains(sections[ev.Section], prefix) {
			t.Errorf("%s: section [%s] does not say that its keys are %s<KEY>", examplePath, ev.Section, prefix)
		}
	}
}
