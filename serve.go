package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"trove/admin"
	"trove/amplitude"
	"trove/auth"
	"trove/backup"
	"trove/compat"
	"trove/config"
	"trove/export"
	"trove/ingest"
	"trove/mixpanel"
	"trove/obs"
	"trove/posthog"
	"trove/profile"
	"trove/schema"
	"trove/segment"
	"trove/sinks"
	"trove/storage"
	"trove/web"
)

// shutdownPlan is how SIGTERM ends within 10 s, what docker stop and
// Kubernetes wait before SIGKILL, store's close included. Each step is
// bounded by a deadline counted from the signal.
type shutdownPlan struct {
	// drain: requests in flight may finish; the rest are refused with 503
	// (web.Server.Refuse).
	drain time.Duration
	// closed: the store's close (it waits for the writes that are
	// committing, then flushes) must be done; if it is not, the process
	// exits all the same: what was acknowledged is in the WAL.
	closed time.Duration
	// end: the answers of the last requests are written and every
	// connection closed; what is left is closed.
	end time.Duration
}

// defaultShutdown leaves the store 3 s to close (issue 13 saw 3 s), and
// half a second each for the last answers and the process's exit.
var defaultShutdown = shutdownPlan{drain: 6 * time.Second, closed: 9 * time.Second, end: 9500 * time.Millisecond}

type serveFlags struct {
	config, data, listen string
	logLevel, logFormat  string
	checkConfig          bool
}

func parseServeFlags(name string, args []string, stderr io.Writer) (*serveFlags, error) {
	fs := flag.NewFlagSet("trove "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := &serveFlags{}
	fs.StringVar(&f.config, "config", "", "TOML config file (env TROVE_CONFIG); none needed")
	fs.StringVar(&f.data, "data", "", "data directory (env TROVE_DATA_DIR or TROVE_DATA; default ./data)")
	fs.StringVar(&f.listen, "listen", "", "listen address (env TROVE_LISTEN; default :8080)")
	fs.StringVar(&f.logLevel, "log-level", "", "log level: debug, info, warn, error (env TROVE_LOG_LEVEL; default info)")
	fs.StringVar(&f.logFormat, "log-format", "", "log format: json, text, auto = text on a terminal, else json (env TROVE_LOG_FORMAT; default auto)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage of trove %s:\n", name)
		fs.PrintDefaults()
		fmt.Fprint(fs.Output(), "\nEvery config key can also be set from the environment, as TROVE_<KEY> or\n"+
			"TROVE_<SECTION>_<KEY> (TROVE_INGEST_DEDUP_WINDOW=24h); see config.example.toml.\n"+
			"Precedence: flag > environment > config file > default.\n")
	}
	if name == "serve" {
		fs.BoolVar(&f.checkConfig, "check-config", false, "validate the configuration and exit")
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		// The flag package reports its own errors; this one is ours.
		err := fmt.Errorf("unexpected argument %q", fs.Arg(0))
		fmt.Fprintf(stderr, "trove %s: %v\n", name, err)
		return nil, err
	}
	return f, nil
}

// loadConfig applies, highest first: flag, environment (every key, as
// TROVE_<SECTION>_<KEY>: config.EnvVars), file, default.
func loadConfig(f *serveFlags) (config.Config, error) {
	path := firstNonEmpty(f.config, os.Getenv("TROVE_CONFIG"))
	cfg := config.Default()
	if path != "" {
		var err error
		if cfg, err = config.Load(path); err != nil {
			return cfg, err
		}
	}
	if err := cfg.ApplyEnv(os.Environ()); err != nil {
		return cfg, fmt.Errorf("the environment is not valid:\n%w", err)
	}
	cfg.Listen = firstNonEmpty(f.listen, cfg.Listen)
	cfg.DataDir = firstNonEmpty(f.data, cfg.DataDir)
	cfg.LogLevel = firstNonEmpty(f.logLevel, cfg.LogLevel)
	cfg.LogFormat = firstNonEmpty(f.logFormat, cfg.LogFormat)
	if err := cfg.Validate(); err != nil {
		// Values may come from the file, the environment or flags.
		where := "the configuration (defaults, environment and flags)"
		if path != "" {
			where = "the configuration (" + path + ", environment and flags)"
		}
		return cfg, fmt.Errorf("%s is not valid:\n%w", where, err)
	}
	return cfg, nil
}

