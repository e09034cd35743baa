package e2e

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"trove/internal/testutil"
)

// clusterChaosFor is how long TestClusterChaos kills nodes.
const clusterChaosFor = 45 * time.Second

// TestClusterChaos runs three Trove nodes (the built binary) on three
// nats-server processes, loads them through all three, and for
// clusterChaosFor kills one node at random every 3 to 7 s with SIGKILL, a
// Trove node or a NATS server, and starts it again 0.5 to 4 s later. Then
// every acknowledged batch is exported once, nothing else is, and the
// three nodes export the same bytes up to the same watermark. The seed is
// logged, so that a failing run can be replayed.
func TestClusterChaos(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	rnd := rand.New(rand.NewPCG(seed, 0))
	t.Logf("seed %d", seed)
	nats := startNATSProcs(t)
	urls := strings.Join(nats.urls, ",")
	var cfgs, dirs, addrs []string
	var nodes []*child
	for i := range 3 {
		cfgs = append(cfgs, writeConfigText(t, clusterConfig(urls, fmt.Sprintf("trove-%d", i+1))))
		dirs = append(dirs, t.TempDir())
		nodes = append(nodes, startChild(t, cfgs[i], dirs[i]))
		addrs = append(addrs, nodes[i].addr)
	}
	for _, a := range addrs {
		waitClusterReady(t, a)
	}
	w := startClusterWriters(t, 6, addrs...)
	pause := func(base, spread int) { time.Sleep(time.Duration(base+rnd.IntN(spread)) * time.Millisecond) }
	kills := map[string]int{}
	for end := time.Now().Add(clusterChaosFor); time.Now().Before(end); {
		pause(3000, 4000)
		i := rnd.IntN(3)
		if rnd.IntN(2) == 0 {
			w.setAddr(i, "")
			if err := nodes[i].cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			nodes[i].waitExit(t, 10*time.Second)
			pause(500, 3500)
			nodes[i] = startChild(t, cfgs[i], dirs[i])
			w.setAddr(i, nodes[i].addr)
			kills["trove"]++
			t.Logf("killed Trove node %d and started it again", i+1)
		} else {
			nats.kill(i)
			pause(500, 3500)
			nats.start(i)
			kills["nats"]++
			t.Logf("killed nats-server %s and started it again", nats.names[i])
		}
	}
	w.finish(t)
	var es []exported
	testutil.WaitFor(t, 2*time.Minute, testutil.Until("the three nodes to export up to the same watermark", func() bool {
		es = es[:0]
		for i, n := range nodes {
			// A node still catching up on a starved machine (a -race
			// build beside the other test runs) can outlast the client's
			// timeout; that is not converged yet, not a failure.
			url := exportURL(n.addr, "/v1/export/events", demoApp, "")
			r, err := tryRequest("GET", url, nil, exportHeader(nil)...)
			if err != nil {
				t.Logf("node %d: %v; trying again", i+1, err)
				return false
			}
			es = append(es, parseExport(t, url, r))
		}
		return es[0].watermark == es[1].watermark && es[1].watermark == es[2].watermark &&
			len(es[0].lines) == len(es[1].lines) && len(es[1].lines) == len(es[2].lines)
	}))
	for i := 1; i < 3; i++ {
		if !slices.Equal(es[0].lines, es[i].lines) {
			t.Errorf("node %d exports other bytes than node 1", i+1)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.mu.acked) < 100 {
		t.Errorf("only %d batches were acknowledged: the load did not run", len(w.mu.acked))
	}
	problems := clusterProblems(es[0].lines, w.mu.sent, w.mu.acked)
	for _, p := range problems {
		t.Error("node 1: " + p)
	}
	t.Logf("CLUSTER_CHAOS: trove_kills=%d nats_kills=%d sent=%d acked=%d exported=%d lost_or_duplicated=%d nodes_equal=%v",
		kills["trove"], kills["nats"], len(w.mu.sent), len(w.mu.acked), len(es[0].lines), len(problems), !t.Failed())
}
