package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"trove/auth"
	"trove/obs"
)

// Access says what credentials a route needs.
type Access int

const (
	// Public routes need none (health checks only).
	Public Access = iota
	// AppKey routes take the app's key from the body; credentials, when
	// sent, must be valid, and the handler authorizes each app (Events API).
	AppKey
	// Scoped routes need a valid token with the route's scope; the handler
	// checks that it covers the app.
	Scoped
	// WriteKey routes (the Segment protocol) take an app's key as the HTTP
	// Basic user name, or a token there or in the body; credentials, when
	// sent, must be a known appKey or a valid token with the route's
	// scope, and the handler resolves the app.
	WriteKey
)

// Route is one entry of the route table.
type Route struct {
	Method string
	// Path is matched exactly, except that a Path ending in "/" matches
	// every path that extends it by one non-empty segment (the handler
	// reads the segment, e.g. the id of DELETE /admin/tokens/{id}), and a
	// {name} segment matches any one non-empty segment (the handler reads
	// it). "/" (the console's page) is matched exactly.
	Path    string
	Access  Access
	Scope   auth.Scope
	Handler func(ctx *fasthttp.RequestCtx) error
}

// Handlers are the domain handlers the server routes to.
type Handlers struct {
	Events         func(*fasthttp.RequestCtx) error
	ExportEvents   func(*fasthttp.RequestCtx) error
	ExportRejected func(*fasthttp.RequestCtx) error
	ExportProfiles func(*fasthttp.RequestCtx) error
	StreamEvents   func(*fasthttp.RequestCtx) error
	ProfileUpdate  func(*fasthttp.RequestCtx) error
	ProfileGet     func(*fasthttp.RequestCtx) error
	ProfileDelete  func(*fasthttp.RequestCtx) error
	// Backup streams a snapshot of the store (POST /admin/backup).
	Backup func(*fasthttp.RequestCtx) error
	// The admin API for apps and tokens (package admin).
	AdminCreateApp   func(*fasthttp.RequestCtx) error
	AdminListApps    func(*fasthttp.RequestCtx) error
	AdminCreateToken func(*fasthttp.RequestCtx) error
	AdminListTokens  func(*fasthttp.RequestCtx) error
	AdminRevokeToken func(*fasthttp.RequestCtx) error
	// Segment serves the Segment HTTP Tracking API (package segment):
	// POST /v1/batch, /v1/track, /v1/identify, /v1/page, /v1/screen,
	// /v1/alias and /v1/group; SegmentClusterInfo serves the
	// GET /cluster-info that RudderStack SDKs ask.
	Segment            func(*fasthttp.RequestCtx) error
	SegmentClusterInfo func(*fasthttp.RequestCtx) error
	// PostHog serves PostHog's capture API (package posthog): POST /batch/,
	// /capture/, /i/v0/e/ and /e/.
	PostHog func(*fasthttp.RequestCtx) error
	// Amplitude serves Amplitude's HTTP V2 API (package amplitude):
	// POST /2/httpapi and /identify.
	Amplitude func(*fasthttp.RequestCtx) error
	// Mixpanel serves Mixpanel's ingestion API (package mixpanel): GET and
	// POST /track and /engage, POST /import.
	Mixpanel func(*fasthttp.RequestCtx) error
	// Batch serves POST /batch (and /batch/), which Amplitude's Batch API
	// and PostHog's SDKs share.
	Batch func(*fasthttp.RequestCtx) error
	// AdminOverview serves the web console's overview (GET /admin/overview).
	AdminOverview func(*fasthttp.RequestCtx) error
	// AdminSinks serves the sinks' status (GET /admin/sinks).
	AdminSinks func(*fasthttp.RequestCtx) error
	// The schema contracts (package admin over package schema): list an
	// app's, get, put and delete one (SPEC.md section 7).
	AdminListSchemas  func(*fasthttp.RequestCtx) error
	AdminGetSchema    func(*fasthttp.RequestCtx) error
	AdminPutSchema    func(*fasthttp.RequestCtx) error
	AdminDeleteSchema func(*fasthttp.RequestCtx) error
	// AdminReplay replays an app's quarantine (POST
	// /admin/quarantine/replay, package ingest).
	AdminReplay func(*fasthttp.RequestCtx) error
}

