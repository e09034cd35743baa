package bench

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-json"
)

// testEvent is the shape that SPEC.md section 3 gives an event.
type testEvent struct {
	Type       string          `json:"type"`
	Event      string          `json:"event"`
	UserID     string          `json:"userId"`
	EventTime  string          `json:"eventTime"`
	AppKey     string          `json:"appKey"`
	MessageID  *string         `json:"messageId"`
	SentAt     *string         `json:"sentAt"`
	Context    json.RawMessage `json:"context"`
	Attributes json.RawMessage `json:"attributes"`
}

// checkEvent decodes one event and checks it against SPEC.md section 3 and
// the generator's promises; it returns the decoded event.
func checkEvent(t *testing.T, raw []byte, appKey string) testEvent {
	t.Helper()
	var ev testEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatalf("event is not valid JSON: %v\n%s", err, raw)
	}
	if !json.Valid(raw) {
		t.Fatalf("json.Valid(event) = false\n%s", raw)
	}
	if ev.Type != "event" {
		t.Errorf("type = %q; want %q", ev.Type, "event")
	}
	if n := len(ev.Event); n < 1 || n > 255 {
		t.Errorf("event name %q has %d characters; want 1-255", ev.Event, n)
	}
	if !strings.HasPrefix(ev.UserID, "user-") {
		t.Errorf("userId = %q; want user-N", ev.UserID)
	}
	if ev.AppKey != appKey {
		t.Errorf("appKey = %q; want %q", ev.AppKey, appKey)
	}
	et := checkTime(t, "eventTime", ev.EventTime)
	if lo := BaseTime().Add(-30 * 24 * time.Hour); et.Before(lo) || !et.Before(BaseTime()) {
		t.Errorf("eventTime %s outside [%s, %s)", ev.EventTime, lo.Format(time.RFC3339), BaseTime().Format(time.RFC3339))
	}
	if ev.SentAt != nil {
		if st := checkTime(t, "sentAt", *ev.SentAt); st.Before(et) || st.Sub(et) > 10*time.Second {
			t.Errorf("sentAt %s is not just after eventTime %s", *ev.SentAt, ev.EventTime)
		}
	}
	var ctx struct {
		UserAgent string `json:"userAgent"`
	}
	if err := json.Unmarshal(ev.Context, &ctx); err != nil || ctx.UserAgent == "" {
		t.Errorf("context = %s (%v); want an object with a userAgent", ev.Context, err)
	}
	keys := objectKeys(t, ev.Attributes)
	if n := len(keys); n < 5 || n > 12 {
		t.Errorf("%d attributes %q; want 5-12", n, keys)
	}
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k] {
			t.Errorf("attribute %q repeated in %s", k, ev.Attributes)
		}
		seen[k] = true
	}
	return ev
}

// checkTime parses s as RFC 3339 in UTC with exactly three fractional digits.
func checkTime(t *testing.T, field, s string) time.Time {
	t.Helper()
	const layout = "2006-01-02T15:04:05.000Z"
	tm, err := time.Parse(layout, s)
	if err != nil || tm.Format(layout) != s {
		t.Errorf("%s = %q; want the form %s (%v)", field, s, layout, err)
	}
	return tm
}

// objectKeys returns the member names of the JSON object raw, in order and
// with repeats, which decoding into a map would hide.
func objectKeys(t *testing.T, raw []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("attributes = %s; want an object (%v)", raw, err)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("cannot read attribute key in %s: %v", raw, err)
		}
		keys = append(keys, tok.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("cannot read attribute value in %s: %v", raw, err)
		}
	}
	return keys
}

