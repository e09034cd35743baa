package e2e

// The memory flood: the real binary, built without -race (the race
// detector multiplies memory), flooded with valid near-limit batches from
// many connections. Its peak RSS must stay under what the README promises
// (Operations, Memory), every answer must be 202 or 503 with Retry-After,
// and every acknowledged event must be exported exactly once.

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goccy/go-json"
)

var (
	memFloodConns = flag.Int("memflood.conns", 200, "connections of TestMemoryFlood")
	memFloodFor   = flag.Duration("memflood.for", 4*time.Second, "how long TestMemoryFlood sends new batches")
	memFloodBin   = flag.String("memflood.bin", "", "binary TestMemoryFlood runs instead of building one (to measure another build)")
)

// memFloodMaxRSS is the peak RSS the README promises under this flood
// with the default http.max_body_memory (Operations, Memory).
const memFloodMaxRSS = 300 << 20

var plainBin builtBinary

// plainBinary returns the binary built without -race: the same one as
// troveBinary when the tests run without it.
func plainBinary(t *testing.T) string {
	t.Helper()
	if *memFloodBin != "" {
		return *memFloodBin
	}
	if !raceEnabled() {
		return troveBinary(t)
	}
	return plainBin.get(t, "trove-plain", moduleRoot, ".")
}

// Each flood event is floodEventLen bytes; a batch holds floodEvents of
// them, about 4.5 MiB, under ingest.max_request_bytes of 5 MiB.
const (
	floodEvents = 8_800
	floodPad    = 330
)

// floodEvent appends event i of batch to dst. Its messageId is a UUID that
// names both: <batch as 8 hex digits>-0000-4000-8000-<i as 12 hex digits>.
func floodEvent(dst []byte, batch uint32, i int) []byte {
	dst = append(dst, `{"type":"event","event":"flood","userId":"u`...)
	dst = fmt.Appendf(dst, "%06d", i%1000000)
	dst = append(dst, `","eventTime":"2026-11-01T10:00:00.000Z","appKey":"`+demoApp+`","messageId":"`...)
	dst = fmt.Appendf(dst, "%08x-0000-4000-8000-%012x", batch, i)
	dst = append(dst, `","attributes":{"pad":"`...)
	dst = append(dst, strings.Repeat("x", floodPad)...)
	return append(dst, `"}}`...)
}

var floodEventLen = len(floodEvent(nil, 0, 0))

// floodBodyLen is the length of a batch: '[', the events, commas, ']'.
var floodBodyLen = 2 + floodEvents*floodEventLen + floodEvents - 1

// floodBody writes a batch as it is read, so that hundreds of them in
// flight do not take the client's memory.
type floodBody struct {
	batch uint32
	next  int    // the next event to format
	pend  []byte // formatted, not yet read
	done  bool
}

func (f *floodBody) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(f.pend) == 0 {
			switch {
			case f.done:
				if n == 0 {
					return 0, io.EOF
				}
				return n, nil
			case f.next == floodEvents:
				f.pend, f.done = append(f.pend[:0], ']'), true
			default:
				buf := f.pend[:0]
				if f.next == 0 {
					buf = append(buf, '[')
				} else {
					buf = append(buf, ',')
				}
				f.pend = floodEvent(buf, f.batch, f.next)
				f.next++
			}
		}
		c := copy(p[n:], f.pend)
		f.pend, n = f.pend[c:], n+c
	}
	return n, nil
}

// vmHWM reads the peak resident set size of process pid.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}

