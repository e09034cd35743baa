package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// Config is the whole of Trove's configuration. Every key is documented, with
// its default, in config.example.toml; a test keeps the two in step. Every
// key outside [[apps]] and [[tokens]] can also be set from the environment
// (EnvVars, ApplyEnv).
type Config struct {
	Listen     string   `toml:"listen"`
	DataDir    string   `toml:"data_dir"`
	AdminToken string   `toml:"admin_token"`
	Retention  Duration `toml:"retention"`
	LogLevel   string   `toml:"log_level"`
	// LogFormat is "json", "text", or "auto": text on a terminal, else JSON.
	LogFormat string `toml:"log_format"`

	Ingest   Ingest   `toml:"ingest"`
	Profiles Profiles `toml:"profiles"`
	Storage  Storage  `toml:"storage"`
	HTTP     HTTP     `toml:"http"`
	Apps     []App    `toml:"apps"`
	Tokens   []Token  `toml:"tokens"`
	Sinks    []Sink   `toml:"sinks"`
	// Cluster, when its nats_url is set, makes this node one of several on
	// a NATS JetStream stream (SPEC section 9).
	Cluster Cluster `toml:"cluster"`
}

// Cluster is the [cluster] section. Without nats_url there is no cluster:
// one node, no NATS.
type Cluster struct {
	NATSURL         string   `toml:"nats_url"`
	Stream          string   `toml:"stream"`
	Replicas        int      `toml:"replicas"`
	Node            string   `toml:"node"`
	MaxLag          Duration `toml:"max_lag"`
	CredentialsFile string   `toml:"credentials_file"`
}

// Enabled reports whether the section asks for cluster mode.
func (c *Cluster) Enabled() bool { return c.NATSURL != "" }

var (
	streamNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	nodeNameRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
)

// validateCluster appends the problems of the [cluster] section to bad.
func (cfg *Config) validateCluster(bad badFunc) {
	c := &cfg.Cluster
	if !c.Enabled() {
		if c.Node != "" || c.CredentialsFile != "" {
			bad("cluster.nats_url", "must be set when [cluster] sets node or credentials_file (nats://host:4222,…); without it this is a single node")
		}
		return
	}
	for _, u := range strings.Split(c.NATSURL, ",") {
		pu, err := url.Parse(strings.TrimSpace(u))
		if err != nil || (pu.Scheme != "nats" && pu.Scheme != "tls") || pu.Host == "" {
			bad("cluster.nats_url", "%q must be comma-separated nats:// or tls:// URLs of the NATS servers, e.g. \"nats://n1:4222,nats://n2:4222,nats://n3:4222\"", u)
		}
	}
	if !streamNameRE.MatchString(c.Stream) {
		bad("cluster.stream", "%q must be 1-64 letters, digits, '-' or '_' (a JetStream stream name)", c.Stream)
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		bad("cluster.replicas", "must be between 1 and 5 (JetStream's limit), got %d; 3 survives the loss of one NATS server", c.Replicas)
	}
	if !nodeNameRE.MatchString(c.Node) {
		bad("cluster.node", "%q must name this node uniquely in the cluster: 1-64 letters, digits, '.', '-' or '_', e.g. \"trove-1\"", c.Node)
	}
	if c.MaxLag <= 0 {
		bad("cluster.max_lag", "must be positive, e.g. \"5s\" (/readyz is 503 while the node is further behind the stream)")
	}
	if c.CredentialsFile != "" {
		if _, err := os.Stat(c.CredentialsFile); err != nil {
			bad("cluster.credentials_file", "cannot read %q: %v", c.CredentialsFile, err)
		}
	}
}

// Sink is a continuous export to object storage (SPEC section 8), one
// [[sinks]] table each. Keys an entry omits take DefaultSink's values.
type Sink struct {
	Name     string `toml:"name"`
	Kind     string `toml:"kind"`
	Endpoint string `toml:"endpoint"`
	Bucket   string `toml:"bucket"`
	Prefix   string `toml:"prefix"`
	Region   string `toml:"region"`
	// AccessKeyEnv and SecretKeyEnv name the environment variables that
	// hold the credentials, so that no secret sits in the file. Both empty
	// is anonymous access.
	AccessKeyEnv string   `toml:"access_key_env"`
	SecretKeyEnv string   `toml:"secret_key_env"`
	Apps         []string `toml:"apps"`
	Format       string   `toml:"format"`
	// Every is how old the oldest pending event may get before a file is
	// written; MaxEvents how many may be pending before one is.
	Every     Duration `toml:"every"`
	MaxEvents int      `toml:"max_events"`
}

