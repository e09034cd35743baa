package web

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// A refused request's body may still be on its way when the answer is
// ready. Closing a connection with unread bytes makes the kernel reset it,
// and a client that writes its whole body before reading (Python's
// http.client, Node's fetch, anything without "Expect: 100-continue") then
// gets ECONNRESET instead of the answer, and a retrying SDK retries
// forever. So the answer is written first, and then the rest of the body
// is read and discarded, up to a bound in bytes and in time, before the
// connection closes: with nothing unread, the close is an orderly FIN
// after the answer.
const (
	// minDrainBytes is the least that is drained (drainBytes).
	minDrainBytes = 1 << 20
	// defaultDrainTimeout bounds a drain in time: a client sending slower
	// than drainBytes in it gets its connection closed.
	defaultDrainTimeout = 5 * time.Second
	// maxDrains bounds the drains at once: each holds a connection past
	// the server's accounting (Concurrency, ReadTimeout), so a flood of
	// refused bodies is closed on at once past it.
	maxDrains = 256
	// keepAliveUnread is the most fasthttp itself discards after an answer
	// (its maxUnreadStreamBodySize) to keep a connection alive.
	keepAliveUnread = 256 << 10
)

// fail answers the request with err's status and JSON body and, when the
// request's body has not been read to its end, drains it after the answer
// (see above).
func (s *Server) fail(ctx *fasthttp.RequestCtx, err error) {
	writeError(ctx, s.log, err)
	s.drainAfterAnswer(ctx)
}

// drainBytes is the most of a refused body that is drained: 4 ×
// ingest.max_request_bytes (20 MiB by default), at least 1 MiB, unless the
// config says otherwise. A client further off than that is closed on: it
// costs the server a read of every byte, and an attacker would send more.
func (c *Config) drainBytes() int64 {
	if c.DrainBytes > 0 {
		return c.DrainBytes
	}
	return max(minDrainBytes, 4*int64(c.MaxRequestBytes))
}

var drainBufs = sync.Pool{New: func() any { return new([64 << 10]byte) }}

// unreadBody returns the stream of ctx's request body and its
// Content-Length when the answer must be followed by a drain: the status
// says the client may still be sending the body, and part of it is
// unread. Otherwise it returns nil.
func (s *Server) unreadBody(ctx *fasthttp.RequestCtx) (io.Reader, int) {
	switch ctx.Response.StatusCode() {
	case fasthttp.StatusRequestEntityTooLarge, fasthttp.StatusUnauthorized, fasthttp.StatusForbidden,
		fasthttp.StatusNotFound, fasthttp.StatusMethodNotAllowed, fasthttp.StatusUnsupportedMediaType,
		fasthttp.StatusTooManyRequests, fasthttp.StatusServiceUnavailable:
		// Refused for what the headers say, or by policy: the client may
		// well be sending the rest.
	default:
		// A 400 read the body and found it wrong, or failed to read it (a
		// client too slow for read_timeout, which must not gain time
		// here); a 500 is a bug.
		return nil, 0
	}
	if s.refusing.Load() {
		return nil, 0 // the server is about to close every connection
	}
	rs := ctx.RequestBodyStream()
	if rs == nil {
		return nil, 0 // no body, or one read whole before the handler
	}
	cl := ctx.Request.Header.ContentLength()
	switch {
	case cl == 0 || cl == -2:
		return nil, 0 // no body
	case cl > 0:
		// A read of nothing tells whether a known-length body is at its
		// end, without waiting (a chunked body's could wait for the next
		// chunk's header).
		if _, err := rs.Read(nil); err == io.EOF {
			return nil, 0
		}
		if cl > keepAliveUnread || ctx.Response.StatusCode() == fasthttp.StatusRequestEntityTooLarge {
			break
		}
		// fasthttp discards a small rest itself and keeps the connection.
		if !ctx.Response.ConnectionClose() {
			return nil, 0
		}
	}
	return rs, cl
}

// drainAfterAnswer makes fasthttp hand over the connection once ctx's
// handler returns, if part of the body is unread: the answer is then
// written, with Connection: close, the rest of the body discarded within
// the bounds, and the connection closed.
func (s *Server) drainAfterAnswer(ctx *fasthttp.RequestCtx) {
	rs, cl := s.unreadBody(ctx)
	if rs == nil {
		return
	}
	ctx.Response.Header.SetConnectionClose()
	limit := s.cfg.drainBytes()
	if cl > 0 && int64(cl) > limit {
		return // it could not be drained: close at once
	}
	select {
	case s.drains <- struct{}{}:
	default:
		return // too many at once: close at once
	}
	// The answer, as fasthttp would write it, for the hijack handler, which
	// must not touch ctx.
	ctx.Response.Header.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	ctx.Response.Header.SetServer("trove")
	var answer bytes.Buffer
	if _, err := ctx.Response.WriteTo(&answer); err != nil {
		<-s.drains
		return
	}
	deadline := s.drainDeadline(ctx)
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(c net.Conn) {
		defer func() { <-s.drains }()
		if err := c.SetReadDeadline(deadline); err != nil {
			return
		}
		if _, err := c.Write(answer.Bytes()); err != nil {
			return
		}
		// fasthttp leaves the request stream to the hijack handler; it
		// stops at the body's end, so a pipelined request is not read.
		// Large reads: io.Discard's own buffer is 8 KiB.
		buf := drainBufs.Get().(*[64 << 10]byte)
		defer drainBufs.Put(buf)
		for left := limit; left > 0; {
			n, err := rs.Read(buf[:min(left, int64(len(buf)))])
			left -= int64(n)
			if err != nil {
				return
			}
		}
	})
}

// drainDeadline is when the drain after ctx's answer stops: within the
// request's read_timeout, as any body, and a few seconds.
func (s *Server) drainDeadline(ctx *fasthttp.RequestCtx) time.Time {
	timeout := s.cfg.DrainTimeout
	if timeout <= 0 {
		timeout = defaultDrainTimeout
	}
	deadline := time.Now().Add(timeout)
	if d := ctx.Time().Add(s.cfg.ReadTimeout); d.Before(deadline) {
		deadline = d
	}
	return deadline
}
