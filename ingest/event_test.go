package ingest

import (
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// nestedAttr returns an attributes object with depth containers nested
// inside it: depth 1 is {"a":[]}, depth 2 is {"a":{"a":[]}}.
func nestedAttr(depth int) string {
	var sb strings.Builder
	sb.WriteByte('{')
	for range depth - 1 {
		sb.WriteString(`"a":{`)
	}
	sb.WriteString(`"a":[]`)
	for range depth - 1 {
		sb.WriteByte('}')
	}
	sb.WriteByte('}')
	return sb.String()
}

// attrKeys returns an attributes object with n keys.
func attrKeys(n int) string {
	var sb strings.Builder
	sb.WriteByte('{')
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`"k` + strconv.Itoa(i) + `":` + strconv.Itoa(i))
	}
	sb.WriteByte('}')
	return sb.String()
}

// TestEventRules covers every field rule of SPEC section 3: each row is one
// event, accepted or rejected with a field and a message.
func TestEventRules(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		wantField string // "" with wantMsg "" means accepted
		wantMsg   string // substring of the rejection's message
		wantCode  string // "" means invalid_event
	}{
		{name: "valid", in: testEvent()},
		{name: "members in any order", in: `{"appKey":"` + testAppKey + `","eventTime":"2026-11-01T11:59:00Z","userId":"u1","event":"x","type":"event"}`},

		{name: "type missing", in: testEvent(without("type")), wantField: "type", wantMsg: "type is required"},
		{name: "type number", in: testEvent(with("type", `1`)), wantField: "type", wantMsg: "type must be a string, got a number"},
		{name: "type null", in: testEvent(with("type", `null`)), wantField: "type", wantMsg: "got null"},
		{name: "type not event", in: testEvent(with("type", `"track"`)), wantField: "type", wantMsg: `type must be "event"`},
		{name: "type Event capitalised", in: testEvent(with("type", `"Event"`)), wantField: "type", wantMsg: `must be "event"`},
		{name: "type escaped", in: testEvent(with("type", `"\u0065vent"`))},

		{name: "event missing", in: testEvent(without("event")), wantField: "event", wantMsg: "event is required"},
		{name: "event array", in: testEvent(with("event", `["x"]`)), wantField: "event", wantMsg: "event must be a string, got an array"},
		{name: "event empty", in: testEvent(with("event", `""`)), wantField: "event", wantMsg: "1 to 255 characters, got 0"},
		{name: "event 1 char", in: testEvent(with("event", `"x"`))},
		{name: "event 255 chars", in: testEvent(with("event", quoted(strings.Repeat("e", 255))))},
		{name: "event 256 chars", in: testEvent(with("event", quoted(strings.Repeat("e", 256)))), wantField: "event", wantMsg: "got 256"},
		{name: "event 255 two-byte runes", in: testEvent(with("event", quoted(strings.Repeat("é", 255))))},
		{name: "event 255 four-byte runes", in: testEvent(with("event", quoted(strings.Repeat("😀", 255))))},
		{name: "event 256 two-byte runes", in: testEvent(with("event", quoted(strings.Repeat("é", 256)))), wantField: "event", wantMsg: "got 256"},
		{name: "event 255 escaped runes", in: testEvent(with("event", `"`+strings.Repeat(`\u00e9`, 255)+`"`))},
		{name: "event 256 escaped runes", in: testEvent(with("event", `"`+strings.Repeat(`\u00e9`, 256)+`"`)), wantField: "event", wantMsg: "got 256"},

		{name: "userId missing", in: testEvent(without("userId")), wantField: "userId", wantMsg: "userId is required"},
		{name: "userId number", in: testEvent(with("userId", `42`)), wantField: "userId", wantMsg: "userId must be a string, got a number"},
		{name: "userId empty", in: testEvent(with("userId", `""`)), wantField: "userId", wantMsg: "userId must not be empty"},

		{name: "eventTime missing", in: testEvent(without("eventTime")), wantField: "eventTime", wantMsg: "eventTime is required"},
		{name: "eventTime number", in: testEvent(with("eventTime", `1793534340000`)), wantField: "eventTime", wantMsg: "eventTime must be a string, got a number"},
		{name: "eventTime without offset", in: testEvent(with("eventTime", `"2026-11-01T11:59:00"`)), wantField: "eventTime", wantMsg: "with an offset or Z"},
		{name: "eventTime date only", in: testEvent(with("eventTime", `"2026-11-01"`)), wantField: "eventTime", wantMsg: "RFC 3339"},
		{name: "eventTime space separator", in: testEvent(with("eventTime", `"2026-11-01 11:59:00Z"`)), wantField: "eventTime", wantMsg: "RFC 3339"},
		{name: "eventTime not a time", in: testEvent(with("eventTime", `"yesterday"`)), wantField: "eventTime", wantMsg: "RFC 3339"},
		{name: "eventTime month 13", in: testEvent(with("eventTime", `"2026-13-01T11:59:00Z"`)), wantField: "eventTime", wantMsg: "RFC 3339"},
		{name: "eventTime with Z", in: testEvent(with("eventTime", `"2026-11-01T11:59:00Z"`))},
		{name: "eventTime with offset", in: testEvent(with("eventTime", `"2020-06-03T17:03:48-07:00"`))},
		{name: "eventTime with milliseconds", in: testEvent(with("eventTime", `"2026-11-01T11:59:00.123Z"`))},
		{name: "eventTime with nanoseconds and offset", in: testEvent(with("eventTime", `"2026-11-01T13:59:00.123456789+02:00"`))},

		{name: "appKey missing", in: testEvent(without("appKey")), wantField: "appKey", wantMsg: "appKey is required"},
		{name: "appKey number", in: testEvent(with("appKey", `7`)), wantField: "appKey", wantMsg: "appKey must be a string, got a number"},
		{name: "appKey empty", in: testEvent(with("appKey", `""`)), wantField: "appKey", wantMsg: "appKey must not be empty"},

		{name: "messageId 255 chars", in: testEvent(with("messageId", quoted(strings.Repeat("m", 255))))},
		{name: "messageId 255 runes", in: testEvent(with("messageId", quoted(strings.Repeat("é", 255))))},
		{name: "messageId 256 chars", in: testEvent(with("messageId", quoted(strings.Repeat("m", 256)))), wantField: "messageId", wantMsg: "1 to 255 characters, got 256"},
		{name: "messageId empty", in: testEvent(with("messageId", `""`)), wantField: "messageId", wantMsg: "got 0"},
		{name: "messageId number", in: testEvent(with("messageId", `12`)), wantField: "messageId", wantMsg: "messageId must be a string, got a number"},
		{name: "messageId null", in: testEvent(with("messageId", `null`))},

		{name: "sentAt valid", in: testEvent(with("sentAt", `"2026-11-01T11:59:30Z"`))},
		{name: "sentAt null", in: testEvent(with("sentAt", `null`))},
		{name: "sentAt invalid", in: testEvent(with("sentAt", `"2026-11-01T11:59:30"`)), wantField: "sentAt", wantMsg: "sentAt must be an ISO-8601"},
		{name: "sentAt number", in: testEvent(with("sentAt", `1`)), wantField: "sentAt", wantMsg: "sentAt must be a string, got a number"},

		{name: "context string", in: testEvent(with("context", `"web"`)), wantField: "context", wantMsg: "context must be an object, got a string"},
		{name: "context array", in: testEvent(with("context", `[]`)), wantField: "context", wantMsg: "got an array"},
		{name: "context null", in: testEvent(with("context", `null`))},
		{name: "context empty", in: testEvent(with("context", `{}`))},
		{name: "context other members", in: testEvent(with("context", `{"locale":"fr-FR","app":{"version":"1.2"}}`))},
		{name: "context.ip IPv4", in: testEvent(with("context", `{"ip":"198.51.100.1"}`))},
		{name: "context.ip IPv6", in: testEvent(with("context", `{"ip":"2001:db8::1"}`))},
		{name: "context.ip IPv4-mapped IPv6", in: testEvent(with("context", `{"ip":"::ffff:198.51.100.1"}`))},
		{name: "context.ip invalid", in: testEvent(with("context", `{"ip":"999.1.1.1"}`)), wantField: "context.ip", wantMsg: "context.ip must be an IPv4 or IPv6 address"},
		{name: "context.ip host name", in: testEvent(with("context", `{"ip":"example.com"}`)), wantField: "context.ip", wantMsg: "IPv4 or IPv6"},
		{name: "context.ip with port", in: testEvent(with("context", `{"ip":"198.51.100.1:80"}`)), wantField: "context.ip", wantMsg: "IPv4 or IPv6"},
		{name: "context.ip number", in: testEvent(with("context", `{"ip":3325256705}`)), wantField: "context.ip", wantMsg: "context.ip must be a string, got a number"},
		{name: "context.userAgent string", in: testEvent(with("context", `{"userAgent":"Mozilla/5.0"}`))},
		{name: "context.userAgent null", in: testEvent(with("context", `{"userAgent":null}`))},
		{name: "context.userAgent number", in: testEvent(with("context", `{"userAgent":5}`)), wantField: "context.userAgent", wantMsg: "context.userAgent must be a string, got a number"},
		{name: "context.userAgent object", in: testEvent(with("context", `{"userAgent":{}}`)), wantField: "context.userAgent", wantMsg: "got an object"},

		{name: "attributes string", in: testEvent(with("attributes", `"x"`)), wantField: "attributes", wantMsg: "attributes must be an object, got a string"},
		{name: "attributes array", in: testEvent(with("attributes", `[1]`)), wantField: "attributes", wantMsg: "got an array"},
		{name: "attributes null", in: testEvent(with("attributes", `null`))},
		{name: "attributes every type", in: testEvent(with("attributes", `{"s":"x","n":1.5,"b":true,"z":null,"a":[1,"2",{}],"o":{"k":"v"}}`))},
		{name: "attributes 255 keys", in: testEvent(with("attributes", attrKeys(255)))},
		{name: "attributes 256 keys", in: testEvent(with("attributes", attrKeys(256))), wantField: "attributes", wantMsg: "attributes has 256 keys, over the limit of 255"},
		{name: "attributes nested 32 deep", in: testEvent(with("attributes", nestedAttr(32)))},
		{name: "attributes nested 33 deep", in: testEvent(with("attributes", nestedAttr(33))), wantField: "attributes", wantMsg: "nested deeper than 32 levels"},

		{name: "invalid UTF-8", in: testEvent(with("event", "\"bad \xff byte\"")), wantField: "", wantMsg: "not valid UTF-8"},
		{name: "invalid UTF-8 in attributes", in: testEvent(with("attributes", "{\"k\":\"\xc3\"}")), wantMsg: "not valid UTF-8"},
		{name: "truncated", in: strings.TrimSuffix(testEvent(), "}"), wantMsg: "not valid JSON"},
		{name: "trailing garbage", in: testEvent() + `x`, wantMsg: "not valid JSON"},
		{name: "single quotes", in: `{'type':'event'}`, wantMsg: "not valid JSON"},
		{
			name:     "over max_event_bytes",
			in:       testEvent(with("attributes", `{"blob":"`+strings.Repeat("x", 32<<10)+`"}`)),
			wantMsg:  "over the limit of 32768 (ingest.max_event_bytes)",
			wantCode: "too_large",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := decodeOne(t, tt.in)
			if tt.wantField == "" && tt.wantMsg == "" {
				if len(b.Rejected) > 0 {
					r := b.Rejected[0]
					t.Fatalf("rejected (field %q: %s); want accepted", r.Field, r.Message)
				}
				storedForm(t, b, 0)
				return
			}
			if len(b.Rejected) == 0 {
				t.Fatalf("accepted as %s; want rejected on field %q", storedForm(t, b, 0), tt.wantField)
			}
			r := b.Rejected[0]
			wantCode := tt.wantCode
			if wantCode == "" {
				wantCode = "invalid_event"
			}
			if r.Field != tt.wantField || !strings.Contains(r.Message, tt.wantMsg) || r.Code != wantCode {
				t.Fatalf("got field %q code %q message %q; want field %q code %q message containing %q",
					r.Field, r.Code, r.Message, tt.wantField, wantCode, tt.wantMsg)
			}
			if string(r.Raw) != tt.in {
				t.Fatalf("rejection keeps %q; want the event as sent", r.Raw)
			}
		})
	}
}

