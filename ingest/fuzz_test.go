package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/goccy/go-json"

	"trove/apierr"
	"trove/bench"
)

// FuzzDecodeStream decodes arbitrary bodies, as JSON or NDJSON, and checks
// that Decode never panics, that every stored form is one line of valid
// JSON whose server members appear once, and that results do not depend
// on how the body is cut: an NDJSON body split into two requests at a line
// boundary near split gives the same events and rejections as the whole,
// and each object of an array gives alone what it gives inside the array.
// The whole body's batch is checked again at the end, after the other
// decodes, to catch buffers shared between batches.
//
// Seeds are in testdata/fuzz/FuzzDecodeStream.
func FuzzDecodeStream(f *testing.F) {
	f.Add([]byte(testEvent()), false, uint16(0))
	f.Add([]byte(testEvent()+"\n"+testEvent(with("userId", `""`))+"\n"), true, uint16(40))
	f.Fuzz(func(t *testing.T, body []byte, ndjson bool, split uint16) {
		cfg := DefaultConfig()
		whole := newBatch(&cfg, testNow, testIP)
		whole.NDJSON = ndjson
		err := Decode(whole, body)
		if err != nil {
			var re *apierr.Error
			if !errors.As(err, &re) || !errors.Is(err, apierr.Invalid) {
				t.Fatalf("Decode returned %T %v; want a *apierr.Error for apierr.Invalid", err, err)
			}
			if len(whole.Events)+len(whole.Rejected) > 0 {
				t.Fatalf("request error %v with %d events and %d rejections", err, len(whole.Events), len(whole.Rejected))
			}
			return
		}
		if len(whole.Events)+len(whole.Rejected) == 0 {
			t.Fatal("no error, no event and no rejection")
		}
		checkBatch(t, whole, body)
		snap := snapshot(t, whole)

		if ndjson {
			checkNDJSONSplit(t, &cfg, whole, body, int(split))
		} else {
			checkArrayElements(t, &cfg, whole, body)
		}

		if got := snapshot(t, whole); !slices.Equal(got, snap) {
			t.Fatalf("batch changed after other batches were decoded:\ngot  %q\nwant %q", got, snap)
		}

		// Pooled batches: once whole is returned and its buffers have
		// served another request, decoding the body again gives the same.
		putBatch(whole)
		decodeDirty(t)
		again := newBatch(&cfg, testNow, testIP)
		again.NDJSON = ndjson
		if err := Decode(again, body); err != nil {
			t.Fatalf("second decode: %v", err)
		}
		if got := snapshot(t, again); !slices.Equal(got, snap) {
			t.Fatalf("decoding into a reused batch differs:\ngot  %q\nwant %q", got, snap)
		}
		putBatch(again)
	})
}

// dirtyBody is a request unlike the fuzzer's: many events, long members,
// clock skew, another clock and address.
var dirtyBody = bench.NewGenerator(3, "other-app").WithSentAt(true).WithMessageIDs(true).AppendNDJSON(nil, 8)

// decodeDirty decodes dirtyBody into a pooled batch and returns it, so
// that the next batch from the pool starts with used buffers.
func decodeDirty(t *testing.T) {
	t.Helper()
	cfg := DefaultConfig()
	b := newBatch(&cfg, bench.BaseTime(), "2001:db8::99")
	b.NDJSON = true
	if err := Decode(b, append(bytes.Clone(dirtyBody), "[1]\n{\"type\":\"event\"}\n"...)); err != nil || len(b.Events) != 8 || len(b.Rejected) != 2 {
		t.Fatalf("dirty decode: %v, %d events, %d rejections", err, len(b.Events), len(b.Rejected))
	}
	for i := range b.Events {
		b.out = b.appendStored(b.out, &b.Events[i], uint64(i))
	}
	putBatch(b)
}

