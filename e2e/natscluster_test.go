package e2e

// A NATS JetStream cluster in this process, for the cluster-mode tests
// (cluster_test.go): n nats-server from their Go module, named n1…nN, on
// loopback ports chosen up front (every route names every server's cluster
// port), fsyncing every write as our durability promise needs. Each server
// keeps its store across Kill and Restart, as a machine that went down and
// came back would. TestNATSClusterHarness shows that the cluster keeps
// what it acknowledged while its stream leader is killed.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"trove/internal/testutil"
)

// natsCluster is what startNATSCluster runs. Only the test's goroutine
// calls its methods.
type natsCluster struct {
	t       *testing.T
	opts    []natsserver.Options // each server's; a start gets a copy, as a server changes its own
	servers []*natsserver.Server // nil while down
	held    [][]int              // the ports of a server that is down (holdPorts)
}

// natsWait bounds every wait of the harness: a start, an election.
const natsWait = 30 * time.Second

// startNATSCluster starts n servers forming one JetStream cluster and
// returns once the meta leader is elected and counts every server as a
// peer (a stream of n replicas can then be created). They stop when the
// test ends.
func startNATSCluster(t *testing.T, n int) *natsCluster {
	t.Helper()
	ports := freePorts(t, 2*n) // n client ports, then n cluster ports
	var routes []*url.URL
	for i := range n {
		routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", ports[n+i])})
	}
	c := &natsCluster{t: t, servers: make([]*natsserver.Server, n), held: make([][]int, n)}
	for i := range n {
		c.opts = append(c.opts, natsserver.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       ports[i],
			JetStream:  true,
			StoreDir:   t.TempDir(),
			SyncAlways: true,
			MaxPayload: 8 << 20,
			NoLog:      true,
			NoSigs:     true,
			Cluster:    natsserver.ClusterOpts{Name: "trove-e2e", Host: "127.0.0.1", Port: ports[n+i]},
			Routes:     routes,
		})
		// Held until the server starts: the servers start one by one,
		// while other tests listen on port 0.
		c.held[i] = holdPorts(ports[i], ports[n+i])
	}
	// After t.TempDir, so it runs before the stores are removed.
	t.Cleanup(func() {
		c.KillAll()
		for i := range c.held {
			releasePorts(c.held[i])
		}
	})
	c.RestartAll()
	testutil.WaitFor(t, natsWait, func() error {
		for _, s := range c.servers {
			if s.JetStreamIsLeader() {
				if peers := s.JetStreamClusterPeers(); len(peers) != n {
					return fmt.Errorf("the JetStream meta leader knows peers %v", peers)
				}
				return nil
			}
		}
		return errors.New("no JetStream meta leader")
	})
	return c
}