// TestDuplicateKeys checks that each key the decoder reads is refused when
// it appears twice in its object, rather than the last one winning: the
// event is rejected naming the key, and kept as sent.
func TestDuplicateKeys(t *testing.T) {
	// twice appends a second key member to a valid event.
	twice := func(key, raw string) string {
		ev := testEvent(with("context", `{}`), with("messageId", `"m-1"`), with("sentAt", `"2026-11-01T11:59:30Z"`), with("attributes", `{}`))
		return strings.TrimSuffix(ev, "}") + `,"` + key + `":` + raw + `}`
	}
	ctx := func(members string) string { return testEvent(with("context", `{`+members+`}`)) }
	tests := []struct {
		name      string
		in        string
		wantField string // "" means accepted
	}{
		{name: "type", in: twice("type", `"event"`), wantField: "type"},
		{name: "event", in: twice("event", `"Other"`), wantField: "event"},
		{name: "userId", in: twice("userId", `"bob"`), wantField: "userId"},
		{name: "eventTime", in: twice("eventTime", `"2026-11-01T11:00:00Z"`), wantField: "eventTime"},
		{name: "appKey", in: twice("appKey", `"other"`), wantField: "appKey"},
		{name: "messageId", in: twice("messageId", `"m-2"`), wantField: "messageId"},
		{name: "sentAt", in: twice("sentAt", `null`), wantField: "sentAt"},
		{name: "context", in: twice("context", `null`), wantField: "context"},
		{name: "attributes", in: twice("attributes", `{"a":1}`), wantField: "attributes"},
		{name: "same value twice", in: twice("userId", `"u1"`), wantField: "userId"},
		{name: "escaped second key", in: twice(`user\u0049d`, `"bob"`), wantField: "userId"},
		{name: "escaped first key", in: `{"\u0074ype":"event",` + strings.TrimPrefix(testEvent(), "{"), wantField: "type"},
		{name: "the first repeat is named", in: strings.TrimSuffix(twice("sentAt", `null`), "}") + `,"type":"event"}`, wantField: "sentAt"},
		{name: "context.ip", in: ctx(`"ip":"198.51.100.1","ip":"198.51.100.2"`), wantField: "context.ip"},
		{name: "context.ip after a bad one", in: ctx(`"ip":"bad","ip":"198.51.100.2"`), wantField: "context.ip"},
		{name: "context.ip escaped", in: ctx(`"ip":"198.51.100.1","\u0069p":"198.51.100.2"`), wantField: "context.ip"},
		{name: "context.userAgent", in: ctx(`"userAgent":"a","locale":"fr","userAgent":"b"`), wantField: "context.userAgent"},

		{name: "unread key twice", in: strings.TrimSuffix(testEvent(), "}") + `,"plan":"a","plan":"b"}`},
		{name: "attributes key twice", in: testEvent(with("attributes", `{"a":1,"a":2}`))},
		{name: "context other key twice", in: ctx(`"locale":"fr","locale":"de"`)},
		{name: "nested userId", in: testEvent(with("attributes", `{"userId":"x","o":{"userId":"y"}}`))},
		{name: "escaped key once", in: strings.TrimSuffix(testEvent(), "}") + `,"pl\u0061n":"a"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := decodeOne(t, tt.in)
			if tt.wantField == "" {
				if len(b.Rejected) > 0 {
					t.Fatalf("rejected (field %q: %s); want accepted", b.Rejected[0].Field, b.Rejected[0].Message)
				}
				return
			}
			if len(b.Rejected) == 0 {
				t.Fatalf("accepted as %s; want rejected on field %q", storedForm(t, b, 0), tt.wantField)
			}
			r := b.Rejected[0]
			if want := tt.wantField + " appears twice"; r.Field != tt.wantField || r.Message != want || r.Code != "invalid_event" {
				t.Fatalf("got field %q code %q message %q; want field %q, invalid_event, %q", r.Field, r.Code, r.Message, tt.wantField, want)
			}
			if string(r.Raw) != tt.in {
				t.Fatalf("rejection keeps %q; want the event as sent", r.Raw)
			}
		})
	}
}

// TestRejectionNamesEvent checks that a rejection carries what the answer
// and the quarantine need: its appKey and messageId.
func TestRejectionNamesEvent(t *testing.T) {
	tests := []struct {
		name          string
		in            string
		wantAppKey    string
		wantMessageID string
	}{
		{name: "both", in: testEvent(with("messageId", `"m-1"`), with("event", `""`)), wantAppKey: testAppKey, wantMessageID: "m-1"},
		{name: "escaped messageId", in: testEvent(with("messageId", `"m-\u0031"`), with("event", `""`)), wantAppKey: testAppKey, wantMessageID: "m-1"},
		{name: "messageId too long is not echoed", in: testEvent(with("messageId", quoted(strings.Repeat("m", 256)))), wantAppKey: testAppKey},
		{name: "messageId not a string", in: testEvent(with("messageId", `1`)), wantAppKey: testAppKey},
		{name: "appKey not a string", in: testEvent(with("appKey", `1`), with("messageId", `"m-2"`)), wantMessageID: "m-2"},
		{name: "appKey too long to be one", in: testEvent(with("appKey", quoted(strings.Repeat("k", 65))), with("event", `""`))},
		{name: "invalid JSON names nothing", in: testEvent(with("messageId", `"m-3"`)) + `,`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := decodeBody(DefaultConfig(), tt.in, false)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if len(b.Rejected) != 1 {
				t.Fatalf("got %d rejections; want 1", len(b.Rejected))
			}
			r := b.Rejected[0]
			if r.AppKey != tt.wantAppKey || r.MessageID != tt.wantMessageID {
				t.Fatalf("got appKey %q messageId %q; want %q, %q", r.AppKey, r.MessageID, tt.wantAppKey, tt.wantMessageID)
			}
		})
	}
}

// TestStoredForm checks the stored form byte for byte: the event as sent,
// compacted, plus the server's members.
func TestStoredForm(t *testing.T) {
	const (
		base  = `"type":"event","event":"Signed Up","userId":"u1","eventTime":"2026-11-01T11:59:00Z","appKey":"` + testAppKey + `"`
		ctxIP = `"context":{"ip":"` + testIP + `"}`
	)
	tests := []struct {
		name    string
		in      string
		ip      string // the connection's address; testIP when empty
		want    string
		wantUs  int64  // TimeUs; eventTime 11:59:00Z when 0
		wantMID string // Event.MessageID; nil when ""
	}{
		{
			name: "server members added",
			in:   testEvent(),
			want: `{` + base + `,` + ctxIP + `,` + testReceivedAt + `,` + testGenID + `}`,
		},
		{
			name:    "client messageId kept, none generated",
			in:      testEvent(with("messageId", `"m-1"`)),
			want:    `{` + base + `,"messageId":"m-1",` + ctxIP + `,` + testReceivedAt + `}`,
			wantMID: "m-1",
		},
		{
			name:    "escaped messageId kept as sent",
			in:      testEvent(with("messageId", `"m-\u0031"`)),
			want:    `{` + base + `,"messageId":"m-\u0031",` + ctxIP + `,` + testReceivedAt + `}`,
			wantMID: "m-1",
		},
		{
			name: "null messageId replaced by a generated one",
			in:   testEvent(with("messageId", `null`)),
			want: `{` + base + `,` + ctxIP + `,` + testReceivedAt + `,` + testGenID + `}`,
		},
		{
			name: "context.ip from the connection, no context",
			in:   testEvent(),
			ip:   "2001:db8::7",
			want: `{` + base + `,"context":{"ip":"2001:db8::7"},` + testReceivedAt + `,` + testGenID + `}`,
		},
		{
			name: "context.ip from the connection, null context",
			in:   testEvent(with("context", `null`)),
			want: `{` + base + `,` + ctxIP + `,` + testReceivedAt + `,` + testGenID + `}`,
		},
		{
			name: "context.ip from the connection, empty context",
			in:   testEvent(with("context", `{}`)),
			want: `{` + base + `,` + ctxIP + `,` + testReceivedAt + `,` + testGenID + `}`,
		},
		{
			name: "context.ip from the connection, empty context with space",
			in:   testEvent(with("context", "{ \n }")),
			want: `{` + base + `,` + ctxIP + `,` + testReceivedAt + `,` + testGenID + `}`,
		},
		{
			name: "context.ip from the connection, context with userAgent",
			in:   testEvent(with("context", `{ "userAgent" : "Mozilla/5.0 (X11)" }`)),
			want: `{` + base + `,"context":{"userAgent":"Mozilla/5.0 (X11)","ip":"` + testIP + `"},` + testReceivedAt + `,` + testGenID + `}`,
		},
		{
			name: "context.ip null is not the client's address",
			in:   testEvent(with("context", `{"userAgent":null}`)),
			want: `{` + base + `,"context":{"userAgent":null,"ip":"` + testIP + `"},` + testReceivedAt + `,` + testGenID + `}`,
		},
		{
			name: "context.ip sent is kept",
			in:   testEvent(with("context", `{"ip":"198.51.100.1","userAgent":"UA"}`)),
			want: `{` + base + `,"context":{"ip":"198.51.100.1","userAgent":"UA"},` + testReceivedAt + `,` + testGenID + `}`,
		},
		{
			name: "context.ip IPv6 sent is kept",
			in:   testEvent(with("context", `{"ip":"2001:db8::1"}`)),
			want: `{` + base + `,"context":{"ip":"2001:db8::1"},` + testReceivedAt + `,` + testGenID + `}`,
		},
		{
			name: "clock skew: sentAt 1h behind",
			in: testEvent(with("eventTime", `"2026-11-01T10:59:00Z"`),
				with("sentAt", `"2026-11-01T11:00:00.123Z"`)),
			want: `{"type":"event","event":"Signed Up","userId":"u1","eventTime":"2026-11-01T11:59:00Z","appKey":"` + testAppKey + `",` +
				`"sentAt":"2026-11-01T11:00:00.123Z","originalEventTime":"2026-11-01T10:59:00Z","clockSkewMs":3600000,` +
				ctxIP + `,` + testReceivedAt + `,` + testGenID + `}`,
		},
		{
			name: "clock skew keeps the event's offset and fraction",
			in: testEvent(with("eventTime", `"2026-11-01T03:59:00.5-07:00"`),
				with("sentAt", `"2026-11-01T11:00:00.123Z"`)),
			want: `{"type":"event","event":"Signed Up","userId":"u1","eventTime":"2026-11-01T04:59:00.5-07:00","appKey":"` + testAppKey + `",` +
				`"sentAt":"2026-11-01T11:00:00.123Z","originalEventTime":"2026-11-01T03:59:00.5-07:00","clockSkewMs":3600000,` +
				ctxIP + `,` + testReceivedAt + `,` + testGenID + `}`,
			wantUs: testNow.Add(-time.Minute).Add(-123*time.Millisecond).UnixMicro() + 500_000,
		},
		{
			name: "clock skew: client clock 2h ahead",
			in: testEvent(with("eventTime", `"2026-11-01T13:59:00Z"`),
				with("sentAt", `"2026-11-01T14:00:00.123Z"`)),
			want: `{"type":"event","event":"Signed Up","userId":"u1","eventTime":"2026-11-01T11:59:00Z","appKey":"` + testAppKey + `",` +
				`"sentAt":"2026-11-01T14:00:00.123Z","originalEventTime":"2026-11-01T13:59:00Z","clockSkewMs":-7200000,` +
				ctxIP + `,` + testReceivedAt + `,` + testGenID + `}`,
		},
		{
			name: "clock skew under the threshold left alone",
			in:   testEvent(with("sentAt", `"2026-11-01T11:59:30Z"`)),
			want: `{` + base + `,"sentAt":"2026-11-01T11:59:30Z",` + ctxIP + `,` + testReceivedAt + `,` + testGenID + `}`,
		},
		{
			name: "clock skew exactly at the threshold left alone",
			in:   testEvent(with("sentAt", `"2026-11-01T11:59:00.123Z"`)),
			want: `{` + base + `,"sentAt":"2026-11-01T11:59:00.123Z",` + ctxIP + `,` + testReceivedAt + `,` + testGenID + `}`,
		},
		{
			name: "eventTime 23h ahead accepted",
			in:   testEvent(with("eventTime", `"2026-11-02T11:00:00Z"`)),
			want: `{"type":"event","event":"Signed Up","userId":"u1","eventTime":"2026-11-02T11:00:00Z","appKey":"` + testAppKey + `",` +
				ctxIP + `,` + testReceivedAt + `,` + testGenID + `}`,
			wantUs: time.Date(2026, 11, 2, 11, 0, 0, 0, time.UTC).UnixMicro(),
		},
		{
			name: "eventTime kept to the microsecond, whatever its offset",
			in:   testEvent(with("eventTime", `"2026-11-01T17:29:00.000001+05:30"`)),
			want: `{"type":"event","event":"Signed Up","userId":"u1","eventTime":"2026-11-01T17:29:00.000001+05:30","appKey":"` + testAppKey + `",` +
				ctxIP + `,` + testReceivedAt + `,` + testGenID + `}`,
			wantUs: time.Date(2026, 11, 1, 11, 59, 0, 1000, time.UTC).UnixMicro(),
		},
		{
			name: "eventTime digits below the microsecond floored, stored as sent",
			in:   testEvent(with("eventTime", `"2026-11-01T03:59:00.0000019-08:00"`)),
			want: `{"type":"event","event":"Signed Up","userId":"u1","eventTime":"2026-11-01T03:59:00.0000019-08:00","appKey":"` + testAppKey + `",` +
				ctxIP + `,` + testReceivedAt + `,` + testGenID + `}`,
			wantUs: time.Date(2026, 11, 1, 11, 59, 0, 1000, time.UTC).UnixMicro(),
		},
		{
			name: "eventTime 25h ahead but so is the client's clock",
			in: testEvent(with("eventTime", `"2026-11-02T13:00:00.123Z"`),
				with("sentAt", `"2026-11-02T13:00:00.123Z"`)),
			want: `{"type":"event","event":"Signed Up","userId":"u1","eventTime":"2026-11-01T12:00:00.123Z","appKey":"` + testAppKey + `",` +
				`"sentAt":"2026-11-02T13:00:00.123Z","originalEventTime":"2026-11-02T13:00:00.123Z","clockSkewMs":-90000000,` +
				ctxIP + `,` + testReceivedAt + `,` + testGenID + `}`,
			wantUs: testNow.UnixMicro(),
		},
		{
			name: "numbers come back byte-exact",
			in:   testEvent(with("attributes", `{"big":1234567890123456789,"huge":1e400,"tiny":-1E-400,"price":19.990,"zero":-0}`)),
			want: `{` + base + `,"attributes":{"big":1234567890123456789,"huge":1e400,"tiny":-1E-400,"price":19.990,"zero":-0},` +
				ctxIP + `,` + testReceivedAt + `,` + testGenID + `}`,
		},
		{
			name: "strings come back byte-exact",
			in:   testEvent(with("attributes", `{"esc":"a\"b\\c\n\u00e9\ud83d\ude00","raw":"é 😀","sp":"  two  spaces "}`)),
			want: `{` + base + `,"attributes":{"esc":"a\"b\\c\n\u00e9\ud83d\ude00","raw":"é 😀","sp":"  two  spaces "},` +
				ctxIP + `,` + testReceivedAt + `,` + testGenID + `}`,
		},
		{
			name: "pretty-printed input compacted into one line",
			in: "{\n  \"type\": \"event\",\n  \"event\": \"Signed  Up\",\n\t\"userId\" : \"u1\" ,\r\n" +
				"  \"eventTime\": \"2026-11-01T11:59:00Z\",\n  \"appKey\": \"" + testAppKey + "\",\n" +
				"  \"context\": {\n    \"userAgent\": \"UA\"\n  },\n  \"attributes\": {\n    \"list\": [ 1,\n 2 ],\n    \"o\": { }\n  }\n}\n",
			want: `{"type":"event","event":"Signed  Up","userId":"u1","eventTime":"2026-11-01T11:59:00Z","appKey":"` + testAppKey + `",` +
				`"context":{"userAgent":"UA","ip":"` + testIP + `"},"attributes":{"list":[1,2],"o":{}},` + testReceivedAt + `,` + testGenID + `}`,
		},
		{
			name: "client receivedAt replaced, not duplicated",
			in:   testEvent(with("receivedAt", `"1999-01-01T00:00:00Z"`)),
			want: `{` + base + `,` + ctxIP + `,` + testReceivedAt + `,` + testGenID + `}`,
		},
		{
			name: "client clock-skew members dropped",
			in:   `{"originalEventTime":"x","clockSkewMs":5,` + testEvent()[1:],
			want: `{` + base + `,` + ctxIP + `,` + testReceivedAt + `,` + testGenID + `}`,
		},
		{
			name: "unknown members kept in place",
			in:   testEvent(with("properties", `{"a":1}`), with("context", `{"ip":"198.51.100.1"}`), with("x", `[]`)),
			want: `{` + base + `,"properties":{"a":1},"context":{"ip":"198.51.100.1"},"x":[],` + testReceivedAt + `,` + testGenID + `}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			ip := tt.ip
			if ip == "" {
				ip = testIP
			}
			b := newBatch(&cfg, testNow, ip)
			if err := Decode(b, []byte(tt.in)); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if len(b.Rejected) > 0 {
				t.Fatalf("rejected: field %q: %s", b.Rejected[0].Field, b.Rejected[0].Message)
			}
			if got := storedForm(t, b, 0); got != tt.want {
				t.Fatalf("stored form\ngot  %s\nwant %s", got, tt.want)
			}
			e := b.Events[0]
			wantUs := tt.wantUs
			if wantUs == 0 {
				wantUs = time.Date(2026, 11, 1, 11, 59, 0, 0, time.UTC).UnixMicro()
			}
			if e.TimeUs != wantUs {
				t.Fatalf("TimeUs = %d; want %d", e.TimeUs, wantUs)
			}
			if (tt.wantMID == "") != (e.MessageID == nil) || string(e.MessageID) != tt.wantMID {
				t.Fatalf("MessageID = %q (nil %v); want %q", e.MessageID, e.MessageID == nil, tt.wantMID)
			}
			if e.AppKey != testAppKey || e.Index != 0 {
				t.Fatalf("got AppKey %q Index %d; want %q, 0", e.AppKey, e.Index, testAppKey)
			}
		})
	}
}