// checkBatch checks what holds for any decoded batch.
func checkBatch(t *testing.T, b *Batch, body []byte) {
	t.Helper()
	maxIndex := len(body) // a loose bound: an event takes at least 2 bytes
	seen := map[int]bool{}
	for i := range b.Events {
		e := &b.Events[i]
		if e.Index < 0 || e.Index > maxIndex || seen[e.Index] {
			t.Fatalf("event index %d out of range or repeated", e.Index)
		}
		seen[e.Index] = true
		if i > 0 && e.Index <= b.Events[i-1].Index {
			t.Fatalf("events out of order: %d after %d", e.Index, b.Events[i-1].Index)
		}
		s := b.appendStored(nil, e, testSeq)
		checkStored(t, s)
		if !utf8.Valid(s) {
			t.Fatalf("stored form is not valid UTF-8: %q", s)
		}
		stored := topKeys(t, s)
		raw := rawOf(t, b, body, e.Index)
		sent := topKeys(t, raw)
		for _, k := range []string{"context", "messageId"} {
			if stored[k] > max(1, sent[k]) {
				t.Fatalf("stored form has %d %q members, the event %d: %s", stored[k], k, sent[k], s)
			}
		}
		if e.AppKey == "" {
			t.Fatalf("event %d accepted without an appKey: %s", e.Index, s)
		}
		// The stored form is itself a valid event (unless the skew
		// correction would apply twice, or the server's members pushed it
		// over the size limit).
		if _, skewed := memberOf(s, "clockSkewMs"); !skewed && len(s) <= b.cfg.MaxEventBytes {
			again := newBatch(b.cfg, b.Now, b.IP)
			if err := Decode(again, s); err != nil || len(again.Events) != 1 {
				t.Fatalf("stored form %s is not a valid event: %v %+v", s, err, again.Rejected)
			}
		}
	}
	for i, r := range b.Rejected {
		if seen[r.Index] {
			t.Fatalf("index %d both accepted and rejected", r.Index)
		}
		if i > 0 && r.Index <= b.Rejected[i-1].Index {
			t.Fatalf("rejections out of order: %d after %d", r.Index, b.Rejected[i-1].Index)
		}
		if r.Message == "" || (r.Code != "invalid_event" && r.Code != "too_large") {
			t.Fatalf("rejection %+v lacks a message or has an unknown code", r)
		}
		if r.MessageID != "" && !utf8.ValidString(r.MessageID) {
			t.Fatalf("rejection messageId %q is not valid UTF-8", r.MessageID)
		}
		line := b.appendRejectedLine(nil, &r)
		if !json.Valid(line) || bytes.IndexByte(line, '\n') >= 0 {
			t.Fatalf("quarantine record is not one line of valid JSON: %q", line)
		}
	}
}

// rawOf returns the text of the event at index idx of body.
func rawOf(t *testing.T, b *Batch, body []byte, idx int) []byte {
	t.Helper()
	if b.NDJSON {
		lines := bytes.Split(body, []byte("\n"))
		return bytes.TrimSpace(lines[idx-1])
	}
	body = bytes.TrimSpace(body)
	if body[0] == '{' {
		return body
	}
	var raw []byte
	forEachElement(body, func(i int, e []byte) error {
		if i == idx {
			raw = e
		}
		return nil
	})
	if raw == nil {
		t.Fatalf("no element %d in the body", idx)
	}
	return raw
}