// Config configures the HTTP server.
type Config struct {
	Listen          string
	MaxRequestBytes int
	CORSOrigins     []string
	// WriteGate, when set, is asked before every write route (writegate.go):
	// an error (the disk nearly full) refuses the request with its status,
	// and makes /readyz answer 503 with its message. It must be cheap.
	WriteGate func() error
	// Metrics, when set, writes the server's own series (its store's) at
	// the end of each GET /metrics answer, in the Prometheus text format.
	Metrics func(w io.Writer)
	// Listener, when set, is served instead of listening on Listen (tests
	// that connect in memory).
	Listener net.Listener
	// The defences against slow and greedy clients (conns.go); zero takes
	// the default of config.example.toml's [http].
	ReadTimeout    time.Duration // one request, headers and body
	WriteTimeout   time.Duration // one response write without progress
	IdleTimeout    time.Duration // between requests of a keep-alive connection
	Concurrency    int           // connections served at once
	MaxConnsPerIP  int           // 0 is unlimited
	MaxHeaderBytes int           // request line and headers
	// DrainBytes and DrainTimeout bound how much of a refused body is read
	// after its answer (drain.go); zero takes 4 × MaxRequestBytes (at
	// least 1 MiB) and 5 s.
	DrainBytes   int64
	DrainTimeout time.Duration
	// MaxBodyMemory bounds the bytes that request bodies being served may
	// hold at once (bodymem.go); 0 is unbounded. BodyMemoryWait is how
	// long a request waits for its share before a 503; zero takes 1 s.
	MaxBodyMemory  int64
	BodyMemoryWait time.Duration
}

// Server is Trove's HTTP server.
type Server struct {
	cfg    Config
	reg    *auth.Registry
	log    *slog.Logger
	routes []Route
	byKey  map[string]*Route
	srv    *fasthttp.Server
	ln     net.Listener
	ready  atomic.Bool

	// routeMetrics holds each route's series (metrics.go).
	routeMetrics map[*Route]*obs.RouteMetrics
	// drains holds a token per refused body being drained (drain.go).
	drains chan struct{}
	// bodyMem is the budget of request bodies in memory (bodymem.go), nil
	// when unbounded.
	bodyMem *memBudget
	// conns are the open connections, draining is set once Shutdown has
	// begun and refusing once Refuse has (shutdown.go).
	conns              *connSet
	draining, refusing atomic.Bool
}

// New builds the server and its route table.
func New(cfg Config, reg *auth.Registry, h Handlers, log *slog.Logger) *Server {
	s := &Server{cfg: cfg, reg: reg, log: log, drains: make(chan struct{}, maxDrains), conns: &connSet{}}
	s.routes = s.routeTable(h)
	s.byKey = map[string]*Route{}
	for i := range s.routes {
		r := &s.routes[i]
		s.byKey[r.Method+" "+r.Path] = r
	}
	s.initRouteMetrics()
	cfg.withDefaults()
	s.cfg = cfg
	if cfg.MaxBodyMemory > 0 {
		s.bodyMem = newMemBudget(cfg.MaxBodyMemory)
	}
	s.srv = s.fasthttpServer()
	return s
}

