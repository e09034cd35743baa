package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goccy/go-json"
)

// rateConfig limits the demo app to 5 events/s in bursts of 20; the other
// app is unlimited.
const rateConfig = `
admin_token = "` + adminSecret + `"

[[apps]]
name = "demo"
app_key = "` + demoApp + `"
rate_limit = 5
rate_burst = 20

[[apps]]
name = "other"
app_key = "` + otherApp + `"
` + backendToken

// eventOf returns a valid event of app.
func eventOf(app, messageID string) string {
	return `{"type":"event","event":"rate","userId":"u1","eventTime":"2024-01-02T03:04:05Z","appKey":"` + app + `","messageId":"` + messageID + `"}`
}

// batchOf returns a JSON array of n events of app, messageIds prefix-0…
func batchOf(app, prefix string, n int) string {
	var b strings.Builder
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(eventOf(app, fmt.Sprintf("%s-%d", prefix, i)))
	}
	b.WriteByte(']')
	return b.String()
}

// checkRateLimited checks a 429: an integer Retry-After within [1, max]
// and the JSON error body.
func checkRateLimited(t *testing.T, status int, header http.Header, body []byte, maxWait int) {
	t.Helper()
	if status != http.StatusTooManyRequests {
		t.Fatalf("status %d (%s); want 429", status, body)
	}
	ra := header.Get("Retry-After")
	n, err := strconv.Atoi(ra)
	if err != nil || n < 1 || n > maxWait {
		t.Errorf("Retry-After %q; want an integer number of seconds in [1, %d]", ra, maxWait)
	}
	var e struct{ Error, Message, Field, AppKey string }
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("429 body %q is not JSON: %v", body, err)
	}
	if e.Error != "rate_limited" || e.Field != "appKey" || e.AppKey != demoApp || !strings.Contains(e.Message, "rate limit") {
		t.Errorf("429 body %s; want error rate_limited, field appKey, appKey %s and a message", body, demoApp)
	}
}

