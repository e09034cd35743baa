package storage

import (
	"bytes"
	"fmt"
	"io/fs"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"trove/bench"
	"trove/internal/testutil"
)

const (
	benchAppKey     = "yz1Jn-0pSnekg58etEQO4A"
	benchBatch      = 500
	benchReceivedAt = `"receivedAt":"2026-11-29T22:07:24.495Z"`
)

// benchEvent is a generated event in the form the client sent it.
type benchEvent struct {
	time int64
	json []byte
}

// generateBenchEvents returns n events from trove/bench's generator.
func generateBenchEvents(b testing.TB, n int) []benchEvent {
	return generateBenchEventsIDs(b, n, false)
}

// generateBenchEventsIDs returns n events from trove/bench's generator,
// each with a UUID messageId when messageIDs is set, as SDKs send them.
func generateBenchEventsIDs(b testing.TB, n int, messageIDs bool) []benchEvent {
	g := bench.NewGenerator(1, benchAppKey).WithMessageIDs(messageIDs)
	var arena []byte
	evs := make([]benchEvent, n)
	for i := range evs {
		start := len(arena)
		arena = g.AppendEvent(arena)
		evs[i].json = arena[start:len(arena):len(arena)]
		evs[i].time = eventTimeOf(b, evs[i].json)
		if len(arena) > 1<<20 {
			arena = nil // keep earlier events' bytes where they are
		}
	}
	return evs
}

// eventTimeOf parses the eventTime member of a generated event.
func eventTimeOf(b testing.TB, ev []byte) int64 {
	const key = `"eventTime":"`
	i := bytes.Index(ev, []byte(key))
	if i < 0 {
		b.Fatalf("no eventTime in %s", ev)
	}
	v := ev[i+len(key):]
	t, err := time.Parse(time.RFC3339Nano, string(v[:bytes.IndexByte(v, '"')]))
	if err != nil {
		b.Fatal(err)
	}
	return t.UnixMicro()
}

// appendStoredBody appends the stored form of a generated event, close to
// what ingest stores (ingest/event.go, appendStored): the client's members,
// the connection's ip in context when the client sent none, then the
// server's receivedAt and a messageId generated from seq.
func appendStoredBody(dst, ev []byte, seq uint64) []byte {
	ev = ev[:len(ev)-1] // the closing brace
	const ctxKey, ctxEnd = `"context":{`, `},"attributes":`
	if c := bytes.Index(ev, []byte(ctxKey)); c >= 0 {
		if e := bytes.Index(ev[c:], []byte(ctxEnd)); e >= 0 && !bytes.Contains(ev[c:c+e], []byte(`"ip":`)) {
			dst = append(dst, ev[:c+e]...)
			dst = append(dst, `,"ip":"127.0.0.1"`...)
			ev = ev[c+e:]
		}
	}
	dst = append(dst, ev...)
	dst = append(dst, ',')
	dst = append(dst, benchReceivedAt...)
	if messageIDOf(ev) == nil {
		dst = fmt.Appendf(dst, `,"messageId":"trv-%016x"`, seq)
	}
	return append(dst, '}')
}

// messageIDOf returns the client messageId of a generated event, or nil.
func messageIDOf(ev []byte) []byte {
	const key = `"messageId":"`
	i := bytes.Index(ev, []byte(key))
	if i < 0 {
		return nil
	}
	v := ev[i+len(key):]
	return v[:bytes.IndexByte(v, '"')]
}