// routeTable is every route of the server, each to its handler in h.
func (s *Server) routeTable(h Handlers) []Route {
	return []Route{
		{"GET", "/healthz", Public, 0, s.healthz},
		{"GET", "/readyz", Public, 0, s.readyz},
		{"GET", "/metrics", Public, 0, s.metrics},
		{"GET", "/openapi.yaml", Public, 0, s.openapi},
		{"POST", "/v1/events", AppKey, auth.ScopeIngest, h.Events},
		{"GET", "/v1/export/events", Scoped, auth.ScopeExport, h.ExportEvents},
		{"GET", "/v1/export/rejected", Scoped, auth.ScopeExport, h.ExportRejected},
		{"GET", "/v1/export/profiles", Scoped, auth.ScopeExport, h.ExportProfiles},
		{"GET", "/v1/stream/events", Scoped, auth.ScopeExport, h.StreamEvents},
		{"POST", "/users/profile", Scoped, auth.ScopeIngest, h.ProfileUpdate},
		{"POST", "/v1/users/profile", Scoped, auth.ScopeIngest, h.ProfileUpdate},
		{"GET", "/v1/users/profile", Scoped, auth.ScopeExport, h.ProfileGet},
		{"DELETE", "/v1/users/profile", Scoped, auth.ScopeAdmin, h.ProfileDelete},
		{"POST", "/admin/backup", Scoped, auth.ScopeAdmin, h.Backup},
		{"POST", "/admin/apps", Scoped, auth.ScopeAdmin, h.AdminCreateApp},
		{"GET", "/admin/apps", Scoped, auth.ScopeAdmin, h.AdminListApps},
		{"POST", "/admin/tokens", Scoped, auth.ScopeAdmin, h.AdminCreateToken},
		{"GET", "/admin/tokens", Scoped, auth.ScopeAdmin, h.AdminListTokens},
		{"DELETE", "/admin/tokens/", Scoped, auth.ScopeAdmin, h.AdminRevokeToken},
		{"POST", "/v1/batch", WriteKey, auth.ScopeIngest, h.Segment},
		{"POST", "/v1/track", WriteKey, auth.ScopeIngest, h.Segment},
		{"POST", "/v1/identify", WriteKey, auth.ScopeIngest, h.Segment},
		{"POST", "/v1/page", WriteKey, auth.ScopeIngest, h.Segment},
		{"POST", "/v1/screen", WriteKey, auth.ScopeIngest, h.Segment},
		{"POST", "/v1/alias", WriteKey, auth.ScopeIngest, h.Segment},
		{"POST", "/v1/group", WriteKey, auth.ScopeIngest, h.Segment},
		{"GET", "/cluster-info", WriteKey, auth.ScopeIngest, h.SegmentClusterInfo},
		{"POST", "/batch", WriteKey, auth.ScopeIngest, h.Batch},
		{"POST", "/2/httpapi", WriteKey, auth.ScopeIngest, h.Amplitude},
		{"POST", "/identify", WriteKey, auth.ScopeIngest, h.Amplitude},
		{"GET", "/track", WriteKey, auth.ScopeIngest, h.Mixpanel},
		{"POST", "/track", WriteKey, auth.ScopeIngest, h.Mixpanel},
		{"GET", "/engage", WriteKey, auth.ScopeIngest, h.Mixpanel},
		{"POST", "/engage", WriteKey, auth.ScopeIngest, h.Mixpanel},
		{"GET", "/import", WriteKey, auth.ScopeIngest, h.Mixpanel},
		{"POST", "/import", WriteKey, auth.ScopeIngest, h.Mixpanel},
		{"POST", "/capture", WriteKey, auth.ScopeIngest, h.PostHog},
		{"POST", "/i/v0/e", WriteKey, auth.ScopeIngest, h.PostHog},
		{"POST", "/e", WriteKey, auth.ScopeIngest, h.PostHog},
		{"GET", "/admin/overview", Scoped, auth.ScopeAdmin, h.AdminOverview},
		{"GET", "/admin/sinks", Scoped, auth.ScopeAdmin, h.AdminSinks},
		{"GET", "/admin/apps/{appKey}/schemas", Scoped, auth.ScopeAdmin, h.AdminListSchemas},
		{"GET", "/admin/apps/{appKey}/schemas/{event}", Scoped, auth.ScopeAdmin, h.AdminGetSchema},
		{"PUT", "/admin/apps/{appKey}/schemas/{event}", Scoped, auth.ScopeAdmin, h.AdminPutSchema},
		{"DELETE", "/admin/apps/{appKey}/schemas/{event}", Scoped, auth.ScopeAdmin, h.AdminDeleteSchema},
		{"POST", "/admin/quarantine/replay", Scoped, auth.ScopeAdmin, h.AdminReplay},
		// The web console's files (console.go); its data comes from the
		// routes above, with the admin token.
		{"GET", "/", Public, 0, s.console},
		{"GET", consolePrefix, Public, 0, s.consoleAsset},
	}
}