// DefaultSink returns the values a [[sinks]] entry takes for keys it omits.
func DefaultSink() Sink {
	return Sink{
		Kind:      "s3",
		Region:    "us-east-1",
		Apps:      []string{"*"},
		Format:    "parquet",
		Every:     Duration(5 * time.Minute),
		MaxEvents: 1000000,
	}
}

// SinkFormats are the file formats a sink writes.
var SinkFormats = []string{"parquet", "ndjson.zst"}

var sinkNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// validateSinks appends the problems of the [[sinks]] entries to bad.
func (cfg *Config) validateSinks(bad badFunc) {
	names := map[string]bool{}
	for i, s := range cfg.Sinks {
		p := fmt.Sprintf("sinks[%d]", i)
		if !sinkNameRE.MatchString(s.Name) {
			bad(p+".name", "%q must be 1-63 lowercase letters, digits, '-' or '_' (it names the sink in /admin/sinks and /metrics)", s.Name)
		}
		if names[s.Name] {
			bad(p+".name", "%q is declared twice", s.Name)
		}
		names[s.Name] = true
		if s.Kind != "s3" {
			bad(p+".kind", "%q is not a sink kind: use \"s3\" (any S3-compatible store)", s.Kind)
		}
		if u, err := url.Parse(s.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			bad(p+".endpoint", "%q must be the http(s) URL of the S3 server, without a path, e.g. \"https://s3.us-east-1.amazonaws.com\" or \"http://127.0.0.1:9000\"", s.Endpoint)
		}
		if len(s.Bucket) < 3 || len(s.Bucket) > 63 {
			bad(p+".bucket", "%q must be a bucket name of 3-63 characters", s.Bucket)
		}
		if strings.HasPrefix(s.Prefix, "/") {
			bad(p+".prefix", "%q must not start with '/': object keys are relative to the bucket", s.Prefix)
		}
		if (s.AccessKeyEnv == "") != (s.SecretKeyEnv == "") {
			bad(p+".access_key_env", "set both access_key_env and secret_key_env (names of environment variables), or neither for anonymous access")
		}
		for _, e := range []struct{ key, name string }{{"access_key_env", s.AccessKeyEnv}, {"secret_key_env", s.SecretKeyEnv}} {
			if e.name != "" && os.Getenv(e.name) == "" {
				bad(p+"."+e.key, "the environment variable %s is not set: export it with the credential (the file names the variable, never the secret)", e.name)
			}
		}
		if len(s.Apps) == 0 {
			bad(p+".apps", "must list app keys, or \"*\" for all")
		}
		for _, k := range s.Apps {
			if k != "*" && !appKeyRE.MatchString(k) {
				bad(p+".apps", "%q is not an app key (8-64 letters, digits, '-' or '_') nor \"*\"", k)
			}
		}
		if !slices.Contains(SinkFormats, s.Format) {
			bad(p+".format", "%q is not one of parquet, ndjson.zst", s.Format)
		}
		if s.Every < Duration(100*time.Millisecond) {
			bad(p+".every", "must be at least 100ms, got %s", s.Every.Std())
		}
		if s.MaxEvents < 1 || s.MaxEvents > 10000000 {
			bad(p+".max_events", "must be between 1 and 10000000 (a file is built in memory: about 60 bytes per event), got %d", s.MaxEvents)
		}
	}
}

// Ingest configures the Events API.
type Ingest struct {
	Sync            bool     `toml:"sync"`
	DedupWindow     Duration `toml:"dedup_window"`
	SkewThreshold   Duration `toml:"skew_threshold"`
	MaxFuture       Duration `toml:"max_future"`
	MaxEventBytes   int64    `toml:"max_event_bytes"`
	MaxRequestBytes int64    `toml:"max_request_bytes"`
	MaxAttributes   int      `toml:"max_attributes"`
	CORSOrigins     []string `toml:"cors_origins"`
	// SchemaMode and SchemaUnknown are the schema contract policy (SPEC.md
	// section 7) of every app that does not set its own, apps created
	// through the admin API included.
	SchemaMode    string `toml:"schema_mode"`
	SchemaUnknown string `toml:"schema_unknown"`
}

// Profiles configures the User Profiles API.
type Profiles struct {
	MaxProfiles int `toml:"max_profiles"`
	MaxFields   int `toml:"max_fields"`
}