// flagExit is the exit code for a flag parsing error: 0 for -h, else 2.
func flagExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

func checkConfig(args []string, stdout, stderr io.Writer) int {
	f, err := parseServeFlags("check-config", args, stderr)
	if err != nil {
		return flagExit(err)
	}
	if _, err := loadConfig(f); err != nil {
		fmt.Fprintln(stderr, "trove:", err)
		return 1
	}
	fmt.Fprintln(stdout, "configuration is valid")
	return 0
}

// newLogger returns the logger of cfg's log_level and log_format ("auto":
// text on a terminal, else JSON lines).
func newLogger(w io.Writer, cfg config.Config) *slog.Logger {
	var l slog.Level
	l.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: l}
	text := cfg.LogFormat == "text"
	if cfg.LogFormat == "auto" {
		f, ok := w.(*os.File)
		text = ok && isTerminal(f)
	}
	if text {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f, err := parseServeFlags("serve", args, stderr)
	if err != nil {
		return flagExit(err)
	}
	cfg, err := loadConfig(f)
	if err != nil {
		fmt.Fprintln(stderr, "trove:", err)
		return 1
	}
	if f.checkConfig {
		fmt.Fprintln(stdout, "configuration is valid")
		return 0
	}
	log := newLogger(stderr, cfg)
	if err := serveConfig(ctx, cfg, log); err != nil {
		log.Error("trove stopped", "err", err)
		return 1
	}
	return 0
}

// defaultMemoryLimit is the Go heap's soft limit unless GOMEMLIMIT says
// otherwise: with it the collector works harder before the heap grows, which
// keeps the process (Go heap plus Pebble's cache and memtables) under 300 MiB
// while the merger recompresses.
const defaultMemoryLimit = 128 << 20

// schemaPolicy returns each app's schema contract policy, from the
// validated config: parsed once per app here, looked up per request.
func schemaPolicy(cfg *config.Config) func(appKey string) schema.Policy {
	of := cfg.SchemaPolicy()
	parse := func(mode, unknown string) schema.Policy {
		m, _ := schema.ParseMode(mode) // validated with the config
		u, _ := schema.ParseUnknown(unknown)
		return schema.Policy{Mode: m, Unknown: u}
	}
	own := map[string]schema.Policy{}
	for _, a := range cfg.Apps {
		own[a.AppKey] = parse(of(a.AppKey))
	}
	def := parse(of(""))
	return func(appKey string) schema.Policy {
		if p, ok := own[appKey]; ok {
			return p
		}
		return def
	}
}

func serveConfig(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	db, err := openStore(cfg, log)
	if err != nil {
		return err
	}
	closeStore := closeStoreOnce(db, log)
	// On the way out before serving; a shutdown closes it within its plan.
	defer closeStore(time.Time{})

	reg, err := buildRegistry(cfg, db, log)
	if err != nil {
		return err
	}
	a, err := newAPIs(cfg, db, reg, log)
	if err != nil {
		return err
	}
	storeMetrics := obs.StoreWriter(db, cfg.DataDir)
	obs.SetBuildInfo(version)
	srv := web.New(web.Config{
		Listen:          cfg.Listen,
		MaxRequestBytes: int(cfg.Ingest.MaxRequestBytes),
		CORSOrigins:     cfg.Ingest.CORSOrigins,
		WriteGate:       db.Writable,
		Metrics: func(w io.Writer) {
			storeMetrics(w)
			var b bytes.Buffer
			a.sinks.WriteMetrics(&b)
			obs.Expose(w, b.Bytes())
		},
		Listener:       listenerHook,
		ReadTimeout:    cfg.HTTP.ReadTimeout.Std(),
		WriteTimeout:   cfg.HTTP.WriteTimeout.Std(),
		IdleTimeout:    cfg.HTTP.IdleTimeout.Std(),
		Concurrency:    cfg.HTTP.Concurrency,
		MaxConnsPerIP:  cfg.HTTP.MaxConnsPerIP,
		MaxHeaderBytes: int(cfg.HTTP.MaxHeaderBytes),
		MaxBodyMemory:  int64(cfg.HTTP.MaxBodyMemory),
	}, reg, a.handlers(backup.NewHandler(db, cfg.DataDir, version, log)), log)
	addr, err := srv.Listen()
	if err != nil {
		return err
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve() }()
	srv.SetReady(true)
	// The sinks read committed events from snapshots, beside ingest; they
	// stop before the store closes (a file in flight stays pending).
	a.sinks.Start()
	defer a.sinks.Stop()
	log.Info("listening on http://" + addr)
	if onReady != nil {
		onReady(addr)
	}
	select {
	case err := <-serveErr:
		return fmt.Errorf("server failed: %w", err)
	case <-ctx.Done():
	}
	a.sinks.Stop()
	shutdown(srv, closeStore, log)
	return nil
}

