package web

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// ErrRateLimited means an app is over its configured rate (HTTP 429).
var ErrRateLimited = errors.New("web: rate limited")

// ErrOverBurst means one request carries more events for an app than its
// burst, so that no wait would ever let it through (HTTP 413).
var ErrOverBurst = errors.New("web: batch over the rate burst")

// MinDefaultBurst is the smallest burst an app with a rate and no
// rate_burst gets: the burst is also the largest batch taken at once, and
// SDK batches (Segment's libraries send up to a few hundred events, a
// profile request up to profiles.max_profiles = 1000) must fit.
const MinDefaultBurst = 1000

// Rate is one app's rate limit.
type Rate struct {
	// Limit is the sustained rate in events per second; 0 is unlimited.
	Limit float64
	// Burst is how many events may arrive at once, and so the largest
	// batch; 0 means one second's worth, at least MinDefaultBurst.
	Burst int
}

// EffectiveBurst returns the burst r applies.
func (r Rate) EffectiveBurst() int {
	if r.Burst > 0 {
		return r.Burst
	}
	return max(int(math.Ceil(r.Limit)), MinDefaultBurst)
}

// RateLimiter keeps one token bucket per app that has a limit. There is no
// lock over all apps: the app map is replaced whole by Set (rare), and each
// bucket has its own lock, so one app's flood never waits on another's.
type RateLimiter struct {
	apps  atomic.Pointer[map[string]*bucket]
	setMu sync.Mutex // serialises Set
	now   func() time.Time
}

// bucket is one app's limiter. mu is held from a request's reservation to
// its cancellation: a cancelled reservation gives back all its tokens only
// if no other reservation came after it, and refused requests must cost
// nothing, or a flood would keep the app below its own rate.
type bucket struct {
	mu  sync.Mutex
	lim *rate.Limiter
}

func newBucket(r Rate) *bucket {
	return &bucket{lim: rate.NewLimiter(rate.Limit(r.Limit), r.EffectiveBurst())}
}

// charge is what one request takes from one app's bucket.
type charge struct {
	key string
	b   *bucket
	n   int
}

// NewRateLimiter returns a RateLimiter with the given per-app rates; apps
// not in rates, or with a zero Limit, are unlimited.
func NewRateLimiter(rates map[string]Rate) *RateLimiter {
	l := &RateLimiter{now: time.Now}
	m := map[string]*bucket{}
	for k, r := range rates {
		if r.Limit > 0 {
			m[k] = newBucket(r)
		}
	}
	l.apps.Store(&m)
	return l
}

// Set changes (or, with a zero Limit, removes) one app's rate. A changed
// bucket starts full.
func (l *RateLimiter) Set(appKey string, r Rate) {
	l.setMu.Lock()
	defer l.setMu.Unlock()
	old := *l.apps.Load()
	m := make(map[string]*bucket, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	delete(m, appKey)
	if r.Limit > 0 {
		m[appKey] = newBucket(r)
	}
	l.apps.Store(&m)
}

// Take charges counts[i] events to app appKeys[i], for every i, or to none
// of them: a request is stored whole or not at all, so it is charged the
// same way. It returns a *RateLimitError when an app is over its rate (the
// error says how long to wait) or a request carries more events for one
// app than its burst.
func (l *RateLimiter) Take(appKeys []string, counts []int) error {
	apps := *l.apps.Load()
	if len(apps) == 0 {
		return nil
	}
	var buf [4]charge
	cs := buf[:0]
	for i, key := range appKeys {
		if b := apps[key]; b != nil && counts[i] > 0 {
			cs = append(cs, charge{key, b, counts[i]})
		}
	}
	if len(cs) == 0 {
		return nil
	}
	if len(cs) > 1 {
		// Locks are taken in key order, so that two requests for the same
		// apps never wait on each other; a key named twice is charged once,
		// for both counts.
		slices.SortFunc(cs, func(a, b charge) int { return strings.Compare(a.key, b.key) })
		j := 0
		for _, c := range cs[1:] {
			if c.key == cs[j].key {
				cs[j].n += c.n
				continue
			}
			j++
			cs[j] = c
		}
		cs = cs[:j+1]
	}
	for _, c := range cs {
		c.b.mu.Lock()
	}
	defer func() {
		for _, c := range cs {
			c.b.mu.Unlock()
		}
	}()
	now := l.now()
	var (
		taken [4]*rate.Reservation
		resv  = taken[:0]
		worst *RateLimitError
	)
	cancel := func() {
		for _, r := range resv {
			r.CancelAt(now)
		}
	}
	for _, c := range cs {
		lim := c.b.lim
		if c.n > lim.Burst() {
			cancel()
			return &RateLimitError{Kind: ErrOverBurst, AppKey: c.key, Events: c.n, Limit: float64(lim.Limit()), Burst: lim.Burst()}
		}
		r := lim.ReserveN(now, c.n)
		resv = append(resv, r)
		if d := r.DelayFrom(now); d > 0 && (worst == nil || d > worst.Wait) {
			worst = &RateLimitError{Kind: ErrRateLimited, AppKey: c.key, Events: c.n, Limit: float64(lim.Limit()), Burst: lim.Burst(), Wait: d}
		}
	}
	if worst != nil {
		cancel()
		return worst
	}
	return nil
}

// RateLimitError is a request refused by a RateLimiter. It wraps
// ErrRateLimited or ErrOverBurst.
type RateLimitError struct {
	Kind   error
	AppKey string
	// Events is what the request carries for the app.
	Events int
	Limit  float64
	Burst  int
	// Wait is how long until the app's bucket holds Events tokens.
	Wait time.Duration
}

func (e *RateLimitError) Error() string {
	if errors.Is(e.Kind, ErrOverBurst) {
		return fmt.Sprintf("the request carries %d events for app %q, more than its rate_burst of %d: send at most %d events per request for this app (or raise rate_burst)",
			e.Events, e.AppKey, e.Burst, e.Burst)
	}
	return fmt.Sprintf("app %q is over its rate limit of %s events/s (burst %d); nothing of this request was stored: retry in %d s",
		e.AppKey, strconv.FormatFloat(e.Limit, 'f', -1, 64), e.Burst, retryAfterSeconds(e.Wait))
}

// Unwrap returns ErrRateLimited or ErrOverBurst.
func (e *RateLimitError) Unwrap() error { return e.Kind }

// ErrorField names the field at fault.
func (e *RateLimitError) ErrorField() string { return "appKey" }

// ErrorDetails adds the app to the error body.
func (e *RateLimitError) ErrorDetails() map[string]any {
	return map[string]any{"appKey": e.AppKey}
}

// RetryAfter is how long the client should wait; zero when waiting would
// not help.
func (e *RateLimitError) RetryAfter() time.Duration {
	if errors.Is(e.Kind, ErrOverBurst) {
		return 0
	}
	return e.Wait
}

// retryAfterSeconds rounds d up to whole seconds, at least 1, as
// Retry-After wants.
func retryAfterSeconds(d time.Duration) int64 {
	s := int64(math.Ceil(d.Seconds()))
	return max(s, 1)
}

// retryAfterHeader returns the Retry-After value for err, if it has one.
func retryAfterHeader(err error) (string, bool) {
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) {
		if d := ra.RetryAfter(); d > 0 {
			return strconv.FormatInt(retryAfterSeconds(d), 10), true
		}
	}
	return "", false
}
