package server

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"trove/internal/testutil"
)

// lockedWriter is a destination that a test can stall.
type lockedWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
	gate   chan struct{} // when set, each Write waits for a receive
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	if w.gate != nil {
		<-w.gate
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	return w.buf.Write(p)
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestLogBufferOrderAndDelay logs from many goroutines: every line arrives
// once, each goroutine's in its order, within the flush delay, in far
// fewer writes than lines; a warning is written, with what came before it,
// before its Log call returns.
func TestLogBufferOrderAndDelay(t *testing.T) {
	w := &lockedWriter{}
	b := newLogBuffer(w)
	log := slog.New(flushingHandler{slog.NewJSONHandler(b, nil), b})
	const goroutines, lines = 8, 500
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range lines {
				log.Info("request", "g", g, "i", i)
			}
		})
	}
	wg.Wait()
	testutil.WaitFor(t, 5*time.Second, func() error {
		if n := strings.Count(w.String(), "\n"); n != goroutines*lines {
			return fmt.Errorf("%d lines written of %d", n, goroutines*lines)
		}
		return nil
	})
	next := make([]int, goroutines)
	for line := range strings.Lines(w.String()) {
		var g, i int
		if _, err := fmt.Sscanf(line[strings.Index(line, `"g":`):], `"g":%d,"i":%d}`, &g, &i); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if i != next[g] {
			t.Fatalf("goroutine %d: line %d where %d was due", g, i, next[g])
		}
		next[g]++
	}
	if w.writes > goroutines*lines/10 {
		t.Errorf("%d lines took %d writes; want batches", goroutines*lines, w.writes)
	}

	log.Info("before the warning")
	log.Warn("the warning")
	if out := w.String(); !strings.Contains(out, "before the warning") || !strings.Contains(out, "the warning") {
		t.Errorf("after Warn returned, the log ends with %q; want both lines", out[max(0, len(out)-200):])
	}

	log.Info("the last line before Close")
	b.Close()
	if !strings.Contains(w.String(), "the last line before Close") {
		t.Error("Close did not write the lines kept")
	}
	log.Info("after Close")
	if !strings.Contains(w.String(), "after Close") {
		t.Error("a line logged after Close was not written at once")
	}
}

// TestLogBufferBounded stalls the destination: what waits for it stays
// near logMaxBytes, and once it reads again every line arrives in order.
func TestLogBufferBounded(t *testing.T) {
	w := &lockedWriter{gate: make(chan struct{})}
	b := newLogBuffer(w)
	line := []byte(strings.Repeat("x", 1000) + "\n")
	const lines = 5000 // 5 MB, five times the bound
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range lines {
			b.Write(fmt.Appendf(nil, "%05d %s", i, line))
		}
	}()
	// Let the writer run into the stall.
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		b.mu.Lock()
		held := len(b.buf)
		b.mu.Unlock()
		if held > logMaxBytes+2*len(line) {
			t.Fatalf("%d bytes held for a stalled destination; want at most %d", held, logMaxBytes+2*len(line))
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case <-done:
		t.Fatal("5 MB of lines were taken while the destination read nothing")
	default:
	}
	close(w.gate)
	<-done
	b.Close()
	i := 0
	for l := range strings.Lines(w.String()) {
		if want := fmt.Sprintf("%05d ", i); !strings.HasPrefix(l, want) {
			t.Fatalf("line %d starts %q", i, l[:6])
		}
		i++
	}
	if i != lines {
		t.Fatalf("%d lines arrived of %d", i, lines)
	}
}
