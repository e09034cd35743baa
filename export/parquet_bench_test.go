package export_test

import (
	"bufio"
	"bytes"
	"io"
	"testing"

	"trove/bench"
	"trove/export"
)

// storedBenchEvents are n of `trove bench`'s generated events (fixed seed)
// in their stored form, with the server's receivedAt.
func storedBenchEvents(n int) [][]byte {
	g := bench.NewGenerator(1, "yz1Jn-0pSnekg58etEQO4A").WithMessageIDs(true)
	out := make([][]byte, n)
	for i := range out {
		ev := g.AppendEvent(nil)
		ev = bytes.TrimRight(ev, "\n")
		ev = append(ev[:len(ev)-1], `,"context":{"ip":"10.1.2.3"},"receivedAt":"2026-12-03T20:00:00.000Z"}`...)
		out[i] = ev
	}
	return out
}

// BenchmarkParquetWriter converts stored events to a Parquet file, beside
// the NDJSON export's copy of the same lines: events/s and bytes/event.
func BenchmarkParquetWriter(b *testing.B) {
	evs := storedBenchEvents(200000)
	var raw int64
	for _, e := range evs {
		raw += int64(len(e)) + 1
	}
	b.Run("ndjson", func(b *testing.B) {
		b.SetBytes(raw)
		for b.Loop() {
			w := bufio.NewWriterSize(io.Discard, 64<<10)
			for _, e := range evs {
				w.Write(e)
				w.WriteByte('\n')
			}
			w.Flush()
		}
		b.ReportMetric(float64(len(evs)*b.N)/b.Elapsed().Seconds(), "events/s")
	})
	for _, pipelined := range []bool{false, true} {
		name := "parquet"
		if pipelined {
			name = "parquet-pipelined" // as the HTTP export writes
		}
		b.Run(name, func(b *testing.B) { benchParquet(b, evs, raw, pipelined) })
	}
}

// benchParquet converts evs to Parquet files in memory.
func benchParquet(b *testing.B, evs [][]byte, raw int64, pipelined bool) {
	b.SetBytes(raw)
	var size int
	for b.Loop() {
		var buf bytes.Buffer
		pw := export.NewParquetWriter(&buf, 0)
		if pipelined {
			pw.Pipeline()
		}
		for i, e := range evs {
			if err := pw.Append(uint64(i+1), e); err != nil {
				b.Fatal(err)
			}
		}
		if err := pw.Close(); err != nil {
			b.Fatal(err)
		}
		size = buf.Len()
	}
	b.ReportMetric(float64(len(evs)*b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(size)/float64(len(evs)), "bytes/event")
}