// openStore opens the store in cfg's data directory, creating it.
func openStore(cfg config.Config, log *slog.Logger) (*storage.DB, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("cannot create data directory: %w", err)
	}
	start := time.Now()
	db, err := storage.Open(filepath.Join(cfg.DataDir, "store"), storage.Options{
		Sync:             cfg.Ingest.Sync,
		CacheSize:        int64(cfg.Storage.CacheSize),
		DedupWindow:      cfg.Ingest.DedupWindow.Std(),
		DedupFilterBytes: int(cfg.Storage.DedupFilterMemory),
		ColumnarBlocks:   cfg.Storage.ColumnarBlocks,
		MergeInterval:    cfg.Storage.MergeInterval.Std(),
		MergeMinAge:      cfg.Storage.MergeMinAge.Std(),
		Retention:        cfg.RetentionPolicy(),
		MinFreeDisk:      uint64(cfg.Storage.MinFreeDisk),
		FreeSpace:        freeSpaceHook,
		MemFS:            storeFSHook,
		Now:              clockHook,
		CommitHook:       commitHook,
		Logger:           log,
	})
	if err != nil {
		return nil, err
	}
	log.Info("store opened", "dir", cfg.DataDir, "took", time.Since(start).Round(time.Millisecond).String(), "sync", cfg.Ingest.Sync)
	return db, nil
}

// apis are the handlers of the server's APIs, built from the config.
type apis struct {
	ingest    *ingest.Handler
	export    *export.Handler
	profile   *profile.Handler
	segment   *segment.Handler
	posthog   *posthog.Handler
	amplitude *amplitude.Handler
	mixpanel  *mixpanel.Handler
	admin     *admin.Handler
	sinks     *sinks.Manager
}

// newAPIs builds every API handler over db and reg, as cfg says.
func newAPIs(cfg config.Config, db *storage.DB, reg *auth.Registry, log *slog.Logger) (*apis, error) {
	icfg := ingest.Config{
		Sync:            cfg.Ingest.Sync,
		DedupWindow:     cfg.Ingest.DedupWindow.Std(),
		SkewThreshold:   cfg.Ingest.SkewThreshold.Std(),
		MaxFuture:       cfg.Ingest.MaxFuture.Std(),
		MaxEventBytes:   int(cfg.Ingest.MaxEventBytes),
		MaxRequestBytes: int(cfg.Ingest.MaxRequestBytes),
		MaxAttributes:   cfg.Ingest.MaxAttributes,
		Retention:       cfg.RetentionPolicy(),
	}
	a := &apis{ingest: ingest.NewHandler(icfg, reg, ingest.StoreSink{DB: db})}
	contracts, err := schema.Open(db, schemaPolicy(&cfg))
	if err != nil {
		return nil, err
	}
	a.ingest.SetContracts(contracts)
	if clockHook != nil {
		a.ingest.SetClock(clockHook)
	}
	a.export = export.NewHandler(db, reg, log)
	a.profile = profile.NewHandler(profile.Config{
		MaxProfiles:     cfg.Profiles.MaxProfiles,
		MaxFields:       cfg.Profiles.MaxFields,
		MaxRequestBytes: int(cfg.Ingest.MaxRequestBytes),
	}, reg, db)
	limiter := newRateLimiter(cfg)
	a.ingest.SetLimiter(limiter)
	a.profile.SetLimiter(limiter)
	a.segment = segment.NewHandler(reg, a.ingest, a.profile)
	a.segment.SetLimiter(limiter)
	aliases := map[string]string{}
	for _, app := range cfg.Apps {
		for _, k := range app.APIKeys {
			aliases[k] = app.AppKey
		}
	}
	cc := compat.New(compat.Config{Aliases: aliases, MaxRequestBytes: int(cfg.Ingest.MaxRequestBytes)}, reg, a.ingest, a.profile)
	cc.SetLimiter(limiter)
	a.posthog = posthog.NewHandler(cc)
	a.amplitude = amplitude.NewHandler(cc)
	a.mixpanel = mixpanel.NewHandler(cc)
	a.admin = admin.NewHandler(reg, db, log)
	a.admin.SetDataDir(cfg.DataDir)
	a.admin.SetSchemas(contracts)
	if a.sinks, err = sinks.New(db, cfg.Sinks, log, sinks.Options{Transport: sinkTransportHook}); err != nil {
		return nil, err
	}
	return a, nil
}

