// Package testutil is the test support that every package's tests share:
// polling for a condition (STYLE.md section 9: no sleeps, one waitFor) and
// a log buffer that a server may write while a test reads it. It imports no
// package of ours, so that storage's own tests can use it too. Only tests
// import it.
package testutil

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"
)

// WaitFor calls check until it returns nil: at first after 1 ms (a state
// may last only a few milliseconds), then less and less often, up to every
// 100 ms (a check may be a request or a walk of a directory). If check still fails after timeout, tb fails with check's
// last error.
func WaitFor(tb testing.TB, timeout time.Duration, check func() error) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	pause := time.Millisecond
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("still not so after %v: %v", timeout, err)
		}
		time.Sleep(pause)
		pause = min(2*pause, 100*time.Millisecond)
	}
}

// Until is WaitFor's check of cond; what says what it waits for, and is
// the error while cond is false.
func Until(what string, cond func() bool) func() error {
	return func() error {
		if cond() {
			return nil
		}
		return errors.New("waiting for " + what)
	}
}

// SyncBuffer is a bytes.Buffer that a server may write (its log) while a
// test reads it. The zero value is ready to use.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p to the buffer.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what has been written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Concurrently calls work(i) for each i in [0, n), each in a goroutine of
// its own, and fails tb, once all have returned, with an error one of them
// returned.
func Concurrently(tb testing.TB, n int, work func(i int) error) {
	tb.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			if err := work(i); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
}
