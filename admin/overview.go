package admin

import (
	"slices"

	"github.com/valyala/fasthttp"

	"trove/storage"
)

// Overview is the answer of GET /admin/overview: what the web console's
// overview page shows.
type Overview struct {
	// ComputedAt says how fresh the figures are: they are computed at
	// most once per storage.OverviewTTL.
	ComputedAt string `json:"computedAt"`
	// Start is the first hour of every app's hourly counts; Hours is how
	// many there are (the last one is the current hour).
	Start          string        `json:"start"`
	Hours          int           `json:"hours"`
	Watermark      uint64        `json:"watermark"`
	DiskUsageBytes uint64        `json:"diskUsageBytes"`
	Apps           []AppOverview `json:"apps"`
}

// AppOverview is one app's figures.
type AppOverview struct {
	Name       string  `json:"name"`
	AppKey     string  `json:"appKey"`
	Total      int64   `json:"total"`
	Today      int64   `json:"today"`
	Rejected   int64   `json:"rejected"`
	RatePerSec float64 `json:"ratePerSec"`
	RawBytes   int64   `json:"rawBytes"`
	Hourly     []int64 `json:"hourly"`
}

// Overview serves GET /admin/overview: per app, events in total and
// today (UTC, by eventTime), events per eventTime hour for the last 7 days,
// the ingest rate, the rejected events; and the store's size on disk.
func (h *Handler) Overview(ctx *fasthttp.RequestCtx) error {
	ov, err := h.db.Overview(h.now())
	if err != nil {
		return err
	}
	out := Overview{
		ComputedAt:     formatTime(ov.ComputedAt),
		Start:          formatTime(ov.Start),
		Hours:          storage.OverviewHours,
		Watermark:      ov.Watermark,
		DiskUsageBytes: ov.DiskUsageBytes,
		Apps:           []AppOverview{},
	}
	if h.dataDir != "" {
		n, err := h.dataDirUsage()
		if err != nil {
			return err
		}
		out.DiskUsageBytes = n
	}
	listed := map[string]bool{}
	add := func(name, key string) {
		listed[key] = true
		a, ok := ov.Apps[key]
		if !ok {
			a.Hourly = make([]int64, storage.OverviewHours)
		}
		out.Apps = append(out.Apps, AppOverview{Name: name, AppKey: key, Total: a.Total, Today: a.Today, Rejected: a.Rejected,
			RatePerSec: a.RatePerSec, RawBytes: a.RawBytes, Hourly: a.Hourly})
	}
	for _, a := range h.reg.Apps() {
		add(a.Name, a.AppKey)
	}
	// Apps with stored events that no longer have a declaration.
	var rest []string
	for k := range ov.Apps {
		if !listed[k] {
			rest = append(rest, k)
		}
	}
	slices.Sort(rest)
	for _, k := range rest {
		add("", k)
	}
	return writeJSON(ctx, fasthttp.StatusOK, out)
}

// dataDirUsage returns the data directory's size on disk, walking it at
// most once per storage.OverviewTTL whatever the number of open consoles.
func (h *Handler) dataDirUsage() (uint64, error) {
	c := &h.du
	c.mu.Lock()
	defer c.mu.Unlock()
	now := h.now()
	if !c.mu.at.IsZero() && now.Sub(c.mu.at) < storage.OverviewTTL && now.Sub(c.mu.at) >= 0 {
		return c.mu.bytes, nil
	}
	n, err := storage.DirUsage(h.dataDir)
	if err != nil {
		return 0, err
	}
	c.mu.at, c.mu.bytes = now, n
	return n, nil
}