// fasthttpServer is the fasthttp.Server that serves s, with the limits
// of s.cfg (defaults applied).
func (s *Server) fasthttpServer() *fasthttp.Server {
	return &fasthttp.Server{
		Handler:            s.handle, // s.serve, logged and measured (log.go)
		Name:               "trove",
		StreamRequestBody:  true,
		MaxRequestBodySize: s.cfg.MaxRequestBytes,
		// The read buffer holds the request line and headers whole: a
		// larger header gets 431.
		ReadBufferSize: s.cfg.MaxHeaderBytes,
		ReadTimeout:    s.cfg.ReadTimeout,
		IdleTimeout:    s.cfg.IdleTimeout,
		// No WriteTimeout: fasthttp's bounds a whole response, which would
		// cut a long export; progressConn bounds each stalled write instead.
		Concurrency:           s.cfg.Concurrency,
		MaxConnsPerIP:         s.cfg.MaxConnsPerIP,
		ExpectHandler:         s.expect,
		ErrorHandler:          s.readError,
		NoDefaultServerHeader: false,
		NoDefaultContentType:  true,
		CloseOnShutdown:       true,
		Logger:                fasthttpLogger{s.log},
	}
}

// Routes returns the route table.
func (s *Server) Routes() []Route { return s.routes }

// Listen binds the listening socket and returns its address.
func (s *Server) Listen() (string, error) {
	if s.cfg.Listener != nil {
		s.ln = s.cfg.Listener
		return s.ln.Addr().String(), nil
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return "", fmt.Errorf("cannot listen on %s: %w", s.cfg.Listen, err)
	}
	s.ln = progressListener{ln, s.cfg.WriteTimeout, s.conns}
	return ln.Addr().String(), nil
}

// Serve serves on the bound socket until Shutdown.
func (s *Server) Serve() error { return s.srv.Serve(s.ln) }

// SetReady sets what /readyz answers.
func (s *Server) SetReady(ready bool) { s.ready.Store(ready) }

// Shutdown stops accepting, waits for in-flight requests (or ctx), and
// closes idle connections; every answer from now on closes its
// connection. When ctx ends first, the requests still in flight go on:
// Refuse ends them.
func (s *Server) Shutdown(ctx context.Context) error {
	s.SetReady(false)
	s.draining.Store(true)
	err := s.srv.ShutdownWithContext(ctx)
	// fasthttp's Shutdown misses a listener that Serve has not taken yet
	// (a signal right after start); closing it ends Serve either way.
	s.ln.Close()
	return err
}

// expect answers "Expect: 100-continue": a declared body over the limit
// gets 413 before the client sends any of it. (Without Expect, fasthttp
// reads at most the body's first 8 KiB before the handler refuses it.)
func (s *Server) expect(ctx *fasthttp.RequestCtx) int {
	if cl := ctx.Request.Header.ContentLength(); s.cfg.MaxRequestBytes > 0 && cl > s.cfg.MaxRequestBytes {
		writeError(ctx, s.log, fmt.Errorf("%w: the declared body of %d bytes is over the limit of %d (ingest.max_request_bytes)", ErrBodyTooLarge, cl, s.cfg.MaxRequestBytes))
		return fasthttp.StatusRequestEntityTooLarge
	}
	return fasthttp.StatusContinue
}

