package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"trove/config"
	"trove/internal/testutil"
)

// TestClusterExample checks the three-machine example of the README
// ("Running a cluster", deploy/cluster/): nats-server reads each of its
// configs as a JetStream server of one three-route cluster that fsyncs
// every write, and the three Trove configs, which differ only in node,
// run as a cluster (on the in-process NATS servers: nats_url from the
// environment, as the README allows) that takes events on one node and
// exports them from every node.
func TestClusterExample(t *testing.T) {
	dir := filepath.Join("..", "deploy", "cluster")
	for i := 1; i <= 3; i++ {
		o, err := server.ProcessConfigFile(filepath.Join(dir, fmt.Sprintf("nats-%d.conf", i)))
		if err != nil {
			t.Fatal(err)
		}
		if o.ServerName != fmt.Sprintf("n%d", i) || !o.JetStream || !o.SyncAlways || o.Cluster.Name != "trove" || len(o.Routes) != 3 || o.MaxPayload < 1<<20 {
			t.Errorf("nats-%d.conf: server %q, jetstream %v, sync always %v, cluster %q with %d routes, max_payload %d; want n%d, a JetStream server that syncs always in cluster trove with 3 routes",
				i, o.ServerName, o.JetStream, o.SyncAlways, o.Cluster.Name, len(o.Routes), o.MaxPayload, i)
		}
	}
	var texts []string
	var first config.Config
	for i := 1; i <= 3; i++ {
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("trove-%d.toml", i)))
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Parse(b)
		if err != nil {
			t.Fatalf("trove-%d.toml: %v", i, err)
		}
		if !cfg.Cluster.Enabled() || cfg.Cluster.Node != fmt.Sprintf("trove-%d", i) || cfg.Cluster.Replicas != 3 {
			t.Errorf("trove-%d.toml: cluster %+v; want node trove-%d of a cluster of 3 replicas", i, cfg.Cluster, i)
		}
		cfg.Cluster.Node = ""
		if i == 1 {
			first = cfg
		} else if fmt.Sprint(cfg) != fmt.Sprint(first) {
			t.Errorf("trove-%d.toml differs from trove-1.toml in more than node", i)
		}
		texts = append(texts, string(b))
	}

	nats := startNATSCluster(t, 3)
	t.Setenv("TROVE_CLUSTER_NATS_URL", nats.URLs())
	var addrs []string
	for _, text := range texts {
		n := startServer(t, text+backendToken) // the token the export helpers use
		waitClusterReady(t, n.addr)
		addrs = append(addrs, n.addr)
	}
	var batch []string
	for i := range 20 {
		batch = append(batch, fmt.Sprintf(`{"type":"event","event":"e","userId":"u%d","eventTime":%q,"appKey":%q,"messageId":"example-%d"}`,
			i, time.Now().UTC().Format(time.RFC3339), demoApp, i))
	}
	decodeAnswer(t, postEvents(t, addrs[0], "["+strings.Join(batch, ",")+"]"), http.StatusAccepted)
	want := exportEvents(t, addrs[0], "")
	if len(want.lines) != 20 {
		t.Fatalf("node 1 exports %d events; want the 20 sent", len(want.lines))
	}
	for i, addr := range addrs[1:] {
		testutil.WaitFor(t, 30*time.Second, func() error {
			if got := exportEvents(t, addr, ""); !slices.Equal(got.lines, want.lines) || got.watermark != want.watermark {
				return fmt.Errorf("node %d exports %d lines up to %d; want node 1's %d up to %d", i+2, len(got.lines), got.watermark, len(want.lines), want.watermark)
			}
			return nil
		})
	}
}