// Storage configures the embedded Pebble store.
type Storage struct {
	MinFreeDisk Size `toml:"min_free_disk"`
	CacheSize   Size `toml:"cache_size"`
	// MergeInterval is how often the background merger looks for small
	// segments to combine into large, better-compressed ones.
	MergeInterval Duration `toml:"merge_interval"`
	// MergeMinAge is how old a segment must be before it is merged.
	MergeMinAge Duration `toml:"merge_min_age"`
	// DedupFilterMemory bounds the in-memory filters of the dedup index;
	// past it, the oldest slices' ids are looked up on disk.
	DedupFilterMemory Size `toml:"dedup_filter_memory"`
	// ColumnarBlocks makes the merger write blocks by column (storage
	// value version 2): smaller, slower to export.
	ColumnarBlocks bool `toml:"columnar_blocks"`
}

// HTTP configures the HTTP server's defences against slow and greedy
// clients (README, Configuration: Hostile clients).
type HTTP struct {
	// ReadTimeout bounds reading one request, headers and body, from its
	// first byte (on a new connection, from the accept).
	ReadTimeout Duration `toml:"read_timeout"`
	// WriteTimeout bounds how long one write of a response may make no
	// progress; a slow download that keeps moving is never cut.
	WriteTimeout Duration `toml:"write_timeout"`
	// IdleTimeout bounds the wait for the next request on a keep-alive
	// connection.
	IdleTimeout Duration `toml:"idle_timeout"`
	// Concurrency is the most connections served at once; more are
	// answered 503 and closed.
	Concurrency int `toml:"concurrency"`
	// MaxConnsPerIP is the most connections from one address; more are
	// answered 429 and closed. 0 is unlimited.
	MaxConnsPerIP int `toml:"max_conns_per_ip"`
	// MaxHeaderBytes bounds the request line and headers (431 beyond).
	MaxHeaderBytes Size `toml:"max_header_bytes"`
	// MaxBodyMemory bounds the memory that request bodies being served
	// hold at once, charged by their worst case before they are read
	// (web/bodymem.go); a request that cannot get its share within 1 s
	// gets 503 and Retry-After. 0 is unbounded.
	MaxBodyMemory Size `toml:"max_body_memory"`
}

// App is an application whose events Trove stores, declared in the file.
type App struct {
	Name         string `toml:"name"`
	AppKey       string `toml:"app_key"`
	RequireToken bool   `toml:"require_token"`
	// PublicProfileWrites lets identify and alias messages sent with the
	// appKey alone change profiles (segment.Handler); by default they are
	// stored as events only, and changing profiles takes a token.
	PublicProfileWrites bool `toml:"public_profile_writes"`
	// APIKeys are other keys the app answers to on the Amplitude, Mixpanel
	// and PostHog endpoints (package compat): the API key or project token
	// the app's SDKs already carry, so that only their host changes.
	APIKeys   []string `toml:"api_keys"`
	RateLimit float64  `toml:"rate_limit"`
	RateBurst int      `toml:"rate_burst"`
	Retention Duration `toml:"retention"`
	// SchemaMode ("off", "warn", "reject") and SchemaUnknown ("allow",
	// "warn", "reject") override ingest.schema_mode and
	// ingest.schema_unknown for this app; "" takes those.
	SchemaMode    string `toml:"schema_mode"`
	SchemaUnknown string `toml:"schema_unknown"`
}

// SchemaPolicy returns a function that gives an app's schema_mode and
// schema_unknown: its own when the file sets them, else the [ingest] ones.
// It is asked on every request, so the apps' values are in a map built
// here, once.
func (c *Config) SchemaPolicy() func(appKey string) (mode, unknown string) {
	type policy struct{ mode, unknown string }
	own := map[string]policy{}
	for _, a := range c.Apps {
		own[a.AppKey] = policy{cmp.Or(a.SchemaMode, c.Ingest.SchemaMode), cmp.Or(a.SchemaUnknown, c.Ingest.SchemaUnknown)}
	}
	return func(appKey string) (string, string) {
		if p, ok := own[appKey]; ok {
			return p.mode, p.unknown
		}
		return c.Ingest.SchemaMode, c.Ingest.SchemaUnknown
	}
}

// Token is an API credential declared in the file. Exactly one of Secret
// and SHA256 is set; SHA256 keeps the plain secret out of the file.
type Token struct {
	Name   string   `toml:"name"`
	Secret string   `toml:"secret"`
	SHA256 string   `toml:"sha256"`
	Scopes []string `toml:"scopes"`
	Apps   []string `toml:"apps"`
}

