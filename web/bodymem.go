package web

import (
	"container/list"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"trove/segment"
)

// ErrBodyMemory refuses a request whose body's share of
// http.max_body_memory did not come free within the wait (HTTP 503 with
// Retry-After); nothing of it was read or stored.
var ErrBodyMemory = errors.New("web: too many request bodies in memory")

// Request bodies are charged to one budget (http.max_body_memory) before
// any byte of them is read, by the worst case their headers imply, and the
// charge is given back when the handler returns, on every path (an
// answer, an error, a panic). What a request holds while it is served:
//
//   - the body as read (its Content-Length, or the route's limit when
//     chunked);
//   - the body decoded: itself when it is not compressed, else up to the
//     route's limit whatever the compressed size (the decompressor is
//     capped there);
//   - the batch's stored forms (about the decoded size, plus receivedAt
//     and context.ip per event), the sink's output (the same again) and
//     slack for buffers that grow by doubling.
//
// So a request is charged bodyCopies × its decoded worst case, plus its
// compressed bytes when it is compressed (bodyCharge). A request that does
// not get its charge within the wait is refused with 503 and Retry-After.
const (
	// bodyCopies is the number of copies of the decoded body a request may
	// hold at once (see above).
	bodyCopies = 4
	// defaultBodyMemoryWait is how long a request waits for its charge.
	defaultBodyMemoryWait = time.Second
)

// memBudget is a weighted semaphore over bytes that serves its waiters in
// arrival order, so that a large request is not starved by small ones.
type memBudget struct {
	size int64
	mu   struct {
		sync.Mutex
		used    int64
		waiters list.List // of *memWaiter, oldest first
	}
}

type memWaiter struct {
	n     int64
	ready chan struct{} // closed once n is charged to the waiter
}

func newMemBudget(size int64) *memBudget { return &memBudget{size: size} }

// acquire charges n bytes (at most the whole budget: a request larger than
// it runs alone), waiting at most wait for them; it returns the charge,
// which the caller gives back with release, or ErrBodyMemory.
func (m *memBudget) acquire(n int64, wait time.Duration) (int64, error) {
	n = min(max(n, 0), m.size)
	m.mu.Lock()
	if m.mu.waiters.Len() == 0 && m.mu.used+n <= m.size {
		m.mu.used += n
		m.mu.Unlock()
		return n, nil
	}
	w := &memWaiter{n: n, ready: make(chan struct{})}
	e := m.mu.waiters.PushBack(w)
	m.mu.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-w.ready:
		return n, nil
	case <-t.C:
	}
	m.mu.Lock()
	select {
	case <-w.ready:
		// Granted while the timer fired: keep it.
		m.mu.Unlock()
		return n, nil
	default:
	}
	front := m.mu.waiters.Front() == e
	m.mu.waiters.Remove(e)
	if front {
		// Those behind it may fit now.
		m.grantLocked()
	}
	taken := m.mu.used
	m.mu.Unlock()
	return 0, fmt.Errorf("%w: the request's share of %d bytes did not come free within %s (http.max_body_memory = %d, %d taken); send it again",
		ErrBodyMemory, n, wait, m.size, taken)
}

// release gives back a charge returned by acquire.
func (m *memBudget) release(n int64) {
	if n == 0 {
		return
	}
	m.mu.Lock()
	m.mu.used -= n
	if m.mu.used < 0 {
		m.mu.Unlock()
		panic("BUG: more body memory released than acquired")
	}
	m.grantLocked()
	m.mu.Unlock()
}

// grantLocked charges the waiters at the front that fit, in order.
func (m *memBudget) grantLocked() {
	for e := m.mu.waiters.Front(); e != nil; e = m.mu.waiters.Front() {
		w := e.Value.(*memWaiter)
		if m.mu.used+w.n > m.size {
			return
		}
		m.mu.used += w.n
		m.mu.waiters.Remove(e)
		close(w.ready)
	}
}

// inUse returns the bytes charged now.
func (m *memBudget) inUse() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mu.used
}

// bodyLimit is the most body a route reads (0: none), decoded: Segment's
// own limits on its endpoints, ingest.max_request_bytes elsewhere.
func (s *Server) bodyLimit(r *Route) int {
	switch {
	case r.Method == "GET" || r.Method == "HEAD":
		return 0
	case r.Access == WriteKey && r.Path == "/v1/batch":
		return segment.MaxBatchBytes
	case r.Access == WriteKey:
		return segment.MaxMessageBytes
	}
	return s.cfg.MaxRequestBytes
}

// bodyCharge is what a request to route r is charged (see above):
// bodyCopies × its decoded worst case, plus the compressed bytes.
func (s *Server) bodyCharge(ctx *fasthttp.RequestCtx, limit int) int64 {
	cl := ctx.Request.Header.ContentLength()
	if cl == 0 || cl == -2 {
		return 0 // no body (-2: none declared, or a GET)
	}
	raw := int64(limit)
	if cl > 0 {
		raw = min(int64(cl), raw)
	}
	if enc := ctx.Request.Header.ContentEncoding(); len(enc) > 0 && string(enc) != "identity" {
		return raw + bodyCopies*int64(limit)
	}
	return bodyCopies * raw
}

// withBodyMemory charges the request's body to the budget around next.
func (s *Server) withBodyMemory(ctx *fasthttp.RequestCtx, r *Route, next func(*fasthttp.RequestCtx) error) error {
	limit := s.bodyLimit(r)
	if s.bodyMem == nil || limit == 0 {
		return next(ctx)
	}
	n, err := s.bodyMem.acquire(s.bodyCharge(ctx, limit), s.cfg.bodyMemoryWait())
	if err != nil {
		return err
	}
	defer s.bodyMem.release(n)
	return next(ctx)
}

func (c *Config) bodyMemoryWait() time.Duration {
	if c.BodyMemoryWait > 0 {
		return c.BodyMemoryWait
	}
	return defaultBodyMemoryWait
}
