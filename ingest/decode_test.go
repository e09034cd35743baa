package ingest

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"trove/apierr"
)

// result is what a decoded batch says, in a form tests compare: each
// event as "E<index>" and each rejection as "R<index>:<field>".
func result(b *Batch) []string {
	var out []string
	for _, e := range b.Events {
		out = append(out, "E"+strconv.Itoa(e.Index))
	}
	for _, r := range b.Rejected {
		out = append(out, "R"+strconv.Itoa(r.Index)+":"+r.Field)
	}
	return out
}

func TestDecode(t *testing.T) {
	ev := testEvent()
	bad := testEvent(with("userId", `""`))
	tests := []struct {
		name    string
		body    string
		ndjson  bool
		want    []string // result(b)
		wantErr string   // substring of the request error; "" for none
	}{
		{name: "object", body: ev, want: []string{"E0"}},
		{name: "object with space around", body: "\n\t " + ev + " \r\n", want: []string{"E0"}},
		{name: "bad object", body: bad, want: []string{"R0:userId"}},
		{name: "array", body: `[` + ev + `,` + ev + `]`, want: []string{"E0", "E1"}},
		{name: "array with a bad event", body: `[` + ev + `,` + bad + `,` + ev + `]`, want: []string{"E0", "E2", "R1:userId"}},
		{name: "array with space everywhere", body: "[\n " + ev + " ,\n\t" + ev + "\n]\n", want: []string{"E0", "E1"}},
		{name: "array of one", body: `[` + ev + `]`, want: []string{"E0"}},
		{
			name: "array with non-object elements",
			body: `[1,"x",null,true,[],` + ev + `,{}]`,
			want: []string{"E5", "R0:", "R1:", "R2:", "R3:", "R4:", "R6:type"},
		},
		{name: "empty array", body: `[]`, wantErr: "the array holds no event"},
		{name: "empty array with space", body: " [ \n ] ", wantErr: "the array holds no event"},
		{name: "truncated array", body: `[` + ev + `,` + ev[:20], wantErr: "not valid JSON"},
		{name: "array missing its bracket", body: `[` + ev, wantErr: "not valid JSON"},
		{name: "array with trailing comma", body: `[` + ev + `,]`, wantErr: "not valid JSON"},
		{name: "two arrays", body: `[` + ev + `][` + ev + `]`, wantErr: "not valid JSON"},
		{name: "empty body", body: ``, wantErr: "the request body is empty"},
		{name: "blank body", body: " \r\n\t", wantErr: "the request body is empty"},
		{name: "string body", body: `"event"`, wantErr: "must be a JSON object or array"},
		{name: "number body", body: `42`, wantErr: "must be a JSON object or array"},
		{name: "form body", body: `type=event&event=x`, wantErr: "must be a JSON object or array"},
		{name: "NDJSON sent as JSON", body: ev + "\n" + ev + "\n", want: []string{"R0:"}},

		{name: "NDJSON", body: ev + "\n" + ev + "\n", ndjson: true, want: []string{"E1", "E2"}},
		{name: "NDJSON without final newline", body: ev + "\n" + ev, ndjson: true, want: []string{"E1", "E2"}},
		{name: "NDJSON blank lines skipped, numbers kept", body: "\n" + ev + "\n\n  \n" + bad + "\n" + ev + "\n\n", ndjson: true, want: []string{"E2", "E6", "R5:userId"}},
		{name: "NDJSON CRLF", body: ev + "\r\n" + bad + "\r\n\r\n" + ev + "\r\n", ndjson: true, want: []string{"E1", "E4", "R2:userId"}},
		{name: "NDJSON bad lines", body: "{\n" + ev + "\n[1]\nnot json\n", ndjson: true, want: []string{"E2", "R1:", "R3:", "R4:"}},
		{name: "NDJSON pretty-printed object", body: "{\n\"type\": \"event\"\n}\n", ndjson: true, want: []string{"R1:", "R2:", "R3:"}},
		{name: "NDJSON empty", body: ``, ndjson: true, wantErr: "the NDJSON body holds no event"},
		{name: "NDJSON blank lines only", body: "\n\r\n \n", ndjson: true, wantErr: "the NDJSON body holds no event"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := decodeBody(DefaultConfig(), tt.body, tt.ndjson)
			if tt.wantErr != "" {
				var re *apierr.Error
				if !errors.As(err, &re) || !errors.Is(err, apierr.Invalid) || !strings.Contains(re.Message, tt.wantErr) {
					t.Fatalf("err = %v; want an apierr.Invalid apierr.Error containing %q", err, tt.wantErr)
				}
				if len(b.Events) != 0 {
					t.Fatalf("got %d events with a request error; want none", len(b.Events))
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got := result(b); !slices.Equal(got, tt.want) {
				t.Fatalf("got %v; want %v", got, tt.want)
			}
			for i := range b.Events {
				storedForm(t, b, i)
			}
		})
	}
}

// TestDecodeDeepNesting checks that pathological nesting is refused without
// reaching a recursive parser, whatever the framing.
func TestDecodeDeepNesting(t *testing.T) {
	const n = 100_000
	tests := []struct {
		name          string
		body          string
		ndjson        bool
		maxEventBytes int
		wantErr       bool   // the request as a whole is refused
		wantCode      string // else the one event is refused with this code
	}{
		{name: "brackets", body: strings.Repeat("[", n), wantErr: true},
		{name: "balanced brackets", body: strings.Repeat("[", n) + strings.Repeat("]", n), wantErr: true},
		{name: "array of deep objects", body: `[` + strings.Repeat(`{"a":`, n), wantErr: true},
		{name: "valid array, deep under json.Valid's cap", body: "[" + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + "]", wantErr: true},
		{name: "valid array, deep event after a good one", body: "[" + testEvent() + "," + testEvent(with("attributes", nestedAttr(33))) + "]", wantErr: true},
		{name: "braces", body: strings.Repeat("{", n), wantCode: "too_large"},
		{name: "braces under a large event limit", body: strings.Repeat("{", n), maxEventBytes: 1 << 20, wantCode: "invalid_event"},
		{name: "deep attributes", body: testEvent(with("attributes", strings.Repeat(`{"a":`, n/10)+"1"+strings.Repeat("}", n/10))), maxEventBytes: 1 << 20, wantCode: "invalid_event"},
		{name: "NDJSON line", body: strings.Repeat("[", n) + "\n" + testEvent(), ndjson: true, maxEventBytes: 1 << 20, wantCode: "invalid_event"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if tt.maxEventBytes > 0 {
				cfg.MaxEventBytes = tt.maxEventBytes
			}
			b, err := decodeBody(cfg, tt.body, tt.ndjson)
			if tt.wantErr {
				if !errors.Is(err, apierr.Invalid) || !strings.Contains(err.Error(), "nested deeper") {
					t.Fatalf("err = %v; want apierr.Invalid naming the nesting", err)
				}
				if len(b.Events)+len(b.Rejected) > 0 {
					t.Fatalf("request error with %d events and %d rejections", len(b.Events), len(b.Rejected))
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if len(b.Rejected) != 1 || b.Rejected[0].Code != tt.wantCode {
				t.Fatalf("got rejections %v; want one with code %q", result(b), tt.wantCode)
			}
			if tt.wantCode == "invalid_event" && !strings.Contains(b.Rejected[0].Message, "nested deeper") {
				t.Fatalf("got message %q; want the nesting named", b.Rejected[0].Message)
			}
		})
	}
}

// TestDecodeGolden runs testdata/decode: each case is a request body and
// the accepted rows (stored form at a fixed clock and address) and
// rejections it gives. Arguments: ndjson, crlf (turn line ends into CRLF),
// ip=ADDR, now=RFC3339, max-event-bytes=N.
func TestDecodeGolden(t *testing.T) {
	runDataDriven(t, "testdata/decode", func(t *testing.T, d *ddCase) string {
		if d.Cmd != "decode" {
			t.Fatalf("%s: unknown command %q", d.Pos, d.Cmd)
		}
		cfg := DefaultConfig()
		ip, now := testIP, testNow
		if v, ok := d.Arg("ip"); ok {
			ip = v
		}
		if v, ok := d.Arg("now"); ok {
			var err error
			if now, err = time.Parse(time.RFC3339Nano, v); err != nil {
				t.Fatalf("%s: %v", d.Pos, err)
			}
		}
		if v, ok := d.Arg("max-event-bytes"); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("%s: %v", d.Pos, err)
			}
			cfg.MaxEventBytes = n
		}
		body := d.Input
		if d.HasArg("crlf") {
			body = strings.ReplaceAll(body, "\n", "\r\n")
		}
		b := newBatch(&cfg, now, ip)
		b.NDJSON = d.HasArg("ndjson")
		err := Decode(b, []byte(body))
		return formatBatch(t, b, err)
	})
}