// freePorts returns n loopback ports that were free a moment ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close() // all at the end, so that no port comes twice
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// holdPorts binds sockets to ports while their server is down, so that
// nothing the test starts meanwhile is given one of them: the kernel hands
// freed ports out again, and a Trove node started on 127.0.0.1:0 once took
// a killed server's cluster port, which then could not start again. The
// sockets do not listen, so a client connecting there is refused at once,
// as by a server that is down; the kernel skips a bound port when it picks
// one for a listener on port 0. A port that cannot be bound is skipped.
// releasePorts closes them, right before the server starts.
func holdPorts(ports ...int) []int {
	var fds []int
	for _, p := range ports {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
		if err != nil {
			continue
		}
		// As a listener has it, so that the killed server's connections
		// in TIME_WAIT do not keep the port from being bound.
		syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
		if err := syscall.Bind(fd, &syscall.SockaddrInet4{Port: p, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			syscall.Close(fd)
			continue
		}
		fds = append(fds, fd)
	}
	return fds
}

func releasePorts(fds []int) {
	for _, fd := range fds {
		syscall.Close(fd)
	}
}

// URLs is every server's client URL, comma-separated, as a node's config
// lists them (those of servers that are down too).
func (c *natsCluster) URLs() string {
	var urls []string
	for i := range c.opts {
		urls = append(urls, c.URL(i))
	}
	return strings.Join(urls, ",")
}

// URL is server i's client URL.
func (c *natsCluster) URL(i int) string { return fmt.Sprintf("nats://127.0.0.1:%d", c.opts[i].Port) }

// Kill shuts server i down at once and returns once it is down: its
// connections drop, and it takes part in no election from then on. It is
// no crash, though: nats-server's Shutdown first hands the leadership of
// its Raft groups to a peer, so its streams have a new leader within a
// few hundred milliseconds, where a crash leaves them without one for an
// election timeout (4 to 9 s). Killing a server that is down does nothing.
func (c *natsCluster) Kill(i int) {
	if s := c.servers[i]; s != nil {
		s.Shutdown()
		s.WaitForShutdown()
		c.servers[i] = nil
		c.held[i] = holdPorts(c.opts[i].Port, c.opts[i].Cluster.Port)
	}
}

// Restart starts server i again, with its ports, name and store, and
// returns once it accepts connections (it may still be catching up).
func (c *natsCluster) Restart(i int) {
	c.t.Helper()
	if c.servers[i] != nil {
		c.t.Fatalf("nats-server %s is running", c.opts[i].ServerName)
	}
	releasePorts(c.held[i])
	c.held[i] = nil
	opts := c.opts[i]
	s, err := natsserver.NewServer(&opts)
	if err != nil {
		c.t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(natsWait) {
		s.Shutdown()
		c.t.Fatalf("nats-server %s not ready after %v", opts.ServerName, natsWait)
	}
	c.servers[i] = s
}

// KillAll kills every server.
func (c *natsCluster) KillAll() {
	for i := range c.servers {
		c.Kill(i)
	}
}

// RestartAll starts every server that is down.
func (c *natsCluster) RestartAll() {
	c.t.Helper()
	for i, s := range c.servers {
		if s == nil {
			c.Restart(i)
		}
	}
}

// StreamLeader returns the index of the server that leads stream (of the
// default account), waiting until one does.
func (c *natsCluster) StreamLeader(t *testing.T, stream string) int {
	t.Helper()
	leader := -1
	testutil.WaitFor(t, natsWait, testutil.Until("a leader of stream "+stream, func() bool {
		for i, s := range c.servers {
			if s != nil && s.JetStreamIsStreamLeader(natsserver.DEFAULT_GLOBAL_ACCOUNT, stream) {
				leader = i
				return true
			}
		}
		return false
	}))
	return leader
}

// TestNATSClusterHarness kills the leader of a stream of 3 replicas while
// messages are published to it one by one, each retried with its message
// ID until acknowledged: the stream must then hold every message once, in
// order, and the killed server must come back as a current replica.
func TestNATSClusterHarness(t *testing.T) {
	start := time.Now()
	c := startNATSCluster(t, 3)
	t.Logf("meta leader elected after %v", time.Since(start))
	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	defer cancel()
	nc, err := nats.Connect(c.URLs())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "HARNESS", Subjects: []string{"harness.>"}, Replicas: 3, Storage: jetstream.FileStorage,
	})
	if err != nil {
		t.Fatal(err)
	}

	const perPhase = 200
	payload := func(i int) string { return fmt.Sprintf("message %03d", i) }
	tries := 0
	publish := func(i int) {
		t.Helper()
		testutil.WaitFor(t, natsWait, func() error {
			tries++
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			ack, err := js.Publish(pctx, "harness.x", []byte(payload(i)), jetstream.WithMsgID(fmt.Sprint("harness-", i)))
			if err != nil {
				return fmt.Errorf("message %d: %w", i, err)
			}
			if ack.Sequence != uint64(i+1) {
				t.Fatalf("message %d acknowledged as sequence %d; want %d", i, ack.Sequence, i+1)
			}
			return nil
		})
	}
	for i := range perPhase {
		publish(i)
	}
	if tries != perPhase {
		t.Fatalf("%d publishes for %d messages before any kill", tries, perPhase)
	}

	leader := c.StreamLeader(t, "HARNESS")
	killed := time.Now()
	c.Kill(leader)
	t.Logf("killed leader n%d in %v", leader+1, time.Since(killed))
	publish(perPhase)
	t.Logf("first message after the kill acknowledged after %v (%d tries); new leader n%d",
		time.Since(killed), tries-perPhase, c.StreamLeader(t, "HARNESS")+1)
	for i := perPhase + 1; i < 2*perPhase; i++ {
		publish(i)
	}
	t.Logf("%d publishes for %d messages", tries, 2*perPhase)

	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st := info.State; st.Msgs != 2*perPhase || st.FirstSeq != 1 || st.LastSeq != 2*perPhase {
		t.Fatalf("stream holds %d messages, sequences %d to %d; want %d, 1 to %d",
			st.Msgs, st.FirstSeq, st.LastSeq, 2*perPhase, 2*perPhase)
	}
	for i := range 2 * perPhase {
		m, err := stream.GetMsg(ctx, uint64(i+1))
		if err != nil {
			t.Fatalf("sequence %d: %v", i+1, err)
		}
		if string(m.Data) != payload(i) {
			t.Fatalf("sequence %d holds %q; want %q", i+1, m.Data, payload(i))
		}
	}

	restarted := time.Now()
	c.Restart(leader)
	testutil.WaitFor(t, natsWait, func() error {
		ictx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		info, err := stream.Info(ictx)
		if err != nil {
			return err
		}
		cl := info.Cluster
		if cl == nil || cl.Leader == "" || len(cl.Replicas) != 2 {
			return fmt.Errorf("stream cluster %+v", cl)
		}
		for _, r := range cl.Replicas {
			if !r.Current || r.Offline || r.Lag != 0 {
				return fmt.Errorf("replica %s: current %v, offline %v, lag %d", r.Name, r.Current, r.Offline, r.Lag)
			}
		}
		return nil
	})
	t.Logf("n%d current again %v after its restart", leader+1, time.Since(restarted))
}