// checkNDJSONSplit decodes body as two requests cut after the line that
// holds byte split, and checks that together they say what whole says.
func checkNDJSONSplit(t *testing.T, cfg *Config, whole *Batch, body []byte, split int) {
	t.Helper()
	cut := len(body)
	if split < len(body) {
		if i := bytes.IndexByte(body[split:], '\n'); i >= 0 {
			cut = split + i + 1
		}
	}
	lines := bytes.Count(body[:cut], []byte("\n"))
	var got []string
	for _, part := range []struct {
		body   []byte
		offset int
	}{{body[:cut], 0}, {body[cut:], lines}} {
		b := newBatch(cfg, testNow, testIP)
		b.NDJSON = true
		if err := Decode(b, part.body); err != nil {
			if len(bytes.TrimSpace(part.body)) > 0 || !errors.Is(err, apierr.Invalid) {
				t.Fatalf("part %q: %v", part.body, err)
			}
			continue
		}
		for _, s := range describe(b) {
			got = append(got, shiftIndex(s, part.offset))
		}
	}
	slices.Sort(got)
	want := describe(whole)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("split after byte %d:\ngot  %q\nwant %q", cut, got, want)
	}
}

// checkArrayElements decodes each object of an array body on its own and
// checks that it gives what it gave inside the array.
func checkArrayElements(t *testing.T, cfg *Config, whole *Batch, body []byte) {
	t.Helper()
	body = bytes.TrimSpace(body)
	if body[0] != '[' {
		return
	}
	want := map[int]string{}
	for _, s := range describe(whole) {
		var idx int
		fmt.Sscanf(s, "%d", &idx)
		want[idx] = s
	}
	forEachElement(body, func(i int, elem []byte) error {
		if elem[0] != '{' {
			return nil
		}
		b := newBatch(cfg, testNow, testIP)
		if err := Decode(b, elem); err != nil {
			t.Fatalf("element %d %q alone: %v", i, elem, err)
		}
		got := describe(b)
		if len(got) != 1 || shiftIndex(got[0], i) != want[i] {
			t.Fatalf("element %d alone gives %q; in the array %q", i, got, want[i])
		}
		return nil
	})
}

// describe lists a batch's outcome per event: "index E stored-form" or
// "index R field code message".
func describe(b *Batch) []string {
	var out []string
	for i := range b.Events {
		e := &b.Events[i]
		out = append(out, fmt.Sprintf("%d E %s %d %s", e.Index, e.AppKey, e.TimeUs, b.appendStored(nil, e, testSeq)))
	}
	for _, r := range b.Rejected {
		out = append(out, fmt.Sprintf("%d R %s %s %s %s %s", r.Index, r.AppKey, r.MessageID, r.Field, r.Code, r.Message))
	}
	return out
}

// shiftIndex adds offset to the index that starts a describe line.
func shiftIndex(s string, offset int) string {
	var idx int
	fmt.Sscanf(s, "%d", &idx)
	_, rest, _ := strings.Cut(s, " ")
	return fmt.Sprintf("%d %s", idx+offset, rest)
}