// readError answers a request that fasthttp could not read (headers, or
// the first part of a body read before the handler), as fasthttp does,
// except that once Refuse cut the reads it is the 503 of a shutdown.
func (s *Server) readError(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	var netErr *net.OpError
	switch {
	case s.refusing.Load():
		writeError(ctx, s.log, fmt.Errorf("%w: the server stopped before this request was read; send it again", ErrShuttingDown))
	case errors.As(err, &small):
		ctx.Error("Too big request header", fasthttp.StatusRequestHeaderFieldsTooLarge)
	case errors.As(err, &netErr) && netErr.Timeout():
		ctx.Error("Request timeout", fasthttp.StatusRequestTimeout)
	default:
		ctx.Error("Error when parsing request", fasthttp.StatusBadRequest)
	}
}

func (s *Server) healthz(ctx *fasthttp.RequestCtx) error {
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBodyString("ok\n")
	return nil
}

func (s *Server) readyz(ctx *fasthttp.RequestCtx) error {
	ctx.SetContentType("text/plain; charset=utf-8")
	if !s.ready.Load() {
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		ctx.SetBodyString("not ready\n")
		return nil
	}
	if err := s.writeGateErr(); err != nil {
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		ctx.SetBodyString("not ready: " + err.Error() + "\n")
		return nil
	}
	ctx.SetBodyString("ready\n")
	return nil
}

func (s *Server) serve(ctx *fasthttp.RequestCtx) {
	defer func() {
		if p := recover(); p != nil {
			// writeError logs it, once, as any 500.
			s.fail(ctx, fmt.Errorf("BUG: handler panicked: %v", p))
		}
	}()
	if s.refusing.Load() {
		s.fail(ctx, fmt.Errorf("%w: the server is stopping; send the request again", ErrShuttingDown))
		return
	}
	path := ctx.Path()
	if ctx.IsOptions() {
		s.options(ctx, path)
		return
	}
	r := s.route(ctx.Method(), path)
	if r == nil {
		// Pattern routes match the path as sent, so that an escaped "/"
		// stays inside its segment (an event name in a schema's path).
		r = s.patternRoute(ctx.Method(), ctx.Request.URI().PathOriginal())
	}
	if r == nil {
		allow, cors := s.methodsOf(path)
		if cors {
			s.cors(ctx) // a script on an ingest path can read the 405
		}
		if len(allow) > 0 {
			ctx.Response.Header.Set("Allow", strings.Join(append(allow, "OPTIONS"), ", "))
			s.fail(ctx, fmt.Errorf("%w: %s takes %s, not %s", ErrMethodNotAllowed, path, strings.Join(allow, ", "), ctx.Method()))
			return
		}
		s.fail(ctx, fmt.Errorf("%w: no route for %s %s", ErrNotFound, ctx.Method(), path))
		return
	}
	ctx.SetUserValue(routeKey{}, r) // for the request's log line and series
	if crossOrigin(r) {
		s.cors(ctx)
	} else if crossSite(ctx) {
		s.fail(ctx, fmt.Errorf("%w: %s %s takes no request from a web page of another origin (Origin %q); "+
			"only the ingest endpoints do (CORS)", auth.ErrForbidden, r.Method, path, ctx.Request.Header.Peek("Origin")))
		return
	}
	if err := s.authenticate(ctx, r); err != nil {
		s.fail(ctx, err)
		return
	}
	if isWrite(r) {
		// Refused before the body is read: nothing of it is stored.
		if err := s.writeGateErr(); err != nil {
			s.fail(ctx, err)
			return
		}
	}
	// Charged before the body is read, and given back before the answer
	// is written (also when the handler panics).
	if err := s.withBodyMemory(ctx, r, r.Handler); err != nil {
		if s.refusing.Load() {
			// Most likely a body read that Refuse cut short.
			err = fmt.Errorf("%w: the server stopped before this request finished (%v); nothing of it was stored, send it again", ErrShuttingDown, err)
		}
		s.fail(ctx, err)
	}
}

// slashTolerant are the routes that also answer their path with a
// trailing "/": the SDK-compatible ones whose SDKs send it (PostHog's
// /batch/, /capture/, /e/; Mixpanel's and Amplitude's, by symmetry).
var slashTolerant = map[string]bool{"/batch": true, "/capture": true, "/i/v0/e": true, "/e": true,
	"/track": true, "/engage": true, "/import": true, "/2/httpapi": true, "/identify": true}