func TestReceivedAtFormat(t *testing.T) {
	tests := []struct {
		name string
		now  time.Time
		want string
	}{
		{name: "UTC", now: testNow, want: testReceivedAt},
		{name: "converted to UTC", now: time.Date(2026, 11, 1, 5, 0, 0, 0, time.FixedZone("PDT", -7*3600)), want: `"receivedAt":"2026-11-01T12:00:00.000Z"`},
		{name: "milliseconds truncated", now: time.Date(2026, 1, 2, 3, 4, 5, 999_999_999, time.UTC), want: `"receivedAt":"2026-01-02T03:04:05.999Z"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			b := newBatch(&cfg, tt.now, testIP)
			// Keep the event out of max_future's way whatever the clock.
			if err := Decode(b, []byte(testEvent(with("eventTime", `"2000-01-01T00:00:00Z"`)))); err != nil {
				t.Fatal(err)
			}
			s := []byte(storedForm(t, b, 0))
			if v, _ := memberOf(s, "receivedAt"); `"receivedAt":`+string(v) != tt.want {
				t.Fatalf("got receivedAt %s; want %s", v, tt.want)
			}
		})
	}
}

func TestGeneratedMessageID(t *testing.T) {
	cfg := DefaultConfig()
	b := newBatch(&cfg, testNow, testIP)
	if err := Decode(b, []byte(`[`+testEvent()+`,`+testEvent()+`]`)); err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`"messageId":"(trv-[0-9a-f]{16})"}$`)
	seen := map[string]bool{}
	for i, seq := range []uint64{0, 1<<64 - 1} {
		s := b.appendStored(nil, &b.Events[i], seq)
		checkStored(t, s)
		m := re.FindSubmatch(s)
		if m == nil {
			t.Fatalf("stored form %s does not end with a generated messageId", s)
		}
		if seen[string(m[1])] {
			t.Fatalf("messageId %s generated twice", m[1])
		}
		seen[string(m[1])] = true
	}
	for _, id := range []string{"trv-0000000000000000", "trv-ffffffffffffffff"} {
		if !seen[id] {
			t.Fatalf("got %v; want %s among them", seen, id)
		}
	}
	// The stored form is the same whatever was appended before it.
	first := b.appendStored(nil, &b.Events[0], 7)
	both := b.appendStored([]byte("prefix\n"), &b.Events[0], 7)
	if string(both) != "prefix\n"+string(first) {
		t.Fatalf("appendStored after a prefix gave %q; want the prefix then %q", both, first)
	}
	// Sized so that a sink can reserve room up front.
	if extra := len(first) - (b.Events[0].end - b.Events[0].start); extra > generatedIDLen {
		t.Fatalf("a generated messageId adds %d bytes; generatedIDLen is %d", extra, generatedIDLen)
	}
}

func TestMaxFuture(t *testing.T) {
	tests := []struct {
		name      string
		maxFuture time.Duration
		in        string
		wantOK    bool
	}{
		{name: "23h ahead", maxFuture: 24 * time.Hour, in: testEvent(with("eventTime", `"2026-11-02T11:00:00Z"`)), wantOK: true},
		{name: "exactly 24h ahead", maxFuture: 24 * time.Hour, in: testEvent(with("eventTime", `"2026-11-02T12:00:00.123Z"`)), wantOK: true},
		{name: "24h and 1ms ahead", maxFuture: 24 * time.Hour, in: testEvent(with("eventTime", `"2026-11-02T12:00:00.124Z"`))},
		{name: "25h ahead", maxFuture: 24 * time.Hour, in: testEvent(with("eventTime", `"2026-11-02T13:00:00Z"`))},
		{name: "25h ahead in another zone", maxFuture: 24 * time.Hour, in: testEvent(with("eventTime", `"2026-11-02T15:00:00+02:00"`))},
		{name: "21h ahead, 23h after a 2h correction", maxFuture: 24 * time.Hour, in: testEvent(
			with("eventTime", `"2026-11-02T09:00:00Z"`), with("sentAt", `"2026-11-01T10:00:00.123Z"`)), wantOK: true},
		{name: "23h ahead, 25h after a 2h correction", maxFuture: 24 * time.Hour, in: testEvent(
			with("eventTime", `"2026-11-02T11:00:00Z"`), with("sentAt", `"2026-11-01T10:00:00.123Z"`))},
		{name: "smaller max_future", maxFuture: time.Hour, in: testEvent(with("eventTime", `"2026-11-01T13:30:00Z"`))},
		{name: "far past accepted", maxFuture: 24 * time.Hour, in: testEvent(with("eventTime", `"1970-01-01T00:00:00Z"`)), wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.MaxFuture = tt.maxFuture
			if b := checkEventTimeVerdict(t, cfg, tt.in, tt.wantOK, "ahead of the server's clock (ingest.max_future)"); tt.wantOK {
				storedForm(t, b, 0)
			}
		})
	}
}

func TestRetentionRefusesOldEvents(t *testing.T) {
	month := func(appKey string) time.Duration {
		if appKey == testAppKey {
			return 30 * 24 * time.Hour
		}
		return 0
	}
	tests := []struct {
		name      string
		retention func(string) time.Duration
		in        string
		wantOK    bool
	}{
		{name: "29 days old", retention: month, in: testEvent(with("eventTime", `"2026-10-03T12:00:00Z"`)), wantOK: true},
		{name: "31 days old", retention: month, in: testEvent(with("eventTime", `"2026-10-01T11:00:00Z"`))},
		{name: "31 days old after a correction of its clock", retention: month, in: testEvent(
			with("eventTime", `"2026-10-03T12:00:00Z"`), with("sentAt", `"2026-11-03T12:00:00Z"`))},
		{name: "another app keeps everything", retention: month, in: testEvent(
			with("eventTime", `"1970-01-01T00:00:00Z"`), with("appKey", `"other-app"`)), wantOK: true},
		{name: "no retention", in: testEvent(with("eventTime", `"1970-01-01T00:00:00Z"`)), wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Retention = tt.retention
			checkEventTimeVerdict(t, cfg, tt.in, tt.wantOK, "older than the app's retention of 30d")
		})
	}
}

// checkEventTimeVerdict decodes in under cfg and fails unless its event is
// accepted when wantOK, or else rejected on eventTime with a message that
// contains why (the limit of cfg it is past). It returns the batch.
func checkEventTimeVerdict(t *testing.T, cfg Config, in string, wantOK bool, why string) *Batch {
	t.Helper()
	b, err := decodeBody(cfg, in, false)
	if err != nil {
		t.Fatal(err)
	}
	if wantOK {
		if len(b.Events) != 1 {
			t.Fatalf("rejected: %+v; want accepted", b.Rejected)
		}
		return b
	}
	if len(b.Rejected) != 1 {
		t.Fatalf("accepted; want rejected on eventTime")
	}
	if r := b.Rejected[0]; r.Field != "eventTime" || !strings.Contains(r.Message, why) {
		t.Fatalf("got field %q message %q; want field eventTime and a message containing %q", r.Field, r.Message, why)
	}
	return b
}

func TestSkewThresholdConfig(t *testing.T) {
	cfg := DefaultConfig()
	cfg.SkewThreshold = 10 * time.Minute
	// 30 minutes behind: over the 10-minute threshold.
	b, err := decodeBody(cfg, testEvent(with("sentAt", `"2026-11-01T11:30:00.123Z"`)), false)
	if err != nil {
		t.Fatal(err)
	}
	s := []byte(storedForm(t, b, 0))
	if v, _ := memberOf(s, "clockSkewMs"); string(v) != "1800000" {
		t.Fatalf("clockSkewMs = %s; want 1800000 in %s", v, s)
	}
	// 5 minutes behind: under it.
	b, err = decodeBody(cfg, testEvent(with("sentAt", `"2026-11-01T11:55:00Z"`)), false)
	if err != nil {
		t.Fatal(err)
	}
	s = []byte(storedForm(t, b, 0))
	if _, found := memberOf(s, "clockSkewMs"); found {
		t.Fatalf("under the threshold, got a correction: %s", s)
	}
}

func TestMaxEventBytesConfig(t *testing.T) {
	ev := testEvent()
	for _, tt := range []struct {
		limit  int
		wantOK bool
	}{{len(ev), true}, {len(ev) - 1, false}} {
		cfg := DefaultConfig()
		cfg.MaxEventBytes = tt.limit
		b, err := decodeBody(cfg, ev, false)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(b.Events) == 1; got != tt.wantOK {
			t.Fatalf("limit %d for a %d-byte event: accepted %v; want %v", tt.limit, len(ev), got, tt.wantOK)
		}
		if !tt.wantOK && (b.Rejected[0].Code != "too_large" || b.Rejected[0].Field != "") {
			t.Fatalf("got %+v; want a too_large rejection", b.Rejected[0])
		}
	}
}

func TestMaxAttributesConfig(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxAttributes = 2
	for _, tt := range []struct {
		n      int
		wantOK bool
	}{{0, true}, {2, true}, {3, false}} {
		b, err := decodeBody(cfg, testEvent(with("attributes", attrKeys(tt.n))), false)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(b.Events) == 1; got != tt.wantOK {
			t.Fatalf("%d keys with a limit of 2: accepted %v; want %v", tt.n, got, tt.wantOK)
		}
	}
}

func TestIsIPv4(t *testing.T) {
	for _, s := range []string{"0.0.0.0", "1.2.3.4", "198.51.100.1", "255.255.255.255", "10.0.0.10"} {
		if !isIPv4([]byte(s)) {
			t.Errorf("isIPv4(%q) = false; want true", s)
		}
	}
	// isIPv4 must never accept what netip.ParseAddr refuses, and must
	// agree with it on dotted strings: all of 1 to 5 fields joined by dots,
	// with leading zeros, empty fields, 255, 256 and too many digits.
	fields := []string{"", "0", "00", "01", "1", "25", "255", "256", "999", "0255", "1x"}
	var walk func(s string, n int)
	walk = func(s string, n int) {
		_, err := netip.ParseAddr(s)
		if got, want := isIPv4([]byte(s)), err == nil; got != want {
			t.Fatalf("isIPv4(%q) = %v; netip.ParseAddr says %v", s, got, want)
		}
		if n == 5 {
			return
		}
		for _, f := range fields {
			if n == 0 {
				walk(f, 1)
			} else {
				walk(s+"."+f, n+1)
			}
		}
	}
	walk("", 0)
	for _, s := range []string{"", "1.2.3", "1.2.3.4.", "1.2.3.4.5", ".1.2.3", "1..2.3", "01.2.3.4", "1.2.3.256", "1.2.3.4 ", "::ffff:1.2.3.4", "1.2.3.4%eth0", "1e1.2.3.4"} {
		if isIPv4([]byte(s)) {
			t.Errorf("isIPv4(%q) = true; want false", s)
		}
	}
}

// decodeOne decodes the body in, which must hold one event, valid or not.
func decodeOne(t *testing.T, in string) *Batch {
	t.Helper()
	b, err := decodeBody(DefaultConfig(), in, false)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if n := len(b.Events) + len(b.Rejected); n != 1 {
		t.Fatalf("got %d events and %d rejections; want one of either", len(b.Events), len(b.Rejected))
	}
	return b
}
