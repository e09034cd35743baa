package e2e

// The Segment protocol tested with the real SDKs: Segment's analytics-go
// v3 and RudderStack's analytics-go v4 (gzip on, as by default) each send
// thousands of messages of every kind to a real server; every message
// their success callbacks report is then found, once, by the export and the
// profile reads, and nothing else is.

import (
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goccy/go-json"
	rudder "github.com/rudderlabs/analytics-go/v4"
	segment "github.com/segmentio/analytics-go/v3"
)

// sdkPerKind is how many messages of each kind each SDK sends.
const sdkPerKind = 1000

// sdkLog collects what an SDK logs.
type sdkLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *sdkLog) Logf(format string, args ...any)   { l.add("INFO "+format, args...) }
func (l *sdkLog) Errorf(format string, args ...any) { l.add("ERROR "+format, args...) }
func (l *sdkLog) add(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}
func (l *sdkLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// sdkCallbacks records the messageIds an SDK reports sent or failed.
type sdkCallbacks struct {
	mu      sync.Mutex
	ok      map[string]int
	failed  map[string]string
	msgOf   func(m any) string
	counted int
}

func newSDKCallbacks(msgOf func(any) string) *sdkCallbacks {
	return &sdkCallbacks{ok: map[string]int{}, failed: map[string]string{}, msgOf: msgOf}
}

func (c *sdkCallbacks) success(m any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ok[c.msgOf(m)]++
}

func (c *sdkCallbacks) failure(m any, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failed[c.msgOf(m)] = err.Error()
}

type segmentCallback struct{ c *sdkCallbacks }

func (s segmentCallback) Success(m segment.Message)            { s.c.success(m) }
func (s segmentCallback) Failure(m segment.Message, err error) { s.c.failure(m, err) }

type rudderCallback struct{ c *sdkCallbacks }

func (s rudderCallback) Success(m rudder.Message)            { s.c.success(m) }
func (s rudderCallback) Failure(m rudder.Message, err error) { s.c.failure(m, err) }

func segmentMessageID(m any) string {
	switch m := m.(type) {
	case segment.Track:
		return m.MessageId
	case segment.Page:
		return m.MessageId
	case segment.Screen:
		return m.MessageId
	case segment.Identify:
		return m.MessageId
	case segment.Group:
		return m.MessageId
	case segment.Alias:
		return m.MessageId
	}
	return fmt.Sprintf("?%T", m)
}

func rudderMessageID(m any) string {
	switch m := m.(type) {
	case rudder.Track:
		return m.MessageId
	case rudder.Page:
		return m.MessageId
	case rudder.Screen:
		return m.MessageId
	case rudder.Identify:
		return m.MessageId
	case rudder.Group:
		return m.MessageId
	case rudder.Alias:
		return m.MessageId
	}
	return fmt.Sprintf("?%T", m)
}

// sdkWant is what one message sent should become.
type sdkWant struct {
	kind, event, userID string
	props               map[string]any
}

// sdkClient is the part of both SDKs' clients the test uses; M is the
// SDK's Message.
type sdkClient[M any] interface {
	Enqueue(M) error
	Close() error
}

// sdkMessages enqueues sdkPerKind messages of each kind through enqueue
// (which builds the SDK's message from the kind and fields) and returns
// what each should become, by messageId.
func sdkMessages(t *testing.T, prefix string, enqueue func(kind, id, user, name string, props map[string]any) error) map[string]sdkWant {
	t.Helper()
	want := map[string]sdkWant{}
	for i := range sdkPerKind {
		user := fmt.Sprintf("%s-u%d", prefix, i)
		for _, kind := range []string{"track", "page", "screen", "identify", "group", "alias"} {
			id := fmt.Sprintf("%s-%s-%d", prefix, kind, i)
			name := ""
			props := map[string]any{"n": float64(i), "kind": kind}
			event := kind
			switch kind {
			case "track":
				name, event = fmt.Sprintf("Order %d", i%7), fmt.Sprintf("Order %d", i%7)
			case "page", "screen":
				name, event = fmt.Sprintf("Home %d", i%5), fmt.Sprintf("Home %d", i%5)
			case "identify":
				props = map[string]any{"firstName": "F" + user, "email": user + "@example.com", "plan": "pro", "n": float64(i)}
			case "alias":
				props = nil
			}
			if err := enqueue(kind, id, user, name, props); err != nil {
				t.Fatalf("enqueue %s: %v", id, err)
			}
			want[id] = sdkWant{kind: kind, event: event, userID: user, props: props}
		}
	}
	return want
}

// sendThroughSDK sends sdkPerKind messages of each kind through client
// (message builds the SDK's message from a kind and its fields), closes it
// to flush them, and checks their delivery with checkSDKDelivery.
func sendThroughSDK[M any](t *testing.T, addr, prefix string, client sdkClient[M], message func(kind, id, user, name string, props map[string]any, ts time.Time) M, cb *sdkCallbacks, log *sdkLog) {
	t.Helper()
	want := sdkMessages(t, prefix, func(kind, id, user, name string, props map[string]any) error {
		return client.Enqueue(message(kind, id, user, name, props, time.Now().Add(-time.Minute)))
	})
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	checkSDKDelivery(t, addr, cb, want, log)
}

// segmentMessage and rudderMessage build the same message of a kind in each
// SDK's types; nil (which Enqueue refuses) for a kind sdkMessages never sends.
func segmentMessage(kind, id, user, name string, props map[string]any, ts time.Time) segment.Message {
	var p segment.Properties = props
	var tr segment.Traits = props
	switch kind {
	case "track":
		return segment.Track{MessageId: id, UserId: user, Event: name, Properties: p, Timestamp: ts}
	case "page":
		return segment.Page{MessageId: id, UserId: user, Name: name, Properties: p, Timestamp: ts}
	case "screen":
		return segment.Screen{MessageId: id, UserId: user, Name: name, Properties: p, Timestamp: ts}
	case "identify":
		return segment.Identify{MessageId: id, UserId: user, Traits: tr, Timestamp: ts}
	case "group":
		return segment.Group{MessageId: id, UserId: user, GroupId: "g-" + user, Traits: tr, Timestamp: ts}
	case "alias":
		return segment.Alias{MessageId: id, UserId: user, PreviousId: "anon-" + user, Timestamp: ts}
	}
	return nil
}

func rudderMessage(kind, id, user, name string, props map[string]any, ts time.Time) rudder.Message {
	var p rudder.Properties = props
	var tr rudder.Traits = props
	switch kind {
	case "track":
		return rudder.Track{MessageId: id, UserId: user, Event: name, Properties: p, OriginalTimestamp: ts}
	case "page":
		return rudder.Page{MessageId: id, UserId: user, Name: name, Properties: p, OriginalTimestamp: ts}
	case "screen":
		return rudder.Screen{MessageId: id, UserId: user, Name: name, Properties: p, OriginalTimestamp: ts}
	case "identify":
		return rudder.Identify{MessageId: id, UserId: user, Traits: tr, OriginalTimestamp: ts}
	case "group":
		return rudder.Group{MessageId: id, UserId: user, GroupId: "g-" + user, Traits: tr, OriginalTimestamp: ts}
	case "alias":
		return rudder.Alias{MessageId: id, UserId: user, PreviousId: "anon-" + user, OriginalTimestamp: ts}
	}
	return nil
}

func TestSegmentSDKs(t *testing.T) {
	t.Parallel()
	// A server-side SDK's write key: a token with ingest scope for the app,
	// which changes profiles by default.
	t.Run("segment analytics-go v3", func(t *testing.T) {
		addr := startServer(t, testConfig).addr
		log := &sdkLog{}
		cb := newSDKCallbacks(segmentMessageID)
		client, err := segment.NewWithConfig(backendSecret, segment.Config{
			Endpoint:   "http://" + addr,
			Interval:   20 * time.Millisecond,
			BatchSize:  250,
			Logger:     log,
			Callback:   segmentCallback{cb},
			RetryAfter: func(int) time.Duration { return 10 * time.Millisecond },
		})
		if err != nil {
			t.Fatal(err)
		}
		sendThroughSDK(t, addr, "seg", client, segmentMessage, cb, log)
	})

	// The appKey as write key changes profiles once the app opts in
	// (public_profile_writes).
	t.Run("rudderstack analytics-go v4", func(t *testing.T) {
		addr := startServer(t, publicProfilesConfig).addr
		log := &sdkLog{}
		cb := newSDKCallbacks(rudderMessageID)
		client, err := rudder.NewWithConfig(demoApp, rudder.Config{
			DataPlaneUrl: "http://" + addr,
			Interval:     20 * time.Millisecond,
			BatchSize:    250,
			Logger:       log,
			Callback:     rudderCallback{cb},
			RetryAfter:   func(int) time.Duration { return 10 * time.Millisecond },
		})
		if err != nil {
			t.Fatal(err)
		}
		sendThroughSDK(t, addr, "rs", client, rudderMessage, cb, log)

		// What the SDK asks when a cluster answers 451: one node here.
		r := request(t, "GET", "http://"+addr+"/cluster-info", nil, "Authorization: Basic "+base64Std(demoApp+":"))
		if r.status != 200 || !strings.Contains(string(r.body), `"nodeCount":1`) {
			t.Errorf("GET /cluster-info: %d %s; want 200 with nodeCount 1", r.status, r.body)
		}
	})

	t.Run("wrong write key", func(t *testing.T) {
		addr := startServer(t, testConfig).addr
		log := &sdkLog{}
		cb := newSDKCallbacks(segmentMessageID)
		client, err := segment.NewWithConfig("no-such-app-key", segment.Config{
			Endpoint:   "http://" + addr,
			Interval:   20 * time.Millisecond,
			Logger:     log,
			Callback:   segmentCallback{cb},
			RetryAfter: func(int) time.Duration { return time.Millisecond },
		})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if err := client.Enqueue(segment.Track{MessageId: fmt.Sprint("bad-", i), UserId: "u", Event: "x"}); err != nil {
				t.Fatal(err)
			}
		}
		client.Close()
		if len(cb.ok) != 0 || len(cb.failed) != 3 {
			t.Errorf("successes %v, failures %v; want 3 failures", cb.ok, cb.failed)
		}
		for id, e := range cb.failed {
			if !strings.Contains(e, "401") {
				t.Errorf("failure of %s: %q; want the 401", id, e)
			}
		}
		if s := log.String(); !strings.Contains(s, "401") || !strings.Contains(s, "unauthorized") {
			t.Errorf("the SDK logged %q; want the 401 and its reason", s)
		}
		if e := exportEvents(t, addr, ""); len(e.lines) != 0 {
			t.Errorf("export has %d events; want none", len(e.lines))
		}
	})
}