// formatBatch prints a decoded batch for golden files: one "event" line per
// accepted event with its stored form on the next (a generated messageId
// from sequence 42 + i), then one "reject" line per rejection.
func formatBatch(t *testing.T, b *Batch, err error) string {
	var sb strings.Builder
	pos := "index"
	if b.NDJSON {
		pos = "line"
	}
	if err != nil {
		var re *apierr.Error
		if !errors.As(err, &re) {
			t.Fatalf("Decode returned %T %v; want a *apierr.Error", err, err)
		}
		fmt.Fprintf(&sb, "error %s field=%q: %s\n", kindName(re.Kind), re.Field, re.Message)
	}
	for i := range b.Events {
		e := &b.Events[i]
		fmt.Fprintf(&sb, "event %s=%d app=%s time=%s", pos, e.Index, e.AppKey,
			time.UnixMicro(e.TimeUs).UTC().Format("2006-01-02T15:04:05.000000Z"))
		if e.MessageID != nil {
			fmt.Fprintf(&sb, " messageId=%q", e.MessageID)
		}
		s := b.appendStored(nil, e, testSeq+uint64(i))
		checkStored(t, s)
		fmt.Fprintf(&sb, "\n  %s\n", s)
	}
	for _, r := range b.Rejected {
		fmt.Fprintf(&sb, "reject %s=%d app=%q messageId=%q field=%q code=%s: %s\n",
			pos, r.Index, r.AppKey, r.MessageID, r.Field, r.Code, r.Message)
	}
	return sb.String()
}

