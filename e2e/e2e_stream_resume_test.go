package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goccy/go-json"

	"trove/export"
)

// streamLine is one line of GET /v1/stream/events?envelope=1: an event
// with its sequence, or a heartbeat with the follower's watermark.
type streamLine struct {
	Seq       uint64          `json:"seq"`
	Event     json.RawMessage `json:"event"`
	Watermark *uint64         `json:"watermark"`
}

// openStream opens the enveloped stream of the demo app after since and
// returns its response and a channel of its lines, closed when the body
// ends or is closed.
func openStream(t *testing.T, addr string, since uint64) (*http.Response, <-chan string) {
	t.Helper()
	url := "http://" + addr + "/v1/stream/events?appKey=" + demoApp + "&envelope=1&since=" + strconv.FormatUint(since, 10)
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+backendSecret)
	resp, err := (&http.Client{}).Do(req) // no timeout: the body stays open
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("GET %s: status %d: %s", url, resp.StatusCode, b)
	}
	if resp.Header.Get("X-Trove-Watermark") == "" {
		t.Errorf("GET %s: no X-Trove-Watermark header", url)
	}
	lines := make(chan string, 4096)
	go func() {
		defer close(lines)
		br := bufio.NewReader(resp.Body)
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			lines <- strings.TrimSuffix(l, "\n")
		}
	}()
	return resp, lines
}

// TestE2EStreamResume cuts a follower of the enveloped stream off in the
// middle of ingest and reconnects it with since= the last sequence it saw:
// the two connections together give every exported event exactly once,
// byte for byte, in sequence order.
func TestE2EStreamResume(t *testing.T) {
	old := export.StreamHeartbeat
	export.StreamHeartbeat = 20 * time.Millisecond // watermark heartbeats between batches
	t.Cleanup(func() { export.StreamHeartbeat = old })
	const writers, batches, perBatch, cutAfter = 3, 15, 10, 100
	addr := startServer(t, testConfig).addr
	decodeAnswer(t, postEvents(t, addr, "["+event("r", "r-before-1")+","+event("r", "r-before-2")+"]"), http.StatusAccepted)

	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for b := range batches {
				evs := make([]string, perBatch)
				for i := range evs {
					evs[i] = event("r", fmt.Sprintf("r-%d-%d-%d", w, b, i))
				}
				if err := postBatch(addr, "["+strings.Join(evs, ",")+"]", perBatch); err != nil {
					t.Errorf("writer %d batch %d: %v", w, b, err)
					return
				}
				// Another app's events take sequences the follower never sees.
				other := `{"type":"event","event":"o","userId":"u1","eventTime":"2020-06-03T17:03:48Z","appKey":"` + otherApp + `","messageId":"o-` + fmt.Sprint(w, b) + `"}`
				if r := postEvents(t, addr, other, jsonType, "Authorization: Bearer "+otherSecret); r.status != http.StatusAccepted {
					t.Errorf("other app: status %d: %s", r.status, r.body)
				}
			}
		})
	}

	var got []string // the events, as streamed
	var last uint64  // the last sequence seen, of an event or a heartbeat
	events, heartbeats := 0, 0
	read := func(lines <-chan string, until func() bool) bool {
		timeout := time.After(30 * time.Second)
		for !until() {
			select {
			case l, ok := <-lines:
				if !ok {
					return false
				}
				var sl streamLine
				if err := json.Unmarshal([]byte(l), &sl); err != nil {
					t.Fatalf("stream line %q is not JSON: %v", l, err)
				}
				switch {
				case sl.Watermark != nil:
					if *sl.Watermark < last {
						t.Fatalf("heartbeat %q after sequence %d", l, last)
					}
					last = *sl.Watermark
					heartbeats++
				case sl.Seq > last && len(sl.Event) > 0:
					last = sl.Seq
					got = append(got, string(sl.Event))
					events++
				default:
					t.Fatalf("stream line %q after sequence %d: want a greater seq and an event, or a watermark", l, last)
				}
			case <-timeout:
				t.Fatalf("only %d events streamed within 30s", len(got))
			}
		}
		return true
	}

	resp, lines := openStream(t, addr, 0)
	if !read(lines, func() bool { return len(got) >= cutAfter }) {
		t.Fatalf("the first stream ended after %d events", len(got))
	}
	resp.Body.Close() // cut off mid-stream, while the writers post
	for range lines {
		// Lines already read from the socket were never handed over.
	}
	cut := len(got)

	resp, lines = openStream(t, addr, last)
	defer resp.Body.Close()
	wg.Wait()
	if t.Failed() {
		return
	}
	want := exportEvents(t, addr, "since=0")
	if !read(lines, func() bool { return len(got) >= len(want.lines) }) {
		t.Fatalf("the second stream ended after %d events", len(got))
	}
	if cut >= len(want.lines) {
		t.Fatalf("the cut came after all %d events; want it mid-stream", cut)
	}
	count := map[string]int{}
	for _, l := range got {
		count[l]++
	}
	for _, l := range want.lines {
		if count[l] != 1 {
			t.Errorf("exported line %s streamed %d times; want once", l, count[l])
		}
		delete(count, l)
	}
	for l := range count {
		t.Errorf("streamed line %s is not in the export", l)
	}
	if len(got) != len(want.lines) {
		t.Errorf("streamed %d events (%d before the cut); want the %d exported", len(got), cut, len(want.lines))
	}
	if !t.Failed() {
		t.Logf("STREAMRESUME: writers=%d exported=%d streamed=%d before_cut=%d heartbeats=%d repeated=0 missing=0", writers, len(want.lines), len(got), cut, heartbeats)
	}
}
