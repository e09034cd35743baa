package export

import (
	"bufio"
	"bytes"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"trove/apierr"
	"trove/storage"
)

// eventQuery is a parsed GET /v1/export/events request.
type eventQuery struct {
	app string
	// from and to are the eventTime range [from, to) in Unix µs, floored as
	// eventTimes are (storage.Writer.AddEvent), so that the range is exact
	// to the µs; timed says whether either was given.
	from, to     int64
	timed        bool
	since, until uint64
	seqRange     bool
	limit        uint64
	events       map[string]bool // event names; nil for all
	userID       string          // "" for all
	download     bool
	parquet      bool // format=parquet
}

var eventParams = map[string]bool{
	"appKey": true, "from": true, "to": true, "event": true, "userId": true,
	"since": true, "until": true, "limit": true, "download": true, "format": true,
}

// parseTime takes RFC 3339 (any offset, fractional seconds to the ns) or
// YYYY-MM-DD (midnight UTC).
func parseTime(name, v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", v); err == nil {
		return t, nil
	}
	return time.Time{}, apierr.New(apierr.Invalid, name, name+" must be an RFC 3339 time (2026-11-01T00:00:00Z) or a date (2026-11-01), got "+strconv.Quote(v))
}

// checkParams refuses a parameter not in known, and one given twice: only
// the first would be read, and the sender may have meant the other.
func checkParams(args *fasthttp.Args, known map[string]bool, use string) error {
	var err error
	args.VisitAll(func(k, _ []byte) {
		switch {
		case err != nil:
		case !known[string(k)]:
			err = apierr.New(apierr.Invalid, string(k), "unknown parameter "+strconv.Quote(string(k))+": use "+use)
		case len(args.PeekMulti(string(k))) > 1:
			msg := string(k) + " is given twice: give it once"
			if string(k) == "event" {
				msg += ", with the names comma-separated (event=a,b)"
			}
			err = apierr.New(apierr.Invalid, string(k), msg)
		}
	})
	return err
}

// parseEventQuery validates every parameter before any byte is sent.
func parseEventQuery(args *fasthttp.Args) (*eventQuery, error) {
	q := &eventQuery{until: math.MaxUint64, limit: math.MaxUint64, from: math.MinInt64, to: math.MaxInt64}
	if err := checkParams(args, eventParams, "appKey, from, to, event, userId, since, until, limit, download or format"); err != nil {
		return nil, err
	}
	q.app = string(args.Peek("appKey"))
	if q.app == "" {
		return nil, apierr.New(apierr.Invalid, "appKey", "appKey is required")
	}
	if v := args.Peek("from"); len(v) > 0 {
		t, err := parseTime("from", string(v))
		if err != nil {
			return nil, err
		}
		q.from, q.timed = t.UnixMicro(), true
	}
	if v := args.Peek("to"); len(v) > 0 {
		t, err := parseTime("to", string(v))
		if err != nil {
			return nil, err
		}
		q.to, q.timed = t.UnixMicro(), true
	}
	if q.from >= q.to {
		return nil, apierr.New(apierr.Invalid, "to", "to must be after from: the range is [from, to)")
	}
	for _, p := range []struct {
		name string
		dst  *uint64
	}{{"since", &q.since}, {"until", &q.until}, {"limit", &q.limit}} {
		v := args.Peek(p.name)
		if len(v) == 0 {
			continue
		}
		n, err := strconv.ParseUint(string(v), 10, 64)
		if err != nil {
			return nil, apierr.New(apierr.Invalid, p.name, p.name+" must be a non-negative integer, got "+strconv.Quote(string(v)))
		}
		*p.dst = n
		if p.name != "limit" {
			q.seqRange = true
		}
	}
	if q.limit == 0 {
		return nil, apierr.New(apierr.Invalid, "limit", "limit must be at least 1")
	}
	if q.since >= q.until {
		return nil, apierr.New(apierr.Invalid, "until", "until must be above since: the range is (since, until]")
	}
	if v := args.Peek("event"); len(v) > 0 {
		q.events = map[string]bool{}
		for _, name := range strings.Split(string(v), ",") {
			if name = strings.TrimSpace(name); name != "" {
				q.events[name] = true
			}
		}
	}
	q.userID = string(args.Peek("userId"))
	switch d := string(args.Peek("download")); d {
	case "", "0", "false":
	case "1", "true":
		q.download = true
	default:
		return nil, apierr.New(apierr.Invalid, "download", "download must be 1 or 0")
	}
	switch f := string(args.Peek("format")); f {
	case "", "ndjson":
	case "parquet":
		q.parquet = true
	default:
		return nil, apierr.New(apierr.Invalid, "format", "format must be ndjson (the default) or parquet, got "+strconv.Quote(f))
	}
	return q, nil
}