func kindName(kind error) string {
	switch kind {
	case apierr.Invalid:
		return "invalid"
	case apierr.TooLarge:
		return "too-large"
	case apierr.Unsupported:
		return "unsupported-media-type"
	}
	return fmt.Sprint(kind)
}

// TestDecodeBatchesIndependent decodes two requests in a row, the second
// through the same pooled body buffers as the first, and checks that the
// first batch's results are unchanged: no buffer is shared between live
// batches. Then it checks that a batch reused from the pool decodes as a
// fresh one does.
func TestDecodeBatchesIndependent(t *testing.T) {
	cfg := DefaultConfig()
	body1 := []byte(`[` + testEvent(with("event", `"first"`)) + `,` + testEvent(with("messageId", `"m-1"`), with("event", `""`)) + `]`)
	body2 := []byte(`[` + testEvent(with("event", `"second, longer"`), with("context", `{"userAgent":"UA2"}`)) + `,` +
		testEvent(with("messageId", `"m-2"`), with("userId", `""`)) + `,` + testEvent() + `]`)

	buf1 := getBodyBuffer()
	buf1.b = append(buf1.b[:0], body1...)
	b1 := newBatch(&cfg, testNow, testIP)
	if err := Decode(b1, buf1.b); err != nil {
		t.Fatal(err)
	}
	snap := snapshot(t, b1)

	buf2 := getBodyBuffer()
	buf2.b = append(buf2.b[:0], body2...)
	b2 := newBatch(&cfg, testNow.Add(time.Second), "198.51.100.9")
	if err := Decode(b2, buf2.b); err != nil {
		t.Fatal(err)
	}
	if got := snapshot(t, b1); !slices.Equal(got, snap) {
		t.Fatalf("first batch changed after the second was decoded:\ngot  %q\nwant %q", got, snap)
	}
	if got := snapshot(t, b2); slices.Equal(got, snap) {
		t.Fatalf("second batch looks like the first: %q", got)
	}
	putBodyBuffer(buf2)
	putBodyBuffer(buf1)

	// Batches are pooled: once returned, a batch's buffers serve the next
	// request, which must not see anything of the last one.
	putBatch(b1)
	putBatch(b2)
	for range 3 {
		decodeDirty(t)
		b := newBatch(&cfg, testNow, testIP)
		if err := Decode(b, body1); err != nil {
			t.Fatal(err)
		}
		if got := snapshot(t, b); !slices.Equal(got, snap) {
			t.Fatalf("a reused batch decodes differently:\ngot  %q\nwant %q", got, snap)
		}
		putBatch(b)
	}
}

// snapshot copies what a batch says into strings.
func snapshot(t testing.TB, b *Batch) []string {
	var out []string
	for i := range b.Events {
		e := &b.Events[i]
		out = append(out, fmt.Sprintf("%d %s %q %d %s", e.Index, e.AppKey, e.MessageID, e.TimeUs, b.appendStored(nil, e, uint64(i))))
	}
	for _, r := range b.Rejected {
		out = append(out, fmt.Sprintf("%d %s %s %s %s %s %s", r.Index, r.AppKey, r.MessageID, r.Field, r.Code, r.Message, r.Raw))
	}
	return out
}
