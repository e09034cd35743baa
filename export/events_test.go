package export_test

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/valyala/fasthttp"

	"trove/apierr"
	"trove/auth"
	"trove/export"
	"trove/storage"
)

// storeTimed stores one event per commit, with the given eventTimes, names
// and users, and returns the bodies in ingest order.
func storeTimed(t *testing.T, db *storage.DB, times []string, names, users []string) []string {
	t.Helper()
	id, err := db.EnsureApp(appA)
	if err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for i, ts := range times {
		tm, err := time.Parse(time.RFC3339, ts)
		if err != nil {
			t.Fatal(err)
		}
		b := `{"type":"event","event":"` + names[i] + `","userId":"` + users[i] + `","eventTime":"` + ts + `","appKey":"` + appA + `","n":` + strconv.Itoa(i) + `}`
		w := db.NewWriter(time.Now())
		seq, err := w.Alloc(1)
		if err != nil {
			t.Fatal(err)
		}
		w.AddEvent(id, seq, tm.UnixMicro(), []byte(b))
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		w.Close()
		bodies = append(bodies, b)
	}
	return bodies
}

// linesOf is the export of bodies[i] for each i of idx, in that order: a
// line each.
func linesOf(bodies []string, idx ...int) string {
	var sb strings.Builder
	for _, i := range idx {
		sb.WriteString(bodies[i] + "\n")
	}
	return sb.String()
}

// asWrittenAndMerged calls pass twice, the events of db once as written
// (version-1 blocks) and once merged (columnar version 2, whose filters
// read the columns); suffix, "" and then "/merged", is for the names of
// pass's subtests.
func asWrittenAndMerged(t *testing.T, db *storage.DB, pass func(suffix string)) {
	t.Helper()
	pass("")
	if n, err := db.MergeAll(); err != nil || n == 0 {
		t.Fatalf("MergeAll merged %d groups: %v", n, err)
	}
	pass("/merged")
}

// TestEventsQueryMicroseconds: eventTime order and [from, to) are exact to
// the microsecond, whatever the offsets of the events and of the bounds;
// digits below the µs are floored, in the events and the bounds alike.
func TestEventsQueryMicroseconds(t *testing.T) {
	db := openStore(t)
	// In ingest order; in time order (µs after 10:00:00Z): 3 (0), 2 (1),
	// 1 (100), 0 (500), 4 (999), 5 (1000).
	bodies := storeTimed(t, db,
		[]string{"2026-11-01T10:00:00.0005Z", "2026-11-01T10:00:00.0001Z", "2026-11-01T15:30:00.000001+05:30",
			"2026-11-01T10:00:00Z", "2026-11-01T02:00:00.0009999-08:00", "2026-11-01T10:00:00.001Z"},
		[]string{"e", "e", "e", "e", "e", "e"},
		[]string{"u", "u", "u", "u", "u", "u"})
	h := export.NewHandler(db, registry(), slog.New(slog.DiscardHandler))
	lines := func(idx ...int) string { return linesOf(bodies, idx...) }
	tests := []struct{ name, query, want string }{
		{name: "by eventTime", query: "&from=2026-11-01", want: lines(3, 2, 1, 0, 4, 5)},
		{name: "from a sub-ms bound", query: "&from=2026-11-01T10:00:00.0005Z", want: lines(0, 4, 5)},
		{name: "to a sub-ms bound is exclusive", query: "&from=2026-11-01T10:00:00.000001Z&to=2026-11-01T10:00:00.0005Z", want: lines(2, 1)},
		{name: "a bound with an offset", query: "&from=2026-11-01T15:30:00.0001%2B05:30&to=2026-11-01T02:00:00.001-08:00", want: lines(1, 0, 4)},
		{name: "one µs", query: "&from=2026-11-01T10:00:00.000999Z&to=2026-11-01T10:00:00.001Z", want: lines(4)},
		// .0000019 is 1 µs and .0001009 is 100 µs, as in the events: 1 in,
		// 100 out.
		{name: "sub-µs bounds floored", query: "&from=2026-11-01T10:00:00.0000019Z&to=2026-11-01T10:00:00.0001009Z", want: lines(2)},
		{name: "sub-µs bounds floored, one µs on", query: "&from=2026-11-01T10:00:00.0000019Z&to=2026-11-01T10:00:00.0001019Z", want: lines(2, 1)},
		{name: "the ms before 10:00", query: "&from=2026-11-01T09:59:59.999Z&to=2026-11-01T10:00:00Z", want: ""},
	}
	asWrittenAndMerged(t, db, func(suffix string) {
		for _, tc := range tests {
			t.Run(tc.name+suffix, func(t *testing.T) {
				got, _, err := call(t, h.Events, "/v1/export/events?appKey="+appA+tc.query, allToken)
				if err != nil {
					t.Fatal(err)
				}
				if got != tc.want {
					t.Errorf("got\n%s\nwant\n%s", got, tc.want)
				}
			})
		}
	})

	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI("/v1/export/events?appKey=" + appA + "&from=2026-11-01T15:30:00.0001%2B05:30&to=2026-11-02&download=1")
	authorizeCtx(&ctx)
	if err := h.Events(&ctx); err != nil {
		t.Fatal(err)
	}
	ctx.Response.CloseBodyStream()
	want := `attachment; filename="trove-` + appA + `-events-from-20261101T100000.0001Z-to-20261102T000000Z.ndjson"`
	if got := string(ctx.Response.Header.Peek("Content-Disposition")); got != want {
		t.Errorf("Content-Disposition %q; want %q", got, want)
	}
}

