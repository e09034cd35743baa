package ingest

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// recordingLimiter records what it is charged and refuses when told to.
type recordingLimiter struct {
	refuse error
	mu     sync.Mutex
	calls  []string // "key=n key=n"
}

func (l *recordingLimiter) Take(keys []string, counts []int) error {
	var parts []string
	for i, k := range keys {
		parts = append(parts, k+"="+strconv.Itoa(counts[i]))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, strings.Join(parts, " "))
	return l.refuse
}

func (l *recordingLimiter) charged() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

// TestTakeTokens checks what a batch is charged: every event to be stored,
// valid or quarantined, once, to its app.
func TestTakeTokens(t *testing.T) {
	other := testEvent(with("appKey", `"`+lockedAppKey+`"`))
	bad := testEvent(with("event", `""`))
	tests := []struct {
		name string
		body string
		want string
	}{
		{"one event", testEvent(), testAppKey + "=1"},
		{"a batch of one app", "[" + testEvent() + "," + testEvent() + "," + testEvent() + "]", testAppKey + "=3"},
		{"quarantined events count", "[" + testEvent() + "," + bad + "]", testAppKey + "=2"},
		{"each app of a mixed batch", "[" + testEvent() + "," + other + "," + testEvent() + "," + other + "," + other + "]",
			testAppKey + "=2 " + lockedAppKey + "=3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := decodeBody(DefaultConfig(), tc.body, false)
			if err != nil {
				t.Fatal(err)
			}
			l := &recordingLimiter{}
			h := &Handler{limiter: l}
			if err := h.takeTokens(b); err != nil {
				t.Fatal(err)
			}
			if got := l.charged(); len(got) != 1 || got[0] != tc.want {
				t.Errorf("got charges %q; want [%s]", got, tc.want)
			}
		})
	}
}

// TestHandlerRateLimited: a refused request reaches no sink, and
// ?validate=1 costs nothing.
func TestHandlerRateLimited(t *testing.T) {
	reg := testRegistry()
	ts := newTestServer(t, reg)
	sink := &recordingSink{}
	url := ts.url(DefaultConfig(), reg, sink)
	h, _ := ts.handlers.Load(url[strings.Index(url[len("http://"):], "/")+len("http://"):])
	refused := errors.New("over the limit")
	l := &recordingLimiter{refuse: refused}
	h.(*Handler).SetLimiter(l)

	if status, body := post(t, url, request{body: []byte(testEvent())}); status != 500 || !strings.Contains(string(body), "over the limit") {
		t.Errorf("refused request: status %d (%s); want the limiter's error", status, body)
	}
	if calls, _, _, _ := sink.snapshot(); calls != 0 {
		t.Errorf("the sink was called %d times for a refused request; want 0", calls)
	}
	if status, body := post(t, url, request{body: []byte(testEvent()), query: "?validate=1"}); status != 202 {
		t.Errorf("?validate=1: status %d (%s); want 202", status, body)
	}
	if got := l.charged(); len(got) != 1 {
		t.Errorf("got charges %q; want one, for the refused request only", got)
	}
	l.mu.Lock()
	l.refuse = nil
	l.mu.Unlock()
	if status, body := post(t, url, request{body: []byte(testEvent())}); status != 202 {
		t.Errorf("admitted request: status %d (%s); want 202", status, body)
	}
	if calls, _, _, _ := sink.snapshot(); calls != 1 {
		t.Errorf("the sink was called %d times; want 1", calls)
	}
}
