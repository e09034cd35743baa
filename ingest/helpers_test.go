package ingest

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-json"
)

// The fixed clock, connection address, app and ingest sequence that the
// tests decode with, so that stored forms can be compared byte for byte.
const (
	testAppKey     = "yz1Jn-0pSnekg58etEQO4A"
	testIP         = "203.0.113.7"
	testSeq        = 42
	testGenID      = `"messageId":"trv-000000000000002a"`
	testReceivedAt = `"receivedAt":"2026-11-01T12:00:00.123Z"`
)

var testNow = time.Date(2026, 11, 1, 12, 0, 0, 123_000_000, time.UTC)

// testEvent builds the JSON text of a valid event, changed by opts.
func testEvent(opts ...eventOpt) string {
	m := []testMember{
		{"type", `"event"`},
		{"event", `"Signed Up"`},
		{"userId", `"u1"`},
		{"eventTime", `"2026-11-01T11:59:00Z"`},
		{"appKey", `"` + testAppKey + `"`},
	}
	for _, o := range opts {
		m = o(m)
	}
	var sb strings.Builder
	sb.WriteByte('{')
	for i, kv := range m {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`"` + kv.key + `":` + kv.raw)
	}
	sb.WriteByte('}')
	return sb.String()
}

type testMember struct{ key, raw string }

type eventOpt func([]testMember) []testMember

// with sets member key to the raw JSON value, replacing it in place when
// present and appending it otherwise.
func with(key, raw string) eventOpt {
	return func(m []testMember) []testMember {
		for i := range m {
			if m[i].key == key {
				m[i].raw = raw
				return m
			}
		}
		return append(m, testMember{key, raw})
	}
}

// without removes member key.
func without(key string) eventOpt {
	return func(m []testMember) []testMember {
		out := m[:0]
		for _, kv := range m {
			if kv.key != key {
				out = append(out, kv)
			}
		}
		return out
	}
}

// quoted returns s as a JSON string.
func quoted(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// decodeBody decodes body with cfg at testNow from testIP.
func decodeBody(cfg Config, body string, ndjson bool) (*Batch, error) {
	b := newBatch(&cfg, testNow, testIP)
	b.NDJSON = ndjson
	err := Decode(b, []byte(body))
	return b, err
}

// storedForm returns the stored form of the i-th event of b, checked.
func storedForm(t testing.TB, b *Batch, i int) string {
	t.Helper()
	s := b.appendStored(nil, &b.Events[i], testSeq)
	checkStored(t, s)
	return string(s)
}

// checkStored fails unless s is one line of valid JSON whose server-owned
// members appear once.
func checkStored(t testing.TB, s []byte) {
	t.Helper()
	if !json.Valid(s) {
		t.Fatalf("stored form is not valid JSON: %s", s)
	}
	if bytes.IndexByte(s, '\n') >= 0 {
		t.Fatalf("stored form holds a newline: %q", s)
	}
	keys := topKeys(t, s)
	for _, k := range []string{"receivedAt", "originalEventTime", "clockSkewMs"} {
		if keys[k] > 1 {
			t.Fatalf("stored form has %d %q members: %s", keys[k], k, s)
		}
	}
	if keys["receivedAt"] != 1 {
		t.Fatalf("stored form has %d receivedAt members; want 1: %s", keys["receivedAt"], s)
	}
}

// topKeys counts the raw top-level keys of the JSON object s.
func topKeys(t testing.TB, s []byte) map[string]int {
	t.Helper()
	keys := map[string]int{}
	if err := forEachMember(s, func(k, _ []byte) error { keys[string(k)]++; return nil }); err != nil {
		t.Fatalf("cannot walk %s: %v", s, err)
	}
	return keys
}

// memberOf returns the raw value of the top-level key of the JSON object s.
func memberOf(s []byte, key string) (val []byte, found bool) {
	forEachMember(s, func(k, v []byte) error {
		if string(k) == key {
			val, found = v, true
		}
		return nil
	})
	return val, found
}
