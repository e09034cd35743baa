package web

import (
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRateEffectiveBurst(t *testing.T) {
	tests := []struct {
		name string
		rate Rate
		want int
	}{
		{"explicit burst", Rate{Limit: 10, Burst: 20}, 20},
		{"explicit burst below the rate", Rate{Limit: 10, Burst: 3}, 3},
		{"default: at least MinDefaultBurst", Rate{Limit: 10}, MinDefaultBurst},
		{"default: one second's worth", Rate{Limit: 5000}, 5000},
		{"default: fractional rate rounds up", Rate{Limit: 2500.5}, 2501},
		{"default: slow rate", Rate{Limit: 0.1}, MinDefaultBurst},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.rate.EffectiveBurst(); got != tc.want {
				t.Errorf("got %d; want %d", got, tc.want)
			}
		})
	}
}

// TestRateLimiterTake runs each case's steps on a fresh limiter with a
// clock of its own.
func TestRateLimiterTake(t *testing.T) {
	const a, b, free = "app-a", "app-b", "app-free"
	rates := map[string]Rate{
		a:    {Limit: 10, Burst: 20},
		b:    {Limit: 1, Burst: 5},
		free: {Limit: 0, Burst: 7}, // unlimited: the burst means nothing
	}
	type step struct {
		after  time.Duration // clock advance before the step
		keys   []string
		counts []int
		want   error // nil, ErrRateLimited or ErrOverBurst
		retry  int64 // Retry-After seconds, for ErrRateLimited
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"unknown and unlimited apps are never limited", []step{
			{0, []string{free, "nobody"}, []int{1 << 20, 1 << 20}, nil, 0},
			{0, []string{free}, []int{1 << 20}, nil, 0},
		}},
		{"the burst passes at once", []step{
			{0, []string{a}, []int{20}, nil, 0},
		}},
		{"one event over the burst waits a tenth of a second: Retry-After 1", []step{
			{0, []string{a}, []int{20}, nil, 0},
			{0, []string{a}, []int{1}, ErrRateLimited, 1},
		}},
		{"Retry-After rounds the wait up to whole seconds", []step{
			{0, []string{a}, []int{20}, nil, 0},
			{0, []string{a}, []int{15}, ErrRateLimited, 2}, // 1.5 s
			{0, []string{b}, []int{5}, nil, 0},
			{0, []string{b}, []int{3}, ErrRateLimited, 3},
		}},
		{"a refused request takes nothing: after the wait it passes", []step{
			{0, []string{a}, []int{20}, nil, 0},
			{0, []string{a}, []int{10}, ErrRateLimited, 1},
			{0, []string{a}, []int{10}, ErrRateLimited, 1},
			{time.Second, []string{a}, []int{10}, nil, 0},
			{0, []string{a}, []int{1}, ErrRateLimited, 1},
		}},
		{"tokens come back at the rate, up to the burst", []step{
			{0, []string{a}, []int{20}, nil, 0},
			{500 * time.Millisecond, []string{a}, []int{5}, nil, 0},
			{time.Hour, []string{a}, []int{20}, nil, 0},
			{0, []string{a}, []int{1}, ErrRateLimited, 1},
		}},
		{"a batch over the burst is refused for good, and takes nothing", []step{
			{0, []string{a}, []int{21}, ErrOverBurst, 0},
			{time.Hour, []string{a}, []int{21}, ErrOverBurst, 0},
			{0, []string{a}, []int{20}, nil, 0},
		}},
		{"a batch charges each app it carries", []step{
			{0, []string{a, b}, []int{15, 5}, nil, 0},
			{0, []string{a}, []int{5}, nil, 0},
			{0, []string{b}, []int{1}, ErrRateLimited, 1},
		}},
		{"one app over its rate refuses the batch, and the others keep their tokens", []step{
			{0, []string{b}, []int{5}, nil, 0},
			{0, []string{a, b, free}, []int{20, 2, 9}, ErrRateLimited, 2},
			{0, []string{a}, []int{20}, nil, 0},
		}},
		{"the longest wait of the apps is the one reported", []step{
			{0, []string{a, b}, []int{20, 5}, nil, 0},
			{0, []string{a, b}, []int{10, 4}, ErrRateLimited, 4},
		}},
		{"one app over its burst refuses the batch", []step{
			{0, []string{a, b}, []int{1, 6}, ErrOverBurst, 0},
			{0, []string{a}, []int{20}, nil, 0},
		}},
		{"an app named twice is charged for both", []step{
			{0, []string{a, b, a}, []int{10, 1, 11}, ErrOverBurst, 0},
			{0, []string{a, a}, []int{10, 10}, nil, 0},
			{0, []string{a}, []int{1}, ErrRateLimited, 1},
		}},
		{"zero counts are free", []step{
			{0, []string{a}, []int{20}, nil, 0},
			{0, []string{a, b}, []int{0, 1}, nil, 0},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := NewRateLimiter(rates)
			now := time.Unix(1_700_000_000, 0)
			l.now = func() time.Time { return now }
			for i, s := range tc.steps {
				now = now.Add(s.after)
				err := l.Take(s.keys, s.counts)
				switch {
				case s.want == nil && err != nil:
					t.Fatalf("step %d: got %v; want nil", i, err)
				case s.want == nil:
					continue
				case !errors.Is(err, s.want):
					t.Fatalf("step %d: got %v; want %v", i, err, s.want)
				}
				ra, ok := retryAfterHeader(err)
				if s.want == ErrOverBurst {
					if ok {
						t.Errorf("step %d: got Retry-After %q for a batch over the burst; want none", i, ra)
					}
					continue
				}
				if want := strconv.FormatInt(s.retry, 10); ra != want {
					t.Errorf("step %d: got Retry-After %q; want %s", i, ra, want)
				}
				status, code := statusOf(err)
				if status != 429 || code != "rate_limited" {
					t.Errorf("step %d: got %d %s; want 429 rate_limited", i, status, code)
				}
			}
		})
	}
}