// FuzzScan checks the scanning helpers against obviously correct
// reference versions on any valid JSON text.
func FuzzScan(f *testing.F) {
	for _, s := range []string{
		`{}`, `[]`, `""`, `1`, ` { "a" : [ 1 , "x\"y" , { } ] } `, `["\\",{"]":"}"}]`,
		`{"k":"` + strings.Repeat(`a\\\"`, 10) + `"}`, "[\n\t1e400 ,\r\n-0.5]", `"\u00e9\ud83d\ude00"`,
		`{"long string":"` + strings.Repeat("x", 40) + `\"` + strings.Repeat("y", 40) + `"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// On any bytes, scanEvent over the whole text finds what
		// structure finds.
		for _, limit := range []int{3, 64} {
			sc, _ := scanEvent(b, 0, limit, true, nil)
			deepest, spaced, ok := structure(b, limit)
			if sc.deepest != deepest || sc.spaced != spaced || sc.ok != ok {
				t.Fatalf("scanEvent(%q, %d) = %d, %v, %v; structure says %d, %v, %v", b, limit, sc.deepest, sc.spaced, sc.ok, deepest, spaced, ok)
			}
		}
		if _, ok := nestingDepth(b, 64); !ok || !utf8.Valid(b) || !validJSON(b) {
			return
		}
		compact := refCompact(b)
		if got := appendCompact(nil, b); !bytes.Equal(got, compact) {
			t.Fatalf("appendCompact(%q) = %q; want %q", b, got, compact)
		}
		start := skipSpace(b, 0)
		if got, want := valueEnd(b, start), len(bytes.TrimRight(b, " \t\r\n")); got != want {
			t.Fatalf("valueEnd(%q, %d) = %d; want %d", b, start, got, want)
		}
		if got, _ := nestingDepth(b, 1000); got != refDepth(b) {
			t.Fatalf("nestingDepth(%q) = %d; want %d", b, got, refDepth(b))
		}
		switch b[start] {
		case '{':
			var parts []string
			if err := forEachMember(b, func(k, v []byte) error {
				parts = append(parts, `"`+string(k)+`":`+string(refCompact(v)))
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if got := "{" + strings.Join(parts, ",") + "}"; got != string(compact) {
				t.Fatalf("forEachMember(%q) walks %q; want %q", b, got, compact)
			}
			checkScanEvent(t, b, start)
		case '[':
			var parts []string
			if err := forEachElement(b, func(i int, e []byte) error {
				if i != len(parts) {
					t.Fatalf("element index %d; want %d", i, len(parts))
				}
				parts = append(parts, string(refCompact(e)))
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if got := "[" + strings.Join(parts, ",") + "]"; got != string(compact) {
				t.Fatalf("forEachElement(%q) walks %q; want %q", b, got, compact)
			}
		case '"':
			var want string
			if err := json.Unmarshal(compact, &want); err != nil {
				return // goccy and the validator disagree; not ours to judge
			}
			got, ok := jsonString(compact)
			if !ok || string(got) != want {
				t.Fatalf("jsonString(%q) = %q, %v; want %q", compact, got, ok, want)
			}
		}
	})
}

// checkScanEvent checks that scanEvent finds in the valid JSON object
// b[start:] the members that forEachMember finds, and its end, whether it
// scans the whole text or stops after the object.
func checkScanEvent(t *testing.T, b []byte, start int) {
	t.Helper()
	var want []rawMember
	forEachMember(b, func(k, v []byte) error {
		want = append(want, rawMember{k, v})
		return nil
	})
	equal := func(x, y rawMember) bool { return bytes.Equal(x.key, y.key) && bytes.Equal(x.val, y.val) }
	for _, whole := range []bool{true, false} {
		sc, got := scanEvent(b, start, 64, whole, nil)
		if !slices.EqualFunc(got, want, equal) {
			t.Fatalf("scanEvent(%q, whole %v) finds members %q; forEachMember %q", b, whole, got, want)
		}
		end := len(b)
		if !whole {
			end = valueEnd(b, start)
		}
		if !sc.ok || sc.end != end {
			t.Fatalf("scanEvent(%q, whole %v) ends at %d, ok %v; want %d, true", b, whole, sc.end, sc.ok, end)
		}
	}
}

// refScan calls each for every byte of valid JSON, one at a time, saying
// whether the byte is part of a string (its quotes included): the walk that
// the reference functions below share.
func refScan(b []byte, each func(c byte, inString bool)) {
	inString, escaped := false, false
	for _, c := range b {
		quoted := inString || c == '"'
		switch {
		case inString:
			if escaped {
				escaped = false
			} else if c == '\\' {
				escaped = true
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		}
		each(c, quoted)
	}
}

// refCompact removes the whitespace outside strings of valid JSON, one
// byte at a time.
func refCompact(b []byte) []byte {
	out := []byte{}
	refScan(b, func(c byte, inString bool) {
		if inString || !isSpace(c) {
			out = append(out, c)
		}
	})
	return out
}

// refDepth is the deepest nesting of valid JSON, one byte at a time.
func refDepth(b []byte) int {
	depth, deepest := 0, 0
	refScan(b, func(c byte, inString bool) {
		switch {
		case inString:
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	})
	return deepest
}
