package server

import (
	"net"
	"net/http"
	"time"

	"trove/storage"
)

// Options is what Serve takes besides its command line.
type Options struct {
	// Version is the build's version (main's, set with -ldflags "-X
	// main.version=…"): trove_build_info on /metrics and backups carry it.
	Version string
	// Hooks are for tests; production leaves every one nil.
	Hooks
}

// Hooks let a test reach into one server without package globals, so that
// servers of several tests can run in one process side by side. Each nil
// hook leaves the production behaviour.
type Hooks struct {
	// OnReady is called with the bound address once the server accepts
	// connections.
	OnReady func(addr string)
	// StoreFS keeps the store in a crashable file system in memory
	// (power-loss tests).
	StoreFS *storage.MemFS
	// Listener is served instead of listening on a port (tests that
	// connect in memory).
	Listener net.Listener
	// Clock replaces the server's clock for ingest and for the store's
	// dedup window (tests that simulate hours passing).
	Clock func() time.Time
	// Commit runs in every store commit once it holds the store open
	// (tests that race shutdown with commits).
	Commit func()
	// Shutdown replaces the shutdown plan (tests of its deadlines,
	// shorter than 10 s).
	Shutdown *ShutdownPlan
	// SinkTransport carries the sinks' requests to the object store (tests
	// that count or refuse them).
	SinkTransport http.RoundTripper
	// FreeSpace reports the free bytes of the data directory's file system
	// in place of the file system itself.
	FreeSpace func(dir string) (uint64, error)
}
