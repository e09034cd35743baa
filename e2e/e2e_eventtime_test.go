package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-json"

	"trove/internal/testutil"
)

// usecEvents are events around the day edge 2026-06-01T00:00:00Z, in
// eventTime order, each written with the offset it has: sub-millisecond
// times, +05:30, -08:00 and Z, and digits below the microsecond.
var usecEvents = []struct{ name, eventTime string }{
	{"t0", "2026-05-31T15:59:59.999-08:00"},     // 23:59:59.999000Z
	{"t1", "2026-06-01T05:29:59.9995+05:30"},    // 23:59:59.999500Z
	{"t2", "2026-05-31T23:59:59.999999Z"},       // the last µs of the day
	{"t3", "2026-05-31T16:00:00-08:00"},         // 00:00:00Z
	{"t4", "2026-06-01T00:00:00.000001Z"},       // the first µs after midnight
	{"t5", "2026-06-01T05:30:00.0005+05:30"},    // 00:00:00.000500Z
	{"t6", "2026-06-01T00:00:00.0009999Z"},      // 00:00:00.000999Z, floored
	{"t7", "2026-05-31T16:00:00.001-08:00"},     // 00:00:00.001000Z
	{"t8", "2026-06-01T00:00:00.000001000000Z"}, // t4's µs: a tie, in ingest order
}

// TestE2EEventTimeMicroseconds: export orders events by eventTime compared
// as instants to the microsecond, whatever their offsets or arrival order,
// and from/to select [from, to) to the microsecond (digits below it
// floored, in events and bounds alike); before the merger runs (fresh row
// blocks, one group per request) and after it has merged the groups (row or
// columnar blocks), with every line byte for byte the same.
func TestE2EEventTimeMicroseconds(t *testing.T) {
	for _, columnar := range []bool{false, true} {
		t.Run(fmt.Sprintf("columnar_blocks=%v", columnar), func(t *testing.T) {
			testE2EEventTimeMicroseconds(t, columnar)
		})
	}
}