// writeBenchEvents stores evs in commits of benchBatch events, as ingest
// would, and returns the total size of the stored bodies.
func writeBenchEvents(b testing.TB, db *DB, app uint32, evs []benchEvent) (bodyBytes int) {
	var body []byte
	for len(evs) > 0 {
		batch := evs[:min(benchBatch, len(evs))]
		evs = evs[len(batch):]
		w := db.NewWriter(time.Now())
		// Client messageIds go through the dedup index, as ingest's do.
		var keys []DedupKey
		keyOf := make([]int, len(batch))
		for i, e := range batch {
			keyOf[i] = -1
			if id := messageIDOf(e.json); id != nil {
				keyOf[i] = len(keys)
				keys = append(keys, DedupKey{App: app, MessageID: id})
			}
		}
		if len(keys) > 0 {
			dup, err := w.CheckDuplicates(keys)
			if err != nil {
				b.Fatal(err)
			}
			for i, d := range dup {
				if d {
					b.Fatalf("generated messageId %s is a duplicate", keys[i].MessageID)
				}
			}
		}
		first, err := w.Alloc(len(batch))
		if err != nil {
			b.Fatal(err)
		}
		// AddEvent retains bodies until Commit returns, so the buffer is
		// reused only for the next commit.
		body = body[:0]
		offs := make([]int, len(batch)+1)
		for i, e := range batch {
			body = appendStoredBody(body, e.json, first+uint64(i))
			offs[i+1] = len(body)
		}
		for i, e := range batch {
			if k := keyOf[i]; k >= 0 {
				w.AddKeyedEvent(k, first+uint64(i), e.time, body[offs[i]:offs[i+1]])
			} else {
				w.AddEvent(app, first+uint64(i), e.time, body[offs[i]:offs[i+1]])
			}
		}
		if err := w.Commit(); err != nil {
			b.Fatal(err)
		}
		w.Close()
		bodyBytes += len(body)
	}
	return bodyBytes
}

// BenchmarkAppendEventKey measures the key encoders a commit calls per
// event, block and group; each must not allocate.
func BenchmarkAppendEventKey(b *testing.B) {
	id := []byte("4f6c1b2e-8a1d-4c55-9d1e-0e2f3a4b5c6d")
	benches := []struct {
		name string
		fn   func(dst []byte, i uint64) []byte
	}{
		{"block", func(dst []byte, i uint64) []byte { return appendBlockKey(dst, 1, 20250, i) }},
		{"group", func(dst []byte, i uint64) []byte { return appendGroupKey(dst, 1, i) }},
		{"dedup", func(dst []byte, _ uint64) []byte { return appendDedupKey(dst, 1, id) }},
		{"quarantine", func(dst []byte, i uint64) []byte { return appendQuarantineKey(dst, 1, i) }},
	}
	for _, bb := range benches {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			dst := make([]byte, 0, 64)
			i := uint64(0)
			for b.Loop() {
				dst = bb.fn(dst[:0], i)
				i++
			}
		})
	}
}

// BenchmarkAppendBlockValue encodes one commit's 500 generated events as a
// block: fast (a fresh block, written while the client waits) and best (the
// merger's).
func BenchmarkAppendBlockValue(b *testing.B) {
	gen := generateBenchEvents(b, benchBatch)
	evs := make([]blockEvent, len(gen))
	raw := 0
	for i, e := range gen {
		evs[i] = blockEvent{seq: uint64(i + 1), time: e.time, body: appendStoredBody(nil, e.json, uint64(i+1))}
		raw += len(evs[i].body)
	}
	sortBlockEvents(evs)
	for _, best := range []bool{false, true} {
		b.Run(map[bool]string{false: "fast", true: "best"}[best], func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(raw))
			var dst, scratch []byte
			for b.Loop() {
				dst, scratch = appendBlockValue(dst[:0], scratch, evs, best)
			}
			b.ReportMetric(float64(raw)/float64(len(dst)), "ratio")
		})
	}
}

