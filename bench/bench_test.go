package bench

import (
	"testing"
)

// BenchmarkGenerator measures AppendEvent; SetBytes is the average event
// size, so MB/s is generated JSON.
func BenchmarkGenerator(b *testing.B) {
	tests := []struct {
		name       string
		messageIDs bool
	}{
		{name: "default"},
		{name: "message-ids", messageIDs: true},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			benchAppend(b, NewGenerator(1, DefaultAppKey).WithMessageIDs(tt.messageIDs).AppendEvent)
		})
	}
}

// benchAppend measures appendNext, a generator's append of its next event
// or profile to a buffer; SetBytes is the average of the first 1000.
func benchAppend(b *testing.B, appendNext func(buf []byte) []byte) {
	b.Helper()
	buf := make([]byte, 0, 4096)
	total := 0
	for range 1000 {
		buf = appendNext(buf[:0])
		total += len(buf)
	}
	b.SetBytes(int64(total / 1000))
	b.ReportAllocs()
	for b.Loop() {
		buf = appendNext(buf[:0])
	}
}

// BenchmarkBuildBody measures what a worker spends on one request body of
// 500 events, per encoding, with salted messageIds as trove bench sends by
// default unless the name says otherwise; SetBytes is the uncompressed body.
func BenchmarkBuildBody(b *testing.B) {
	tests := []struct {
		name string
		opts options
	}{
		{name: "json", opts: options{batch: 500, messageIDs: true}},
		{name: "json-no-message-ids", opts: options{batch: 500}},
		{name: "ndjson", opts: options{batch: 500, messageIDs: true, ndjson: true}},
		{name: "gzip", opts: options{batch: 500, messageIDs: true, gzip: true}},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			tt.opts.n, tt.opts.conns, tt.opts.seed, tt.opts.appKey = 1<<40, 1, 1, DefaultAppKey
			tt.opts.idSalt = 0x9f3c_51e2_07aa_d4b1
			w := newWorker(&shared{o: tt.opts, requests: 1})
			w.build(0, tt.opts.batch)
			b.SetBytes(int64(len(w.body)))
			b.ReportAllocs()
			i := int64(0)
			for b.Loop() {
				w.build(i, tt.opts.batch)
				i++
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*tt.opts.batch), "ns/event")
		})
	}
}