func TestAppendEvent(t *testing.T) {
	tests := []struct {
		name       string
		seed       int64
		appKey     string
		messageIDs bool
		sentAt     bool
	}{
		{name: "defaults", seed: 1, appKey: DefaultAppKey},
		{name: "message ids", seed: 2, appKey: DefaultAppKey, messageIDs: true},
		{name: "sent at", seed: 3, appKey: DefaultAppKey, sentAt: true},
		{name: "both", seed: 4, appKey: DefaultAppKey, messageIDs: true, sentAt: true},
		{name: "app key needing escapes", seed: 5, appKey: "a\"b\\c\n\x01ü"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewGenerator(tt.seed, tt.appKey).WithMessageIDs(tt.messageIDs).WithSentAt(tt.sentAt)
			ids := map[string]bool{}
			var buf []byte
			for range 3000 {
				buf = g.AppendEvent(buf[:0])
				if bytes.ContainsAny(buf, "\n") {
					t.Fatalf("event contains a newline: %s", buf)
				}
				ev := checkEvent(t, buf, tt.appKey)
				if got := ev.MessageID != nil; got != tt.messageIDs {
					t.Fatalf("has messageId = %v; want %v", got, tt.messageIDs)
				}
				if got := ev.SentAt != nil; got != tt.sentAt {
					t.Fatalf("has sentAt = %v; want %v", got, tt.sentAt)
				}
				if ev.MessageID != nil {
					if id := *ev.MessageID; !uuidRE.MatchString(id) || ids[id] {
						t.Fatalf("messageId %q is not a fresh UUID", id)
					}
					ids[*ev.MessageID] = true
				}
			}
		})
	}
}

// uuidRE matches a lowercase version 4 UUID with the RFC 4122 variant.
var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// messageIDRE finds the messageId member that AppendEvent writes.
var messageIDRE = regexp.MustCompile(`,"messageId":"([^"]*)"`)

func TestMessageIDSalt(t *testing.T) {
	const n = 2000
	gen := func(salt uint64) (ids []string, rest []byte) {
		body := NewGenerator(1, DefaultAppKey).WithMessageIDs(true).WithMessageIDSalt(salt).AppendNDJSON(nil, n)
		for _, m := range messageIDRE.FindAllSubmatch(body, -1) {
			ids = append(ids, string(m[1]))
		}
		return ids, messageIDRE.ReplaceAll(body, nil)
	}
	plainIDs, plainRest := gen(0)
	unsalted := NewGenerator(1, DefaultAppKey).WithMessageIDs(true).AppendNDJSON(nil, n)
	if salted := NewGenerator(1, DefaultAppKey).WithMessageIDs(true).WithMessageIDSalt(0).AppendNDJSON(nil, n); !bytes.Equal(salted, unsalted) {
		t.Fatalf("WithMessageIDSalt(0) changes the events")
	}
	tests := []struct {
		name     string
		salt     uint64
		wantSame bool // the same ids as salt 0
	}{
		{name: "zero", salt: 0, wantSame: true},
		{name: "one", salt: 1},
		{name: "high bit", salt: 1 << 63},
		{name: "random", salt: 0x9f3c_51e2_07aa_d4b1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ids, rest := gen(tt.salt)
			if len(ids) != n {
				t.Fatalf("%d messageIds in %d events", len(ids), n)
			}
			if !bytes.Equal(rest, plainRest) {
				t.Errorf("the events without their messageIds differ from those of salt 0")
			}
			seen := map[string]bool{}
			for _, id := range ids {
				if !uuidRE.MatchString(id) || seen[id] {
					t.Fatalf("messageId %q is not a fresh UUID", id)
				}
				seen[id] = true
			}
			common := 0
			for _, id := range plainIDs {
				if seen[id] {
					common++
				}
			}
			if want := map[bool]int{true: n, false: 0}[tt.wantSame]; common != want {
				t.Errorf("%d messageIds in common with salt 0; want %d", common, want)
			}
		})
	}
}

// checkSeeded checks that gen, a generator's output from a seed, is the
// same from the same seed and differs from another.
func checkSeeded(t *testing.T, gen func(seed int64) []byte) {
	t.Helper()
	tests := []struct {
		name     string
		seedA    int64
		seedB    int64
		wantSame bool
	}{
		{name: "same seed", seedA: 7, seedB: 7, wantSame: true},
		{name: "other seed", seedA: 7, seedB: 8, wantSame: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := bytes.Equal(gen(tt.seedA), gen(tt.seedB)); got != tt.wantSame {
				t.Errorf("same output = %v; want %v", got, tt.wantSame)
			}
		})
	}
}