// handlers returns the route table's handlers.
func (a *apis) handlers(b *backup.Handler) web.Handlers {
	return web.Handlers{
		Events:         a.ingest.Events,
		ExportEvents:   a.export.Events,
		ExportRejected: a.export.Rejected,
		ExportProfiles: a.export.Profiles,
		StreamEvents:   a.export.Stream,
		ProfileUpdate:  a.profile.Update,
		ProfileGet:     a.profile.Get,
		ProfileDelete:  a.profile.Delete,
		Backup:         b.Backup,

		AdminCreateApp:   a.admin.CreateApp,
		AdminListApps:    a.admin.ListApps,
		AdminCreateToken: a.admin.CreateToken,
		AdminListTokens:  a.admin.ListTokens,
		AdminRevokeToken: a.admin.RevokeToken,
		AdminOverview:    a.admin.Overview,
		AdminSinks:       admin.Sinks(func() any { return a.sinks.Status() }),

		AdminListSchemas:  a.admin.ListSchemas,
		AdminGetSchema:    a.admin.GetSchema,
		AdminPutSchema:    a.admin.PutSchema,
		AdminDeleteSchema: a.admin.DeleteSchema,
		AdminReplay:       a.ingest.Replay,

		Segment:            a.segment.Serve,
		SegmentClusterInfo: a.segment.ClusterInfo,
		PostHog:            a.posthog.Serve,
		Amplitude:          a.amplitude.Serve,
		Mixpanel:           a.mixpanel.Serve,
		Batch:              a.amplitude.Batch(a.posthog.ServeRaw),
	}
}

// shutdown stops srv and closes the store within the shutdown plan.
func shutdown(srv *web.Server, closeStore func(deadline time.Time), log *slog.Logger) {
	plan := defaultShutdown
	if shutdownHook != nil {
		plan = *shutdownHook
	}
	t := time.Now()
	log.Info("shutting down: draining requests", "drain", plan.drain.String())
	sctx, cancel := context.WithDeadline(context.Background(), t.Add(plan.drain))
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("requests still in flight at the end of the drain; refusing them with 503", "err", err)
		srv.Refuse()
	}
	log.Info("server stopped", "took", time.Since(t).Round(time.Millisecond).String())
	closeStore(t.Add(plan.closed))
	if n := srv.Finish(t.Add(plan.end)); n > 0 {
		log.Warn("connections still open at the end of the shutdown were closed", "connections", n)
	}
	log.Info("shut down", "took", time.Since(t).Round(time.Millisecond).String())
}

