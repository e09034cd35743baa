package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"trove/apierr"
)

// Config is the [cluster] section (SPEC section 9).
type Config struct {
	URLs            string // nats_url: comma-separated server URLs
	Stream          string
	Replicas        int
	Node            string
	MaxLag          time.Duration
	CredentialsFile string
	// WriteTimeout bounds how long Append tries before it answers 503:
	// publishing with retries, then waiting for this node to apply the
	// entry. Zero means 10 s.
	WriteTimeout time.Duration
}

// An Applier applies log entry seq, of the kind it was appended with, to
// this node's store, and returns what Append returns for it on the node
// that appended it. An error leaves the entry unapplied: the node applies
// it again after a pause, and applies nothing after it until it succeeds.
type Applier func(seq uint64, kind string, entry []byte) (any, error)

// Header names of an entry's message.
const (
	headerKind = "Trove-Kind"
	headerNode = "Trove-Node"
)

// maxEntryBytes bounds an entry once inflated: what one request's batch
// can grow to, with room to spare.
const maxEntryBytes = 1 << 30

var (
	encoder, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	decoder, _ = zstd.NewReader(nil, zstd.WithDecoderMaxMemory(maxEntryBytes), zstd.WithDecoderConcurrency(0))
)

// Node is one Trove node's side of the log: it appends this node's writes
// and applies everyone's, in the stream's order. See doc.go.
type Node struct {
	cfg     Config
	apply   Applier
	log     *slog.Logger
	nc      *nats.Conn
	js      jetstream.JetStream
	subject string
	// idPrefix and ids make each appended message's Nats-Msg-Id, unique
	// across nodes and restarts, so that a publish retried after a lost
	// ack is stored once.
	idPrefix string
	ids      atomic.Uint64

	mu      sync.Mutex
	waiters map[string]chan result // by Nats-Msg-Id, for this node's Appends

	applied   atomic.Uint64 // the last entry applied
	appliedAt atomic.Int64  // when the stream stored it, Unix ns
	last      atomic.Uint64 // the stream's last entry, as last seen
	lastAt    atomic.Int64  // when the stream stored that, Unix ns
	seen      atomic.Bool   // the stream's state has been read
	// connected follows the connection's handlers, so that Status never
	// waits on the connection's lock, which a write to a server that
	// stopped reading holds for up to flushTimeout.
	connected atomic.Bool
	reading   atomic.Bool // the applier has a consumer of the stream
	stuck     atomic.Pointer[string]
	// kick makes the applier recreate its consumer (a reconnect, or a
	// stream that moved on while the applier did not: watchLoop).
	kick chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	done   sync.WaitGroup
}

type result struct {
	v   any
	err error
}

// Start connects to the NATS servers; Run then applies the stream. A
// server that cannot be reached is retried: the node serves what it has
// meanwhile and answers writes 503. applied is the last entry the store
// has applied, at is its time.
func Start(cfg Config, applied uint64, at time.Time, log *slog.Logger) (*Node, error) {
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	n := &Node{
		cfg:      cfg,
		log:      log.With("component", "cluster"),
		subject:  cfg.Stream + ".log",
		idPrefix: cfg.Node + "-" + strconv.FormatUint(rand.Uint64(), 36) + "-",
		waiters:  map[string]chan result{},
		kick:     make(chan struct{}, 1),
	}
	n.applied.Store(applied)
	if !at.IsZero() {
		n.appliedAt.Store(at.UnixNano())
	}
	opts := []nats.Option{
		nats.Name("trove " + cfg.Node),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(250 * time.Millisecond),
		// A server that stops answering (frozen, or cut off by a
		// partition) keeps its TCP connection open: pings find it within
		// seconds, and the client moves to another server.
		nats.PingInterval(time.Second),
		nats.MaxPingsOutstanding(3),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		// A server that stops reading (frozen, or behind a partition that
		// drops packets) stalls the write of a large entry once the
		// socket's buffers are full, and the client holds its lock through
		// that write: pings, publishes and Close all wait. nats.go's
		// default gives up after a minute; this moves to another server
		// within seconds.
		nats.FlusherTimeout(flushTimeout),
		// The handlers run in order on one goroutine of the client's;
		// ConnectHandler also runs for a connection made at once.
		nats.ConnectHandler(func(*nats.Conn) { n.connected.Store(true) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			n.connected.Store(false)
			if err != nil {
				n.log.Warn("disconnected from NATS; writes are refused until it is back", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			n.connected.Store(true)
			n.log.Info("reconnected to NATS", "url", c.ConnectedUrl())
			n.kickApplier()
		}),
		nats.ClosedHandler(func(*nats.Conn) { n.connected.Store(false) }),
		// Into the log rather than nats.go's own line on stderr, and
		// without the connection's lock, which its default takes.
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			n.log.Warn("NATS client error", "err", err)
		}),
	}
	if cfg.CredentialsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.CredentialsFile))
	}
	nc, err := nats.Connect(cfg.URLs, opts...)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to NATS at %s: %w", cfg.URLs, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	n.nc, n.js = nc, js
	n.ctx, n.cancel = context.WithCancel(context.Background())
	return n, nil
}

