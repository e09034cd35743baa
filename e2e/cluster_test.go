package e2e

// Cluster mode (SPEC section 9): Trove nodes in this process on a NATS
// JetStream cluster of three nats-server in this process (natscluster_test.go).
// The tests load the nodes as users do, take NATS servers and Trove nodes
// away under the load, and then compare what every node exports with what
// was acknowledged.

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goccy/go-json"

	"trove/cli"
	"trove/internal/testutil"
)

// clusterConfig is testConfig for one node of a cluster on urls.
func clusterConfig(urls, node string) string {
	return testConfig + fmt.Sprintf(`
[cluster]
nats_url = %q
node = %q
stream = "TROVE"
replicas = 3
max_lag = "5s"
`, urls, node)
}

// waitClusterReady waits until a node's /readyz answers 200: connected
// and caught up with the stream.
func waitClusterReady(t *testing.T, addr string) { waitReady(t, addr, http.StatusOK, time.Minute) }

// clusterBatch is the number of events in one batch of clusterWriters,
// and clusterPace the pause of a writer between two batches.
const (
	clusterBatch = 50
	clusterPace  = 20 * time.Millisecond
)

// clusterWriters send batches of events with messageIds to the nodes in
// turn. A batch that is not acknowledged (503 while NATS elects a leader,
// a node that is down) is sent again with the same messageIds, to the
// next node, until a 202: it must then be stored once.
type clusterWriters struct {
	mu struct {
		sync.Mutex
		addrs []string // "" for a node that is down
		acked map[string]bool
		sent  map[string]bool
	}
	errs []string
	stop chan struct{}
	wg   sync.WaitGroup
}

func startClusterWriters(t *testing.T, n int, addrs ...string) *clusterWriters {
	w := &clusterWriters{stop: make(chan struct{})}
	w.mu.addrs = addrs
	w.mu.acked, w.mu.sent = map[string]bool{}, map[string]bool{}
	client := &http.Client{Timeout: 20 * time.Second}
	for g := range n {
		w.wg.Go(func() {
			for b := 0; ; b++ {
				select {
				case <-w.stop:
					return
				default:
				}
				id := fmt.Sprintf("w%d-b%d", g, b)
				body := idBatch("cluster", "2026-12-07T10:00:00.000Z", id, g, clusterBatch)
				w.mu.Lock()
				w.mu.sent[id] = true
				w.mu.Unlock()
				if err := w.send(client, id, body, g+b); err != nil {
					w.mu.Lock()
					w.errs = append(w.errs, err.Error())
					w.mu.Unlock()
					return
				}
				time.Sleep(clusterPace) // a steady load, not a flood: the test is about failover

			}
		})
	}
	return w
}

// send posts one batch until a node acknowledges it, for at most a minute.
func (w *clusterWriters) send(client *http.Client, id string, body []byte, turn int) error {
	deadline := time.Now().Add(time.Minute)
	var last string
	for try := turn; time.Now().Before(deadline); try++ {
		w.mu.Lock()
		addr := w.mu.addrs[try%len(w.mu.addrs)]
		w.mu.Unlock()
		if addr == "" {
			continue
		}
		resp, err := client.Post("http://"+addr+"/v1/events", "application/json", bytes.NewReader(body))
		if err != nil {
			last = err.Error()
			time.Sleep(50 * time.Millisecond)
			continue
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusAccepted:
			var a struct{ Accepted, Duplicates, Rejected int }
			if err := json.Unmarshal(answer, &a); err != nil || a.Accepted+a.Duplicates != clusterBatch || a.Rejected != 0 {
				return fmt.Errorf("batch %s: answer %s; want %d accepted or duplicates", id, answer, clusterBatch)
			}
			w.mu.Lock()
			w.mu.acked[id] = true
			w.mu.Unlock()
			return nil
		case http.StatusServiceUnavailable:
			if resp.Header.Get("Retry-After") == "" {
				return fmt.Errorf("batch %s: 503 without Retry-After (%s)", id, answer)
			}
			last = string(answer)
			time.Sleep(100 * time.Millisecond)
		default:
			return fmt.Errorf("batch %s: status %d (%s); want 202 or 503", id, resp.StatusCode, answer)
		}
	}
	return fmt.Errorf("batch %s: no node acknowledged it within a minute; last: %s", id, last)
}

