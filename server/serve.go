package server

import (
	"bytes"
	"context"
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

	"trove/backup"
	"trove/cluster"
	"trove/config"
	"trove/obs"
	"trove/storage"
	"trove/web"
)

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

// CheckConfig runs `trove check-config`: it validates the configuration
// that serve would load from args and the environment, and returns the
// exit code: 0 when it is valid, 1 when not, 2 for bad flags.
func CheckConfig(args []string, stdout, stderr io.Writer) int {
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

// Serve runs `trove serve` with args until ctx is done (main cancels it on
// SIGINT or SIGTERM), then shuts down within the shutdown plan. It logs to
// stderr and returns the exit code: 0 after a clean shutdown (or -h, or
// -check-config on a valid configuration), 1 when the configuration is not
// valid or serving fails, 2 for bad flags.
func Serve(ctx context.Context, args []string, stdout, stderr io.Writer, o Options) int {
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
	if f, ok := stderr.(*os.File); ok && !isTerminal(f) {
		// The process's own stderr, a file or a pipe: written in batches
		// (logbuf.go). A terminal, or a writer a caller passes, gets each
		// line as it is logged.
		b := newLogBuffer(f)
		defer b.Close()
		log = slog.New(flushingHandler{newLogger(b, cfg).Handler(), b})
	}
	if err := serveConfig(ctx, cfg, log, o); err != nil {
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

func serveConfig(ctx context.Context, cfg config.Config, log *slog.Logger, o Options) error {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	db, err := openStore(cfg, log, o.Hooks)
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
	var node *cluster.Node
	if cfg.Cluster.Enabled() {
		if node, err = startCluster(cfg, db, log); err != nil {
			return err
		}
		// The node stops applying before the store closes.
		closeNode := sync.OnceFunc(node.Close)
		defer closeNode()
		closeDB := closeStore
		closeStore = func(deadline time.Time) {
			closeNode()
			closeDB(deadline)
		}
	}
	a, err := newAPIs(cfg, db, reg, log, o.Hooks, node)
	if err != nil {
		return err
	}
	writeGate := db.Writable
	if node != nil {
		runCluster(node, a, db, &cfg, log)
		writeGate = clusterGate(node, db.Writable)
	}
	storeMetrics := obs.StoreWriter(db, cfg.DataDir)
	obs.SetBuildInfo(o.Version)
	srv := web.New(web.Config{
		Listen:          cfg.Listen,
		MaxRequestBytes: int(cfg.Ingest.MaxRequestBytes),
		CORSOrigins:     cfg.Ingest.CORSOrigins,
		WriteGate:       writeGate,
		Metrics: func(w io.Writer) {
			storeMetrics(w)
			var b bytes.Buffer
			a.sinks.WriteMetrics(&b)
			if node != nil {
				writeClusterMetrics(&b, node)
			}
			obs.Expose(w, b.Bytes())
		},
		Listener:       o.Listener,
		ReadTimeout:    cfg.HTTP.ReadTimeout.Std(),
		WriteTimeout:   cfg.HTTP.WriteTimeout.Std(),
		IdleTimeout:    cfg.HTTP.IdleTimeout.Std(),
		Concurrency:    cfg.HTTP.Concurrency,
		MaxConnsPerIP:  cfg.HTTP.MaxConnsPerIP,
		MaxHeaderBytes: int(cfg.HTTP.MaxHeaderBytes),
		MaxBodyMemory:  int64(cfg.HTTP.MaxBodyMemory),
	}, reg, a.handlers(backup.NewHandler(db, cfg.DataDir, o.Version, log)), log)
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
	if o.OnReady != nil {
		o.OnReady(addr)
	}
	select {
	case err := <-serveErr:
		return fmt.Errorf("server failed: %w", err)
	case <-ctx.Done():
	}
	a.sinks.Stop()
	shutdown(srv, closeStore, log, o.Hooks)
	return nil
}

// openStore opens the store in cfg's data directory, creating it.
func openStore(cfg config.Config, log *slog.Logger, h Hooks) (*storage.DB, error) {
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
		Replicated:       cfg.Cluster.Enabled(),
		FreeSpace:        h.FreeSpace,
		MemFS:            h.StoreFS,
		Now:              h.Clock,
		CommitHook:       h.Commit,
		Logger:           log,
	})
	if err != nil {
		return nil, err
	}
	log.Info("store opened", "dir", cfg.DataDir, "took", time.Since(start).Round(time.Millisecond).String(), "sync", cfg.Ingest.Sync)
	return db, nil
}