// Run creates the stream if it is absent and applies it with apply, from
// the entry after the last applied, in the background until Close. It is
// called once.
func (n *Node) Run(apply Applier) {
	n.apply = apply
	n.done.Add(2)
	go n.applyLoop(n.ctx)
	go n.watchLoop(n.ctx)
}

// flushTimeout bounds a write to a NATS server: a server that takes no
// more of an entry for that long is left for another. A 1 MB entry (NATS's
// default max_payload) needs 2.7 Mbit/s to make it.
const flushTimeout = 3 * time.Second

// closeWait bounds Close: closing the connection (which may wait up to
// the connect timeout, 2 s, for a reconnect's handshake) and then the
// applier.
const closeWait = 2 * time.Second

// Close stops applying and disconnects. Appends still waiting fail.
//
// The connection closes before the applier is waited for, and the wait is
// bounded: a reader that is recreating its consumer waits on a NATS
// request (up to 10 s a try while NATS does not answer), which only the
// close ends, and then nats.go sleeps out its back-off (up to 10 s after a
// long outage) before it sees it is stopped. An applier still in there
// applies nothing more: its connection is gone, and the store refuses
// writes once it closes; what it did not apply is applied at the next
// start, from the entry after the last applied.
func (n *Node) Close() {
	n.cancel()
	done := make(chan struct{})
	go func() {
		n.nc.Close()
		n.done.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(closeWait):
		n.log.Warn("the NATS connection and the reader of the stream did not stop within " + closeWait.String() + " (NATS does not answer); closing all the same")
	}
}

// Done is closed when Close is called.
func (n *Node) Done() <-chan struct{} { return n.ctx.Done() }

// Append publishes entry to the stream and returns once this node has
// applied it, with what the Applier returned. A stream that does not take
// it in time (no quorum, no server) is an apierr.Unavailable: the request
// is answered 503 with Retry-After, and a retry is stored once when it
// carries messageIds, as after any 503.
func (n *Node) Append(kind string, entry []byte) (any, error) {
	deadline := time.Now().Add(n.cfg.WriteTimeout)
	id := n.idPrefix + strconv.FormatUint(n.ids.Add(1), 10)
	ch := make(chan result, 1)
	n.mu.Lock()
	n.waiters[id] = ch
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		delete(n.waiters, id)
		n.mu.Unlock()
	}()
	msg := &nats.Msg{Subject: n.subject, Header: nats.Header{}, Data: encoder.EncodeAll(entry, nil)}
	msg.Header.Set(jetstream.MsgIDHeader, id)
	msg.Header.Set(headerKind, kind)
	msg.Header.Set(headerNode, n.cfg.Node)
	for attempt := 0; ; attempt++ {
		if n.ctx.Err() != nil {
			return nil, unavailable("this node is shutting down")
		}
		try := time.Now().Add(2 * time.Second)
		if try.After(deadline) {
			try = deadline
		}
		ctx, cancel := context.WithDeadline(n.ctx, try)
		_, err := n.js.PublishMsg(ctx, msg)
		cancel()
		if err == nil {
			break
		}
		if errors.Is(err, nats.ErrMaxPayload) {
			return nil, &apierr.Error{Kind: apierr.TooLarge, Code: "payload_too_large",
				Message: fmt.Sprintf("this batch is %d bytes compressed, over the NATS servers' max_payload of %d: send smaller batches, or raise max_payload", len(msg.Data), n.nc.MaxPayload())}
		}
		wait := backoff(attempt)
		if time.Now().Add(wait).After(deadline) {
			return nil, unavailable(fmt.Sprintf("the NATS stream %q did not take the write: %v", n.cfg.Stream, err))
		}
		select {
		case <-n.ctx.Done(): // the loop's first check answers
		case <-time.After(wait):
		}
	}
	// An entry the stream took is applied shortly, however long the
	// publishing took.
	select {
	case r := <-ch:
		return r.v, r.err
	case <-n.ctx.Done():
		return nil, unavailable("the write is in the stream, but this node is shutting down before it applied it")
	case <-time.After(max(time.Until(deadline), 2*time.Second)):
		return nil, unavailable(fmt.Sprintf("the write is in the stream, but this node has not applied it within %s (it is at entry %d)", n.cfg.WriteTimeout, n.applied.Load()))
	}
}