// filter returns the storage filter for q and the app's deleted users,
// or nil when every event is kept.
func (q *eventQuery) filter(deleted map[string]uint64) *storage.Filter {
	if q.events == nil && q.userID == "" && len(deleted) == 0 {
		return nil
	}
	return &storage.Filter{Events: q.events, UserID: q.userID, HasUserID: q.userID != "", Exclude: deleted}
}

// Events serves GET /v1/export/events: the app's events as NDJSON, in
// eventTime order when from or to is given (and since/until are not), else
// in ingest order.
func (h *Handler) Events(ctx *fasthttp.RequestCtx) error {
	q, err := parseEventQuery(ctx.QueryArgs())
	if err != nil {
		return err
	}
	if err := h.authorize(ctx, q.app); err != nil {
		return err
	}
	id, err := h.db.App(q.app)
	if errors.Is(err, storage.ErrUnknownApp) {
		id = 0 // declared but nothing stored yet: an empty export
	} else if err != nil {
		return err
	}
	if q.seqRange {
		if err := h.checkSince(q.since); err != nil {
			return err
		}
	}
	snap, err := h.db.NewSnapshot()
	if err != nil {
		return err
	}
	if q.parquet {
		if q.download {
			ctx.Response.Header.Set("Content-Disposition", `attachment; filename="`+q.filename("parquet")+`"`)
		}
		h.streamParquet(ctx, snap, func(fn func(seq uint64, body []byte) error) error {
			return q.scan(h.db, snap, id, fn)
		})
		return nil
	}
	if q.download {
		ctx.Response.Header.Set("Content-Disposition", `attachment; filename="`+q.filename(negotiateEncoding(ctx))+`"`)
	}
	h.stream(ctx, eventsOut, snap, func(w *bufio.Writer) error {
		return q.scan(h.db, snap, id, func(_ uint64, body []byte) error {
			w.Write(body)
			return w.WriteByte('\n')
		})
	})
	return nil
}

// scan calls fn for each event q selects from app id in snap, in its
// order, up to its limit. body is borrowed: valid only until fn returns.
func (q *eventQuery) scan(db *storage.DB, snap *storage.Snapshot, id uint32, fn func(seq uint64, body []byte) error) error {
	if id == 0 {
		return nil
	}
	n := uint64(0)
	// Names, user and deleted users are judged by the store from its
	// columns, without decoding the events' JSON.
	f := q.filter(db.Forgotten(id))
	emit := func(seq uint64, t int64, body []byte) error {
		if t < q.from || t >= q.to {
			return nil
		}
		if n == q.limit {
			return errLimit
		}
		n++
		return fn(seq, body)
	}
	if q.timed && !q.seqRange {
		return snap.EventsByTimeWhere(id, q.from, q.to, f, emit)
	}
	return snap.EventsBySeqWhere(id, q.since, q.until, f, emit)
}

// fileTime is how a download's name gives a bound: basic ISO 8601 in UTC,
// with a fraction only when the bound has one.
const fileTime = "20060102T150405.999999Z"

// filename names a download after the app, the range and the compression.
func (q *eventQuery) filename(encoding string) string {
	var b bytes.Buffer
	b.WriteString("trove-")
	for _, r := range q.app {
		if r == '-' || r == '_' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') {
			b.WriteRune(r)
		}
	}
	b.WriteString("-events")
	if q.timed {
		if q.from != math.MinInt64 {
			b.WriteString("-from-" + time.UnixMicro(q.from).UTC().Format(fileTime))
		}
		if q.to != math.MaxInt64 {
			b.WriteString("-to-" + time.UnixMicro(q.to).UTC().Format(fileTime))
		}
	}
	if q.seqRange {
		b.WriteString("-since-" + strconv.FormatUint(q.since, 10))
	}
	if encoding == "parquet" {
		b.WriteString(".parquet")
		return b.String()
	}
	b.WriteString(".ndjson")
	switch encoding {
	case "zstd":
		b.WriteString(".zst")
	case "gzip":
		b.WriteString(".gz")
	}
	return b.String()
}
