package obs

import (
	"bytes"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
)

// set holds every series of Trove's own; it is registered, so that
// metrics.WritePrometheus writes it.
var set = metrics.NewSet()

func init() {
	metrics.RegisterSet(set)
	// HELP and TYPE lines for every family (the library writes the TYPE and
	// an empty HELP; expose fills the HELP in), without which a stock
	// Prometheus stores every series as untyped.
	metrics.ExposeMetadata(true)
}

// WritePrometheus writes the process-wide series (Trove's, Go's, the
// process's) to w in the Prometheus text format, each family with its HELP
// and TYPE lines.
func WritePrometheus(w io.Writer) {
	var b bytes.Buffer
	metrics.WritePrometheus(&b, true /* exposeProcessMetrics */)
	w.Write(expose(make([]byte, 0, b.Len()+b.Len()/4), b.Bytes()))
}

// LatencyBuckets are the upper bounds, in seconds, of the latency
// histograms' le buckets: from a cached 404 (well under a millisecond) to a
// long export, where +Inf takes the rest.
var LatencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 120}

// SetBuildInfo publishes trove_build_info{version=…,goversion=…} 1.
func SetBuildInfo(version string) {
	set.GetOrCreateGauge(`trove_build_info{version=`+quote(version)+`,goversion=`+quote(runtime.Version())+`}`,
		func() float64 { return 1 })
}

// AppCounters are the per-app counters, labelled app="<appKey>".
type AppCounters struct {
	// EventsAccepted, EventsDuplicate and EventsRejected count the events
	// of stored requests as the Events API answered them: stored,
	// acknowledged as already stored, and refused (kept in the quarantine).
	EventsAccepted  *metrics.Counter
	EventsDuplicate *metrics.Counter
	EventsRejected  *metrics.Counter
	// EventsSuppressed counts the events refused because their userId was
	// deleted with suppress=1: answered, neither stored nor quarantined.
	EventsSuppressed *metrics.Counter
	// ProfileUpdates counts the profile objects applied by the User
	// Profiles API (idempotent replays excluded).
	ProfileUpdates *metrics.Counter
}

var apps = family[AppCounters]{make: func(app string) *AppCounters {
	l := `{app=` + quote(app) + `}`
	return &AppCounters{
		EventsAccepted:   set.GetOrCreateCounter("trove_events_accepted_total" + l),
		EventsDuplicate:  set.GetOrCreateCounter("trove_events_duplicate_total" + l),
		EventsRejected:   set.GetOrCreateCounter("trove_events_rejected_total" + l),
		EventsSuppressed: set.GetOrCreateCounter("trove_events_suppressed_total" + l),
		ProfileUpdates:   set.GetOrCreateCounter("trove_profile_updates_total" + l),
	}
}}

// App returns the counters of the app with key appKey. Callers pass only
// keys that credentials were checked against (or "", for events that name
// no usable app), which bounds the series.
func App(appKey string) *AppCounters { return apps.get(appKey) }

// SchemaCounters count the events checked against one app's contract for
// one event name, labelled app="<appKey>",event="<name>". Only names that
// have a contract get series, which bounds them.
type SchemaCounters struct {
	// Checked counts the events checked (validate=1 requests not counted).
	Checked *metrics.Counter
	// Warned and Rejected count the violations, stored with a warning
	// (schema_mode "warn") or refused (schema_mode "reject").
	Warned, Rejected *metrics.Counter
}

var schemas = family[SchemaCounters]{make: func(key string) *SchemaCounters {
	app, event, _ := strings.Cut(key, "\x00")
	l := `{app=` + quote(app) + `,event=` + quote(event)
	return &SchemaCounters{
		Checked:  set.GetOrCreateCounter("trove_schema_checked_total" + l + `}`),
		Warned:   set.GetOrCreateCounter("trove_schema_violations_total" + l + `,action="warn"}`),
		Rejected: set.GetOrCreateCounter("trove_schema_violations_total" + l + `,action="reject"}`),
	}
}}

