package server

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"trove/storage"
	"trove/web"
)

// ShutdownPlan is how SIGTERM ends within 10 s, what docker stop and
// Kubernetes wait before SIGKILL, store's close included. Each step is
// bounded by a deadline counted from the signal.
type ShutdownPlan struct {
	// Drain: requests in flight may finish; the rest are refused with 503
	// (web.Server.Refuse).
	Drain time.Duration
	// Closed: the store's close (it waits for the writes that are
	// committing, then flushes) must be done; if it is not, the process
	// exits all the same: what was acknowledged is in the WAL.
	Closed time.Duration
	// End: the answers of the last requests are written and every
	// connection closed; what is left is closed.
	End time.Duration
}

// DefaultShutdown returns the plan used unless Hooks.Shutdown replaces it:
// it leaves the store 3 s to close (issue 13 saw 3 s), and half a second
// each for the last answers and the process's exit.
func DefaultShutdown() ShutdownPlan {
	return ShutdownPlan{Drain: 6 * time.Second, Closed: 9 * time.Second, End: 9500 * time.Millisecond}
}

// shutdown stops srv and closes the store within the shutdown plan.
func shutdown(srv *web.Server, closeStore func(deadline time.Time), log *slog.Logger, h Hooks) {
	plan := DefaultShutdown()
	if h.Shutdown != nil {
		plan = *h.Shutdown
	}
	t := time.Now()
	log.Info("shutting down: draining requests", "drain", plan.Drain.String())
	sctx, cancel := context.WithDeadline(context.Background(), t.Add(plan.Drain))
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("requests still in flight at the end of the drain; refusing them with 503", "err", err)
		srv.Refuse()
	}
	log.Info("server stopped", "took", time.Since(t).Round(time.Millisecond).String())
	closeStore(t.Add(plan.Closed))
	if n := srv.Finish(t.Add(plan.End)); n > 0 {
		log.Warn("connections still open at the end of the shutdown were closed", "connections", n)
	}
	log.Info("shut down", "took", time.Since(t).Round(time.Millisecond).String())
}

// closeStoreOnce returns a function that closes db, once, waiting until
// deadline at most (zero: no deadline). Close waits for the writes in
// flight; one that outlasts the deadline is left to finish as the process
// exits, which the store survives as it survives kill -9.
func closeStoreOnce(db *storage.DB, log *slog.Logger) func(deadline time.Time) {
	var once sync.Once
	return func(deadline time.Time) {
		once.Do(func() {
			t := time.Now()
			done := make(chan error, 1)
			go func() { done <- db.Close() }()
			var expired <-chan time.Time
			if !deadline.IsZero() {
				timer := time.NewTimer(time.Until(deadline))
				defer timer.Stop()
				expired = timer.C
			}
			select {
			case err := <-done:
				if err != nil {
					log.Error("cannot close store", "err", err)
					return
				}
				log.Info("store closed", "took", time.Since(t).Round(time.Millisecond).String())
			case <-expired:
				log.Error("the store did not close within the shutdown plan; exiting all the same: acknowledged writes are in its WAL, replayed at the next start",
					"waited", time.Since(t).Round(time.Millisecond).String())
				go func() {
					// Only if the process outlives it (tests run in one).
					err := <-done
					log.Info("store closed after the shutdown plan", "took", time.Since(t).Round(time.Millisecond).String(), "err", err)
				}()
			}
		})
	}
}