func unavailable(msg string) error {
	return &apierr.Error{Kind: apierr.Unavailable, Code: "cluster_unavailable", Message: msg + "; retry later"}
}

// backoff is the pause before retry attempt+1: doubling from 50 ms up to
// 1 s, with jitter so that nodes do not retry in step.
func backoff(attempt int) time.Duration {
	d := 50 * time.Millisecond << min(attempt, 5)
	d = min(d, time.Second)
	return d/2 + rand.N(d/2+1)
}

// applyLoop applies the stream in order from the entry after the last
// applied, recreating its consumer after any failure.
func (n *Node) applyLoop(ctx context.Context) {
	defer n.done.Done()
	for attempt := 0; ctx.Err() == nil; attempt++ {
		err := n.applyFrom(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			n.log.Warn("applying the stream stopped; resuming", "applied", n.applied.Load(), "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff(attempt)):
		}
	}
}

// applyFrom makes sure the stream exists and applies it until an error.
func (n *Node) applyFrom(ctx context.Context) error {
	if err := n.ensureStream(ctx); err != nil {
		return err
	}
	cons, err := n.js.OrderedConsumer(ctx, n.cfg.Stream, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   n.applied.Load() + 1,
	})
	if err != nil {
		return fmt.Errorf("cannot read the stream: %w", err)
	}
	// Short pulls with heartbeats: a consumer that a NATS restart left
	// without messages notices within seconds and resets itself.
	it, err := cons.Messages(jetstream.PullExpiry(4*time.Second), jetstream.PullHeartbeat(time.Second))
	if err != nil {
		return fmt.Errorf("cannot read the stream: %w", err)
	}
	defer it.Stop()
	n.reading.Store(true)
	defer n.reading.Store(false)
	// A kick cancels rctx, which ends Next, and the iterator stops when
	// Next has returned. Stop must not come while Next runs: nats.go's
	// ordered consumer recreates its consumer inside Next (after a
	// reconnect, or missed heartbeats), and a Stop between that and the
	// swap of its pull subscription misses the new one, which Next then
	// waits on (and which keeps pulling). Only a close stops it from
	// here, as a recreation that waits on NATS ignores rctx; the closed
	// connection then takes every subscription with it.
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		select {
		case <-n.kick:
			cancel()
		case <-rctx.Done():
		}
		select {
		case <-ctx.Done():
			it.Stop()
		case <-stopped:
		}
	}()
	for {
		msg, err := it.Next(jetstream.NextContext(rctx))
		if err != nil {
			if rctx.Err() != nil {
				return nil // a kick or a close, which said why
			}
			return err
		}
		if err := n.applyMsg(msg); err != nil {
			return err
		}
	}
}

// applyMsg applies one message, which must be the entry after the last.
func (n *Node) applyMsg(msg jetstream.Msg) error {
	md, err := msg.Metadata()
	if err != nil {
		return err
	}
	seq, want := md.Sequence.Stream, n.applied.Load()+1
	switch {
	case seq < want:
		return nil // delivered again
	case seq > want:
		s := fmt.Sprintf("the stream no longer holds entries %d to %d that this node needs (its retention dropped them): "+
			"restore this node from a recent backup of another node (`trove restore`), then start it again", want, seq-1)
		n.stuck.Store(&s)
		return errors.New(s)
	}
	entry, err := decoder.DecodeAll(msg.Data(), nil)
	var v any
	if err == nil {
		v, err = n.apply(seq, msg.Headers().Get(headerKind), entry)
	}
	if err != nil {
		s := fmt.Sprintf("cannot apply stream entry %d: %v", seq, err)
		n.stuck.Store(&s)
		return errors.New(s)
	}
	n.stuck.Store(nil)
	n.appliedAt.Store(md.Timestamp.UnixNano())
	n.applied.Store(seq)
	if id := msg.Headers().Get(jetstream.MsgIDHeader); id != "" {
		n.mu.Lock()
		ch := n.waiters[id]
		n.mu.Unlock()
		if ch != nil {
			ch <- result{v: v}
		}
	}
	return nil
}

