package main

import (
	"net"
	"net/http"
	"time"

	"trove/storage"
)

// Set by tests, never in production: storeFSHook keeps the store in a
// crashable file system in memory (power-loss tests), and listenerHook is
// served instead of listening on a port (tests that connect in memory).
var (
	storeFSHook  *storage.MemFS
	listenerHook net.Listener
	// clockHook replaces the server's clock for ingest and for the store's
	// dedup window (tests that simulate hours passing).
	clockHook func() time.Time
	// commitHook runs in every store commit once it holds the store open
	// (tests that race shutdown with commits), and shutdownHook replaces
	// the shutdown plan (tests of its deadlines, shorter than 10 s).
	commitHook   func()
	shutdownHook *shutdownPlan
	// sinkTransportHook carries the sinks' requests to the object store
	// (tests that count or refuse them).
	sinkTransportHook http.RoundTripper
)
