package export_test

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"

	"trove/auth"
	"trove/bench"
	"trove/export"
	"trove/storage"
)

// BenchmarkExport streams 200k generated events, merged as the background
// merger leaves them, from an in-memory store through the Events handler's
// body into io.Discard: the W4 path without the network.
func BenchmarkExport(b *testing.B) {
	db, err := storage.Open("db", storage.Options{InMemory: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	id, err := db.EnsureApp(appA)
	if err != nil {
		b.Fatal(err)
	}
	g := bench.NewGenerator(1, appA)
	const n, perCommit = 200_000, 500
	var raw int64
	var head struct {
		EventTime time.Time `json:"eventTime"`
	}
	for i := 0; i < n; i += perCommit {
		w := db.NewWriter(time.Now())
		seq, err := w.Alloc(perCommit)
		if err != nil {
			b.Fatal(err)
		}
		for j := range perCommit {
			body := g.AppendEvent(nil)
			if err := json.Unmarshal(body, &head); err != nil {
				b.Fatal(err)
			}
			raw += int64(len(body)) + 1
			w.AddEvent(id, seq+uint64(j), head.EventTime.UnixMicro(), body)
		}
		if err := w.Commit(); err != nil {
			b.Fatal(err)
		}
		w.Close()
	}
	for {
		m, err := db.MergeAll()
		if err != nil {
			b.Fatal(err)
		}
		if m == 0 {
			break
		}
	}
	h := export.NewHandler(db, registry(), slog.New(slog.DiscardHandler))
	tok := &auth.Token{Name: "bench", Scopes: auth.ScopeExport, AllApps: true}
	// MB/s is of the NDJSON the export carries, compressed or not: the
	// figure W4 and W5 are stated in.
	export := func(b *testing.B, enc string, want int64) {
		b.ReportAllocs()
		b.SetBytes(raw)
		var sent int64
		cpu0, cpuOK := processCPU()
		for b.Loop() {
			var ctx fasthttp.RequestCtx
			ctx.Request.SetRequestURI("/v1/export/events?appKey=" + appA)
			ctx.Request.Header.Set("Accept-Encoding", enc)
			auth.WithToken(&ctx, tok)
			if err := h.Events(&ctx); err != nil {
				b.Fatal(err)
			}
			got, err := io.Copy(io.Discard, ctx.Response.BodyStream())
			if err != nil || want >= 0 && got != want {
				b.Fatalf("exported %d bytes (%v); want %d", got, err, want)
			}
			sent += got
			ctx.Response.CloseBodyStream()
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		if cpu1, ok := processCPU(); ok && cpuOK && cpu1 > cpu0 {
			b.ReportMetric(float64(n)*float64(b.N)/(cpu1-cpu0).Seconds(), "events/cpu-s")
		}
		b.ReportMetric(float64(sent)/float64(b.N)/float64(n), "sent-B/event")
	}
	for _, enc := range []string{"identity", "zstd", "gzip"} {
		want := int64(-1)
		if enc == "identity" {
			want = raw
		}
		b.Run(enc, func(b *testing.B) { export(b, enc, want) })
	}
	// Once a user is deleted, every export leaves their events out: judged
	// from the blocks' columns, it must cost next to nothing.
	txn, err := db.BeginProfiles(id, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	txn.Forget([]byte("user-12345"), false)
	if err := txn.Commit(); err != nil {
		b.Fatal(err)
	}
	txn.Close()
	// The purger rewrites the user's blocks once, in the background; the
	// exports measured are the later ones.
	if _, err := db.PurgeForgotten(); err != nil {
		b.Fatal(err)
	}
	b.Run("identity-deleted-user", func(b *testing.B) { export(b, "identity", -1) })
}