// route returns the route for method and path, or nil.
func (s *Server) route(method, path []byte) *Route {
	if r := s.byKey[string(method)+" "+string(path)]; r != nil {
		return r
	}
	// PostHog's SDKs post to /batch/ and /capture/: an exact route also
	// answers its path with a trailing "/".
	if n := len(path); n > 1 && path[n-1] == '/' && slashTolerant[string(path[:n-1])] {
		if r := s.byKey[string(method)+" "+string(path[:n-1])]; r != nil {
			return r
		}
	}
	// A prefix route: the path up to its last "/", when what follows is a
	// non-empty segment.
	i := bytes.LastIndexByte(path, '/')
	if i < 0 || i == len(path)-1 {
		return nil
	}
	if r := s.byKey[string(method)+" "+string(path[:i+1])]; r != nil && isPrefixRoute(r.Path) {
		return r
	}
	return nil
}

// patternRoute returns the pattern route for method and path, or nil.
func (s *Server) patternRoute(method, path []byte) *Route {
	for i := range s.routes {
		r := &s.routes[i]
		if r.Method == string(method) && isPatternRoute(r.Path) && patternMatches(r.Path, string(path)) {
			return r
		}
	}
	return nil
}

// isPatternRoute reports whether a route's Path has {name} segments, each
// of which matches one non-empty segment (/admin/apps/{appKey}/schemas).
func isPatternRoute(routePath string) bool { return strings.Contains(routePath, "/{") }

// patternMatches reports whether path matches a pattern route's Path.
func patternMatches(pattern, path string) bool {
	for {
		pseg, prest, pmore := strings.Cut(strings.TrimPrefix(pattern, "/"), "/")
		seg, rest, more := strings.Cut(strings.TrimPrefix(path, "/"), "/")
		if pmore != more || !strings.HasPrefix(pattern, "/") || !strings.HasPrefix(path, "/") {
			return false
		}
		if strings.HasPrefix(pseg, "{") {
			if seg == "" {
				return false
			}
		} else if pseg != seg {
			return false
		}
		if !more {
			return true
		}
		pattern, path = "/"+prest, "/"+rest
	}
}

// pathMatches reports whether a route's Path matches path.
func pathMatches(route, path string) bool {
	if route == path || (slashTolerant[route] && path == route+"/") {
		return true
	}
	if isPatternRoute(route) {
		return patternMatches(route, path)
	}
	rest, ok := strings.CutPrefix(path, route)
	return ok && isPrefixRoute(route) && rest != "" && !strings.Contains(rest, "/")
}

// authenticate applies the route's Access rule.
func (s *Server) authenticate(ctx *fasthttp.RequestCtx, r *Route) error {
	if r.Access == Public {
		return nil
	}
	secret, present, err := auth.Credential(ctx.Request.Header.Peek("Authorization"))
	if err != nil {
		return err
	}
	if !present {
		if r.Access == AppKey || r.Access == WriteKey {
			return nil
		}
		return fmt.Errorf("%w: this endpoint needs a token with %s scope (Authorization: Bearer <token>)", auth.ErrUnauthenticated, r.Scope)
	}
	if r.Access == WriteKey {
		if _, ok := s.reg.App(string(secret)); ok {
			return nil // an appKey as write key: the handler resolves the app
		}
	}
	tok, err := s.reg.Authenticate(secret)
	if err != nil {
		return err
	}
	if tok.Scopes&r.Scope != r.Scope {
		return fmt.Errorf("%w: token %q does not have %s scope", auth.ErrForbidden, tok.Name, r.Scope)
	}
	auth.WithToken(ctx, tok)
	return nil
}