func TestEventsQuery(t *testing.T) {
	db := openStore(t)
	bodies := storeTimed(t, db,
		[]string{"2026-11-03T10:00:00Z", "2026-11-01T10:00:00Z", "2026-11-02T10:00:00Z", "2026-11-01T09:00:00Z", "2026-11-03T00:00:00Z"},
		[]string{"view", "buy", "view", "signup", "buy"},
		[]string{"ann", "bob", "bob", "ann", "cy"})
	h := export.NewHandler(db, registry(), slog.New(slog.DiscardHandler))
	lines := func(idx ...int) string { return linesOf(bodies, idx...) }
	tests := []struct {
		name, query, want string
		field             string // a 400 naming this parameter
	}{
		{name: "all in ingest order", query: "", want: lines(0, 1, 2, 3, 4)},
		{name: "from orders by eventTime", query: "&from=2026-11-01", want: lines(3, 1, 2, 4, 0)},
		{name: "from/to one day", query: "&from=2026-11-01&to=2026-11-02", want: lines(3, 1)},
		{name: "to is exclusive", query: "&from=2026-11-01T09:00:00Z&to=2026-11-01T10:00:00Z", want: lines(3)},
		{name: "one event name", query: "&event=buy", want: lines(1, 4)},
		{name: "several event names", query: "&event=buy,signup", want: lines(1, 3, 4)},
		{name: "one user", query: "&userId=bob", want: lines(1, 2)},
		{name: "user and range", query: "&userId=ann&from=2026-11-01", want: lines(3, 0)},
		{name: "since with a range stays in ingest order", query: "&since=1&from=2026-11-01", want: lines(1, 2, 3, 4)},
		{name: "limit in time order", query: "&from=2026-11-01&limit=2", want: lines(3, 1)},
		{name: "inverted range", query: "&from=2026-11-03&to=2026-11-01", field: "to"},
		{name: "bad from", query: "&from=yesterday", field: "from"},
		{name: "unknown parameter", query: "&fromm=2026-11-01", field: "fromm"},
		{name: "parameter twice", query: "&userId=a&userId=b", field: "userId"},
		{name: "appKey twice", query: "&appKey=other", field: "appKey"},
		{name: "since beyond the watermark", query: "&since=99", field: "since"},
		{name: "until not above since", query: "&since=3&until=3", field: "until"},
		{name: "bad download", query: "&download=yes", field: "download"},
	}
	asWrittenAndMerged(t, db, func(suffix string) {
		for _, tc := range tests {
			t.Run(tc.name+suffix, func(t *testing.T) {
				got, _, err := call(t, h.Events, "/v1/export/events?appKey="+appA+tc.query, allToken)
				if tc.field != "" {
					var f interface{ ErrorField() string }
					if !errors.Is(err, apierr.Invalid) || !errors.As(err, &f) || f.ErrorField() != tc.field {
						t.Fatalf("got error %v; want a 400 naming %q", err, tc.field)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if got != tc.want {
					t.Errorf("got\n%s\nwant\n%s", got, tc.want)
				}
			})
		}
	})

	// Compression and downloads.
	for _, tc := range []struct{ accept, encoding, filename string }{
		{"", "", `attachment; filename="trove-` + appA + `-events-from-20261101T000000Z.ndjson"`},
		{"gzip, deflate", "gzip", `attachment; filename="trove-` + appA + `-events-from-20261101T000000Z.ndjson.gz"`},
		{"gzip;q=1, zstd", "zstd", `attachment; filename="trove-` + appA + `-events-from-20261101T000000Z.ndjson.zst"`},
		{"zstd;q=0, gzip", "gzip", `attachment; filename="trove-` + appA + `-events-from-20261101T000000Z.ndjson.gz"`},
	} {
		t.Run("Accept-Encoding "+tc.accept, func(t *testing.T) {
			var ctx fasthttp.RequestCtx
			ctx.Request.SetRequestURI("/v1/export/events?appKey=" + appA + "&from=2026-11-01&download=1")
			ctx.Request.Header.Set("Accept-Encoding", tc.accept)
			authorizeCtx(&ctx)
			if err := h.Events(&ctx); err != nil {
				t.Fatal(err)
			}
			if got := string(ctx.Response.Header.Peek("Content-Disposition")); got != tc.filename {
				t.Errorf("Content-Disposition %q; want %q", got, tc.filename)
			}
			if got := string(ctx.Response.Header.ContentEncoding()); got != tc.encoding {
				t.Errorf("Content-Encoding %q; want %q", got, tc.encoding)
			}
			raw, err := io.ReadAll(ctx.Response.BodyStream())
			if err != nil {
				t.Fatal(err)
			}
			ctx.Response.CloseBodyStream()
			var r io.Reader = bytes.NewReader(raw)
			switch tc.encoding {
			case "gzip":
				if r, err = gzip.NewReader(r); err != nil {
					t.Fatal(err)
				}
			case "zstd":
				zr, err := zstd.NewReader(r)
				if err != nil {
					t.Fatal(err)
				}
				defer zr.Close()
				r = zr
			}
			plain, err := io.ReadAll(r)
			if err != nil {
				t.Fatalf("decoding %s: %v", tc.encoding, err)
			}
			if string(plain) != lines(3, 1, 2, 4, 0) {
				t.Errorf("decoded body\n%s\nwant the time-ordered export", plain)
			}
		})
	}
}

// authorizeCtx gives a request the token that covers every app.
func authorizeCtx(ctx *fasthttp.RequestCtx) { auth.WithToken(ctx, allToken) }