// RetentionPolicy returns a function that gives how long an app's events are
// kept: the app's own retention when the file gives one, else the global
// one; zero is forever. Ingest asks it for every event, so the apps'
// retentions are looked up in a map built here, once.
func (c *Config) RetentionPolicy() func(appKey string) time.Duration {
	global := c.Retention.Std()
	own := map[string]time.Duration{}
	for _, a := range c.Apps {
		if a.Retention > 0 {
			own[a.AppKey] = a.Retention.Std()
		}
	}
	return func(appKey string) time.Duration {
		if d, ok := own[appKey]; ok {
			return d
		}
		return global
	}
}

// Default returns the configuration used when no file and no flag says
// otherwise.
func Default() Config {
	return Config{
		Listen:    ":8080",
		DataDir:   "./data",
		LogLevel:  "info",
		LogFormat: "auto",
		Ingest: Ingest{
			Sync:            true,
			DedupWindow:     Duration(720 * time.Hour),
			SkewThreshold:   Duration(60 * time.Second),
			MaxFuture:       Duration(24 * time.Hour),
			MaxEventBytes:   32 << 10,
			MaxRequestBytes: 5 << 20,
			MaxAttributes:   255,
			CORSOrigins:     []string{"*"},
			SchemaMode:      "off",
			SchemaUnknown:   "allow",
		},
		Profiles: Profiles{
			MaxProfiles: 1000,
			MaxFields:   50,
		},
		Storage: Storage{
			MinFreeDisk:   1 << 30,
			CacheSize:     48 << 20,
			MergeInterval: Duration(5 * time.Second),
			MergeMinAge:   Duration(30 * time.Second),
			// 16 bits per id: about 33 M ids inside the window before the
			// oldest are looked up on disk.
			DedupFilterMemory: 64 << 20,
		},
		HTTP: HTTP{
			ReadTimeout:    Duration(60 * time.Second),
			WriteTimeout:   Duration(60 * time.Second),
			IdleTimeout:    Duration(120 * time.Second),
			Concurrency:    4096,
			MaxConnsPerIP:  0,
			MaxHeaderBytes: 16 << 10,
			MaxBodyMemory:  64 << 20,
		},
		// Off until nats_url is set; these are what the other keys take.
		Cluster: Cluster{
			Stream:   "TROVE",
			Replicas: 3,
			MaxLag:   Duration(5 * time.Second),
		},
	}
}

// checkSchemaPolicy reports bad schema_mode and schema_unknown values under
// prefix; inherit says "" (take the [ingest] value) is allowed.
func checkSchemaPolicy(bad badFunc, prefix, mode, unknown string, inherit bool) {
	if !(inherit && mode == "") && mode != "off" && mode != "warn" && mode != "reject" {
		bad(prefix+"schema_mode", "%q is not one of off, warn, reject", mode)
	}
	if !(inherit && unknown == "") && unknown != "allow" && unknown != "warn" && unknown != "reject" {
		bad(prefix+"schema_unknown", "%q is not one of allow, warn, reject", unknown)
	}
}

// DefaultApp returns the values an [[apps]] entry takes for keys it omits.
func DefaultApp() App { return App{APIKeys: []string{}} }

// Load reads and strictly decodes the TOML file at path on top of the
// defaults. An unknown key is an error naming its line and column.
func Load(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("cannot read config file: %w", err)
	}
	cfg, err := Parse(b)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Parse strictly decodes TOML text on top of the defaults.
func Parse(b []byte) (Config, error) {
	cfg := Default()
	// Lists replace, not extend, the defaults.
	cfg.Ingest.CORSOrigins = nil
	// The unmarshaler interface lets Duration refuse bare numbers.
	dec := toml.NewDecoder(bytes.NewReader(b)).DisallowUnknownFields().EnableUnmarshalerInterface()
	if err := dec.Decode(&cfg); err != nil {
		return Config{}, describeDecodeError(err)
	}
	if cfg.Ingest.CORSOrigins == nil {
		cfg.Ingest.CORSOrigins = Default().Ingest.CORSOrigins
	}
	for i := range cfg.Sinks {
		s, d := &cfg.Sinks[i], DefaultSink()
		if s.Kind == "" {
			s.Kind = d.Kind
		}
		if s.Region == "" {
			s.Region = d.Region
		}
		if s.Apps == nil {
			s.Apps = d.Apps
		}
		if s.Format == "" {
			s.Format = d.Format
		}
		if s.Every == 0 {
			s.Every = d.Every
		}
		if s.MaxEvents == 0 {
			s.MaxEvents = d.MaxEvents
		}
	}
	return cfg, nil
}

