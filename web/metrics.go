package web

import (
	"github.com/valyala/fasthttp"

	"trove/obs"
)

// metrics serves GET /metrics: the process-wide series (Trove's counters
// and histograms, Go's, the process's), then the server's own (its store's
// figures, read now), in the Prometheus text format, written straight into
// the response.
func (s *Server) metrics(ctx *fasthttp.RequestCtx) error {
	ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	obs.WritePrometheus(ctx)
	if s.cfg.Metrics != nil {
		s.cfg.Metrics(ctx)
	}
	return nil
}

// initRouteMetrics looks up the series of every route once, so that a
// request only indexes a map.
func (s *Server) initRouteMetrics() {
	s.routeMetrics = make(map[*Route]*obs.RouteMetrics, len(s.routes))
	for i := range s.routes {
		r := &s.routes[i]
		s.routeMetrics[r] = obs.Route(r.Method, r.Path)
	}
}

// otherRoute is the route label of requests that match no route's path.
const otherRoute = "other"

// metricsOf returns the series a request counts in: its route's when it
// matched one; else, for a path in the route table (a preflight, a wrong
// method), that path's; else the "other" route's. Labels never hold a raw
// path or an arbitrary method.
func (s *Server) metricsOf(r *Route, method, path []byte) *obs.RouteMetrics {
	if r != nil {
		if m := s.routeMetrics[r]; m != nil {
			return m
		}
		return obs.Route(r.Method, r.Path)
	}
	route, p := otherRoute, string(path)
	for i := range s.routes {
		if pathMatches(s.routes[i].Path, p) {
			route = s.routes[i].Path
			break
		}
	}
	return obs.Route(methodLabel(method), route)
}

// methodLabel returns method when it is a standard one, else "other".
func methodLabel(method []byte) string {
	for _, m := range [...]string{"GET", "POST", "DELETE", "OPTIONS", "HEAD", "PUT", "PATCH"} {
		if string(method) == m {
			return m
		}
	}
	return "other"
}