func testE2EEventTimeMicroseconds(t *testing.T, columnar bool) {
	// The merger off (its first pass an hour away), then on.
	off := testConfig + "\n[storage]\nmerge_interval = \"1h\"\nmerge_min_age = \"0s\"\n" +
		fmt.Sprintf("columnar_blocks = %v\n", columnar)
	on := testConfig + "\n[storage]\nmerge_interval = \"100ms\"\nmerge_min_age = \"0s\"\n" +
		fmt.Sprintf("columnar_blocks = %v\n", columnar)
	srv := startServer(t, off)
	addr, dir, stop := srv.addr, srv.dataDir, srv.stop

	// Arrival order: the opposite of eventTime order, t4 before t8 (its
	// tie), in five requests (five groups), each array reversed too.
	line := func(i int) string {
		e := usecEvents[i]
		return `{"type":"event","event":"` + e.name + `","userId":"u1","eventTime":"` + e.eventTime +
			`","appKey":"` + demoApp + `","messageId":"usec-` + e.name + `"}`
	}
	var arrival []string
	for _, req := range [][]int{{7, 6}, {5}, {4, 8, 3}, {2}, {1, 0}} {
		var parts []string
		for _, i := range req {
			parts = append(parts, line(i))
			arrival = append(arrival, usecEvents[i].name)
		}
		a := decodeAnswer(t, postEvents(t, addr, "["+strings.Join(parts, ",")+"]"), 202)
		if a.Accepted != len(req) {
			t.Fatalf("accepted %d of %d: %+v", a.Accepted, len(req), a)
		}
	}

	tests := []struct {
		name, query string
		want        []string
	}{
		{name: "ingest order", query: "", want: arrival},
		{name: "from the day before", query: "from=2026-05-31",
			want: []string{"t0", "t1", "t2", "t3", "t4", "t8", "t5", "t6", "t7"}},
		{name: "the day after the edge", query: "from=2026-06-01&to=2026-06-02",
			want: []string{"t3", "t4", "t8", "t5", "t6", "t7"}},
		{name: "the day before the edge", query: "from=2026-05-31&to=2026-06-01",
			want: []string{"t0", "t1", "t2"}},
		{name: "sub-ms bounds across midnight", query: "from=2026-05-31T23:59:59.9995Z&to=2026-06-01T00:00:00.000001Z",
			want: []string{"t1", "t2", "t3"}},
		{name: "bounds with offsets", query: "from=2026-06-01T05:30:00.000001%2B05:30&to=2026-05-31T16:00:00.001-08:00",
			want: []string{"t4", "t8", "t5", "t6"}},
		{name: "one µs", query: "from=2026-06-01T00:00:00.0005Z&to=2026-06-01T00:00:00.000501Z",
			want: []string{"t5"}},
		{name: "the last µs of the day", query: "from=2026-05-31T23:59:59.999999Z&to=2026-06-01T00:00:00Z",
			want: []string{"t2"}},
		{name: "a sub-µs from floored like the events", query: "from=2026-06-01T00:00:00.0009991Z&to=2026-06-01T00:00:00.001Z",
			want: []string{"t6"}},
		{name: "nothing between two µs", query: "from=2026-06-01T00:00:00.000002Z&to=2026-06-01T00:00:00.0005Z",
			want: nil},
		{name: "limit in eventTime order", query: "from=2026-05-31T23:59:59.9991Z&limit=3",
			want: []string{"t1", "t2", "t3"}},
	}
	check := func(stage string, wantLines map[string]string) map[string]string {
		t.Helper()
		got := map[string]string{}
		for _, tc := range tests {
			e := exportEvents(t, addr, tc.query)
			var names []string
			for _, l := range e.lines {
				var ev struct {
					Event     string `json:"event"`
					EventTime string `json:"eventTime"`
				}
				if err := json.Unmarshal([]byte(l), &ev); err != nil {
					t.Fatalf("%s: %s: line %q: %v", stage, tc.name, l, err)
				}
				names = append(names, ev.Event)
				i := slices.IndexFunc(usecEvents, func(u struct{ name, eventTime string }) bool { return u.name == ev.Event })
				if i < 0 || ev.EventTime != usecEvents[i].eventTime {
					t.Fatalf("%s: %s: line %q: eventTime is not the one sent", stage, tc.name, l)
				}
				if w, ok := wantLines[ev.Event]; ok && w != l {
					t.Fatalf("%s: %s: line\n%s\nwas\n%s", stage, tc.name, l, w)
				}
				got[ev.Event] = l
			}
			if !slices.Equal(names, tc.want) {
				t.Errorf("%s: %s (%s): got %v; want %v", stage, tc.name, tc.query, names, tc.want)
			}
		}
		return got
	}
	lines := check("before merging", nil)
	if len(lines) != len(usecEvents) {
		t.Fatalf("exported %d distinct events; want %d", len(lines), len(usecEvents))
	}
	// Two bounds in the same µs make an empty range, refused.
	r := request(t, "GET", "http://"+addr+"/v1/export/events?appKey="+demoApp+
		"&from=2026-06-01T00:00:00.0009991Z&to=2026-06-01T00:00:00.0009999Z", nil, "Authorization: Bearer "+backendSecret)
	if r.status != 400 || !strings.Contains(string(r.body), `"to"`) {
		t.Errorf("from and to in one µs: status %d (%s); want a 400 naming to", r.status, r.body)
	}
	stop()

	addr = startServer(t, on, inDir(dir)).addr
	// Five groups become one: four go away.
	testutil.WaitFor(t, 10*time.Second, testutil.Until("the merger merged the groups", func() bool { return scrape(t, addr)["trove_groups_merged_total"] >= 4 }))
	check("after merging", lines)
}