// setAddr changes where node i is reached ("" while it is down).
func (w *clusterWriters) setAddr(i int, addr string) {
	w.mu.Lock()
	w.mu.addrs[i] = addr
	w.mu.Unlock()
}

func (w *clusterWriters) finish(t *testing.T) {
	t.Helper()
	close(w.stop)
	w.wg.Wait()
	for _, e := range w.errs {
		t.Error(e)
	}
}

// clusterProblems compares an export's lines with the batches the writers
// sent and had acknowledged: every acknowledged batch whole, each event
// once, nothing that was not sent.
func clusterProblems(lines []string, sent, acked map[string]bool) []string {
	var problems []string
	seen := map[string]int{}
	perBatch := map[string]int{}
	for _, l := range lines {
		var ev struct {
			MessageID string `json:"messageId"`
		}
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			problems = append(problems, fmt.Sprintf("line %q is not JSON", l))
			continue
		}
		seen[ev.MessageID]++
		if seen[ev.MessageID] == 2 {
			problems = append(problems, "duplicate: "+ev.MessageID)
		}
		batch, _, _ := strings.Cut(ev.MessageID, "-e")
		if !sent[batch] {
			problems = append(problems, "never sent: "+ev.MessageID)
		}
		perBatch[batch]++
	}
	for b := range acked {
		if perBatch[b] < clusterBatch {
			problems = append(problems, fmt.Sprintf("lost: batch %s was acknowledged, %d of its %d events are exported", b, perBatch[b], clusterBatch))
		}
	}
	slices.Sort(problems)
	return problems
}

