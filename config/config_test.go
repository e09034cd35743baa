package config

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"
)

const examplePath = "../config.example.toml"

// TestExampleDecodesToDefaults keeps config.example.toml and Default() in
// step: the file shows every key with its default value, so decoding it
// must give exactly the defaults, plus its example apps and tokens.
func TestExampleDecodesToDefaults(t *testing.T) {
	cfg, err := Load(examplePath)
	if err != nil {
		t.Fatalf("Load(%s): %v", examplePath, err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("the example config is not valid:\n%v", err)
	}
	if len(cfg.Apps) == 0 {
		t.Errorf("the example declares no [[apps]]; want at least one, to document the keys")
	}
	if len(cfg.Tokens) == 0 {
		t.Errorf("the example declares no [[tokens]]; want at least one, to document the keys")
	}
	for i, a := range cfg.Apps {
		a.Name, a.AppKey = "", ""
		if want := DefaultApp(); !reflect.DeepEqual(a, want) {
			t.Errorf("apps[%d] without name and app_key:\ngot  %+v\nwant %+v (DefaultApp)", i, a, want)
		}
	}
	got := cfg
	got.Apps, got.Tokens = nil, nil
	if len(cfg.Sinks) != 0 {
		t.Errorf("the example declares %d [[sinks]]; want none (its sink is a comment, so that the example serves without an object store)", len(cfg.Sinks))
	}
	if want := Default(); !reflect.DeepEqual(got, want) {
		t.Errorf("%s does not decode to Default():\ngot  %+v\nwant %+v", examplePath, got, want)
	}
}

// TestExampleListsEveryKey checks that every key of the Config struct tags
// appears in the example file, in its table. A key that cannot be set
// together with another (sha256 beside secret) may instead be shown in a
// comment as `key = …`.
func TestExampleListsEveryKey(t *testing.T) {
	text, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := toml.Unmarshal(text, &doc); err != nil {
		t.Fatalf("cannot decode %s: %v", examplePath, err)
	}
	var comments strings.Builder
	for line := range strings.Lines(string(text)) {
		if _, c, ok := strings.Cut(line, "#"); ok {
			comments.WriteString(c)
		}
	}
	inComment := func(key string) bool {
		return regexp.MustCompile(`\b` + regexp.QuoteMeta(key) + `\s*=`).MatchString(comments.String())
	}

	var walk func(typ reflect.Type, tables []map[string]any, path string)
	walk = func(typ reflect.Type, tables []map[string]any, path string) {
		for f := range typ.Fields() {
			key, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			if key == "" || key == "-" {
				t.Errorf("%s.%s has no toml tag", typ.Name(), f.Name)
				continue
			}
			full := key
			if path != "" {
				full = path + "." + key
			}
			var values []any
			for _, tbl := range tables {
				if v, ok := tbl[key]; ok {
					values = append(values, v)
				}
			}
			if len(values) == 0 && !inComment(key) {
				t.Errorf("key %s (%s.%s) is not in %s: add it with its default value and a comment", full, typ.Name(), f.Name, examplePath)
				continue
			}
			switch {
			case f.Type.Kind() == reflect.Struct && !isLeaf(f.Type):
				walk(f.Type, asTables(values), full)
			case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
				var elems []map[string]any
				for _, v := range values {
					elems = append(elems, asTables(anySlice(v))...)
				}
				walk(f.Type.Elem(), elems, full)
			}
		}
	}
	walk(reflect.TypeFor[Config](), []map[string]any{doc}, "")
}

// isLeaf reports whether a struct type decodes from one value, not a table.
func isLeaf(t reflect.Type) bool {
	return t == reflect.TypeFor[time.Time]()
}

func anySlice(v any) []any {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice {
		return nil
	}
	out := make([]any, rv.Len())
	for i := range out {
		out[i] = rv.Index(i).Interface()
	}
	return out
}

func asTables(vs []any) []map[string]any {
	var out []map[string]any
	for _, v := range vs {
		if m, ok := v.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// TestBadConfigs pairs each testdata/config/*.bad.toml with substrings its
// error must contain. Load and Validate run as trove does at start.
func TestBadConfigs(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"unknown_key.bad.toml", []string{"line 3", `unknown key "lissten"`}},
		{"unknown_ingest_key.bad.toml", []string{"line 3", `unknown key "ingest.synk"`}},
		{"unknown_keys_everywhere.bad.toml", []string{
			`line 2, column 1: unknown key "verbose"`,
			`line 8, column 1: unknown key "apps.ratelimit"`,
			`line 14, column 1: unknown key "tokens.scope"`,
		}},
		{"bad_duration.bad.toml", []string{"line 2", `invalid duration "30 days"`}},
		{"bare_number_duration.bad.toml", []string{"line 2", "invalid duration 3600", "as a string"}},
		{"bad_size.bad.toml", []string{"line 2", `invalid size "lots"`}},
		{"token_secret_and_sha256.bad.toml", []string{"tokens[0]: set secret or sha256, not both"}},
		{"profiles_limits.bad.toml", []string{"profiles.max_profiles: must be at least 1, got 0", "profiles.max_fields: must be at least 1, got -1"}},
		{"token_unknown_scope.bad.toml", []string{`tokens[0].scopes: "write" is not one of ingest, export, admin`}},
		{"token_undeclared_app.bad.toml", []string{`tokens[0].apps: "no-such-app-key" is not an app_key declared in [[apps]]`}},
		{"duplicate_app_key.bad.toml", []string{`apps[1].app_key: "yz1Jn-0pSnekg58etEQO4A" is declared twice`}},
		{"request_below_event.bad.toml", []string{"ingest.max_request_bytes: must be at least ingest.max_event_bytes (65536), got 32768"}},
		{"public_profile_writes.bad.toml", []string{"apps[0].public_profile_writes: has no effect while require_token is true"}},
		{"api_keys.bad.toml", []string{`apps[0].api_keys: "yz1Jn-0pSnekg58etEQO4A" is declared twice`, `apps[0].api_keys: "" must be 1-255 characters`}},
		{"public_profile_writes_type.bad.toml", []string{"line 4, column 25", "of type bool"}},
		{"schema_mode.bad.toml", []string{
			`ingest.schema_mode: "strict" is not one of off, warn, reject`,
			`ingest.schema_unknown: "deny" is not one of allow, warn, reject`,
			`apps[0].schema_mode: "enforce" is not one of off, warn, reject`,
			`apps[0].schema_unknown: "off" is not one of allow, warn, reject`,
		}},
		{"listen_not_host_port.bad.toml", []string{`listen: "8080" is not host:port`}},
		{"log_format.bad.toml", []string{`log_format: "pretty" is not one of auto, json, text`}},
		{"body_memory.bad.toml", []string{"http.max_body_memory: must be 0 (unbounded) or at least 1MiB, got 65536 bytes"}},
		{"limits.bad.toml", []string{
			"storage.dedup_filter_memory: must be at least 4MiB",
			"storage.min_free_disk: must be 0 (no check) or at least 64MiB, got 10485760 bytes",
			"apps[0].rate_limit: must not be negative",
			"apps[0].rate_burst: must not be negative",
			"apps[1].rate_burst: has no effect while rate_limit is 0",
		}},
		{"sinks.bad.toml", []string{
			`sinks[0].name: "Lake!" must be 1-63 lowercase letters`,
			`sinks[0].kind: "ftp" is not a sink kind`,
			`sinks[0].endpoint: "s3.example.com/bucket" must be the http(s) URL`,
			`sinks[0].bucket: "ab" must be a bucket name`,
			`sinks[0].prefix: "/trove/" must not start with '/'`,
			"sinks[0].access_key_env: set both access_key_env and secret_key_env",
			"sinks[0].access_key_env: the environment variable TROVE_TEST_NO_SUCH_VARIABLE_ACCESS is not set",
			`sinks[0].apps: "no" is not an app key`,
			`sinks[0].format: "csv" is not one of parquet, ndjson.zst`,
			"sinks[0].every: must be at least 100ms",
			"sinks[0].max_events: must be between 1 and 10000000",
			`sinks[1].endpoint: "" must be the http(s) URL`,
			`sinks[2].name: "lake" is declared twice`,
		}},
		{"cluster.bad.toml", []string{
			`cluster.nats_url: "http://n1:4222" must be comma-separated nats:// or tls:// URLs`,
			`cluster.stream: "TROVE.events" must be 1-64 letters, digits, '-' or '_'`,
			"cluster.replicas: must be between 1 and 5 (JetStream's limit), got 7",
			`cluster.node: "" must name this node uniquely`,
			"cluster.max_lag: must be positive",
			`cluster.credentials_file: cannot read "/no/such/nats.creds"`,
		}},
		{"cluster_no_url.bad.toml", []string{"cluster.nats_url: must be set when [cluster] sets node or credentials_file"}},
		{"many.bad.toml", []string{
			`listen: "localhost" is not host:port`,
			`log_level: "loud" is not one of`,
			"ingest.max_event_bytes: must be at least 256",
			"storage.cache_size: must be at least 8MiB",
			"apps[0].name: must not be empty",
			`apps[0].app_key: "short" must be 8-64`,
			"tokens[0]: set secret or sha256",
			"tokens[0].scopes: must list at least one",
			"tokens[0].apps: must list app keys",
		}},
	}
	files, err := filepath.Glob(filepath.Join("testdata", "config", "*.bad.toml"))
	if err != nil {
		t.Fatal(err)
	}
	inTable := map[string]bool{}
	for _, tc := range tests {
		inTable[tc.file] = true
	}
	for _, f := range files {
		if !inTable[filepath.Base(f)] {
			t.Errorf("%s has no entry in the table of expected errors", f)
		}
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			cfg, err := Load(filepath.Join("testdata", "config", tc.file))
			if err == nil {
				err = cfg.Validate()
			}
			if err == nil {
				t.Fatalf("got no error; want one containing %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got error:\n%v\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

// TestManyErrorsAreJoined checks that Validate reports every problem as its
// own error (errors.Join), not just the first.
func TestManyErrorsAreJoined(t *testing.T) {
	cfg, err := Load(filepath.Join("testdata", "config", "many.bad.toml"))
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.Validate()
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("got %T; want an errors.Join of every problem", err)
	}
	if n := len(joined.Unwrap()); n < 9 {
		t.Errorf("got %d errors; want 9:\n%v", n, err)
	}
}

func TestDefaultIsValid(t *testing.T) {
	cfg := Default()
	if err := cfg.Validate(); err != nil {
		t.Errorf("Default().Validate() = %v; want nil", err)
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name  string
		toml  string
		check func(c Config) bool
		want  string // what check verifies, for the failure message
	}{
		{"cors_origins omitted keeps the default", "listen = \":9\"\n",
			func(c Config) bool { return slices.Equal(c.Ingest.CORSOrigins, []string{"*"}) }, `["*"]`},
		{"cors_origins replaces the default", "[ingest]\ncors_origins = [\"https://a.example\"]\n",
			func(c Config) bool { return slices.Equal(c.Ingest.CORSOrigins, []string{"https://a.example"}) }, `["https://a.example"]`},
		{"empty cors_origins allows none", "[ingest]\ncors_origins = []\n",
			func(c Config) bool { return len(c.Ingest.CORSOrigins) == 0 }, "[]"},
		{"literal string duration", "retention = '400d'\n",
			func(c Config) bool { return c.Retention == Duration(400*24*time.Hour) }, "400 days"},
		{"app retention", "[[apps]]\nname = \"a\"\napp_key = \"abcdefgh\"\nretention = \"30d\"\n",
			func(c Config) bool { return len(c.Apps) == 1 && c.Apps[0].Retention == Duration(30*24*time.Hour) }, "30 days"},
		{"plain byte count", "[storage]\ncache_size = 16777216\n",
			func(c Config) bool { return c.Storage.CacheSize == 16<<20 }, "16MiB"},
		{"other keys keep their defaults", "[ingest]\nsync = false\n",
			func(c Config) bool {
				want := Default()
				want.Ingest.Sync = false
				return reflect.DeepEqual(c, want)
			}, "Default() with sync = false"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.toml))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !tc.check(c) {
				t.Errorf("got %+v; want %s", c, tc.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, toml, want string
	}{
		{"integer duration", "retention = 5\n", "line 1, column 13: toml: invalid duration 5"},
		{"float duration", "[ingest]\nmax_future = 1.5\n", "line 2, column 14: toml: invalid duration 1.5"},
		{"bool duration", "[ingest]\nskew_threshold = true\n", "invalid duration true"},
		{"negative duration", "retention = \"-1h\"\n", "must not be negative"},
		{"overflowing size", "[storage]\ncache_size = \"1e30\"\n", `invalid size "1e30"`},
		{"key defined twice", "listen = \":1\"\nlisten = \":2\"\n", "line 2"},
		{"wrong type", "[ingest]\nsync = \"yes\"\n", "line 2"},
		{"not TOML", "listen = \n", "line 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.toml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v; want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestDurationUnmarshalText(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{in: "400d", want: 400 * 24 * time.Hour},
		{in: "1.5d", want: 36 * time.Hour},
		{in: "720h", want: 720 * time.Hour},
		{in: "60s", want: time.Minute},
		{in: "100ms", want: 100 * time.Millisecond},
		{in: "0", want: 0},
		{in: "", want: 0},
		{in: " 5s ", want: 5 * time.Second},
		{in: "abc", wantErr: true},
		{in: "5", wantErr: true},
		{in: "-1h", wantErr: true},
		{in: "-5d", wantErr: true},
		{in: "d", wantErr: true},
		{in: "NaNd", wantErr: true},
		{in: "1e300d", wantErr: true},
		{in: "30 days", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			var d Duration
			err := d.UnmarshalText([]byte(tc.in))
			if tc.wantErr {
				if err == nil {
					t.Errorf("got %v, nil; want an error", d.Std())
				} else if !strings.Contains(err.Error(), "invalid duration") {
					t.Errorf("got error %q; want it to say \"invalid duration\"", err)
				}
				return
			}
			if err != nil || d.Std() != tc.want {
				t.Errorf("got %v, %v; want %v, nil", d.Std(), err, tc.want)
			}
			// MarshalText's form decodes to the same value.
			text, _ := d.MarshalText()
			var back Duration
			if err := back.UnmarshalText(text); err != nil || back != d {
				t.Errorf("round trip through %q: got %v, %v; want %v", text, back.Std(), err, d.Std())
			}
		})
	}
}

func TestSizeUnmarshalText(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{in: "1GiB", want: 1 << 30},
		{in: "64MiB", want: 64 << 20},
		{in: "512KiB", want: 512 << 10},
		{in: "2TiB", want: 2 << 40},
		{in: "10MB", want: 10_000_000},
		{in: "3KB", want: 3000},
		{in: "1GB", want: 1_000_000_000},
		{in: "5B", want: 5},
		{in: "1024", want: 1024},
		{in: "0", want: 0},
		{in: "1.5KiB", want: 1536},
		{in: " 8 MiB ", want: 8 << 20},
		{in: "abc", wantErr: true},
		{in: "", wantErr: true},
		{in: "MiB", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "-1GiB", wantErr: true},
		{in: "1e30", wantErr: true},
		{in: "NaN", wantErr: true},
		{in: "Inf", wantErr: true},
		{in: "64mib", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			var s Size
			err := s.UnmarshalText([]byte(tc.in))
			if tc.wantErr {
				if err == nil {
					t.Errorf("got %d, nil; want an error", s)
				} else if !strings.Contains(err.Error(), "invalid size") {
					t.Errorf("got error %q; want it to say \"invalid size\"", err)
				}
				return
			}
			if err != nil || int64(s) != tc.want {
				t.Errorf("got %d, %v; want %d, nil", s, err, tc.want)
			}
			text, _ := s.MarshalText()
			var back Size
			if err := back.UnmarshalText(text); err != nil || back != s {
				t.Errorf("round trip through %q: got %d, %v; want %d", text, back, err, s)
			}
		})
	}
}

func TestRetentionPolicy(t *testing.T) {
	cfg := Default()
	cfg.Retention = Duration(400 * 24 * time.Hour)
	cfg.Apps = []App{{Name: "a", AppKey: "short", Retention: Duration(30 * 24 * time.Hour)}, {Name: "b", AppKey: "inherits"}}
	keep := cfg.RetentionPolicy()
	for _, tt := range []struct {
		app  string
		want time.Duration
	}{
		{"short", 30 * 24 * time.Hour},
		{"inherits", 400 * 24 * time.Hour},
		{"created-through-the-api", 400 * 24 * time.Hour},
	} {
		if got := keep(tt.app); got != tt.want {
			t.Errorf("retention of %q = %v; want %v", tt.app, got, tt.want)
		}
	}
	cfg.Retention = 0
	if got := cfg.RetentionPolicy()("inherits"); got != 0 {
		t.Errorf("no retention anywhere: %v; want 0 (forever)", got)
	}
}

// TestSinkDefaults checks that a [[sinks]] entry takes DefaultSink's
// values for the keys it leaves out, and keeps those it sets.
func TestSinkDefaults(t *testing.T) {
	cfg, err := Parse([]byte("[[sinks]]\nname = \"lake\"\nendpoint = \"http://127.0.0.1:9000\"\nbucket = \"analytics\"\n\n" +
		"[[sinks]]\nname = \"zst\"\nendpoint = \"https://s3.example.com\"\nbucket = \"b-2\"\nformat = \"ndjson.zst\"\nevery = \"1m\"\nmax_events = 10\napps = [\"yz1Jn-0pSnekg58etEQO4A\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	want := DefaultSink()
	want.Name, want.Endpoint, want.Bucket = "lake", "http://127.0.0.1:9000", "analytics"
	if !reflect.DeepEqual(cfg.Sinks[0], want) {
		t.Errorf("got %+v; want %+v", cfg.Sinks[0], want)
	}
	if s := cfg.Sinks[1]; s.Format != "ndjson.zst" || s.Every.Std() != time.Minute || s.MaxEvents != 10 || len(s.Apps) != 1 || s.Region != "us-east-1" {
		t.Errorf("got %+v; want its own format, every, max_events and apps, and the default region", s)
	}
}