// TestE2ERateLimit floods the demo app past its limit from four clients
// while one client sends to the other app: the flood gets 429s with
// Retry-After and stores only what was answered 202, and the other app's
// requests all get 202, fast.
func TestE2ERateLimit(t *testing.T) {
	addr := startServer(t, rateConfig).addr
	url := "http://" + addr + "/v1/events"
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	defer client.CloseIdleConnections()
	post := func(body string) (int, http.Header, []byte, error) {
		resp, err := client.Post(url, "application/json", strings.NewReader(body))
		if err != nil {
			return 0, nil, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, b, err
	}

	const flooders, perBatch, floodFor = 4, 5, 1500 * time.Millisecond
	var (
		mu        sync.Mutex
		acked     []string // messageIds of the demo app answered 202
		limited   int
		latencies []time.Duration // of the other app's requests
		wg        sync.WaitGroup
	)
	start := time.Now()
	for g := range flooders {
		wg.Go(func() {
			for b := 0; time.Since(start) < floodFor; b++ {
				prefix := fmt.Sprintf("f%d-b%d", g, b)
				status, h, body, err := post(batchOf(demoApp, prefix, perBatch))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				switch status {
				case http.StatusAccepted:
					for i := range perBatch {
						acked = append(acked, fmt.Sprintf("%s-%d", prefix, i))
					}
				default:
					limited++
					checkRateLimited(t, status, h, body, 1)
				}
				mu.Unlock()
			}
		})
	}
	wg.Go(func() {
		for i := 0; time.Since(start) < floodFor; i++ {
			t0 := time.Now()
			status, _, body, err := post(eventOf(otherApp, fmt.Sprintf("o-%d", i)))
			d := time.Since(t0)
			if err != nil || status != http.StatusAccepted {
				t.Errorf("other app, request %d: status %d (%s), %v; want 202", i, status, body, err)
				return
			}
			mu.Lock()
			latencies = append(latencies, d)
			mu.Unlock()
		}
	})
	wg.Wait()
	elapsed := time.Since(start)

	if limited == 0 {
		t.Fatalf("no request was refused; want 429s once the burst of 20 is spent")
	}
	// The bucket starts with 20 tokens and gains 5 a second.
	if hi := 20 + int(5*elapsed.Seconds()) + perBatch; len(acked) < 20 || len(acked) > hi {
		t.Errorf("%d events of the rate-limited app were accepted in %v; want between 20 and %d", len(acked), elapsed, hi)
	}
	slices.Sort(latencies)
	if len(latencies) == 0 {
		t.Fatal("the other app sent nothing")
	}
	median, worst := latencies[len(latencies)/2], latencies[len(latencies)-1]
	t.Logf("flood: %d events accepted, %d requests refused in %v; other app: %d requests, median %v, max %v",
		len(acked), limited, elapsed.Round(time.Millisecond), len(latencies), median, worst)
	if median > 250*time.Millisecond || worst > 2*time.Second {
		t.Errorf("the other app's requests took median %v, max %v during the flood; want under 250ms and 2s", median, worst)
	}

	// A batch that also carries the limited app is refused whole: none of
	// the other app's events in it is stored.
	mixed := "[" + strings.Trim(batchOf(otherApp, "mixed", 1), "[]") + "," + strings.Trim(batchOf(demoApp, "mixed-demo", 20), "[]") + "]"
	status, h, body, err := post(mixed)
	if err != nil {
		t.Fatal(err)
	}
	checkRateLimited(t, status, h, body, 4)

	// A batch larger than the burst can never pass: 413, no Retry-After.
	status, h, body, err = post(batchOf(demoApp, "big", 21))
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusRequestEntityTooLarge || h.Get("Retry-After") != "" || !bytes.Contains(body, []byte("rate_burst of 20")) {
		t.Errorf("batch of 21: status %d, Retry-After %q, body %s; want 413 naming rate_burst, no Retry-After", status, h.Get("Retry-After"), body)
	}

	// Profile updates count against the same bucket, one per profile.
	var profiles strings.Builder
	profiles.WriteString(`{"appKey":"` + demoApp + `","user_profiles":[`)
	for i := range 20 {
		if i > 0 {
			profiles.WriteByte(',')
		}
		fmt.Fprintf(&profiles, `{"userId":"p%d","first_name":"P"}`, i)
	}
	profiles.WriteString("]}")
	r := postProfiles(t, addr, profiles.String())
	checkRateLimited(t, r.status, r.header, r.body, 4)

	// Within the Retry-After, the app gets through again; poll for it
	// every tenth of a second, when the bucket gains half a token.
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		id := fmt.Sprintf("after-%d", i)
		status, _, body, err := post(eventOf(demoApp, id))
		if err != nil {
			t.Fatal(err)
		}
		if status == http.StatusAccepted {
			acked = append(acked, id)
			break
		}
		if status != http.StatusTooManyRequests || time.Now().After(deadline) {
			t.Fatalf("after the flood: status %d (%s); want 202 within 10s", status, body)
		}
		<-tick.C
	}

	// Exactly what was answered 202 is stored.
	got := messageIDs(t, exportFrom(t, addr, "/v1/export/events", demoApp, "", "Authorization: Bearer "+adminSecret).lines)
	slices.Sort(got)
	slices.Sort(acked)
	if !slices.Equal(got, acked) {
		t.Errorf("the limited app's export has %d events; want the %d answered 202 (first: got %.5q; want %.5q)", len(got), len(acked), got, acked)
	}
	other := messageIDs(t, exportFrom(t, addr, "/v1/export/events", otherApp, "", "Authorization: Bearer "+adminSecret).lines)
	if len(other) != len(latencies) {
		t.Errorf("the other app's export has %d events; want the %d answered 202 (none from the refused mixed batch)", len(other), len(latencies))
	}
}