func TestGeneratorDeterministic(t *testing.T) {
	checkSeeded(t, func(seed int64) []byte {
		return NewGenerator(seed, DefaultAppKey).WithMessageIDs(true).AppendJSONArray(nil, 500)
	})
	t.Run("reseed repeats a request", func(t *testing.T) {
		g := NewGenerator(1, DefaultAppKey)
		g.reseed(42)
		a := g.AppendJSONArray(nil, 10)
		g.AppendJSONArray(nil, 10) // move on, as a worker would
		g.reseed(42)
		if b := g.AppendJSONArray(nil, 10); !bytes.Equal(a, b) {
			t.Errorf("reseed(42) gave different events the second time")
		}
	})
}

func TestEventMix(t *testing.T) {
	const n = 100_000
	g := NewGenerator(1, DefaultAppKey)
	names := map[string]int{}
	users := map[string]int{}
	agents := map[string]bool{}
	days := map[string]bool{}
	total := 0
	minSize, maxSize := 1<<30, 0
	var buf []byte
	for range n {
		buf = g.AppendEvent(buf[:0])
		total += len(buf)
		minSize, maxSize = min(minSize, len(buf)), max(maxSize, len(buf))
		var ev struct {
			Event     string `json:"event"`
			UserID    string `json:"userId"`
			EventTime string `json:"eventTime"`
			Context   struct {
				UserAgent string `json:"userAgent"`
			} `json:"context"`
		}
		if err := json.Unmarshal(buf, &ev); err != nil {
			t.Fatalf("cannot decode %s: %v", buf, err)
		}
		names[ev.Event]++
		users[ev.UserID]++
		agents[ev.Context.UserAgent] = true
		days[ev.EventTime[:10]] = true
	}
	avg := float64(total) / n
	t.Logf("average event size %.1f bytes (min %d, max %d) over %d events; %d event names, %d users, %d user agents, %d days",
		avg, minSize, maxSize, n, len(names), len(users), len(agents), len(days))
	topName, topUser := 0, 0
	for _, c := range names {
		topName = max(topName, c)
	}
	for _, c := range users {
		topUser = max(topUser, c)
	}
	checks := []struct {
		name string
		ok   bool
		got  string
		want string
	}{
		// PERF.md promises about 475 bytes, without a messageId.
		{"average size", avg >= 460 && avg <= 490, strconv.FormatFloat(avg, 'f', 1, 64), "460-490 bytes"},
		{"event names", len(names) >= 35 && len(names) <= 45, strconv.Itoa(len(names)), "about 40"},
		{"top event share", topName > n/20 && topName < n/4, strconv.Itoa(topName), "5-25 % (skewed, not degenerate)"},
		{"distinct users", len(users) > 20_000, strconv.Itoa(len(users)), "> 20000 of 100k"},
		{"top user share", topUser > 10*n/len(users) && topUser < n/50, strconv.Itoa(topUser), "well above the mean, below 2 %"},
		{"user agents", len(agents) >= 4 && len(agents) <= 10, strconv.Itoa(len(agents)), "a handful"},
		{"days", len(days) == 30, strconv.Itoa(len(days)), "30"},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: got %s; want %s", c.name, c.got, c.want)
		}
	}
}