// ensureStream creates the stream when it does not exist.
func (n *Node) ensureStream(ctx context.Context) error {
	// A NATS cluster that has just started answers no JetStream request
	// until it has elected its meta leader, a few seconds: a short first
	// request, tried again after a pause, makes a new cluster's nodes
	// ready as soon as it can answer.
	ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
	_, err := n.js.Stream(ictx, n.cfg.Stream)
	cancel()
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		if err != nil {
			return fmt.Errorf("cannot read the state of the stream %q (is JetStream up?): %w", n.cfg.Stream, err)
		}
		return nil
	}
	ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = n.js.CreateStream(ctx, jetstream.StreamConfig{
		Name:       n.cfg.Stream,
		Subjects:   []string{n.subject},
		Replicas:   n.cfg.Replicas,
		Storage:    jetstream.FileStorage,
		Retention:  jetstream.LimitsPolicy,
		Duplicates: 2 * time.Minute,
	})
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return nil // another node created it first
	}
	if err == nil {
		n.log.Info("created the stream", "stream", n.cfg.Stream, "replicas", n.cfg.Replicas)
	}
	return err
}

// kickApplier makes the applier start over from the entry after the last
// applied.
func (n *Node) kickApplier() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// stallAfter is how long the applier may stay put while the stream holds
// entries after it before watchLoop makes it start over: a consumer that
// a NATS restart left without messages recovers within it.
const stallAfter = 2 * time.Second

// watchLoop reads the stream's last entry every second, for the lag, and
// restarts an applier that has stalled.
func (n *Node) watchLoop(ctx context.Context) {
	defer n.done.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var at uint64
	since := time.Now()
	for {
		n.readState(ctx)
		if a := n.applied.Load(); a != at || n.last.Load() <= a {
			at, since = a, time.Now()
		} else if time.Since(since) > stallAfter {
			n.log.Warn("applying the stream stalled; reading it again", "applied", a, "stream_last", n.last.Load())
			n.kickApplier()
			since = time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (n *Node) readState(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	s, err := n.js.Stream(ctx, n.cfg.Stream)
	if err != nil {
		return
	}
	info := s.CachedInfo() // Stream asked for it: one request a second, not two
	n.lastAt.Store(info.State.LastTime.UnixNano())
	n.last.Store(info.State.LastSeq)
	n.seen.Store(true)
}

// Status is what /readyz and /metrics show of a node.
type Status struct {
	Connected bool
	Applied   uint64        // the last entry applied
	Last      uint64        // the stream's last entry, as last read
	Lag       uint64        // entries behind
	LagTime   time.Duration // how much older the last applied entry is than the stream's last
	Problem   string        // why the node is not ready, when it is not
}

// Status returns the node's state.
func (n *Node) Status() Status {
	s := Status{Connected: n.connected.Load(), Applied: n.applied.Load(), Last: n.last.Load()}
	if s.Last > s.Applied {
		s.Lag = s.Last - s.Applied
		s.LagTime = time.Duration(max(n.lastAt.Load()-n.appliedAt.Load(), 0))
	}
	switch {
	case n.stuck.Load() != nil:
		s.Problem = *n.stuck.Load()
	case !s.Connected:
		s.Problem = "not connected to NATS at " + n.cfg.URLs
	case !n.seen.Load():
		s.Problem = fmt.Sprintf("the stream %q has not been read yet", n.cfg.Stream)
	case !n.reading.Load():
		s.Problem = fmt.Sprintf("this node is (re)creating its reader of the stream %q", n.cfg.Stream)
	case s.LagTime > n.cfg.MaxLag:
		s.Problem = fmt.Sprintf("%d entries (%s) behind the stream, more than max_lag %s: catching up", s.Lag, s.LagTime.Round(time.Millisecond), n.cfg.MaxLag)
	}
	return s
}
