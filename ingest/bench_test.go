package ingest

import (
	"bytes"
	"testing"

	"trove/bench"
	"trove/httpbody"
	"trove/internal/compresstest"
)

// nopSink stores nothing; benchmarks measure the ingest path alone.
type nopSink struct{}

func (nopSink) AppendEvents(*Batch) error { return nil }

// BenchmarkDecodeStream measures what the Events API does with a request
// of 500 generated events sent as a JSON array: decompress, split, validate,
// build each stored form into a reused buffer, and hand the batch to a
// no-op sink, with the same pooled buffers and batches as the handler.
// Bytes are those of the uncompressed body. The events carry no messageId,
// except in ids:none, where each has a UUID of its own, as SDKs send
// (PERF.md, W1).
func BenchmarkDecodeStream(b *testing.B) {
	const events = 500
	plain := bench.NewGenerator(1, testAppKey).AppendJSONArray(nil, events)
	withIDs := bench.NewGenerator(1, testAppKey).WithMessageIDs(true).AppendJSONArray(nil, events)
	now := bench.BaseTime()
	for _, tt := range []struct {
		name, enc string
		body      []byte
	}{
		{"none", "none", plain},
		{"gzip", "gzip", plain},
		{"zstd", "zstd", plain},
		{"ids:none", "none", withIDs},
	} {
		enc, body := tt.enc, tt.body
		b.Run(tt.name, func(b *testing.B) {
			wire := body
			if enc != "none" {
				wire = compresstest.Compress(b, enc, body)
			}
			cfg := DefaultConfig()
			var sink eventSink = nopSink{}
			var stored []byte
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				in := wire
				var dec *bodyBuffer
				if enc != "none" {
					dec = getBodyBuffer()
					var err error
					if dec.b, err = httpbody.Decompress(dec.b[:0], []byte(enc), wire, cfg.MaxRequestBytes); err != nil {
						b.Fatal(err)
					}
					in = dec.b
				}
				batch := newBatch(&cfg, now, testIP)
				if err := Decode(batch, in); err != nil {
					b.Fatal(err)
				}
				if len(batch.Events) != events {
					b.Fatalf("accepted %d of %d events; first rejection %+v", len(batch.Events), events, batch.Rejected)
				}
				stored = stored[:0]
				for i := range batch.Events {
					stored = batch.appendStored(stored, &batch.Events[i], uint64(i))
					stored = append(stored, '\n')
				}
				if err := sink.AppendEvents(batch); err != nil {
					b.Fatal(err)
				}
				putBatch(batch)
				if dec != nil {
					putBodyBuffer(dec)
				}
			}
			b.ReportMetric(float64(events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
			if bytes.Count(stored, []byte("\n")) != events {
				b.Fatal("stored forms hold newlines")
			}
		})
	}
}
