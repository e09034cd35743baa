package main

import (
	"net"

	"trove/storage"
)

// Set by tests, never in production: storeFSHook keeps the store in a
// crashable file system in memory (power-loss tests), and listenerHook is
// served instead of listening on a port (tests that connect in memory).
var (
	storeFSHook  *storage.MemFS
	listenerHook net.Listener
)
