package server

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Log lines written to a file or a pipe are gathered and written in
// batches: at 25k requests/s (W2), one write(2) per request line took 3 %
// of the server's CPU. A line waits at most logFlushDelay; a warning or an
// error is written at once, with every line before it.
const (
	logFlushDelay = 100 * time.Millisecond
	// logFlushBytes kicks a write before the delay is over.
	logFlushBytes = 64 << 10
	// logMaxBytes bounds what waits: past it a Write writes itself, so a
	// stalled reader of the log slows logging (as an unbuffered log
	// would) instead of growing memory.
	logMaxBytes = 1 << 20
)

// logBuffer is an io.Writer that batches the lines slog writes to w. Lines
// are written in the order they were logged.
type logBuffer struct {
	w       io.Writer
	writeMu sync.Mutex // held while writing to w; taken before mu
	mu      sync.Mutex
	buf     []byte
	spare   []byte
	closed  bool // lines are written at once
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
}

func newLogBuffer(w io.Writer) *logBuffer {
	b := &logBuffer{w: w, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go b.run()
	return b
}

// Write keeps p, a whole line from slog, for the next flush.
func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		b.writeMu.Lock()
		defer b.writeMu.Unlock()
		return b.w.Write(p)
	}
	wasEmpty := len(b.buf) == 0
	b.buf = append(b.buf, p...)
	n := len(b.buf)
	b.mu.Unlock()
	switch {
	case n >= logMaxBytes:
		b.Flush()
	case wasEmpty || n >= logFlushBytes:
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

// Flush writes every line kept so far before it returns.
func (b *logBuffer) Flush() { b.flush(false) }

// flush writes what is kept; closing makes later lines go out at once, set
// while writeMu is held so that none of them overtakes the last batch.
func (b *logBuffer) flush(closing bool) {
	b.writeMu.Lock()
	defer b.writeMu.Unlock()
	b.mu.Lock()
	out := b.buf
	b.buf = b.spare[:0]
	b.closed = b.closed || closing
	b.mu.Unlock()
	if len(out) > 0 {
		// A log that cannot be written has nowhere to say so.
		_, _ = b.w.Write(out)
	}
	if cap(out) <= logMaxBytes {
		b.spare = out[:0]
	} else {
		b.spare = nil
	}
}

// run writes what was kept logFlushDelay after the first line of a batch,
// or at once when a batch reaches logFlushBytes.
func (b *logBuffer) run() {
	defer close(b.done)
	t := time.NewTimer(logFlushDelay)
	t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-b.kick:
		}
		t.Reset(logFlushDelay)
		select {
		case <-b.stop:
			return
		case <-t.C:
		case <-b.kick:
			// Full enough; the delay starts over with the next line.
			t.Stop()
		}
		b.Flush()
	}
}

// Close stops the flusher and writes what is left. Lines logged after it
// are written at once.
func (b *logBuffer) Close() {
	close(b.stop)
	<-b.done
	b.flush(true)
}

// flushingHandler writes a warning or an error, and every line kept before
// it, before Handle returns: what goes wrong is in the log at once, and
// still there when the process dies right after.
type flushingHandler struct {
	slog.Handler
	b *logBuffer
}

func (h flushingHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		h.b.Flush()
	}
	return err
}

func (h flushingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushingHandler{h.Handler.WithAttrs(attrs), h.b}
}

func (h flushingHandler) WithGroup(name string) slog.Handler {
	return flushingHandler{h.Handler.WithGroup(name), h.b}
}