// checkSDKDelivery checks that every message the SDK reports sent is
// exported once, as the mapping says, with its profile effects, and that
// nothing else is stored.
func checkSDKDelivery(t *testing.T, addr string, cb *sdkCallbacks, want map[string]sdkWant, log *sdkLog) {
	t.Helper()
	if len(cb.failed) > 0 {
		t.Fatalf("%d messages failed, e.g. %v; SDK log:\n%s", len(cb.failed), firstOf(cb.failed), log)
	}
	if len(cb.ok) != len(want) {
		t.Fatalf("%d success callbacks; want %d", len(cb.ok), len(want))
	}
	for id, n := range cb.ok {
		if n != 1 {
			t.Errorf("%s: %d success callbacks; want 1", id, n)
		}
		if _, ok := want[id]; !ok {
			t.Errorf("success callback for %s, which was not sent", id)
		}
	}
	if e := exportFrom(t, addr, "/v1/export/rejected", demoApp, ""); len(e.lines) != 0 {
		t.Errorf("%d messages quarantined, e.g. %s; want none", len(e.lines), e.lines[0])
	}
	lines := exportEvents(t, addr, "").lines
	seen := map[string]bool{}
	for _, l := range lines {
		var ev struct {
			Type       string         `json:"type"`
			Event      string         `json:"event"`
			UserID     string         `json:"userId"`
			MessageID  string         `json:"messageId"`
			EventTime  string         `json:"eventTime"`
			Attributes map[string]any `json:"attributes"`
			Context    map[string]any `json:"context"`
			Segment    map[string]any `json:"segment"`
		}
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("export line %q: %v", l, err)
		}
		w, ok := want[ev.MessageID]
		switch {
		case !ok:
			t.Errorf("exported %s, which was not sent", ev.MessageID)
			continue
		case seen[ev.MessageID]:
			t.Errorf("%s exported twice", ev.MessageID)
		case cb.ok[ev.MessageID] != 1:
			t.Errorf("%s exported, but its success callback count is %d", ev.MessageID, cb.ok[ev.MessageID])
		}
		seen[ev.MessageID] = true
		if ev.Type != "event" || ev.Event != w.event || ev.UserID != w.userID || ev.Segment["type"] != w.kind || ev.EventTime == "" {
			t.Errorf("%s exported as %s; want event %q of user %q, segment.type %q", ev.MessageID, l, w.event, w.userID, w.kind)
		}
		if w.props != nil && !jsonEqual(ev.Attributes, w.props) {
			t.Errorf("%s: attributes %v; want %v", ev.MessageID, ev.Attributes, w.props)
		}
		if lib, _ := ev.Context["library"].(map[string]any); lib["name"] != "analytics-go" {
			t.Errorf("%s: context %v; want the SDK's library kept", ev.MessageID, ev.Context)
		}
		switch w.kind {
		case "group":
			if ev.Segment["groupId"] != "g-"+w.userID {
				t.Errorf("%s: segment %v; want groupId kept", ev.MessageID, ev.Segment)
			}
		case "alias":
			if ev.Segment["previousId"] != "anon-"+w.userID {
				t.Errorf("%s: segment %v; want previousId kept", ev.MessageID, ev.Segment)
			}
		}
	}
	if len(seen) != len(want) {
		t.Errorf("%d messages exported; want %d", len(seen), len(want))
	}

	// Profiles: each identify's traits, each alias's link.
	for id, w := range want {
		switch w.kind {
		case "identify":
			p := readProfile(t, addr, "userId="+url.QueryEscape(w.userID))
			if p.FirstName != w.props["firstName"] || p.EmailID != w.props["email"] || p.Attributes["plan"] != "pro" || p.Attributes["n"] != w.props["n"] {
				t.Errorf("%s: profile %+v; want the identify's traits", id, p)
			}
		case "alias":
			p := readProfile(t, addr, "alias_label=previousId&alias_id="+url.QueryEscape("anon-"+w.userID))
			if p.UserID != w.userID {
				t.Errorf("%s: the profile of alias previousId:anon-%s is %+v; want user %s", id, w.userID, p, w.userID)
			}
		}
	}
}

type sdkProfile struct {
	UserID     string         `json:"userId"`
	FirstName  string         `json:"first_name"`
	EmailID    string         `json:"email_id"`
	Attributes map[string]any `json:"attributes"`
}

func readProfile(t *testing.T, addr, query string) sdkProfile {
	t.Helper()
	r := request(t, "GET", "http://"+addr+"/v1/users/profile?appKey="+demoApp+"&"+query, nil, "Authorization: Bearer "+backendSecret)
	var p sdkProfile
	if r.status != 200 {
		t.Errorf("GET profile %s: %d %s", query, r.status, r.body)
		return p
	}
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Errorf("GET profile %s: %v", query, err)
	}
	return p
}

func firstOf(m map[string]string) string {
	for k, v := range m {
		return k + ": " + v
	}
	return ""
}