// closeStoreOnce returns a function that closes db, once, waiting until
// deadline at most (zero: no deadline). Close waits for the writes in
// flight; one that outlasts the deadline is left to finish as the process
// exits, which the store survives as it survives kill -9.
func closeStoreOnce(db *storage.DB, log *slog.Logger) func(deadline time.Time) {
	var once sync.Once
	return func(deadline time.Time) {
		once.Do(func() {
			t := time.Now()
			done := make(chan error, 1)
			go func() { done <- db.Close() }()
			var expired <-chan time.Time
			if !deadline.IsZero() {
				timer := time.NewTimer(time.Until(deadline))
				defer timer.Stop()
				expired = timer.C
			}
			select {
			case err := <-done:
				if err != nil {
					log.Error("cannot close store", "err", err)
					return
				}
				log.Info("store closed", "took", time.Since(t).Round(time.Millisecond).String())
			case <-expired:
				log.Error("the store did not close within the shutdown plan; exiting all the same: acknowledged writes are in its WAL, replayed at the next start",
					"waited", time.Since(t).Round(time.Millisecond).String())
				go func() {
					// Only if the process outlives it (tests run in one).
					err := <-done
					log.Info("store closed after the shutdown plan", "took", time.Since(t).Round(time.Millisecond).String(), "err", err)
				}()
			}
		})
	}
}

// buildRegistry loads the apps and tokens of the config and the admin token.
func buildRegistry(cfg config.Config, db *storage.DB, log *slog.Logger) (*auth.Registry, error) {
	reg := auth.NewRegistry()
	for _, a := range cfg.Apps {
		reg.AddApp(auth.App{Name: a.Name, AppKey: a.AppKey, RequireToken: a.RequireToken, PublicProfileWrites: a.PublicProfileWrites,
			Source: auth.SourceConfig})
		if _, err := db.EnsureApp(a.AppKey); err != nil {
			return nil, err
		}
	}
	for i, t := range cfg.Tokens {
		scopes, err := auth.ParseScopes(t.Scopes)
		if err != nil {
			return nil, fmt.Errorf("tokens[%d]: %w", i, err)
		}
		tok := auth.Token{Name: t.Name, Scopes: scopes, Apps: map[string]bool{}, Source: auth.SourceConfig}
		if t.Secret != "" {
			tok.Digest = auth.Digest([]byte(t.Secret))
		} else if tok.Digest, err = auth.ParseDigest(t.SHA256); err != nil {
			return nil, fmt.Errorf("tokens[%d].sha256: %w", i, err)
		}
		for _, k := range t.Apps {
			if k == "*" {
				tok.AllApps = true
			} else {
				tok.Apps[k] = true
			}
		}
		// Stable across restarts and reorderings of the file.
		tok.ID = auth.DigestID(tok.Digest)
		reg.AddToken(tok)
	}
	digest, err := adminTokenDigest(cfg, db, log)
	if err != nil {
		return nil, err
	}
	reg.AddToken(auth.Token{ID: "admin", Name: "admin", Digest: digest, Scopes: auth.ScopeAdmin | auth.ScopeExport | auth.ScopeIngest, AllApps: true,
		Source: auth.SourceAdminToken})
	// What the admin API created, beside what the config declares.
	if err := admin.Load(reg, db, log); err != nil {
		return nil, err
	}
	return reg, nil
}

const metaAdminTokenDigest = "admin_token_sha256"

// adminTokenDigest returns the admin token's digest. Without a configured
// token, one is generated on first start, written once to
// <data>/admin.token (mode 0600) and logged once; only its digest is kept.
func adminTokenDigest(cfg config.Config, db *storage.DB, log *slog.Logger) ([32]byte, error) {
	if cfg.AdminToken != "" {
		return auth.Digest([]byte(cfg.AdminToken)), nil
	}
	stored, err := db.GetMeta(metaAdminTokenDigest)
	if err != nil {
		return [32]byte{}, err
	}
	if len(stored) == 32 {
		return [32]byte(stored), nil
	}
	raw := make([]byte, 24)
	rand.Read(raw)
	secret := "trv_admin_" + base64.RawURLEncoding.EncodeToString(raw)
	path := filepath.Join(cfg.DataDir, "admin.token")
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return [32]byte{}, fmt.Errorf("cannot write admin token: %w", err)
	}
	d := auth.Digest([]byte(secret))
	if err := db.SetMeta(metaAdminTokenDigest, d[:]); err != nil {
		return [32]byte{}, err
	}
	log.Info("generated the admin token; it is shown this once and kept in "+path, "admin_token", secret, "sha256", hex.EncodeToString(d[:8]))
	return d, nil
}