func TestAppendBatches(t *testing.T) {
	tests := []struct {
		name   string
		n      int
		ndjson bool
	}{
		{name: "array of one", n: 1},
		{name: "array", n: 50},
		{name: "empty array", n: 0},
		{name: "ndjson", n: 50, ndjson: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewGenerator(9, DefaultAppKey)
			var events [][]byte
			if tt.ndjson {
				body := g.AppendNDJSON(nil, tt.n)
				if !bytes.HasSuffix(body, []byte("\n")) {
					t.Fatalf("NDJSON body does not end in a newline")
				}
				events = bytes.Split(bytes.TrimSuffix(body, []byte("\n")), []byte("\n"))
			} else {
				var arr []json.RawMessage
				body := g.AppendJSONArray(nil, tt.n)
				if err := json.Unmarshal(body, &arr); err != nil {
					t.Fatalf("array is not valid JSON: %v", err)
				}
				for _, e := range arr {
					events = append(events, e)
				}
			}
			if len(events) != tt.n {
				t.Fatalf("got %d events; want %d", len(events), tt.n)
			}
			for _, e := range events {
				checkEvent(t, e, DefaultAppKey)
			}
		})
	}
}

func TestAppendTime(t *testing.T) {
	tests := []struct {
		name string
		t    time.Time
		want string
	}{
		{name: "base", t: BaseTime(), want: "2026-11-01T00:00:00.000Z"},
		{name: "milliseconds", t: time.Date(2026, 10, 2, 3, 4, 5, 67_000_000, time.UTC), want: "2026-10-02T03:04:05.067Z"},
		{name: "leap day", t: time.Date(2028, 2, 29, 23, 59, 59, 999_000_000, time.UTC), want: "2028-02-29T23:59:59.999Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(appendTime(nil, tt.t.UnixMilli())); got != tt.want {
				t.Errorf("appendTime(%v) = %s; want %s", tt.t, got, tt.want)
			}
		})
	}
}

func TestAppendTimeMatchesTimePackage(t *testing.T) {
	tests := []struct {
		name     string
		from, to int64 // range of milliseconds, sampled evenly
	}{
		{name: "generated window", from: windowStartMs, to: baseMs + 2*dayMs},
		{name: "around the fast path", from: windowStartMs - 3*dayMs, to: baseMs + 5*dayMs},
		{name: "other years", from: 0, to: 4_102_444_800_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const steps = 20_000
			for i := range int64(steps + 1) {
				ms := tt.from + (tt.to-tt.from)/steps*i + i%1000
				want := time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
				if got := string(appendTime(nil, ms)); got != want {
					t.Fatalf("appendTime(%d) = %s; want %s", ms, got, want)
				}
			}
		})
	}
}

func TestAliasTable(t *testing.T) {
	tests := []struct {
		name    string
		weights []float64
	}{
		{name: "uniform", weights: []float64{1, 1, 1, 1}},
		{name: "skewed", weights: []float64{8, 4, 2, 1, 1}},
		{name: "one", weights: []float64{3}},
		{name: "with zero", weights: []float64{1, 0, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table := newAliasTable(len(tt.weights), func(i int) float64 { return tt.weights[i] })
			g := NewGenerator(3, DefaultAppKey)
			const n = 200_000
			counts := make([]int, len(tt.weights))
			for range n {
				counts[pickAlias(table, g.pcg.Uint64())]++
			}
			sum := 0.0
			for _, w := range tt.weights {
				sum += w
			}
			for i, w := range tt.weights {
				want := w / sum
				if got := float64(counts[i]) / n; got < want-0.01 || got > want+0.01 {
					t.Errorf("outcome %d: got share %.3f; want %.3f", i, got, want)
				}
			}
		})
	}
}

func TestAppendUUID(t *testing.T) {
	tests := []struct {
		name   string
		hi, lo uint64
		want   string
	}{
		{name: "sets version and variant", hi: 0x0123456789abcdef, lo: 0xfedcba9876543210, want: "01234567-89ab-4def-bedc-ba9876543210"},
		{name: "zero", want: "00000000-0000-4000-8000-000000000000"},
		{name: "ones", hi: ^uint64(0), lo: ^uint64(0), want: "ffffffff-ffff-4fff-bfff-ffffffffffff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(appendUUID(nil, tt.hi, tt.lo)); got != tt.want {
				t.Errorf("appendUUID(%#x, %#x) = %s; want %s", tt.hi, tt.lo, got, tt.want)
			}
		})
	}
}