// TestClusterFailover loads two Trove nodes on a three-server NATS cluster,
// stops the stream's leader and kills one Trove node (the built binary,
// SIGKILL) under the load and brings both back: no acknowledged event is lost or stored twice, every node
// exports the same bytes with the same watermark (also one restored from a
// backup taken under the load, and one started on an empty directory),
// and a watermark from one node continues on another.
func TestClusterFailover(t *testing.T) {
	nats := startNATSCluster(t, 3)
	urls := nats.URLs()
	dir2 := t.TempDir()
	n1 := startServer(t, clusterConfig(urls, "trove-1"))
	// Node 2 is the built binary, so that it can be killed with SIGKILL.
	cfg2 := writeConfigText(t, clusterConfig(urls, "trove-2"))
	n2 := startChild(t, cfg2, dir2)
	waitClusterReady(t, n1.addr)
	waitClusterReady(t, n2.addr)

	w := startClusterWriters(t, 4, n1.addr, n2.addr)
	pause := func() { time.Sleep(1500 * time.Millisecond) }
	pause()
	leader := nats.StreamLeader(t, "TROVE")
	nats.Kill(leader)
	t.Logf("stopped NATS server %d, the stream's leader", leader)
	pause()
	mid := exportEvents(t, n1.addr, "")
	w.setAddr(1, "")
	if err := n2.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	n2.waitExit(t, 10*time.Second)
	t.Log("killed Trove node 2 with SIGKILL")
	pause()
	nats.Restart(leader)
	n2 = startChild(t, cfg2, dir2)
	w.setAddr(1, n2.addr)
	t.Log("restarted both")
	pause()
	backupFile := filepath.Join(t.TempDir(), "trove-1.tar.zst")
	if code, out := withStderr(runCmd(t, cli.Backup, "-o", backupFile, "--server", "http://"+n1.addr, "--token", adminSecret)); code != 0 {
		t.Fatalf("trove backup of node 1: exit %d:\n%s", code, out)
	}
	pause()
	w.finish(t)

	// A node restored from node 1's backup applies the stream after the
	// backup's position; a node on an empty directory applies all of it.
	dir3 := filepath.Join(t.TempDir(), "restored")
	if code, out := withStderr(runCmd(t, cli.Restore, backupFile, "-data", dir3)); code != 0 {
		t.Fatalf("trove restore: exit %d:\n%s", code, out)
	}
	n3 := startServer(t, clusterConfig(urls, "trove-3"), inDir(dir3))
	n4 := startServer(t, strings.Replace(clusterConfig(urls, "trove-4"), `max_lag = "5s"`, `max_lag = "100ms"`, 1))
	// While node 4 catches up it is not ready, and says why.
	behind := ""
	testutil.WaitFor(t, time.Minute, func() error {
		r := request(t, "GET", "http://"+n4.addr+"/readyz", nil)
		if r.status == http.StatusServiceUnavailable && strings.Contains(string(r.body), "behind the stream") {
			behind = string(r.body)
		}
		if r.status != http.StatusOK {
			return fmt.Errorf("node 4's /readyz: %d %s", r.status, r.body)
		}
		return nil
	})
	if behind == "" {
		t.Error("node 4 was never reported behind the stream by /readyz while it caught up")
	}
	t.Logf("node 4 while catching up: %s", strings.TrimSpace(behind))

	// Every node reaches the same watermark once it has caught up.
	var e1, e2 exported
	others := map[string]string{"node 2 (killed and restarted)": n2.addr, "node 3 (restored from a backup)": n3.addr, "node 4 (empty at start)": n4.addr}
	testutil.WaitFor(t, 60*time.Second, testutil.Until("every node to export up to the same watermark", func() bool {
		e1 = exportEvents(t, n1.addr, "")
		for _, addr := range others {
			if e := exportEvents(t, addr, ""); e.watermark != e1.watermark || len(e.lines) != len(e1.lines) {
				return false
			}
		}
		return true
	}))
	e2 = exportEvents(t, n2.addr, "")
	for name, addr := range others {
		if e := exportEvents(t, addr, ""); !slices.Equal(e.lines, e1.lines) {
			t.Errorf("%s exports other bytes than node 1", name)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	t.Logf("%d batches sent, %d acknowledged; %d events exported by each node, watermark %d",
		len(w.mu.sent), len(w.mu.acked), len(e1.lines), e1.watermark)
	if len(w.mu.acked) < 10 {
		t.Errorf("only %d batches were acknowledged: the load did not run", len(w.mu.acked))
	}
	for _, p := range clusterProblems(e1.lines, w.mu.sent, w.mu.acked) {
		t.Error("node 1: " + p)
	}
	if !slices.Equal(e1.lines, e2.lines) {
		t.Errorf("the nodes export different bytes: %d and %d lines", len(e1.lines), len(e2.lines))
	}
	// What node 1 exported under the load, then node 2 from node 1's
	// watermark: the whole export, nothing missed or repeated.
	rest := exportEvents(t, n2.addr, fmt.Sprintf("since=%d", mid.watermark))
	if got := append(slices.Clone(mid.lines), rest.lines...); !slices.Equal(got, e1.lines) {
		t.Errorf("node 1 up to watermark %d (%d lines), then node 2 from there (%d lines), is not the whole export (%d lines)",
			mid.watermark, len(mid.lines), len(rest.lines), len(e1.lines))
	}

	// The stream of events from node 4 (empty at start), from node 1's
	// watermark, gives the same events byte for byte.
	resp, stream := openStream(t, n4.addr, mid.watermark)
	var streamed []string
	timeout := time.After(30 * time.Second)
	for len(streamed) < len(rest.lines) {
		select {
		case l, ok := <-stream:
			if !ok {
				t.Fatalf("node 4's stream ended after %d of %d events", len(streamed), len(rest.lines))
			}
			var sl streamLine
			if err := json.Unmarshal([]byte(l), &sl); err != nil {
				t.Fatalf("stream line %q: %v", l, err)
			}
			if sl.Watermark == nil {
				streamed = append(streamed, string(sl.Event))
			}
		case <-timeout:
			t.Fatalf("node 4's stream gave %d of %d events in 30s", len(streamed), len(rest.lines))
		}
	}
	resp.Body.Close()
	if !slices.Equal(streamed, rest.lines) {
		t.Error("node 4's /v1/stream/events from node 1's watermark differs from node 2's export from it")
	}
	// Every node's /metrics shows the same applied entry once caught up.
	applied := func(addr string) string {
		r := request(t, "GET", "http://"+addr+"/metrics", nil)
		for l := range strings.Lines(string(r.body)) {
			if v, ok := strings.CutPrefix(l, "trove_cluster_applied_entry "); ok {
				return strings.TrimSpace(v)
			}
		}
		t.Fatalf("%s/metrics has no trove_cluster_applied_entry", addr)
		return ""
	}
	if a1, a4 := applied(n1.addr), applied(n4.addr); a1 != a4 || a1 == "0" {
		t.Errorf("trove_cluster_applied_entry: node 1 %s, node 4 %s; want the same, not 0", a1, a4)
	}

	// Negative control: the check sees a lost event and a repeated one.
	if len(e1.lines) > 1 {
		lost := clusterProblems(e1.lines[1:], w.mu.sent, w.mu.acked)
		twice := clusterProblems(append(slices.Clone(e1.lines), e1.lines[0]), w.mu.sent, w.mu.acked)
		if len(lost) == 0 || !strings.HasPrefix(lost[0], "lost") || len(twice) == 0 || !strings.HasPrefix(twice[0], "duplicate") {
			t.Errorf("the check missed a removed line (%v) or a repeated one (%v)", lost, twice)
		}
	}
	t.Logf("CLUSTER_FAILOVER: sent=%d acked=%d exported=%d lost=%d duplicates=%d nodes_equal=%v",
		len(w.mu.sent), len(w.mu.acked), len(e1.lines), countPrefix(clusterProblems(e1.lines, w.mu.sent, w.mu.acked), "lost"),
		countPrefix(clusterProblems(e1.lines, w.mu.sent, w.mu.acked), "duplicate"), slices.Equal(e1.lines, e2.lines))
}

func countPrefix(list []string, prefix string) int {
	n := 0
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}

// TestClusterNATSDown stops every NATS server under a node: writes get 503
// with Retry-After, never a 202, the node stays up and serves exports, and
// takes writes again once NATS is back. A node started while NATS is down
// serves too, unready, and catches up once it is back.
func TestClusterNATSDown(t *testing.T) {
	nats := startNATSCluster(t, 3)
	n := startServer(t, clusterConfig(nats.URLs(), "trove-1"))
	waitClusterReady(t, n.addr)
	before := postEvents(t, n.addr, "["+event("before", "m-before")+"]")
	decodeAnswer(t, before, http.StatusAccepted)

	for i := range 3 {
		nats.Kill(i)
	}
	testutil.WaitFor(t, 30*time.Second, testutil.Until("/readyz to answer 503 with NATS down", func() bool {
		r := request(t, "GET", "http://"+n.addr+"/readyz", nil)
		return r.status == http.StatusServiceUnavailable
	}))
	for i := range 3 {
		r := postEvents(t, n.addr, "["+event("down", fmt.Sprintf("m-down-%d", i))+"]")
		if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
			t.Fatalf("a write with NATS down: status %d, Retry-After %q (%s); want 503 with Retry-After", r.status, r.header.Get("Retry-After"), r.body)
		}
	}
	if got := exportEvents(t, n.addr, ""); len(got.lines) != 1 {
		t.Errorf("with NATS down the export has %d lines; want the 1 stored before", len(got.lines))
	}
	// A node that starts while NATS is down serves, is not ready, and
	// refuses writes; it catches up once NATS is back.
	n2 := startServer(t, clusterConfig(nats.URLs(), "trove-2"))
	if r := request(t, "GET", "http://"+n2.addr+"/readyz", nil); r.status != http.StatusServiceUnavailable {
		t.Errorf("/readyz of a node started with NATS down: %d %s; want 503", r.status, r.body)
	}
	if r := postEvents(t, n2.addr, "["+event("down", "m-down-n2")+"]"); r.status != http.StatusServiceUnavailable {
		t.Errorf("a write to a node started with NATS down: %d %s; want 503", r.status, r.body)
	}

	for i := range 3 {
		nats.Restart(i)
	}
	waitClusterReady(t, n.addr)
	waitClusterReady(t, n2.addr)
	// As a client does after a 503: sent again, with its messageId, until
	// a 202 (the NATS servers may still be electing leaders).
	testutil.WaitFor(t, 30*time.Second, func() error {
		r := postEvents(t, n.addr, "["+event("after", "m-after")+"]")
		if r.status != http.StatusAccepted {
			return fmt.Errorf("a write after NATS came back: status %d (%s)", r.status, r.body)
		}
		return nil
	})
	got := messageIDs(t, exportEvents(t, n.addr, "").lines)
	if !slices.Equal(got, []string{"m-before", "m-after"}) {
		t.Errorf("exported %v; want [m-before m-after]: the refused writes must not be stored", got)
	}
	testutil.WaitFor(t, 30*time.Second, func() error {
		if got2 := messageIDs(t, exportEvents(t, n2.addr, "").lines); !slices.Equal(got2, got) {
			return fmt.Errorf("the node started with NATS down exports %v; want node 1's %v", got2, got)
		}
		return nil
	})
	t.Logf("CLUSTERDOWN: nats_down=3/3 writes_refused_503=4 accepted_while_down=0 readyz_while_down=503 started_while_down=served recovered=yes exported=%d", len(got))
}

// TestClusterProfiles sends profile operations on one profile to two
// nodes at once: every node applies them in the stream's order, so the
// counters, sets and pyze_ids are the same everywhere, an Idempotency-Key
// sent to one node is honoured by the other, a 409 is the same from both,
// and a user deleted on one node is deleted on the other.
func TestClusterProfiles(t *testing.T) {
	nats := startNATSCluster(t, 3)
	urls := nats.URLs()
	nodes := []*testServer{startServer(t, clusterConfig(urls, "trove-1")), startServer(t, clusterConfig(urls, "trove-2"))}
	for _, n := range nodes {
		waitClusterReady(t, n.addr)
	}
	const perNode = 40
	testutil.Concurrently(t, len(nodes), func(i int) error {
		for k := range perNode {
			body := fmt.Sprintf(`{"appKey":"%s","user_profiles":[{"userId":"counter","custom-n":{"inc":1},"custom-tags":{"add":["n%d-%d"]}},{"userId":"u-%d-%d"}]}`, demoApp, i, k, i, k)
			r := postProfiles(t, nodes[i].addr, body)
			if r.status != http.StatusAccepted {
				return fmt.Errorf("node %d, request %d: status %d (%s)", i+1, k, r.status, r.body)
			}
		}
		return nil
	})
	var want []byte
	for i, n := range nodes {
		// A node answers once it has applied its own writes; the other
		// node's last ones reach it a moment later.
		testutil.WaitFor(t, 10*time.Second, func() error {
			code, p := getProfile(t, n.addr, "userId=counter")
			if code != http.StatusOK {
				return fmt.Errorf("node %d: GET the profile: %d", i+1, code)
			}
			attrs, _ := p["attributes"].(map[string]any)
			tags, _ := attrs["custom-tags"].([]any)
			if attrs["custom-n"] != float64(2*perNode) || len(tags) != 2*perNode {
				return fmt.Errorf("node %d: custom-n %v and %d tags; want %d and %d", i+1, attrs["custom-n"], len(tags), 2*perNode, 2*perNode)
			}
			return nil
		})
		r := request(t, "GET", "http://"+n.addr+"/v1/export/profiles?appKey="+demoApp, nil, "Authorization: Bearer "+backendSecret)
		if r.status != http.StatusOK || bytes.Count(r.body, []byte("\n")) != 1+2*perNode {
			t.Fatalf("node %d: export of profiles: %d, %d lines; want 200 and %d", i+1, r.status, bytes.Count(r.body, []byte("\n")), 1+2*perNode)
		}
		if i == 0 {
			want = r.body
		} else if !bytes.Equal(r.body, want) {
			t.Errorf("node %d exports other profiles (pyze_ids, order or values) than node 1", i+1)
		}
	}

	// An Idempotency-Key is the cluster's, not a node's.
	once := `{"appKey":"` + demoApp + `","user_profiles":[{"userId":"once","custom-n":{"inc":1}}]}`
	first := postProfiles(t, nodes[0].addr, once, "Idempotency-Key: k-1")
	again := postProfiles(t, nodes[1].addr, once, "Idempotency-Key: k-1")
	if first.status != http.StatusAccepted || again.status != http.StatusAccepted || again.header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(first.body, again.body) {
		t.Errorf("an Idempotency-Key sent again to the other node: %d %s, then %d %q %s; want the same answer, replayed",
			first.status, first.body, again.status, again.header.Get("Idempotent-Replayed"), again.body)
	}
	if _, p := getProfile(t, nodes[1].addr, "userId=once"); p["attributes"].(map[string]any)["custom-n"] != float64(1) {
		t.Errorf("after a replayed Idempotency-Key: %v; want custom-n 1", p["attributes"])
	}

	// A conflict is answered alike by both nodes.
	decodeAnswer(t, postProfiles(t, nodes[0].addr, `{"appKey":"`+demoApp+`","user_profiles":[{"userId":"x","user_alias":{"alias_label":"device","alias_id":"d-1"}}]}`), http.StatusAccepted)
	clash := `{"appKey":"` + demoApp + `","user_profiles":[{"userId":"y","user_alias":{"alias_label":"device","alias_id":"d-1"}}]}`
	c1, c2 := postProfiles(t, nodes[0].addr, clash), postProfiles(t, nodes[1].addr, clash)
	if c1.status != http.StatusConflict || c2.status != c1.status || !bytes.Equal(c1.body, c2.body) {
		t.Errorf("the same conflicting request: node 1 %d %s, node 2 %d %s; want one 409", c1.status, c1.body, c2.status, c2.body)
	}

	// A Segment identify (its event, and its traits through the profile
	// log) sent to node 2 with a token, read back on node 1.
	id := segmentPost(t, nodes[1].addr, "/v1/identify", []byte(`{"userId":"seg-user","messageId":"seg-1","traits":{"firstName":"Ada"}}`),
		jsonType, "Authorization: Basic "+base64Std(backendSecret+":"))
	if id.status != http.StatusOK {
		t.Fatalf("Segment identify on node 2: %d %s", id.status, id.body)
	}
	testutil.WaitFor(t, 10*time.Second, func() error {
		if code, p := getProfile(t, nodes[0].addr, "userId=seg-user"); code != http.StatusOK || p["first_name"] != "Ada" {
			return fmt.Errorf("node 1's profile of seg-user: %d %v; want first_name Ada", code, p)
		}
		return nil
	})

	// Deleting the user on node 1, with suppress=1: node 2 forgets the
	// profile and the event too, and refuses the user's later events.
	r := request(t, "DELETE", "http://"+nodes[0].addr+"/v1/users/profile?appKey="+demoApp+"&userId=seg-user&suppress=1", nil, "Authorization: Bearer "+adminSecret)
	if r.status != http.StatusOK {
		t.Fatalf("DELETE of a user on node 1: %d %s; want 200", r.status, r.body)
	}
	testutil.WaitFor(t, 10*time.Second, func() error {
		if code, _ := getProfile(t, nodes[1].addr, "userId=seg-user"); code != http.StatusNotFound {
			return fmt.Errorf("node 2's profile of the deleted user: %d; want 404", code)
		}
		return nil
	})
	for i, n := range nodes {
		for _, l := range exportEvents(t, n.addr, "").lines {
			if strings.Contains(l, `"seg-user"`) {
				t.Errorf("node %d still exports an event of the deleted user: %s", i+1, l)
			}
		}
	}
	later := decodeAnswer(t, postEvents(t, nodes[1].addr, `[{"type":"event","event":"after","userId":"seg-user","eventTime":"2026-12-07T10:00:00Z","appKey":"`+demoApp+`"}]`), http.StatusBadRequest)
	if later.Accepted != 0 || later.Rejected != 1 {
		t.Errorf("an event of the user deleted with suppress=1, sent to node 2: %+v; want refused", later)
	}
}

// TestClusterAdmin changes apps, tokens and contracts on one node and uses
// them on the other: an app and a token created on different nodes work on
// both, a name is taken once across the cluster, a token revoked on one
// node is refused by the other, and contracts get the same versions.
func TestClusterAdmin(t *testing.T) {
	nats := startNATSCluster(t, 3)
	urls := nats.URLs()
	n1, n2 := startServer(t, clusterConfig(urls, "trove-1")), startServer(t, clusterConfig(urls, "trove-2"))
	waitClusterReady(t, n1.addr)
	waitClusterReady(t, n2.addr)
	admin := func(addr, method, path, body string) response {
		t.Helper()
		return request(t, method, "http://"+addr+path, strings.NewReader(body), jsonType, "Authorization: Bearer "+adminSecret)
	}
	decode := func(r response, want int, v any) {
		t.Helper()
		if r.status != want {
			t.Fatalf("status %d (%s); want %d", r.status, r.body, want)
		}
		if err := json.Unmarshal(r.body, v); err != nil {
			t.Fatal(err)
		}
	}
	var app struct{ AppKey string }
	decode(admin(n1.addr, "POST", "/admin/apps", `{"name":"cluster-app","requireToken":true}`), http.StatusCreated, &app)
	// The other node applies the app before it answers its own next write.
	var tok struct{ ID, Token string }
	decode(admin(n2.addr, "POST", "/admin/tokens", `{"name":"cluster-token","scopes":["ingest","export"],"apps":["`+app.AppKey+`"]}`), http.StatusCreated, &tok)
	if r := admin(n2.addr, "POST", "/admin/apps", `{"name":"cluster-app"}`); r.status != http.StatusConflict {
		t.Errorf("the same app name on the other node: %d %s; want 409", r.status, r.body)
	}
	ev := `[{"type":"event","event":"e","userId":"u","eventTime":"2026-12-07T10:00:00Z","appKey":"` + app.AppKey + `","messageId":"adm-1"}]`
	bearer := "Authorization: Bearer " + tok.Token
	testutil.WaitFor(t, 10*time.Second, func() error {
		if r := postEvents(t, n1.addr, ev, jsonType, bearer); r.status != http.StatusAccepted {
			return fmt.Errorf("node 1, the token made on node 2: %d %s", r.status, r.body)
		}
		return nil
	})

	// Revoked on node 1: refused by node 2 once it has applied that.
	if r := admin(n1.addr, "DELETE", "/admin/tokens/"+tok.ID, ""); r.status != http.StatusOK {
		t.Fatalf("revoking on node 1: %d %s", r.status, r.body)
	}
	if r := postEvents(t, n1.addr, ev, jsonType, bearer); r.status != http.StatusUnauthorized {
		t.Errorf("node 1 after it revoked the token: %d %s; want 401", r.status, r.body)
	}
	testutil.WaitFor(t, 10*time.Second, func() error {
		if r := postEvents(t, n2.addr, ev, jsonType, bearer); r.status != http.StatusUnauthorized {
			return fmt.Errorf("node 2, the token revoked on node 1: %d %s; want 401", r.status, r.body)
		}
		return nil
	})

	// Contracts: versions follow the stream, whichever node takes them.
	path := "/admin/apps/" + app.AppKey + "/schemas/e"
	var s1, s2 struct{ Version int }
	decode(admin(n2.addr, "PUT", path, `{"type":"object"}`), http.StatusOK, &s1)
	decode(admin(n1.addr, "PUT", path, `{"type":"object","required":["userId"]}`), http.StatusOK, &s2)
	if s1.Version != 1 || s2.Version != 2 {
		t.Errorf("contract versions %d then %d, put on two nodes; want 1 then 2", s1.Version, s2.Version)
	}
	testutil.WaitFor(t, 10*time.Second, func() error {
		r := admin(n2.addr, "GET", path, "")
		var got struct{ Version int }
		if r.status != http.StatusOK || json.Unmarshal(r.body, &got) != nil || got.Version != 2 {
			return fmt.Errorf("node 2's contract: %d %s; want version 2", r.status, r.body)
		}
		return nil
	})
	if r := admin(n1.addr, "PUT", path, `{"type":"nonsense"}`); r.status != http.StatusBadRequest {
		t.Errorf("a schema that does not compile: %d %s; want 400", r.status, r.body)
	}
}

// TestClusterRetention: retention is an entry of the stream. Events of
// several ages stored by two nodes that keep everything; node 1 restarted
// with `retention = "7d"` publishes a pass, and both nodes cut the same
// days (node 2 too, though its own config keeps everything: the pass
// decides), the younger events stay, and a node that starts empty and
// replays the stream ends with the same export, byte for byte.
func TestClusterRetention(t *testing.T) {
	nats := startNATSCluster(t, 3)
	urls := nats.URLs()
	dir1 := t.TempDir()
	n1 := startServer(t, clusterConfig(urls, "trove-1"), inDir(dir1))
	n2 := startServer(t, clusterConfig(urls, "trove-2"))
	waitClusterReady(t, n1.addr)
	waitClusterReady(t, n2.addr)
	now := time.Now().UTC()
	var batch []string
	for _, age := range []int{20, 12, 9, 2, 0} {
		at := now.Add(-time.Duration(age) * 24 * time.Hour).Format(time.RFC3339)
		batch = append(batch, fmt.Sprintf(`{"type":"event","event":"age-%d","userId":"u","eventTime":%q,"appKey":%q,"messageId":"ret-%d"}`, age, at, demoApp, age))
	}
	decodeAnswer(t, postEvents(t, n2.addr, "["+strings.Join(batch, ",")+"]"), http.StatusAccepted)
	if got := exportEvents(t, n2.addr, "").lines; len(got) != 5 {
		t.Fatalf("before retention node 2 exports %d events; want 5", len(got))
	}
	n1.stop()
	n1 = startServer(t, strings.Replace(clusterConfig(urls, "trove-1"), `log_level = "debug"`, "log_level = \"debug\"\nretention = \"7d\"", 1), inDir(dir1))

	want := []string{"age-2", "age-0"}
	names := func(lines []string) []string {
		var got []string
		for _, l := range lines {
			var e struct{ Event string }
			if err := json.Unmarshal([]byte(l), &e); err != nil {
				t.Fatalf("%v: %s", err, l)
			}
			got = append(got, e.Event)
		}
		return got
	}
	nodes := map[string]string{"node 1 (retention 7d)": n1.addr, "node 2 (keeps everything)": n2.addr}
	for name, addr := range nodes {
		testutil.WaitFor(t, time.Minute, func() error {
			if got := names(exportEvents(t, addr, "").lines); !slices.Equal(got, want) {
				return fmt.Errorf("%s exports %v; want %v after the pass", name, got, want)
			}
			return nil
		})
	}
	n3 := startServer(t, clusterConfig(urls, "trove-3"))
	nodes["node 3 (replayed the stream)"] = n3.addr
	ref := exportEvents(t, n1.addr, "")
	for name, addr := range nodes {
		testutil.WaitFor(t, time.Minute, func() error {
			if e := exportEvents(t, addr, ""); !slices.Equal(e.lines, ref.lines) || e.watermark != ref.watermark {
				return fmt.Errorf("%s exports %v up to %d; want node 1's %v up to %d", name, names(e.lines), e.watermark, want, ref.watermark)
			}
			return nil
		})
	}
	// Node 1's watermark, after an entry of no event, continues on node 2.
	if e := exportEvents(t, n2.addr, fmt.Sprintf("since=%d", ref.watermark)); len(e.lines) != 0 || e.watermark != ref.watermark {
		t.Errorf("node 2 from node 1's watermark %d: %d lines up to %d; want none, up to the same", ref.watermark, len(e.lines), e.watermark)
	}
	// The pass is counted where it ran (compacted in the background).
	for name, addr := range nodes {
		testutil.WaitFor(t, 30*time.Second, func() error {
			if v := scrape(t, addr)["trove_retention_removed_seconds_total"]; v != 3*86400 {
				return fmt.Errorf("%s: trove_retention_removed_seconds_total = %v; want 3 days (259200)", name, v)
			}
			return nil
		})
	}
}