func TestRateLimitErrorStatus(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantCode   string
	}{
		{"over the rate", &RateLimitError{Kind: ErrRateLimited, AppKey: "k", Limit: 1, Burst: 1, Wait: time.Second}, 429, "rate_limited"},
		{"over the burst", &RateLimitError{Kind: ErrOverBurst, AppKey: "k", Events: 9, Limit: 1, Burst: 1}, 413, "payload_too_large"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, code := statusOf(tc.err)
			if status != tc.wantStatus || code != tc.wantCode {
				t.Errorf("got %d %s; want %d %s", status, code, tc.wantStatus, tc.wantCode)
			}
		})
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want int64
	}{
		{0, 1}, {time.Nanosecond, 1}, {999 * time.Millisecond, 1}, {time.Second, 1},
		{time.Second + time.Nanosecond, 2}, {30 * time.Second, 30},
	}
	for _, tc := range tests {
		if got := retryAfterSeconds(tc.d); got != tc.want {
			t.Errorf("retryAfterSeconds(%v): got %d; want %d", tc.d, got, tc.want)
		}
	}
}

// TestRateLimiterConcurrent takes from two apps at once, in batches of
// one app, of the other, and of both, while a third app's rate changes: on
// a stopped clock exactly the burst of each app gets through, whatever the
// interleaving, and the refused requests cost nothing: one second later,
// exactly one second's worth gets through.
func TestRateLimiterConcurrent(t *testing.T) {
	l := NewRateLimiter(map[string]Rate{"a": {Limit: 20, Burst: 100}, "b": {Limit: 10, Burst: 50}})
	now := time.Unix(1_700_000_000, 0)
	l.now = func() time.Time { return now }
	phase := func(wantA, wantB int64) {
		t.Helper()
		var admitted [2]atomic.Int64
		var wg sync.WaitGroup
		for g := range 9 {
			wg.Go(func() {
				for range 200 {
					switch g % 3 {
					case 0:
						if l.Take([]string{"a"}, []int{1}) == nil {
							admitted[0].Add(1)
						}
					case 1:
						if l.Take([]string{"b"}, []int{1}) == nil {
							admitted[1].Add(1)
						}
					case 2:
						if l.Take([]string{"b", "a"}, []int{1, 1}) == nil {
							admitted[0].Add(1)
							admitted[1].Add(1)
						}
					}
				}
			})
		}
		wg.Go(func() {
			for i := range 100 {
				l.Set("c", Rate{Limit: float64(i + 1)})
			}
		})
		wg.Wait()
		if a, b := admitted[0].Load(), admitted[1].Load(); a != wantA || b != wantB {
			t.Errorf("got %d and %d admitted; want %d and %d", a, b, wantA, wantB)
		}
	}
	phase(100, 50) // the bursts
	now = now.Add(time.Second)
	phase(20, 10) // the rates
}
