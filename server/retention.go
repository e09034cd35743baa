package server

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/goccy/go-json"

	"trove/cluster"
	"trove/config"
	"trove/storage"
)

// In cluster mode retention is an entry of the stream (README "Cluster
// mode"): a node whose config gives a retention publishes a pass, "cut as
// of this time with these retentions", when no node has published one for
// an interval, and every node applies it at its place in the stream
// (storage.DB.ExpireEntry). So every node cuts the same days after the
// same events, whenever it applies them, and a node that replays the
// stream from its start ends with the others' events.

// retentionPass is the entry of a pass of retention (JSON: one an hour,
// readable in the stream).
type retentionPass struct {
	// At is the time the pass cuts as of, the publisher's clock.
	At time.Time `json:"at"`
	// Keep is the retention of apps that Apps does not name; 0 keeps
	// their events forever.
	Keep time.Duration `json:"keep"`
	// Apps are the retentions that apps of the config set for themselves.
	Apps map[string]time.Duration `json:"apps,omitempty"`
}

// retentionPassOf is the pass cfg makes as of at, and false when cfg keeps
// every app's events forever.
func retentionPassOf(cfg *config.Config, at time.Time) (retentionPass, bool) {
	p := retentionPass{At: at.UTC(), Keep: cfg.Retention.Std()}
	for _, a := range cfg.Apps {
		if a.Retention > 0 {
			if p.Apps == nil {
				p.Apps = map[string]time.Duration{}
			}
			p.Apps[a.AppKey] = a.Retention.Std()
		}
	}
	return p, p.Keep > 0 || len(p.Apps) > 0
}

// keep gives appKey's retention in the pass.
func (p *retentionPass) keep(appKey string) time.Duration {
	if d, ok := p.Apps[appKey]; ok {
		return d
	}
	return p.Keep
}

// decodeRetentionPass decodes the entry of a pass, refusing what no node
// could have published.
func decodeRetentionPass(entry []byte) (retentionPass, error) {
	var p retentionPass
	if err := json.Unmarshal(entry, &p); err != nil {
		return p, fmt.Errorf("a retention entry that is not one: %w", err)
	}
	if p.At.IsZero() || p.Keep < 0 {
		return p, fmt.Errorf("a retention entry with no time or a negative retention: %q", entry)
	}
	for k, d := range p.Apps {
		if d <= 0 {
			return p, fmt.Errorf("a retention entry with retention %v for app %q", d, k)
		}
	}
	return p, nil
}

// clusterRetention publishes this node's passes and applies everyone's.
type clusterRetention struct {
	last atomic.Int64 // At of the last pass applied, Unix ns
}

// apply applies the pass of log entry seq to db.
func (r *clusterRetention) apply(db *storage.DB, seq uint64, entry []byte) error {
	p, err := decodeRetentionPass(entry)
	if err != nil {
		return err
	}
	if err := db.ExpireEntry(seq, p.At, p.keep); err != nil {
		return err
	}
	r.last.Store(max(r.last.Load(), p.At.UnixNano()))
	return nil
}

// publish runs until n closes: every interval/10 or so, once the node is
// caught up, it publishes a pass when no node has for interval. Nodes that
// start together each wait a random part of the first check, so that one
// of them publishes and the others see its pass applied.
func (r *clusterRetention) publish(n *cluster.Node, cfg *config.Config, interval time.Duration, log *slog.Logger) {
	check := max(interval/10, time.Second)
	wait := rand.N(min(check, 10*time.Second))
	for {
		select {
		case <-n.Done():
			return
		case <-time.After(wait):
		}
		if n.Status().Problem != "" {
			wait = min(check, 5*time.Second) // catching up, or cut off
			continue
		}
		wait = check/2 + rand.N(check/2+1)
		now := time.Now()
		if now.Sub(time.Unix(0, r.last.Load())) < interval {
			continue
		}
		p, ok := retentionPassOf(cfg, now)
		if !ok {
			return
		}
		entry, err := json.Marshal(p)
		if err == nil {
			_, err = n.Append(entryRetention, entry)
		}
		if err != nil {
			log.Warn("cannot publish a pass of retention to the stream; trying again later", "err", err)
		}
	}
}
