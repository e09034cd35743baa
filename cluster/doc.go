// Package cluster is a Trove node's side of cluster mode (SPEC section 9):
// the NATS JetStream stream is the replicated log, and every node applies
// it, in the stream's order, into its own store. Trove never replicates by
// itself: the stream's raft groups keep the copies, and a node is a
// deterministic function of the entries it has applied.
//
// The package moves opaque entries; what they hold, and how a store
// applies them, is the caller's (server wires ingest.LogSink and
// ingest.ApplyEntry to it). One entry is one message on subject
// "<stream>.log", its payload compressed with zstd, with headers:
//
//	Nats-Msg-Id   <node>-<boot id>-<counter>: unique per Append, so that a
//	              publish retried after a lost ack is stored once (the
//	              stream's duplicate window is 2 minutes)
//	Trove-Kind    what the entry is ("events")
//	Trove-Node    the node that appended it
//
// Writing: Node.Append publishes and waits for the stream's ack, retrying
// with jittered back-off while there is no quorum, then waits until this
// node's applier has applied that very message and returns what applying
// it gave (so that answers are exactly a single node's: duplicates are
// those of the stream's order). Past Config.WriteTimeout it gives up with
// an apierr.Unavailable, which is a 503 with Retry-After; an entry that
// the stream did take is still applied, like a write whose 202 was lost.
//
// Applying: an ordered consumer from the entry after the store's last
// applied one (storage.DB.Applied), recreated after any failure. An entry
// that fails to apply is applied again after a pause, and nothing after it
// is applied meanwhile; /readyz says why. A gap (the stream's retention
// dropped entries the node never applied) stops the node with a message
// that says to restore it from another node's backup.
//
// Status gives /readyz and /metrics the node's position against the
// stream's last entry, read once a second.
//
// Closing never waits long on NATS: Node.Close closes the connection,
// which fails every request in flight, and waits for that and the applier
// (whose ordered consumer may be sleeping out nats.go's back-off) for two
// seconds at most. Only a close calls the iterator's Stop while Next runs
// (see applyFrom). A write that a server stops reading is given up after
// flushTimeout, and Status reads the connection's state from its handlers,
// so that /readyz never waits on the connection's lock.
package cluster
