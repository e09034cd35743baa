package web

import (
	"sync"
	"time"
)

// Shutdown in three steps, each bounded (serve.go gives the budget):
// Shutdown stops accepting and waits for the requests in flight; if some
// are still running when its context ends, Refuse cuts the body reads of
// those still receiving and makes every answer from then on a 503 with
// Retry-After (the store's close then refuses the writes that had not
// begun); Finish waits until every connection has written its answer and
// closed, and closes what is left at its deadline.

// Refuse ends the drain: every request from now on, and every one in
// flight whose handler fails (a body read is cut at once), is answered
// 503 with Retry-After, and its connection closed. Requests that are
// committing finish, with their own answers.
func (s *Server) Refuse() {
	s.refusing.Store(true)
	s.conns.cutReads()
}

// Finish waits until every connection is closed, or until deadline, when
// it closes those left and returns how many there were.
func (s *Server) Finish(deadline time.Time) int {
	return s.conns.wait(deadline)
}

// connSet holds the open connections of a listener.
type connSet struct {
	mu struct {
		sync.Mutex
		m     map[*progressConn]struct{}
		empty chan struct{} // closed when m becomes empty, if set
	}
}

func (s *connSet) add(c *progressConn) {
	s.mu.Lock()
	if s.mu.m == nil {
		s.mu.m = map[*progressConn]struct{}{}
	}
	s.mu.m[c] = struct{}{}
	s.mu.Unlock()
}

func (s *connSet) remove(c *progressConn) {
	s.mu.Lock()
	delete(s.mu.m, c)
	if len(s.mu.m) == 0 && s.mu.empty != nil {
		close(s.mu.empty)
		s.mu.empty = nil
	}
	s.mu.Unlock()
}

// cutReads makes every read of the connections fail at once: a handler
// reading a body gets an error, an idle connection ends.
func (s *connSet) cutReads() {
	s.mu.Lock()
	defer s.mu.Unlock()
	past := time.Unix(1, 0)
	for c := range s.mu.m {
		c.Conn.SetReadDeadline(past)
	}
}

// wait waits until the set is empty or deadline; then it closes what is
// left and returns how many.
func (s *connSet) wait(deadline time.Time) int {
	s.mu.Lock()
	if len(s.mu.m) == 0 {
		s.mu.Unlock()
		return 0
	}
	empty := make(chan struct{})
	s.mu.empty = empty
	s.mu.Unlock()
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-empty:
		return 0
	case <-t.C:
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.mu.m)
	for c := range s.mu.m {
		c.Conn.Close() // fasthttp's own Close of it follows, and forgets it
	}
	return n
}
