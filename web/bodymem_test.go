package web

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"trove/internal/testutil"
)

func TestMemBudgetAcquire(t *testing.T) {
	for _, tc := range []struct {
		name    string
		size    int64
		held    int64 // charged before
		n       int64
		wantN   int64
		wantErr bool
	}{
		{name: "fits", size: 100, n: 60, wantN: 60},
		{name: "fits exactly", size: 100, held: 40, n: 60, wantN: 60},
		{name: "larger than the budget runs alone", size: 100, n: 500, wantN: 100},
		{name: "no body", size: 100, held: 100, n: 0, wantN: 0},
		{name: "refused after the wait", size: 100, held: 50, n: 60, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMemBudget(tc.size)
			if tc.held > 0 {
				if _, err := m.acquire(tc.held, time.Second); err != nil {
					t.Fatal(err)
				}
			}
			start := time.Now()
			got, err := m.acquire(tc.n, 20*time.Millisecond)
			if tc.wantErr {
				if !errors.Is(err, ErrBodyMemory) {
					t.Fatalf("got %v; want ErrBodyMemory", err)
				}
				if d := time.Since(start); d < 20*time.Millisecond {
					t.Errorf("refused after %s; want after the wait of 20ms", d)
				}
				if status, _ := statusOf(err); status != fasthttp.StatusServiceUnavailable {
					t.Errorf("status %d; want 503", status)
				}
				if used := m.inUse(); used != tc.held {
					t.Errorf("in use %d after a refusal; want %d", used, tc.held)
				}
				return
			}
			if err != nil || got != tc.wantN {
				t.Fatalf("got %d, %v; want %d", got, err, tc.wantN)
			}
			m.release(got)
			if used := m.inUse(); used != tc.held {
				t.Errorf("in use %d after release; want %d", used, tc.held)
			}
		})
	}
}

// A waiter gets its share when it is given back within the wait, and
// waiters are served in order: a small one does not pass a large one.
func TestMemBudgetWaitsInOrder(t *testing.T) {
	m := newMemBudget(100)
	first, _ := m.acquire(100, time.Second)
	order := make(chan string, 2)
	large := make(chan int64)
	go func() {
		n, err := m.acquire(80, 10*time.Second)
		if err != nil {
			t.Error(err)
		}
		order <- "large"
		large <- n
	}()
	waitWaiters(t, m, 1)
	go func() {
		n, err := m.acquire(30, 10*time.Second) // fits only once the large one is given back
		if err != nil {
			t.Error(err)
		}
		order <- "small"
		m.release(n)
	}()
	waitWaiters(t, m, 2)
	m.release(first)
	if got := <-order; got != "large" {
		t.Fatalf("%s was served first; want the large one, which waited longer", got)
	}
	m.release(<-large)
	if got := <-order; got != "small" {
		t.Fatalf("got %s", got)
	}
	testutil.WaitFor(t, 10*time.Second, testutil.Until("the budget to be given back", func() bool { return m.inUse() == 0 }))
}

// A waiter that gives up at the front lets those behind it in.
func TestMemBudgetTimeoutUnblocksQueue(t *testing.T) {
	m := newMemBudget(100)
	held, _ := m.acquire(50, time.Second)
	small := make(chan error)
	go func() {
		_, err := m.acquire(90, 20*time.Millisecond) // cannot fit while 50 are held
		if !errors.Is(err, ErrBodyMemory) {
			t.Errorf("got %v; want ErrBodyMemory", err)
		}
		close(small)
	}()
	waitWaiters(t, m, 1)
	done := make(chan int64)
	go func() {
		n, err := m.acquire(40, 10*time.Second) // fits, but queued behind the 90
		if err != nil {
			t.Error(err)
		}
		done <- n
	}()
	<-small
	n := <-done
	if got := m.inUse(); got != 90 {
		t.Errorf("in use %d; want 90", got)
	}
	m.release(n)
	m.release(held)
	if got := m.inUse(); got != 0 {
		t.Errorf("in use %d; want 0", got)
	}
}

// The charge is given back on every way out of the handler.
func TestWithBodyMemoryReleases(t *testing.T) {
	s := &Server{cfg: Config{MaxRequestBytes: 1000}, bodyMem: newMemBudget(1 << 20)}
	r := &Route{Method: "POST", Path: "/v1/events", Access: AppKey}
	boom := errors.New("boom")
	for _, tc := range []struct {
		name    string
		handler func(*fasthttp.RequestCtx) error
	}{
		{"answer", func(*fasthttp.RequestCtx) error { return nil }},
		{"error", func(*fasthttp.RequestCtx) error { return boom }},
		{"panic", func(*fasthttp.RequestCtx) error { panic("BUG: test") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := &fasthttp.RequestCtx{}
			ctx.Request.Header.SetMethod("POST")
			ctx.Request.Header.SetContentLength(500)
			var during int64
			func() {
				defer func() { recover() }()
				s.withBodyMemory(ctx, r, func(ctx *fasthttp.RequestCtx) error {
					during = s.bodyMem.inUse()
					return tc.handler(ctx)
				})
			}()
			if during != bodyCopies*500 {
				t.Errorf("charged %d while serving; want %d", during, bodyCopies*500)
			}
			if got := s.bodyMem.inUse(); got != 0 {
				t.Errorf("in use %d after the handler; want 0", got)
			}
		})
	}
}

func TestBodyCharge(t *testing.T) {
	s := &Server{cfg: Config{MaxRequestBytes: 1000}}
	for _, tc := range []struct {
		name     string
		length   int
		encoding string
		want     int64
	}{
		{"no body", 0, "", 0},
		{"declared", 300, "", 4 * 300},
		{"identity", 300, "identity", 4 * 300},
		{"chunked: the limit", -1, "", 4 * 1000},
		{"compressed: the decoded limit", 300, "gzip", 300 + 4*1000},
		{"chunked and compressed", -1, "zstd", 1000 + 4*1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := &fasthttp.RequestCtx{}
			ctx.Request.Header.SetMethod("POST")
			ctx.Request.Header.SetContentLength(tc.length)
			if tc.encoding != "" {
				ctx.Request.Header.Set("Content-Encoding", tc.encoding)
			}
			if got := s.bodyCharge(ctx, 1000); got != tc.want {
				t.Errorf("got %d; want %d", got, tc.want)
			}
		})
	}
}

// waitWaiters waits until n acquires wait on m.
func waitWaiters(t *testing.T, m *memBudget, n int) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		if got := m.mu.waiters.Len(); got != n {
			return fmt.Errorf("%d waiters; want %d", got, n)
		}
		return nil
	})
}
