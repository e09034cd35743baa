package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"trove/logentry"
	"trove/storage"
)

// openReplicated opens an in-memory replicated store.
func openReplicated(t testing.TB) *storage.DB {
	t.Helper()
	db, err := storage.Open("db", storage.Options{InMemory: true, Replicated: true, DedupWindow: DefaultConfig().DedupWindow})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// dumpStore lists what db holds of testAppKey: each event and quarantine
// entry with its sequence, and the watermark.
func dumpStore(t testing.TB, db *storage.DB) string {
	t.Helper()
	var b bytes.Buffer
	app, err := db.App(testAppKey)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := db.NewSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	fmt.Fprintf(&b, "watermark %d\n", snap.Watermark())
	if err := snap.EventsBySeq(app, 0, snap.Watermark(), func(seq uint64, _ int64, body []byte) error {
		fmt.Fprintf(&b, "event %d %s\n", seq, body)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := snap.Rejected(app, 0, func(seq uint64, line []byte) error {
		fmt.Fprintf(&b, "rejected %d %s\n", seq, line)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// replicatedBody is a request with what an entry must carry: events with
// and without messageIds (one repeated in the request), one without
// context (context.ip is added), and one that is quarantined.
func replicatedBody() string {
	return "[" + testEvent(with("messageId", `"m-1"`)) + "," +
		testEvent(with("messageId", `"m-2"`), with("context", `{"os":"ios"}`)) + "," +
		testEvent(with("messageId", `"m-1"`)) + "," +
		testEvent() + "," +
		testEvent(with("eventTime", `"yesterday"`), with("messageId", `"m-bad"`)) + "]"
}

// TestApplyEntry checks that two nodes that apply the same entries store
// the same bytes under the same sequences, and answer the duplicates that
// one store answers.
func TestApplyEntry(t *testing.T) {
	cfg := DefaultConfig()
	single, err := storage.Open("db", storage.Options{InMemory: true, DedupWindow: cfg.DedupWindow})
	if err != nil {
		t.Fatal(err)
	}
	defer single.Close()
	nodes := []*storage.DB{openReplicated(t), openReplicated(t)}
	for logSeq := uint64(1); logSeq <= 2; logSeq++ {
		b, err := decodeBody(cfg, replicatedBody(), false)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Events) != 4 || len(b.Rejected) != 1 {
			t.Fatalf("decoded %d events and %d rejections; want 4 and 1", len(b.Events), len(b.Rejected))
		}
		entry := b.appendEntry(nil)
		if err := (StoreSink{DB: single}).AppendEvents(b); err != nil {
			t.Fatal(err)
		}
		var want []bool
		for _, e := range b.Events {
			want = append(want, e.Duplicate)
		}
		for i, db := range nodes {
			got, err := ApplyEntry(&cfg, db, logSeq, entry)
			if err != nil {
				t.Fatalf("node %d, entry %d: %v", i, logSeq, err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("node %d, entry %d: duplicates %v; one store answered %v", i, logSeq, got, want)
			}
		}
		putBatch(b)
	}
	a, b := dumpStore(t, nodes[0]), dumpStore(t, nodes[1])
	if a != b {
		t.Fatalf("the nodes differ:\n%s\n---\n%s", a, b)
	}
	// Entry 1 stored m-1, m-2 and the event without a messageId (its
	// generated id from its sequence, 1<<20+2) and quarantined one; entry
	// 2 stored only its event without a messageId; the watermark is the
	// end of entry 2's sequences.
	for _, want := range []string{
		fmt.Sprintf("watermark %d\n", 3<<storage.LogSeqShift-1),
		fmt.Sprintf(`"messageId":"trv-%016x"`, 1<<storage.LogSeqShift+2),
		fmt.Sprintf(`"messageId":"trv-%016x"`, 2<<storage.LogSeqShift),
		fmt.Sprintf("rejected %d ", 1<<storage.LogSeqShift+3),
		fmt.Sprintf("rejected %d ", 2<<storage.LogSeqShift+1),
		`"ip":"` + testIP + `"`,
	} {
		if !bytes.Contains([]byte(a), []byte(want)) {
			t.Errorf("the store lacks %q:\n%s", want, a)
		}
	}
	if n := bytes.Count([]byte(a), []byte("\nevent ")); n != 4 {
		t.Errorf("%d events stored; want 4:\n%s", n, a)
	}
	// An entry applied twice, or out of order, is refused and changes
	// nothing.
	entry := mustEntry(t, cfg, replicatedBody())
	if _, err := ApplyEntry(&cfg, nodes[0], 2, entry); err == nil {
		t.Error("entry 2 applied twice")
	}
	if dumpStore(t, nodes[0]) != a {
		t.Error("a refused entry changed the store")
	}
}

func mustEntry(t testing.TB, cfg Config, body string) []byte {
	t.Helper()
	b, err := decodeBody(cfg, body, false)
	if err != nil {
		t.Fatal(err)
	}
	defer putBatch(b)
	return b.appendEntry(nil)
}

// TestEntryRoundTrip checks that an entry decodes into the batch it was
// made of: encoding the decoded batch gives the same bytes.
func TestEntryRoundTrip(t *testing.T) {
	cfg := DefaultConfig()
	for _, body := range []string{replicatedBody(), "[" + testEvent() + "]"} {
		entry := mustEntry(t, cfg, body)
		b := newBatch(&cfg, testNow, "")
		if err := decodeEntry(b, entry); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if again := b.appendEntry(nil); !bytes.Equal(again, entry) {
			t.Errorf("%s: entry changed in a round trip:\n%q\n%q", body, entry, again)
		}
		if !b.Now.Equal(testNow) || b.IP != testIP {
			t.Errorf("%s: decoded now %v and ip %q; want %v and %q", body, b.Now, b.IP, testNow, testIP)
		}
		putBatch(b)
	}
	// Every cut of an entry is refused, never a panic or a short batch.
	entry := mustEntry(t, cfg, replicatedBody())
	for n := range len(entry) {
		b := newBatch(&cfg, testNow, "")
		if err := decodeEntry(b, entry[:n]); !errors.Is(err, logentry.ErrMalformed) {
			t.Fatalf("entry cut at %d of %d: %v; want logentry.ErrMalformed", n, len(entry), err)
		}
		putBatch(b)
	}
}

// FuzzDecodeEntry checks that any bytes decode without a panic, and that
// what decodes encodes to an entry that decodes to the same batch (varints
// may come back shorter than a fuzzed entry spelled them).
func FuzzDecodeEntry(f *testing.F) {
	cfg := DefaultConfig()
	f.Add(mustEntry(f, cfg, replicatedBody()))
	f.Add(mustEntry(f, cfg, "["+testEvent()+"]"))
	f.Add([]byte{entryVersion})
	f.Fuzz(func(t *testing.T, entry []byte) {
		b := newBatch(&cfg, testNow, "")
		defer putBatch(b)
		if decodeEntry(b, entry) != nil {
			return
		}
		once := b.appendEntry(nil)
		b2 := newBatch(&cfg, testNow, "")
		defer putBatch(b2)
		if err := decodeEntry(b2, once); err != nil {
			t.Fatalf("entry %q decoded, but its encoding %q does not: %v", entry, once, err)
		}
		if twice := b2.appendEntry(nil); !bytes.Equal(twice, once) {
			t.Fatalf("entry %q decoded and encoded as %q, then as %q", entry, once, twice)
		}
	})
}

// BenchmarkApplyEntry applies entries of 500 events with UUID-shaped
// messageIds, as a cluster node applies each request of W1: its cost is
// what a node spends per entry of the stream, whichever node took it.
func BenchmarkApplyEntry(b *testing.B) {
	cfg := DefaultConfig()
	db := openReplicated(b)
	var body bytes.Buffer
	n := uint64(0)
	entry := func() []byte {
		body.Reset()
		body.WriteByte('[')
		for i := range 500 {
			if i > 0 {
				body.WriteByte(',')
			}
			n++
			fmt.Fprintf(&body, `{"type":"event","event":"Product Viewed","userId":"user-%d","eventTime":"2026-11-01T11:%02d:00Z","appKey":"%s","messageId":"%08x-4b7a-4c1e-9d2f-%012x","attributes":{"sku":"SKU-%d","price":%d.99,"currency":"EUR"}}`,
				n%977, i%60, testAppKey, n, n*7919, n%313, n%90)
		}
		body.WriteByte(']')
		return mustEntry(b, cfg, body.String())
	}
	b.ReportAllocs()
	seq := uint64(0)
	for b.Loop() {
		b.StopTimer()
		e := entry()
		b.StartTimer()
		seq++
		if _, err := ApplyEntry(&cfg, db, seq, e); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*500), "ns/event")
}