func describeDecodeError(err error) error {
	var sme *toml.StrictMissingError
	if errors.As(err, &sme) {
		var errs []error
		for i := range sme.Errors {
			e := &sme.Errors[i]
			row, col := e.Position()
			errs = append(errs, fmt.Errorf("line %d, column %d: unknown key %q", row, col, strings.Join(e.Key(), ".")))
		}
		return errors.Join(errs...)
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, col := de.Position()
		return fmt.Errorf("line %d, column %d: %s", row, col, de.Error())
	}
	return err
}

var (
	appKeyRE = regexp.MustCompile(`^[A-Za-z0-9_-]{8,64}$`)
	sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// ValidScopes are the scopes a token may carry.
var ValidScopes = []string{"ingest", "export", "admin"}

// Validate reports every problem in cfg at once, each prefixed with its key.
func (cfg *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if _, _, err := net.SplitHostPort(cfg.Listen); err != nil {
		bad("listen", "%q is not host:port (e.g. \":8080\" or \"127.0.0.1:8080\")", cfg.Listen)
	}
	if cfg.DataDir == "" {
		bad("data_dir", "must not be empty")
	}
	switch cfg.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level", "%q is not one of debug, info, warn, error", cfg.LogLevel)
	}
	switch cfg.LogFormat {
	case "auto", "json", "text":
	default:
		bad("log_format", "%q is not one of auto, json, text", cfg.LogFormat)
	}
	cfg.validateLimits(bad)
	cfg.validateHTTP(bad)
	checkSchemaPolicy(bad, "ingest.", cfg.Ingest.SchemaMode, cfg.Ingest.SchemaUnknown, false)
	keys := cfg.validateApps(bad)
	cfg.validateTokens(bad, keys)
	cfg.validateSinks(bad)
	cfg.validateCluster(bad)
	return errors.Join(errs...)
}

// badFunc records one problem with a key.
type badFunc func(key, format string, args ...any)

// validateLimits checks the [ingest], [profiles] and [storage] sizes.
func (cfg *Config) validateLimits(bad badFunc) {
	in := &cfg.Ingest
	if in.MaxEventBytes < 256 {
		bad("ingest.max_event_bytes", "must be at least 256, got %d", in.MaxEventBytes)
	}
	if in.MaxRequestBytes < in.MaxEventBytes {
		bad("ingest.max_request_bytes", "must be at least ingest.max_event_bytes (%d), got %d", in.MaxEventBytes, in.MaxRequestBytes)
	}
	if in.MaxRequestBytes > 1<<30 {
		bad("ingest.max_request_bytes", "must be at most 1GiB, got %d", in.MaxRequestBytes)
	}
	if in.MaxAttributes < 1 {
		bad("ingest.max_attributes", "must be at least 1, got %d", in.MaxAttributes)
	}
	if in.SkewThreshold <= 0 {
		bad("ingest.skew_threshold", "must be positive")
	}
	if in.MaxFuture <= 0 {
		bad("ingest.max_future", "must be positive")
	}
	if cfg.Profiles.MaxProfiles < 1 {
		bad("profiles.max_profiles", "must be at least 1, got %d", cfg.Profiles.MaxProfiles)
	}
	if cfg.Profiles.MaxFields < 1 {
		bad("profiles.max_fields", "must be at least 1, got %d", cfg.Profiles.MaxFields)
	}
	if cfg.Storage.CacheSize < 8<<20 {
		bad("storage.cache_size", "must be at least 8MiB")
	}
	if m := cfg.Storage.MinFreeDisk; m != 0 && m < 64<<20 {
		// Pebble preallocates each WAL file (~18MiB) and may hold two, and a
		// flush writes before it deletes: a smaller floor does not keep a
		// WAL write from failing, which ends the process.
		bad("storage.min_free_disk", "must be 0 (no check) or at least 64MiB, got %d bytes", int64(m))
	}
	if cfg.Storage.MergeInterval < Duration(100*time.Millisecond) {
		bad("storage.merge_interval", "must be at least 100ms")
	}
	if cfg.Storage.DedupFilterMemory < 4<<20 {
		bad("storage.dedup_filter_memory", "must be at least 4MiB (a slice's first filter takes 2MiB), got %d bytes", int64(cfg.Storage.DedupFilterMemory))
	}
}