// BenchmarkWriterCommit commits batches of 500 generated events (about 475
// bytes each) to an in-memory store, without fsync.
func BenchmarkWriterCommit(b *testing.B) {
	const batches = 20
	gen := generateBenchEvents(b, batches*benchBatch)
	type batch struct {
		times  []int64
		bodies [][]byte
		bytes  int
	}
	bs := make([]batch, batches)
	for i := range bs {
		for j, e := range gen[i*benchBatch : (i+1)*benchBatch] {
			body := appendStoredBody(nil, e.json, uint64(i*benchBatch+j+1))
			bs[i].times = append(bs[i].times, e.time)
			bs[i].bodies = append(bs[i].bodies, body)
			bs[i].bytes += len(body)
		}
	}
	db := openTestDB(b, Options{})
	app := ensureApp(b, db, benchAppKey)
	b.ReportAllocs()
	b.SetBytes(int64(bs[0].bytes))
	now := time.Now()
	i := 0
	for b.Loop() {
		bt := &bs[i%batches]
		i++
		w := db.NewWriter(now)
		first, err := w.Alloc(benchBatch)
		if err != nil {
			b.Fatal(err)
		}
		for j, body := range bt.bodies {
			w.AddEvent(app, first+uint64(j), bt.times[j], body)
		}
		if err := w.Commit(); err != nil {
			b.Fatal(err)
		}
		w.Close()
	}
	b.ReportMetric(float64(i*benchBatch)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkEventsBySeq scans 200,000 stored events in ingest order to a
// function that discards them, as an export does, from the small groups
// commits write (fresh) and after the merger has combined them (merged),
// into row or columnar blocks.
func BenchmarkEventsBySeq(b *testing.B) {
	const n = 200_000
	gen := generateBenchEvents(b, n)
	for _, tc := range []struct {
		name            string
		merge, columnar bool
	}{{"fresh", false, false}, {"merged", true, false}, {"merged-columnar", true, true}} {
		merge := tc.merge
		b.Run(tc.name, func(b *testing.B) {
			db := openTestDB(b, Options{ColumnarBlocks: tc.columnar})
			app := ensureApp(b, db, benchAppKey)
			bodyBytes := writeBenchEvents(b, db, app, gen)
			if merge {
				mergeEverything(b, db)
			}
			b.ReportAllocs()
			b.SetBytes(int64(bodyBytes))
			events, nbytes := 0, 0
			discard := func(_ uint64, _ int64, body []byte) error {
				events++
				nbytes += len(body)
				return nil
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			mallocs := ms.Mallocs
			scans := 0
			for b.Loop() {
				events, nbytes = 0, 0
				s, err := db.NewSnapshot()
				if err != nil {
					b.Fatal(err)
				}
				if err := s.EventsBySeq(app, 0, ^uint64(0), discard); err != nil {
					b.Fatal(err)
				}
				s.Close()
				scans++
			}
			runtime.ReadMemStats(&ms)
			if events != n || nbytes != bodyBytes {
				b.Fatalf("scanned %d events of %d bytes; want %d of %d", events, nbytes, n, bodyBytes)
			}
			b.ReportMetric(float64(ms.Mallocs-mallocs)/float64(scans*n), "allocs/event")
		})
	}
}

// BenchmarkStoredBytesPerEvent measures what an event costs on disk: it
// stores 200,000 generated events in commits of 500 in an on-disk store,
// merges, flushes and compacts everything, and reports the bytes of the
// store's directory per event (as du counts them, dirBytes) twice: while
// the store is still open (open-bytes/event), which includes the WAL files
// Pebble keeps for reuse (a fixed few tens of MB whose amount varies from
// run to run) and blob files not yet rewritten, and after closing and
// reopening it (bytes/event). Pebble's own DiskSpaceUsage is not used: once
// reopened, it leaves out the blob files, which hold the blocks. json-bytes/event is
// the size of the stored JSON. The body runs once, however many iterations
// -benchtime asks for: the result does not vary, and one run takes seconds.
func BenchmarkStoredBytesPerEvent(b *testing.B) {
	for _, columnar := range []bool{false, true} {
		b.Run(fmt.Sprintf("columnar=%v/message-ids", columnar), func(b *testing.B) { benchmarkStoredBytesPerEvent(b, true, columnar) })
		b.Run(fmt.Sprintf("columnar=%v/no-message-ids", columnar), func(b *testing.B) { benchmarkStoredBytesPerEvent(b, false, columnar) })
	}
}

func benchmarkStoredBytesPerEvent(b *testing.B, messageIDs, columnar bool) {
	const n = 200_000
	var openPerEvent, diskPerEvent, jsonPerEvent float64
	measured := false
	for b.Loop() {
		if measured {
			continue
		}
		measured = true
		gen := generateBenchEventsIDs(b, n, messageIDs)
		genBytes := 0
		for _, e := range gen {
			genBytes += len(e.json)
		}
		dir := b.TempDir()
		db, err := Open(dir, Options{ColumnarBlocks: columnar})
		if err != nil {
			b.Fatal(err)
		}
		app := ensureApp(b, db, benchAppKey)
		start := time.Now()
		bodyBytes := writeBenchEvents(b, db, app, gen)
		wrote := time.Since(start)
		groups := countGroups(b, db)
		start = time.Now()
		merged := mergeEverything(b, db)
		mergeTime := time.Since(start)
		if err := db.Flush(); err != nil {
			b.Fatal(err)
		}
		if err := db.Compact(); err != nil {
			b.Fatal(err)
		}
		// Compaction leaves the replaced sstables to be deleted in the
		// background.
		testutil.WaitFor(b, time.Minute, func() error {
			if m := db.pdb.Metrics(); m.Table.Local.ObsoleteSize+m.Table.Local.ZombieSize > 0 {
				return fmt.Errorf("%d bytes of obsolete sstables not yet deleted", m.Table.Local.ObsoleteSize+m.Table.Local.ZombieSize)
			}
			return nil
		})
		openDisk := dirBytes(b, dir)
		for _, ns := range []Namespace{nsBlock, nsGroup, nsDedupIndex} {
			u, err := db.pdb.EstimateDiskUsage([]byte{byte(ns)}, []byte{byte(ns) + 1})
			if err != nil {
				b.Fatal(err)
			}
			b.Logf("namespace %02x: %.1f B/event", byte(ns), float64(u)/n)
		}
		m := db.pdb.Metrics()
		tables, wal := m.Table.Local.LiveSize, m.WAL.PhysicalSize+m.WAL.ObsoletePhysicalSize
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
		db, err = Open(dir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		disk := dirBytes(b, dir)
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}

		openPerEvent = float64(openDisk) / n
		diskPerEvent = float64(disk) / n
		jsonPerEvent = float64(bodyBytes) / n
		b.Logf("%d events: generated JSON %.1f B/event, stored JSON %.1f B/event", n, float64(genBytes)/n, jsonPerEvent)
		b.Logf("on disk after reopening: %d bytes, %.1f B/event, %.2fx smaller than the stored JSON", disk, diskPerEvent, jsonPerEvent/diskPerEvent)
		b.Logf("on disk while open: %d bytes, %.1f B/event (sstables %d, WAL files %d)", openDisk, openPerEvent, tables, wal)
		b.Logf("writing took %v (%d groups), merging %v (%d groups merged away)", wrote.Round(time.Millisecond), groups, mergeTime.Round(time.Millisecond), merged)
	}
	b.ReportMetric(diskPerEvent, "bytes/event")
	b.ReportMetric(openPerEvent, "open-bytes/event")
	b.ReportMetric(jsonPerEvent, "json-bytes/event")
}

// mergeEverything runs the merger until nothing is left to merge, and
// returns how many groups it merged away.
func mergeEverything(tb testing.TB, db *DB) int {
	tb.Helper()
	merged := 0
	for {
		m, err := db.MergeAll()
		if err != nil {
			tb.Fatal(err)
		}
		if m == 0 {
			return merged
		}
		merged += m
	}
}

// dirBytes is what du -sb counts of dir: the sizes of the files in it.
func dirBytes(tb testing.TB, dir string) int64 {
	tb.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		n += fi.Size()
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return n
}