// TestMemoryFlood floods the binary with valid 4.5 MiB batches (8,800 events) from 200
// connections for a few seconds.
func TestMemoryFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/PID/status")
	}
	bin := plainBinary(t)
	cfgPath := filepath.Join(t.TempDir(), "trove.toml")
	cfg := strings.Replace(testConfig, `log_level = "debug"`, `log_level = "info"`, 1)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startChildBin(t, bin, cfgPath, t.TempDir())
	pid := c.cmd.Process.Pid
	idle := vmHWM(t, pid)

	type outcome int
	const (
		refused  outcome = iota // 503 with Retry-After: nothing stored
		accepted                // 202: every event stored
		unknown                 // no answer: whole or absent
	)
	var (
		mu       sync.Mutex
		outcomes = map[uint32]outcome{}
		statuses = map[int]int{}
		problems []string
		seq      atomic.Uint32
	)
	problem := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(problems) < 10 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	conns := *memFloodConns
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true,
	}}
	defer client.CloseIdleConnections()
	stop := time.Now().Add(*memFloodFor)
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			for time.Now().Before(stop) {
				batch := seq.Add(1)
				req, err := http.NewRequest("POST", "http://"+c.addr+"/v1/events", &floodBody{batch: batch})
				if err != nil {
					panic(err)
				}
				req.ContentLength = int64(floodBodyLen)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					mu.Lock()
					outcomes[batch] = unknown
					statuses[0]++
					mu.Unlock()
					problem("batch %d: %v", batch, err)
					continue
				}
				answer, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				o := unknown
				switch resp.StatusCode {
				case http.StatusAccepted:
					var a struct{ Accepted, Duplicates, Rejected int }
					if err := json.Unmarshal(answer, &a); err != nil || a.Accepted != floodEvents || a.Duplicates != 0 || a.Rejected != 0 {
						problem("batch %d: 202 %s; want all %d accepted", batch, answer, floodEvents)
					}
					o = accepted
				case http.StatusServiceUnavailable:
					var e struct{ Error, Message string }
					if resp.Header.Get("Retry-After") == "" {
						problem("batch %d: 503 without Retry-After", batch)
					}
					if err := json.Unmarshal(answer, &e); err != nil || e.Error == "" || e.Message == "" {
						problem("batch %d: 503 body %q is not the JSON error of SPEC section 2", batch, answer)
					}
					o = refused
				default:
					problem("batch %d: status %d (%.300s); want 202 or 503", batch, resp.StatusCode, answer)
				}
				mu.Lock()
				outcomes[batch] = o
				statuses[resp.StatusCode]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	peak := vmHWM(t, pid)
	t.Logf("%d connections for %s, batches of %d events (%d bytes): statuses %v (0: no answer); VmHWM idle %d MiB, peak %d MiB",
		conns, *memFloodFor, floodEvents, floodBodyLen, statuses, idle>>20, peak>>20)
	for _, p := range problems {
		t.Error(p)
	}
	if statuses[http.StatusAccepted] == 0 {
		t.Error("no batch was accepted")
	}
	if peak > memFloodMaxRSS {
		t.Errorf("peak RSS %d MiB; want at most %d MiB (README, Operations, Memory)", peak>>20, memFloodMaxRSS>>20)
	}

	// Every event of an accepted batch once, none of a refused one.
	counts := map[uint32][]uint8{}
	events := floodExport(t, c.addr, func(batch uint32, i int) {
		if i >= floodEvents {
			t.Errorf("exported messageId of batch %d has index %d", batch, i)
			return
		}
		n := counts[batch]
		if n == nil {
			n = make([]uint8, floodEvents)
			counts[batch] = n
		}
		n[i]++
	})
	stored := 0
	for batch, o := range outcomes {
		n := counts[batch]
		once, more := 0, 0
		for _, k := range n {
			if k >= 1 {
				once++
			}
			if k > 1 {
				more++
			}
		}
		switch {
		case more > 0:
			t.Errorf("batch %d: %d events exported more than once", batch, more)
		case o == accepted && once != floodEvents:
			t.Errorf("batch %d was answered 202, but %d of its %d events are exported", batch, once, floodEvents)
		case o == refused && once != 0:
			t.Errorf("batch %d was answered 503, but %d of its events are exported", batch, once)
		case o == unknown && once != 0 && once != floodEvents:
			t.Errorf("batch %d got no answer and %d of its %d events are exported; want all or none", batch, once, floodEvents)
		}
		if once > 0 {
			stored++
		}
		delete(counts, batch)
	}
	for batch := range counts {
		t.Errorf("batch %d is exported but was never sent", batch)
	}
	t.Logf("%d events exported, from %d batches", events, stored)
	if !t.Failed() {
		t.Logf("MEMFLOOD: conns=%d seconds=%.0f batch_events=%d batch_mib=%.1f accepted=%d refused_503=%d rss_mib_idle=%d rss_mib_peak=%d exported=%d lost=0 duplicates=0",
			conns, memFloodFor.Seconds(), floodEvents, float64(floodBodyLen)/(1<<20), statuses[http.StatusAccepted], statuses[http.StatusServiceUnavailable], idle>>20, peak>>20, events)
	}
}

// floodExport reads the whole export of the demo app and calls fn with the
// batch and index that each event's messageId names; it returns the number
// of events.
func floodExport(t *testing.T, addr string, fn func(batch uint32, i int)) int {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+addr+"/v1/export/events?appKey="+demoApp, nil)
	req.Header.Set("Authorization", "Bearer "+adminSecret)
	resp, err := (&http.Client{Timeout: 5 * time.Minute}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("export: status %d (%s)", resp.StatusCode, b)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	key := []byte(`"messageId":"`)
	n := 0
	for sc.Scan() {
		line := sc.Bytes()
		j := bytes.Index(line, key)
		if j < 0 || len(line) < j+len(key)+36 {
			t.Fatalf("export line without a flood messageId: %.200s", line)
		}
		id := string(line[j+len(key) : j+len(key)+36])
		batch, err1 := strconv.ParseUint(id[:8], 16, 32)
		i, err2 := strconv.ParseUint(id[24:], 16, 48)
		if err := errors.Join(err1, err2); err != nil || id[8:24] != "-0000-4000-8000-" {
			t.Fatalf("export messageId %q is not a flood one (%v)", id, err)
		}
		fn(uint32(batch), int(i))
		n++
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading the export: %v", err)
	}
	return n
}
