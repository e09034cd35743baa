package storage

import (
	"slices"
	"testing"
	"time"
)

// TestOverview checks the overview's counts against the events written,
// before and after the merger rewrites them into blocks that span hours,
// and after retention removes a day.
func TestOverview(t *testing.T) {
	db := openTestDB(t, Options{})
	app1, app2 := ensureApp(t, db, "a"), ensureApp(t, db, "b")
	ensureApp(t, db, "empty")
	now := testNow.UTC()
	hour := int64(time.Hour / time.Microsecond)
	nowUs := now.UnixMicro()
	dayStart := now.Truncate(24 * time.Hour).UnixMicro()

	// app1: 3 events this hour, 2 two hours ago (one request), 1 at the
	// start of today, 4 ten days ago (outside the chart).
	commitEvents(t, db,
		newEvent{app1, nowUs - 1_000_000, "x"}, newEvent{app1, nowUs - 2_000_000, "x"}, newEvent{app1, nowUs - 3_000_000, "x"},
		newEvent{app2, nowUs - 5*hour, "y"})
	commitEvents(t, db, newEvent{app1, nowUs - 2*hour, "x"}, newEvent{app1, nowUs - 2*hour - 10_000, "x"})
	commitEvents(t, db, newEvent{app1, dayStart, "x"})
	old := nowUs - 10*24*hour
	commitEvents(t, db, newEvent{app1, old, "x"}, newEvent{app1, old + 1, "x"}, newEvent{app1, old + 2, "x"}, newEvent{app1, old + 3, "x"})
	w := db.NewWriter(now)
	f, err := w.Alloc(2)
	if err != nil {
		t.Fatal(err)
	}
	w.AddRejected(app2, f, []byte(`{"reason":"bad"}`))
	w.AddRejected(app2, f+1, []byte(`{"reason":"bad"}`))
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	w.Close()

	todayN := int64(0)
	for _, ms := range []int64{nowUs - 1_000_000, nowUs - 2_000_000, nowUs - 3_000_000, nowUs - 2*hour, nowUs - 2*hour - 10_000, dayStart} {
		if ms >= dayStart {
			todayN++
		}
	}
	check := func(name string, at time.Time, wantTotal1 int64) Overview {
		t.Helper()
		ov, err := db.Overview(at)
		if err != nil {
			t.Fatal(err)
		}
		if len(ov.Apps) != 3 {
			t.Fatalf("%s: %d apps; want 3", name, len(ov.Apps))
		}
		a, b := ov.Apps["a"], ov.Apps["b"]
		if a.Total != wantTotal1 || b.Total != 1 || ov.Apps["empty"].Total != 0 {
			t.Errorf("%s: totals a=%d b=%d; want %d, 1", name, a.Total, b.Total, wantTotal1)
		}
		if a.Today != todayN {
			t.Errorf("%s: a.Today = %d; want %d", name, a.Today, todayN)
		}
		if b.Rejected != 2 || a.Rejected != 0 {
			t.Errorf("%s: rejected a=%d b=%d; want 0, 2", name, a.Rejected, b.Rejected)
		}
		if len(a.Hourly) != OverviewHours {
			t.Fatalf("%s: %d hours; want %d", name, len(a.Hourly), OverviewHours)
		}
		last := OverviewHours - 1
		want := make([]int64, OverviewHours)
		want[last] = 3
		want[last-2] += 2
		want[int((dayStart-ov.Start.UnixMicro())/hour)]++
		if !slices.Equal(a.Hourly, want) {
			t.Errorf("%s: a.Hourly has %v at %v; want %v", name, nonZero(a.Hourly), ov.Start, nonZero(want))
		}
		if b.Hourly[last-5] != 1 {
			t.Errorf("%s: b.Hourly has %v; want 1 at %d", name, nonZero(b.Hourly), last-5)
		}
		if !ov.Start.Equal(now.Truncate(time.Hour).Add(-(OverviewHours - 1) * time.Hour)) {
			t.Errorf("%s: Start %v", name, ov.Start)
		}
		return ov
	}
	ov := check("fresh blocks", now, 10)
	if ov.Apps["a"].RatePerSec != 0 {
		t.Errorf("rate at the commit's own second: %v; want 0 (only whole seconds count)", ov.Apps["a"].RatePerSec)
	}
	// 10 events of a in the writer's second, seen from the next second.
	if got := db.overview.rate.rate(app1, now.Add(time.Second)); got != 1.0 {
		t.Errorf("rate a second later: %v; want 1 (10 events / %d s)", got, rateWindow)
	}
	if got := db.overview.rate.rate(app1, now.Add(time.Minute)); got != 0 {
		t.Errorf("rate a minute later: %v; want 0", got)
	}

	// Cached: a new event is not seen within the TTL, and is after it.
	commitEvents(t, db, newEvent{app1, old, "x"})
	if ov2, _ := db.Overview(now.Add(time.Second)); ov2.Apps["a"].Total != 10 {
		t.Errorf("within the TTL: total %d; want the cached 10", ov2.Apps["a"].Total)
	}
	check("after the TTL", now.Add(OverviewTTL), 11)

	// Merged blocks span hours: decoded, and cached by key.
	if _, err := db.MergeAll(); err != nil {
		t.Fatal(err)
	}
	check("merged", now.Add(2*OverviewTTL), 11)
	if len(db.overview.mu.hours) == 0 {
		t.Errorf("no block's hours were cached after a merge")
	}
	check("merged, cached", now.Add(3*OverviewTTL), 11)

	// Retention removes the old day.
	if _, err := db.Expire("a", now.Add(-5*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	check("after retention", now.Add(4*OverviewTTL), 6)
}

func nonZero(h []int64) map[int]int64 {
	m := map[int]int64{}
	for i, n := range h {
		if n != 0 {
			m[i] = n
		}
	}
	return m
}

func TestOverviewClosed(t *testing.T) {
	db := openTestDB(t, Options{})
	db.Close()
	if _, err := db.Overview(testNow); err != ErrClosed {
		t.Errorf("Overview after Close: %v; want ErrClosed", err)
	}
}
