package server

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"trove/apierr"
	"trove/cluster"
	"trove/config"
	"trove/ingest"
	"trove/storage"
)

// Cluster mode (SPEC section 9, README "Cluster mode"): the node's writes
// go through the NATS stream, and every node applies the stream in order.
// This file wires the cluster package to the store and to the handlers.

// Kinds of log entries.
const (
	entryEvents    = "events"    // one request's batch of events (ingest.LogSink)
	entryProfiles  = "profiles"  // profile writes (profile.Handler.ApplyEntry)
	entryAdmin     = "admin"     // apps, tokens, revocations, contracts (admin.Handler.ApplyEntry)
	entryRetention = "retention" // a pass of retention (retention.go)
)

// startCluster connects this node to the NATS servers; runCluster then
// applies the stream to db after what db has applied.
func startCluster(cfg config.Config, db *storage.DB, log *slog.Logger) (*cluster.Node, error) {
	c := cfg.Cluster
	applied, at := db.Applied()
	n, err := cluster.Start(cluster.Config{
		URLs:            c.NATSURL,
		Stream:          c.Stream,
		Replicas:        c.Replicas,
		Node:            c.Node,
		MaxLag:          c.MaxLag.Std(),
		CredentialsFile: c.CredentialsFile,
	}, applied, at, log)
	if err != nil {
		return nil, err
	}
	log.Info("cluster mode", "node", c.Node, "stream", c.Stream, "nats_url", c.NATSURL, "applied", applied)
	return n, nil
}

// runCluster applies the stream with the handlers that store each kind,
// and publishes this node's passes of retention.
func runCluster(n *cluster.Node, a *apis, db *storage.DB, cfg *config.Config, log *slog.Logger) {
	icfg := ingestConfig(cfg)
	var r clusterRetention
	n.Run(func(seq uint64, kind string, entry []byte) (any, error) {
		switch kind {
		case entryEvents:
			return ingest.ApplyEntry(&icfg, db, seq, entry)
		case entryProfiles:
			return a.profile.ApplyEntry(seq, entry)
		case entryAdmin:
			return a.admin.ApplyEntry(seq, entry)
		case entryRetention:
			return nil, r.apply(db, seq, entry)
		}
		return nil, fmt.Errorf("an entry of kind %q, which this version of Trove does not know: upgrade this node", kind)
	})
	go r.publish(n, cfg, storage.DefaultRetentionInterval, log)
}

// logOf is the logentry.Log of a node: entries of kind.
type logOf struct {
	n    *cluster.Node
	kind string
}

func (l logOf) Append(entry []byte) (any, error) { return l.n.Append(l.kind, entry) }

// clusterGate is the write gate of a node: writes wait for the node to be
// connected and caught up, as /readyz says.
func clusterGate(n *cluster.Node, next func() error) func() error {
	return func() error {
		if err := next(); err != nil {
			return err
		}
		if p := n.Status().Problem; p != "" {
			return &apierr.Error{Kind: apierr.Unavailable, Code: "cluster_unavailable", Message: "this cluster node cannot take writes now: " + p}
		}
		return nil
	}
}

// writeClusterMetrics writes the node's series.
func writeClusterMetrics(w io.Writer, n *cluster.Node) {
	s := n.Status()
	connected := 0
	if s.Connected {
		connected = 1
	}
	var b strings.Builder
	for _, m := range []struct {
		name string
		v    float64
	}{
		{"trove_cluster_applied_entry", float64(s.Applied)},
		{"trove_cluster_stream_last_entry", float64(s.Last)},
		{"trove_cluster_lag_entries", float64(s.Lag)},
		{"trove_cluster_lag_seconds", s.LagTime.Seconds()},
		{"trove_cluster_connected", float64(connected)},
	} {
		fmt.Fprintf(&b, "# HELP %s\n# TYPE %s gauge\n%s %g\n", m.name, m.name, m.name, m.v)
	}
	io.WriteString(w, b.String())
}
