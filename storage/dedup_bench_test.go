package storage

import (
	"bytes"
	"flag"
	"fmt"
	"testing"
	"time"
)

var dedupBenchSizes = flag.String("dedup-sizes", "1000000,20000000", "stored ids of BenchmarkCheckDuplicates, comma-separated")

// benchID is the i-th id of a benchmark, UUID-shaped as SDKs send them.
func benchID(dst []byte, i uint64) []byte {
	h := xxFingerprint(uint32(i>>32), fmt.Appendf(nil, "%d", i))
	return fmt.Appendf(dst, "%08x-%04x-4%03x-a%03x-%012x", uint32(h), uint16(h>>32), uint16(h>>48)&0xfff, uint16(i)&0xfff, i&0xffffffffffff)
}

// BenchmarkCheckDuplicates checks batches of 500 messageIds against a store
// holding n ids: "miss" sends new ids (what almost every request carries),
// "hit" resends one stored batch whole (a client's retry). Each op is one
// CheckDuplicates of 500 keys, uncommitted; ns/id is reported.
func BenchmarkCheckDuplicates(b *testing.B) {
	const batch = 500
	var sizes []int
	for _, s := range splitComma(*dedupBenchSizes) {
		var n int
		fmt.Sscan(s, &n)
		sizes = append(sizes, n)
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("stored=%d", n), func(b *testing.B) {
			db, err := Open(b.TempDir(), Options{DedupWindow: 720 * time.Hour, Now: func() time.Time { return testNow }})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			app, err := db.EnsureApp("bench")
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			keys := make([]DedupKey, batch)
			var ids []byte
			fill := func(from uint64) {
				ids = ids[:0]
				for i := range keys {
					ids = benchID(ids, from+uint64(i))
				}
				for i := range keys {
					keys[i] = DedupKey{App: app, MessageID: ids[i*36 : (i+1)*36]}
				}
			}
			for from := 0; from < n; from += batch {
				fill(uint64(from))
				w := db.NewWriter(testNow)
				dup, err := w.CheckDuplicates(keys)
				if err != nil {
					b.Fatal(err)
				}
				first, err := w.Alloc(batch)
				if err != nil {
					b.Fatal(err)
				}
				for i := range keys {
					if dup[i] {
						b.Fatalf("new id %s reported a duplicate", keys[i].MessageID)
					}
					w.AddKeyedEvent(i, first+uint64(i), testNow.UnixMicro(), storedBody(keys[i].MessageID, testNow))
				}
				if err := w.Commit(); err != nil {
					b.Fatal(err)
				}
				w.Close()
			}
			b.Logf("stored %d ids in %v; filters %+v", n, time.Since(start).Round(time.Millisecond), db.DedupStats())
			// The ids are made before the clock runs: never committed, new
			// ones stay new.
			const rounds = 64
			batches := make([][]DedupKey, rounds)
			for r := range batches {
				if r%2 == 0 {
					fill(uint64(n) + 1<<40 + uint64(r*batch))
				} else {
					fill(uint64((n/batch-1)*r/rounds) * batch)
				}
				batches[r] = make([]DedupKey, batch)
				for i := range keys {
					batches[r][i] = DedupKey{App: app, MessageID: []byte(string(keys[i].MessageID))}
				}
			}
			for m, mode := range []string{"miss", "hit"} {
				b.Run(mode, func(b *testing.B) {
					r := m
					b.ReportAllocs()
					for b.Loop() {
						keys := batches[r]
						r = (r + 2) % rounds
						w := db.NewWriter(testNow.Add(time.Minute))
						dup, err := w.CheckDuplicates(keys)
						if err != nil {
							b.Fatal(err)
						}
						if dup[0] != (mode == "hit") || dup[batch-1] != (mode == "hit") {
							b.Fatalf("%s: got duplicate=%v", mode, dup[0])
						}
						w.Close()
					}
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/id")
				})
			}
		})
	}
}

func splitComma(s string) []string {
	var out []string
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != ',' {
			i++
		}
		out = append(out, s[:i])
		if i < len(s) {
			i++
		}
		s = s[i:]
	}
	return out
}

// BenchmarkWriterCommitIDs is BenchmarkWriterCommit with a fresh UUID
// messageId on every event, checked and indexed as ingest does: the
// difference between the two is what exact dedup costs a commit.
func BenchmarkWriterCommitIDs(b *testing.B) {
	const batches = 20
	gen := generateBenchEventsIDs(b, batches*benchBatch, true)
	db := openTestDB(b, Options{DedupWindow: 720 * time.Hour})
	app := ensureApp(b, db, benchAppKey)
	type batch struct {
		times  []int64
		bodies [][]byte
		keys   []DedupKey
	}
	bs := make([]batch, batches)
	size := 0
	for i := range bs {
		for j, e := range gen[i*benchBatch : (i+1)*benchBatch] {
			body := appendStoredBody(nil, e.json, uint64(i*benchBatch+j+1))
			bs[i].times = append(bs[i].times, e.time)
			bs[i].bodies = append(bs[i].bodies, body)
			bs[i].keys = append(bs[i].keys, DedupKey{App: app, MessageID: bytes.Clone(messageIDOf(e.json))})
			if i == 0 {
				size += len(body)
			}
		}
	}
	b.ReportAllocs()
	b.SetBytes(int64(size))
	n := uint64(0)
	for b.Loop() {
		bt := &bs[n%batches]
		// New ids every round: the first 8 hex digits count the rounds.
		round := fmt.Appendf(nil, "%08x", uint32(n/batches))
		for _, k := range bt.keys {
			copy(k.MessageID, round)
		}
		n++
		w := db.NewWriter(testNow)
		dup, err := w.CheckDuplicates(bt.keys)
		if err != nil {
			b.Fatal(err)
		}
		first, err := w.Alloc(benchBatch)
		if err != nil {
			b.Fatal(err)
		}
		for j, body := range bt.bodies {
			if dup[j] {
				b.Fatalf("fresh id %s is a duplicate", bt.keys[j].MessageID)
			}
			w.AddKeyedEvent(j, first+uint64(j), bt.times[j], body)
		}
		if err := w.Commit(); err != nil {
			b.Fatal(err)
		}
		w.Close()
	}
}
