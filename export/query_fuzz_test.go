package export

import (
	"testing"

	"github.com/valyala/fasthttp"

	"trove/apierr"
)

// FuzzParseEventQuery feeds arbitrary query strings to parseEventQuery:
// it never panics, and whatever it accepts is a usable query.
func FuzzParseEventQuery(f *testing.F) {
	for _, s := range []string{
		"appKey=a",
		"appKey=a&from=2026-11-01&to=2026-11-02",
		"appKey=a&from=2026-11-01T00:00:00Z&to=2026-11-01T00:00:00.001Z",
		"appKey=a&since=5&until=9&limit=1",
		"appKey=a&since=18446744073709551615",
		"appKey=a&until=0",
		"appKey=a&limit=0",
		"appKey=a&event=x,,y&userId=u&download=1",
		"appKey=&from=x",
		"appKey=a&appKey=b&bogus=1",
		"appKey=a&from=2026-11-02&to=2026-11-01",
		"appKey=a&from=0000-01-01T00:00:00Z&to=9999-12-31T23:59:59.999999999Z",
		"appKey=a&from=-292277022657-01-27T08:29:52Z",
		"appKey=%00&download=true&since=%31",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, query string) {
		var args fasthttp.Args
		args.Parse(query)
		q, err := parseEventQuery(&args)
		if err != nil {
			if q != nil {
				t.Fatalf("%q: both a query and %v", query, err)
			}
			if _, ok := err.(*apierr.Error); !ok {
				t.Fatalf("%q: error %T %v; want a *apierr.Error", query, err, err)
			}
			return
		}
		if q.app == "" {
			t.Fatalf("%q: accepted without appKey", query)
		}
		if q.from >= q.to {
			t.Fatalf("%q: accepted from %d >= to %d", query, q.from, q.to)
		}
		if q.since >= q.until {
			t.Fatalf("%q: accepted since %d >= until %d", query, q.since, q.until)
		}
		if q.limit < 1 {
			t.Fatalf("%q: accepted limit %d", query, q.limit)
		}
		_ = q.filename("zstd") // never panics either
	})
}