// validateHTTP checks [http].
func (cfg *Config) validateHTTP(bad badFunc) {
	h := &cfg.HTTP
	for _, d := range []struct {
		key string
		v   Duration
	}{{"http.read_timeout", h.ReadTimeout}, {"http.write_timeout", h.WriteTimeout}, {"http.idle_timeout", h.IdleTimeout}} {
		if d.v < Duration(100*time.Millisecond) {
			bad(d.key, "must be at least 100ms (a slow client must not hold a connection forever)")
		}
	}
	if h.Concurrency < 16 {
		bad("http.concurrency", "must be at least 16, got %d", h.Concurrency)
	}
	if h.MaxConnsPerIP < 0 {
		bad("http.max_conns_per_ip", "must be 0 (unlimited) or positive, got %d", h.MaxConnsPerIP)
	}
	if h.MaxHeaderBytes < 4<<10 || h.MaxHeaderBytes > 1<<20 {
		bad("http.max_header_bytes", "must be between 4KiB and 1MiB, got %d bytes", int64(h.MaxHeaderBytes))
	}
	if m := h.MaxBodyMemory; m != 0 && m < 1<<20 {
		bad("http.max_body_memory", "must be 0 (unbounded) or at least 1MiB, got %d bytes", int64(m))
	}
}

// validateApps checks [[apps]] and returns every app_key and api_key
// declared.
func (cfg *Config) validateApps(bad badFunc) map[string]bool {
	keys := map[string]bool{}
	for i, a := range cfg.Apps {
		p := fmt.Sprintf("apps[%d]", i)
		if a.Name == "" {
			bad(p+".name", "must not be empty")
		}
		if !appKeyRE.MatchString(a.AppKey) {
			bad(p+".app_key", "%q must be 8-64 letters, digits, '-' or '_'", a.AppKey)
		}
		if keys[a.AppKey] {
			bad(p+".app_key", "%q is declared twice", a.AppKey)
		}
		keys[a.AppKey] = true
		for _, k := range a.APIKeys {
			switch {
			case k == "" || len(k) > 255:
				bad(p+".api_keys", "%q must be 1-255 characters", k)
			case keys[k]:
				bad(p+".api_keys", "%q is declared twice (as an app_key or an api_key)", k)
			}
			keys[k] = true
		}
		if a.RateLimit < 0 {
			bad(p+".rate_limit", "must not be negative")
		}
		if a.RateBurst < 0 {
			bad(p+".rate_burst", "must not be negative")
		}
		if a.PublicProfileWrites && a.RequireToken {
			bad(p+".public_profile_writes", "has no effect while require_token is true (nothing is taken with the appKey alone): set one of them")
		}
		checkSchemaPolicy(bad, p+".", a.SchemaMode, a.SchemaUnknown, true)
		if a.RateBurst > 0 && a.RateLimit == 0 {
			bad(p+".rate_burst", "has no effect while rate_limit is 0 (unlimited): set rate_limit too")
		}
	}
	return keys
}

// validateTokens checks [[tokens]] against the declared app keys.
func (cfg *Config) validateTokens(bad badFunc, keys map[string]bool) {
	for i, t := range cfg.Tokens {
		p := fmt.Sprintf("tokens[%d]", i)
		if t.Name == "" {
			bad(p+".name", "must not be empty")
		}
		switch {
		case t.Secret != "" && t.SHA256 != "":
			bad(p, "set secret or sha256, not both")
		case t.Secret == "" && t.SHA256 == "":
			bad(p, "set secret or sha256 (the hex SHA-256 of the secret)")
		case t.Secret != "" && len(t.Secret) < 8:
			bad(p+".secret", "must be at least 8 characters")
		case t.SHA256 != "" && !sha256RE.MatchString(t.SHA256):
			bad(p+".sha256", "must be 64 lowercase hex digits")
		}
		if len(t.Scopes) == 0 {
			bad(p+".scopes", "must list at least one of ingest, export, admin")
		}
		for _, s := range t.Scopes {
			switch s {
			case "ingest", "export", "admin":
			default:
				bad(p+".scopes", "%q is not one of ingest, export, admin", s)
			}
		}
		if len(t.Apps) == 0 {
			bad(p+".apps", "must list app keys, or \"*\" for all")
		}
		for _, k := range t.Apps {
			if k != "*" && !keys[k] {
				bad(p+".apps", "%q is not an app_key declared in [[apps]]", k)
			}
		}
	}
}
