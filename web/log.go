package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"trove/auth"
	"trove/obs"
)

// HeaderRequestID is the header that carries a request's id, both ways: a
// sane id sent by the client (or a proxy) is kept, else one is made, and
// the response echoes it. Each request's log line names it.
const HeaderRequestID = "X-Request-Id"

// maxRequestIDLen bounds an id taken from a request.
const maxRequestIDLen = 64

// routeKey is the user value under which serve leaves the matched *Route.
type routeKey struct{}

// errKey is the user value under which writeError leaves the error it
// answered with.
type errKey struct{}

// handle is the server's fasthttp handler. It gives the request its id,
// serves it, and records it (one log line, the HTTP series) once it is
// over: now, or for a streamed body, when the stream ends.
func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	id := requestID(ctx.Request.Header.Peek(HeaderRequestID))
	ctx.Response.Header.Set(HeaderRequestID, id)
	s.serve(ctx)
	if s.draining.Load() {
		// fasthttp says so only until its Shutdown returns; the
		// connections still open must end with their answers.
		ctx.Response.SetConnectionClose()
	}

	rec := s.newRecord(ctx, id)
	if bs := ctx.Response.BodyStream(); bs != nil {
		// fasthttp writes the body after this returns; bodies that can say
		// when they end (exports, streams) are recorded then, with their
		// size and full duration. The record holds no reference to ctx.
		if d, ok := bs.(interface{ OnDone(func(int64, error)) }); ok {
			d.OnDone(rec.done)
			return
		}
		rec.done(-1 /* unknown */, nil)
		return
	}
	rec.done(int64(len(ctx.Response.Body())), nil)
}

// record is what a request's log line and series need, copied out of the
// RequestCtx, which may be reused before a streamed body ends.
type record struct {
	s       *Server
	start   time.Time
	id      string
	method  string
	route   string // the route's pattern; "" when none matched
	path    string // the raw path, only when no route matched
	query   string // with secrets redacted
	status  int
	bytesIn int
	ip      string
	token   *auth.Token
	err     error // the answer's error, for statuses under 500
	level   slog.Level
	logged  bool // whether level is enabled
	series  *obs.RouteMetrics
}

func (s *Server) newRecord(ctx *fasthttp.RequestCtx, id string) *record {
	r, _ := ctx.UserValue(routeKey{}).(*Route)
	m := s.metricsOf(r, ctx.Method(), ctx.Path())
	rec := &record{
		s:       s,
		start:   ctx.Time(),
		id:      id,
		status:  ctx.Response.StatusCode(),
		bytesIn: ctx.Request.Header.ContentLength(),
		token:   auth.TokenOf(ctx),
		level:   slog.LevelInfo,
		series:  m,
	}
	if r != nil {
		rec.method, rec.route = r.Method, r.Path
		switch r.Path {
		case "/healthz", "/readyz", "/metrics":
			// Probes and scrapes come every few seconds.
			rec.level = slog.LevelDebug
		}
	} else {
		rec.method, rec.path = string(ctx.Method()), string(ctx.Path())
	}
	if rec.status >= 500 {
		rec.level = max(rec.level, slog.LevelWarn)
	}
	// writeError logs the error of a 500 itself, with its details; the
	// line does not repeat it.
	if err, ok := ctx.UserValue(errKey{}).(error); ok && rec.status != fasthttp.StatusInternalServerError {
		rec.err = err
	}
	if rec.logged = s.log.Enabled(context.Background(), rec.level); !rec.logged {
		return rec // the rest is for the log line
	}
	rec.ip = ctx.RemoteIP().String()
	if q := ctx.URI().QueryString(); len(q) > 0 {
		rec.query = redactQuery(ctx.QueryArgs())
	}
	return rec
}

// done records the request: its series, and its log line unless the level
// is off. bytesOut is the response body's size (-1: unknown); err, set for
// a streamed body, is why it was broken off.
func (rec *record) done(bytesOut int64, err error) {
	d := time.Since(rec.start)
	rec.series.Request(rec.status)
	rec.series.Duration.Update(d.Seconds())
	if !rec.logged && err == nil {
		return
	}
	level := rec.level
	if err != nil {
		// The client saw a truncated body: worth a warning, logged here
		// and only here.
		level = max(level, slog.LevelWarn)
		rec.err = err
	}
	attrs := make([]slog.Attr, 0, 14)
	attrs = append(attrs,
		slog.String("request_id", rec.id),
		slog.String("method", rec.method),
		slog.String("route", rec.route),
	)
	if rec.path != "" {
		attrs = append(attrs, slog.String("path", rec.path))
	}
	if rec.query != "" {
		attrs = append(attrs, slog.String("query", rec.query))
	}
	attrs = append(attrs,
		slog.Int("status", rec.status),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000),
	)
	if rec.bytesIn >= 0 {
		attrs = append(attrs, slog.Int("bytes_in", rec.bytesIn))
	}
	if bytesOut >= 0 {
		attrs = append(attrs, slog.Int64("bytes_out", bytesOut))
	}
	if rec.ip != "" {
		attrs = append(attrs, slog.String("remote_ip", rec.ip))
	}
	if rec.token != nil {
		attrs = append(attrs, slog.String("token_id", rec.token.ID), slog.String("token", rec.token.Name))
	}
	if rec.err != nil {
		attrs = append(attrs, slog.String("err", rec.err.Error()))
	}
	rec.s.log.LogAttrs(context.Background(), level, "request", attrs...)
}

// requestID returns the client's id when it is a sane token: 1 to 64
// letters, digits and -_.:=+/@, so that it is safe to log and to echo.
// Otherwise it makes one.
func requestID(sent []byte) string {
	if len(sent) == 0 || len(sent) > maxRequestIDLen {
		return newRequestID()
	}
	for _, c := range sent {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-_.:=+/@", c) >= 0:
		default:
			return newRequestID()
		}
	}
	return string(sent)
}

// requestIDPrefix makes ids unique across restarts and instances, and a
// counter makes them unique within the process, at the cost of an atomic
// add rather than a read of random bytes per request.
var (
	requestIDPrefix = func() string {
		var b [6]byte
		rand.Read(b[:])
		return hex.EncodeToString(b[:])
	}()
	requestIDSeq atomic.Uint64
)

func newRequestID() string {
	var buf [32]byte
	b := append(buf[:0], requestIDPrefix...)
	b = append(b, '-')
	b = strconv.AppendUint(b, requestIDSeq.Add(1), 36)
	return string(b)
}

// redactQuery returns the query with the value of every parameter whose
// name suggests a credential (token, secret, password, key other than
// appKey, auth) replaced by REDACTED.
func redactQuery(args *fasthttp.Args) string {
	var b []byte
	args.VisitAll(func(k, v []byte) {
		if len(b) > 0 {
			b = append(b, '&')
		}
		b = fasthttp.AppendQuotedArg(b, k)
		b = append(b, '=')
		if sensitiveParam(k) {
			b = append(b, "REDACTED"...)
		} else {
			b = fasthttp.AppendQuotedArg(b, v)
		}
	})
	return string(b)
}

func sensitiveParam(name []byte) bool {
	n := strings.ToLower(string(name))
	if n == "appkey" {
		return false // public, as events carry it
	}
	for _, s := range [...]string{"token", "secret", "password", "passwd", "auth", "key", "sig", "credential"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}