// crossOrigin reports whether web pages of other origins may call r (CORS,
// SPEC section 3): the ingest routes, the Events API and the SDK-compatible
// endpoints, whose credential is the app's public appKey. Export, profile,
// admin and console routes answer no cross-origin request: a page elsewhere
// must not read what a browser's credentials can, nor make it act.
func crossOrigin(r *Route) bool { return r.Access == AppKey || r.Access == WriteKey }

// methodsOf returns the methods of the routes that match path, and whether
// any of them is crossOrigin.
func (s *Server) methodsOf(path []byte) (methods []string, cors bool) {
	p := string(path)
	for i := range s.routes {
		if pathMatches(s.routes[i].Path, p) {
			methods = append(methods, s.routes[i].Method)
			cors = cors || crossOrigin(&s.routes[i])
		}
	}
	return methods, cors
}

// crossSite reports whether a request that may change something (any
// method but GET, HEAD and OPTIONS) was sent by a browser from a page of
// another origin, as net/http's CrossOriginProtection judges it: by
// Sec-Fetch-Site, which every current browser sends, else by an Origin
// whose host is not the request's Host. Clients that are not browsers send
// neither and are not affected. Without CORS headers such a request's
// answer is hidden from the page, but a simple one (a form post) would
// still act; refusing it keeps credentials a browser holds for Trove from
// being used by another site.
func crossSite(ctx *fasthttp.RequestCtx) bool {
	switch string(ctx.Method()) {
	case "GET", "HEAD", "OPTIONS":
		return false
	}
	if site := ctx.Request.Header.Peek("Sec-Fetch-Site"); len(site) > 0 {
		return string(site) != "same-origin" && string(site) != "none"
	}
	origin := ctx.Request.Header.Peek("Origin")
	if len(origin) == 0 {
		return false
	}
	u, err := url.Parse(string(origin))
	if err != nil || u.Host == "" {
		return true // "null": a sandboxed page or a file
	}
	return !strings.EqualFold(u.Host, string(ctx.Host()))
}

func (s *Server) allowedOrigin(origin []byte) string {
	for _, o := range s.cfg.CORSOrigins {
		if o == "*" || strings.EqualFold(o, string(origin)) {
			return string(origin)
		}
	}
	return ""
}

// cors sets the CORS headers of an answer on an ingest path to a request
// from an allowed origin, and reports whether it did. It never sends
// Access-Control-Allow-Credentials: a browser then sends no cookies or
// stored HTTP credentials, and a page reads the answer only to what it
// sent itself (an appKey, or a token it holds).
func (s *Server) cors(ctx *fasthttp.RequestCtx) bool {
	origin := ctx.Request.Header.Peek("Origin")
	if len(origin) == 0 {
		return false
	}
	h := &ctx.Response.Header
	h.Add("Vary", "Origin")
	allowed := s.allowedOrigin(origin)
	if allowed == "" {
		return false
	}
	h.Set("Access-Control-Allow-Origin", allowed)
	h.Set("Access-Control-Expose-Headers", "Retry-After, "+HeaderRequestID)
	return true
}

// options answers OPTIONS on path: 204 with the methods its routes take
// in Allow, and on an ingest path a CORS preflight answer when the origin
// is allowed. Elsewhere a preflight gets no Access-Control-* header,
// and so the browser sends nothing.
func (s *Server) options(ctx *fasthttp.RequestCtx, path []byte) {
	methods, cors := s.methodsOf(path)
	if len(methods) == 0 {
		writeError(ctx, s.log, fmt.Errorf("%w: no route for OPTIONS %s", ErrNotFound, path))
		return
	}
	h := &ctx.Response.Header
	allow := strings.Join(append(methods, "OPTIONS"), ", ")
	h.Set("Allow", allow)
	if cors && s.cors(ctx) {
		h.Set("Access-Control-Allow-Methods", allow)
		h.Set("Access-Control-Allow-Headers", "Content-Type, Content-Encoding, Authorization, "+HeaderRequestID)
		h.Set("Access-Control-Max-Age", "86400")
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	f.l.Debug(fmt.Sprintf(format, args...), "component", "fasthttp")
}