// Schema returns the counters of appKey's contract for event.
func Schema(appKey, event string) *SchemaCounters { return schemas.get(appKey + "\x00" + event) }

// UnknownCounters count one app's events that have no contract, when its
// schema_unknown is "warn" or "reject".
type UnknownCounters struct {
	Warned, Rejected *metrics.Counter
}

var unknowns = family[UnknownCounters]{make: func(app string) *UnknownCounters {
	l := `{app=` + quote(app)
	return &UnknownCounters{
		Warned:   set.GetOrCreateCounter("trove_schema_unknown_events_total" + l + `,action="warn"}`),
		Rejected: set.GetOrCreateCounter("trove_schema_unknown_events_total" + l + `,action="reject"}`),
	}
}}

// SchemaUnknown returns the counters of appKey's events without a contract.
func SchemaUnknown(appKey string) *UnknownCounters { return unknowns.get(appKey) }

// ExportCounters count what an export kind sent.
type ExportCounters struct {
	// Bytes counts the response body bytes written to clients (after
	// compression, when negotiated).
	Bytes *metrics.Counter
	// Lines counts the NDJSON lines sent (stream heartbeats excluded).
	Lines *metrics.Counter
}

// Export kinds, the values of the kind label.
const (
	KindEvents   = "events"
	KindProfiles = "profiles"
	KindRejected = "rejected"
	KindStream   = "stream"
)

var exports = family[ExportCounters]{make: func(kind string) *ExportCounters {
	l := `{kind=` + quote(kind) + `}`
	return &ExportCounters{
		Bytes: set.GetOrCreateCounter("trove_export_bytes_total" + l),
		Lines: set.GetOrCreateCounter("trove_export_lines_total" + l),
	}
}}

// Export returns the counters of an export kind (KindEvents, …).
func Export(kind string) *ExportCounters { return exports.get(kind) }

// RouteMetrics are the HTTP series of one route.
type RouteMetrics struct {
	labels string // `method="GET",route="/v1/export/events"`
	// Duration is the latency from the request's arrival to the end of its
	// response (for streamed bodies, the end of the stream), in seconds, in
	// Prometheus le buckets (LatencyBuckets), so that histogram_quantile and
	// sums across routes and instances work.
	Duration *metrics.PrometheusHistogram
	// codes caches the request counter of each status code.
	codes [600]atomic.Pointer[metrics.Counter]
}

// Request counts one finished request with status code.
func (r *RouteMetrics) Request(code int) {
	if code < 0 || code >= len(r.codes) {
		code = 0
	}
	c := r.codes[code].Load()
	if c == nil {
		c = set.GetOrCreateCounter(`trove_http_requests_total{` + r.labels + `,code="` + strconv.Itoa(code) + `"}`)
		r.codes[code].Store(c)
	}
	c.Inc()
}

var routes = family[RouteMetrics]{make: func(key string) *RouteMetrics {
	method, route, _ := strings.Cut(key, " ")
	l := `method=` + quote(method) + `,route=` + quote(route)
	return &RouteMetrics{
		labels:   l,
		Duration: set.GetOrCreatePrometheusHistogramExt(`trove_http_request_duration_seconds{`+l+`}`, LatencyBuckets),
	}
}}

// Route returns the series of a route: method and route are the route
// table's (a pattern, never a raw path). Look a route up once and keep it.
func Route(method, route string) *RouteMetrics { return routes.get(method + " " + route) }

// family caches labelled metrics by label value.
type family[T any] struct {
	make func(label string) *T
	mu   sync.RWMutex
	m    map[string]*T
}

func (f *family[T]) get(label string) *T {
	f.mu.RLock()
	v := f.m[label]
	f.mu.RUnlock()
	if v != nil {
		return v
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if v = f.m[label]; v == nil {
		if f.m == nil {
			f.m = map[string]*T{}
		}
		v = f.make(label)
		f.m[label] = v
	}
	return v
}

// quote returns s as a Prometheus label value, quoted and escaped.
func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
