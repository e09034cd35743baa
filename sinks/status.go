package sinks

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Status is what GET /admin/sinks answers.
type Status struct {
	// StoreWatermark is the store's watermark when the status was taken.
	StoreWatermark uint64       `json:"storeWatermark"`
	Sinks          []SinkStatus `json:"sinks"`
}

// SinkStatus is one sink's configuration (no secrets) and its apps.
type SinkStatus struct {
	Name      string      `json:"name"`
	Kind      string      `json:"kind"`
	Endpoint  string      `json:"endpoint"`
	Bucket    string      `json:"bucket"`
	Prefix    string      `json:"prefix"`
	Format    string      `json:"format"`
	Every     string      `json:"every"`
	MaxEvents int         `json:"maxEvents"`
	Apps      []AppStatus `json:"apps"`
}

// AppStatus is a sink's progress for one app.
type AppStatus struct {
	AppKey string `json:"appKey"`
	// Watermark is the sequence at or below which every event of the app
	// is in a file.
	Watermark uint64 `json:"watermark"`
	// LagEvents are the app's events stored after Watermark (as last
	// counted), and LagSeconds the age of the oldest of them.
	LagEvents   int64   `json:"lagEvents"`
	LagSeconds  float64 `json:"lagSeconds"`
	Files       int64   `json:"files"`
	Bytes       int64   `json:"bytes"`
	LastFile    string  `json:"lastFile,omitempty"`
	LastFileAt  string  `json:"lastFileAt,omitempty"`
	PendingTo   uint64  `json:"pendingTo,omitempty"`
	Errors      int64   `json:"errors"`
	LastError   string  `json:"lastError,omitempty"`
	LastErrorAt string  `json:"lastErrorAt,omitempty"`
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// Status returns every sink's state.
func (m *Manager) Status() Status {
	wm, _ := m.db.Watermark()
	st := Status{StoreWatermark: wm, Sinks: []SinkStatus{}}
	for _, s := range m.sinks {
		ss := SinkStatus{Name: s.cfg.Name, Kind: s.cfg.Kind, Endpoint: s.cfg.Endpoint, Bucket: s.cfg.Bucket, Prefix: s.cfg.Prefix,
			Format: s.cfg.Format, Every: s.cfg.Every.Std().String(), MaxEvents: s.cfg.MaxEvents, Apps: []AppStatus{}}
		now := s.now()
		for _, a := range s.appStates() {
			a.mu.Lock()
			as := AppStatus{AppKey: a.key, Watermark: a.mu.p.Done, LagEvents: a.mu.lagEvents, Files: a.mu.p.Files, Bytes: a.mu.p.Bytes,
				LastFile: a.mu.p.LastFile, LastFileAt: formatTime(a.mu.lastFileAt), Errors: a.mu.errors,
				LastError: a.mu.lastError, LastErrorAt: formatTime(a.mu.lastErrorAt)}
			if !a.mu.oldest.IsZero() && a.mu.lagEvents > 0 {
				as.LagSeconds = max(now.Sub(a.mu.oldest).Seconds(), 0)
			}
			if a.mu.p.Pending != nil {
				as.PendingTo = a.mu.p.Pending.To
			}
			a.mu.Unlock()
			ss.Apps = append(ss.Apps, as)
		}
		st.Sinks = append(st.Sinks, ss)
	}
	return st
}

// WriteMetrics writes the sinks' series in the Prometheus text format, each
// family with its HELP and TYPE lines (the HELP text is obs's to fill).
func (m *Manager) WriteMetrics(w io.Writer) {
	st := m.Status()
	type series struct {
		name, typ string
		value     func(a *AppStatus) float64
	}
	families := []series{
		{"trove_sink_watermark", "gauge", func(a *AppStatus) float64 { return float64(a.Watermark) }},
		{"trove_sink_lag_events", "gauge", func(a *AppStatus) float64 { return float64(a.LagEvents) }},
		{"trove_sink_lag_seconds", "gauge", func(a *AppStatus) float64 { return a.LagSeconds }},
		{"trove_sink_files_total", "counter", func(a *AppStatus) float64 { return float64(a.Files) }},
		{"trove_sink_bytes_total", "counter", func(a *AppStatus) float64 { return float64(a.Bytes) }},
		{"trove_sink_errors_total", "counter", func(a *AppStatus) float64 { return float64(a.Errors) }},
		{"trove_sink_last_error_timestamp_seconds", "gauge", func(a *AppStatus) float64 {
			if t, err := time.Parse(time.RFC3339Nano, a.LastErrorAt); err == nil {
				return float64(t.UnixMilli()) / 1000
			}
			return 0
		}},
	}
	var b bytes.Buffer
	for _, f := range families {
		fmt.Fprintf(&b, "# HELP %s\n# TYPE %s %s\n", f.name, f.name, f.typ)
		for _, s := range st.Sinks {
			for i := range s.Apps {
				a := &s.Apps[i]
				fmt.Fprintf(&b, "%s{sink=%s,app=%s} %s\n", f.name, label(s.Name), label(a.AppKey), strconv.FormatFloat(f.value(a), 'g', -1, 64))
			}
		}
	}
	w.Write(b.Bytes())
}

func label(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}
