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
)

// TestE2EWatermarkConcurrentPulls checks the watermark contract under load:
// an incremental puller that always asks since=<last X-Trove-Watermark>
// while writers commit concurrently gets every acknowledged event exactly
// once, and nothing that was not acknowledged.
func TestE2EWatermarkConcurrentPulls(t *testing.T) {
	t.Parallel()
	const writers, batches, perBatch = 4, 40, 20
	addr := startServer(t, testConfig).addr

	var (
		mu    sync.Mutex
		acked = map[string]bool{}
	)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				ids := make([]string, perBatch)
				var body strings.Builder
				body.WriteByte('[')
				for i := range ids {
					ids[i] = fmt.Sprintf("wm-%d-%d-%d", w, b, i)
					if i > 0 {
						body.WriteByte(',')
					}
					body.WriteString(event("wm", ids[i]))
				}
				body.WriteByte(']')
				if err := postBatch(addr, body.String(), perBatch); err != nil {
					t.Errorf("writer %d batch %d: %v", w, b, err)
					return
				}
				mu.Lock()
				for _, id := range ids {
					acked[id] = true
				}
				mu.Unlock()
			}
		}()
	}
	writersDone := make(chan struct{})
	go func() { wg.Wait(); close(writersDone) }()

	seen := map[string]int{}
	var last uint64
	pulls := 0
	pull := func() bool {
		pulls++
		ids, wm, err := pullSince(addr, last)
		if err != nil {
			t.Errorf("pull %d since %d: %v", pulls, last, err)
			return false
		}
		if wm < last {
			t.Errorf("pull %d: the watermark went back from %d to %d", pulls, last, wm)
		}
		for _, id := range ids {
			seen[id]++
		}
		last = wm
		return true
	}
	for running := true; running; {
		select {
		case <-writersDone:
			running = false
		default:
			if !pull() {
				<-writersDone
				running = false
			}
		}
	}
	if t.Failed() {
		return
	}
	pull() // after the last acknowledgement: everything is at or below the watermark

	mu.Lock()
	defer mu.Unlock()
	if len(acked) != writers*batches*perBatch {
		t.Fatalf("%d events acknowledged; want %d", len(acked), writers*batches*perBatch)
	}
	missing, dup, extra := 0, 0, 0
	for id := range acked {
		switch n := seen[id]; {
		case n == 0:
			missing++
			if missing <= 5 {
				t.Errorf("acknowledged %s never exported", id)
			}
		case n > 1:
			dup++
			if dup <= 5 {
				t.Errorf("%s exported %d times", id, n)
			}
		}
	}
	for id := range seen {
		if !acked[id] {
			extra++
			if extra <= 5 {
				t.Errorf("%s exported but never acknowledged", id)
			}
		}
	}
	if missing+dup+extra > 0 {
		t.Errorf("%d missing, %d duplicated, %d unacknowledged, over %d pulls", missing, dup, extra, pulls)
	}
	t.Logf("%d events over %d pulls, final watermark %d", len(seen), pulls, last)
}

// postBatch posts a batch and checks that all of it was accepted. It is
// safe in any goroutine: it reports instead of failing the test.
func postBatch(addr, body string, n int) error {
	resp, err := httpClient.Post("http://"+addr+"/v1/events", "application/json", strings.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	var a answer
	if err := json.Unmarshal(b, &a); err != nil {
		return fmt.Errorf("answer %q: %v", b, err)
	}
	if a.Accepted != n || a.Duplicates != 0 || a.Rejected != 0 {
		return fmt.Errorf("answer %s; want %d accepted", b, n)
	}
	return nil
}

// pullSince exports the demo app's events since a watermark and returns
// their messageIds and the new watermark.
func pullSince(addr string, since uint64) (ids []string, wm uint64, err error) {
	req, err := http.NewRequest("GET", "http://"+addr+"/v1/export/events?appKey="+demoApp+"&since="+strconv.FormatUint(since, 10), nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+backendSecret)
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, 0, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	if wm, err = strconv.ParseUint(resp.Header.Get("X-Trove-Watermark"), 10, 64); err != nil {
		return nil, 0, fmt.Errorf("X-Trove-Watermark %q: %v", resp.Header.Get("X-Trove-Watermark"), err)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var ev struct {
			MessageID string `json:"messageId"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return nil, 0, fmt.Errorf("line %q: %v", sc.Bytes(), err)
		}
		ids = append(ids, ev.MessageID)
	}
	if err := sc.Err(); err != nil {
		return nil, 0, err
	}
	return ids, wm, nil
}

// TestE2EWatermarkStream follows GET /v1/stream/events while writers post:
// the follower gets every acknowledged event exactly once, without
// reconnecting, and stopping the server ends the stream.
func TestE2EWatermarkStream(t *testing.T) {
	t.Parallel()
	const writers, batches, perBatch = 4, 10, 20
	srv := startServer(t, testConfig)
	addr, stop := srv.addr, srv.stop
	decodeAnswer(t, postEvents(t, addr, "["+event("s", "s-before-1")+","+event("s", "s-before-2")+"]"), http.StatusAccepted)

	req, err := http.NewRequest("GET", "http://"+addr+"/v1/stream/events?appKey="+demoApp+"&since=0", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+backendSecret)
	resp, err := (&http.Client{}).Do(req) // no timeout: the body stays open
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	lines := make(chan string, 1024)
	end := make(chan error, 1)
	go func() {
		br := bufio.NewReader(resp.Body)
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				end <- err
				close(lines)
				return
			}
			lines <- strings.TrimSuffix(l, "\n")
		}
	}()

	acked := map[string]bool{"s-before-1": true, "s-before-2": true}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for b := range batches {
				ids := make([]string, perBatch)
				evs := make([]string, perBatch)
				for i := range ids {
					ids[i] = fmt.Sprintf("s-%d-%d-%d", w, b, i)
					evs[i] = event("s", ids[i])
				}
				if err := postBatch(addr, "["+strings.Join(evs, ",")+"]", perBatch); err != nil {
					t.Errorf("writer %d batch %d: %v", w, b, err)
					return
				}
				mu.Lock()
				for _, id := range ids {
					acked[id] = true
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	seen := map[string]int{}
	timeout := time.After(30 * time.Second)
	for len(seen) < len(acked) {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the stream ended after %d of %d events: %v", len(seen), len(acked), <-end)
			}
			if l == "" {
				continue // heartbeat
			}
			id := messageIDs(t, []string{l})[0]
			if !acked[id] {
				t.Fatalf("%s streamed but never acknowledged", id)
			}
			if seen[id]++; seen[id] > 1 {
				t.Fatalf("%s streamed twice", id)
			}
		case <-timeout:
			t.Fatalf("only %d of %d events streamed within 30s", len(seen), len(acked))
		}
	}
	stop() // must not wait for the follower, which it ends
	select {
	case <-end:
	case <-time.After(15 * time.Second):
		t.Fatal("the stream stayed open after the server stopped")
	}
	for l := range lines {
		if l != "" {
			t.Errorf("extra line after every event: %q", l)
		}
	}
}
