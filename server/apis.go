package server

import (
	"log/slog"

	"trove/admin"
	"trove/amplitude"
	"trove/auth"
	"trove/backup"
	"trove/cluster"
	"trove/compat"
	"trove/config"
	"trove/export"
	"trove/ingest"
	"trove/mixpanel"
	"trove/posthog"
	"trove/profile"
	"trove/schema"
	"trove/segment"
	"trove/sinks"
	"trove/storage"
	"trove/web"
)

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

// ingestConfig is the Events API's part of cfg.
func ingestConfig(cfg *config.Config) ingest.Config {
	return ingest.Config{
		Sync:            cfg.Ingest.Sync,
		DedupWindow:     cfg.Ingest.DedupWindow.Std(),
		SkewThreshold:   cfg.Ingest.SkewThreshold.Std(),
		MaxFuture:       cfg.Ingest.MaxFuture.Std(),
		MaxEventBytes:   int(cfg.Ingest.MaxEventBytes),
		MaxRequestBytes: int(cfg.Ingest.MaxRequestBytes),
		MaxAttributes:   cfg.Ingest.MaxAttributes,
		Retention:       cfg.RetentionPolicy(),
	}
}

// newAPIs builds every API handler over db and reg, as cfg says; in
// cluster mode (node set) events are stored through the stream.
func newAPIs(cfg config.Config, db *storage.DB, reg *auth.Registry, log *slog.Logger, h Hooks, node *cluster.Node) (*apis, error) {
	var sink interface {
		AppendEvents(*ingest.Batch) error
	} = ingest.StoreSink{DB: db}
	if node != nil {
		sink = ingest.LogSink{StoreSink: ingest.StoreSink{DB: db}, Log: logOf{node, entryEvents}}
	}
	a := &apis{ingest: ingest.NewHandler(ingestConfig(&cfg), reg, sink)}
	contracts, err := schema.Open(db, schemaPolicy(&cfg))
	if err != nil {
		return nil, err
	}
	a.ingest.SetContracts(contracts)
	if h.Clock != nil {
		a.ingest.SetClock(h.Clock)
	}
	a.export = export.NewHandler(db, reg, log)
	a.profile = profile.NewHandler(profile.Config{
		MaxProfiles:     cfg.Profiles.MaxProfiles,
		MaxFields:       cfg.Profiles.MaxFields,
		MaxRequestBytes: int(cfg.Ingest.MaxRequestBytes),
	}, reg, db)
	if node != nil {
		a.profile.SetLog(logOf{node, entryProfiles})
	}
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
	if node != nil {
		a.admin.SetLog(logOf{node, entryAdmin})
	}
	if a.sinks, err = sinks.New(db, cfg.Sinks, log, sinks.Options{Transport: h.SinkTransport}); err != nil {
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
