package export_test

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"trove/apierr"
	"trove/auth"
	"trove/export"
	"trove/internal/testutil"
	"trove/storage"
)

// streamServer runs the Stream of a Handler over db behind a fasthttp
// server on 127.0.0.1:0 and returns its base URL and a function that shuts
// it down (also run at cleanup).
func streamServer(t *testing.T, db *storage.DB) (base string, shutdown func()) {
	t.Helper()
	h := export.NewHandler(db, registry(), slog.New(slog.DiscardHandler))
	base, stop := serveHTTP(t, false, func(ctx *fasthttp.RequestCtx) {
		auth.WithToken(ctx, allToken)
		if err := h.Stream(ctx); err != nil {
			ctx.Error(err.Error(), fasthttp.StatusBadRequest)
		}
	})
	shutdown = func() {
		if err := stop(); err != nil {
			t.Errorf("shutdown: %v (a stream did not end)", err)
		}
	}
	t.Cleanup(shutdown) // before serveHTTP's own, which would drop the error
	return base, shutdown
}

// setHeartbeat sets export.StreamHeartbeat for the test.
func setHeartbeat(t *testing.T, d time.Duration) {
	old := export.StreamHeartbeat
	export.StreamHeartbeat = d
	t.Cleanup(func() { export.StreamHeartbeat = old })
}

// follow is a client reading a stream line by line.
type follow struct {
	resp  *http.Response
	lines chan string
	end   chan error // the read error that ended the stream (io.EOF if clean)
}

func startFollow(t *testing.T, url string) *follow {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("Content-Type %q", ct)
	}
	f := &follow{resp: resp, lines: make(chan string, 1024), end: make(chan error, 1)}
	go func() {
		br := bufio.NewReader(resp.Body)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				f.end <- err
				close(f.lines)
				return
			}
			f.lines <- strings.TrimSuffix(line, "\n")
		}
	}()
	t.Cleanup(func() { resp.Body.Close() })
	return f
}

// next returns the next line, skipping heartbeats unless keepBlank.
func (f *follow) next(t *testing.T, keepBlank bool) string {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-f.lines:
			if !ok {
				t.Fatalf("the stream ended: %v", <-f.end)
			}
			if l == "" && !keepBlank {
				continue
			}
			return l
		case <-timeout:
			t.Fatal("no line within 10s")
		}
	}
}

func (f *follow) expect(t *testing.T, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if got := f.next(t, false); got != eventBody(i) {
			t.Fatalf("line %d: got %q; want %q", i, got, eventBody(i))
		}
	}
}

func bodies(from, to int) []string {
	var b []string
	for i := from; i < to; i++ {
		b = append(b, eventBody(i))
	}
	return b
}

func TestStreamFollows(t *testing.T) {
	setHeartbeat(t, time.Minute)
	db := openStore(t)
	store(t, db, appA, bodies(0, 5), 2)
	store(t, db, appB, []string{`{"other":1}`}, 1) // another app's events stay out
	base, _ := streamServer(t, db)

	f1 := startFollow(t, base+"/v1/stream/events?appKey="+appA+"&since=0")
	if wm := f1.resp.Header.Get("X-Trove-Watermark"); wm != "6" {
		t.Errorf("X-Trove-Watermark %q; want 6", wm)
	}
	f1.expect(t, 0, 5)
	f2 := startFollow(t, base+"/v1/stream/events?appKey="+appA+"&since=2")
	f2.expect(t, 2, 5)

	store(t, db, appA, bodies(5, 8), 1)
	store(t, db, appB, []string{`{"other":2}`}, 1)
	store(t, db, appA, bodies(8, 30), 7)
	f1.expect(t, 5, 30)
	f2.expect(t, 5, 30)

	// Nothing more than what was stored.
	store(t, db, appA, bodies(30, 31), 1)
	f1.expect(t, 30, 31)
	f2.expect(t, 30, 31)
	select {
	case l := <-f1.lines:
		t.Errorf("unexpected line %q", l)
	default:
	}
}

func TestStreamAppStoredLater(t *testing.T) {
	setHeartbeat(t, time.Minute)
	db := openStore(t)
	store(t, db, "other-app", []string{`{"x":1}`}, 1)
	base, _ := streamServer(t, db)
	f := startFollow(t, base+"/v1/stream/events?appKey="+appA) // declared, nothing stored
	store(t, db, appA, bodies(0, 3), 2)
	f.expect(t, 0, 3)
}

func TestStreamHeartbeat(t *testing.T) {
	setHeartbeat(t, 20*time.Millisecond)
	db := openStore(t)
	store(t, db, appA, bodies(0, 1), 1)
	base, _ := streamServer(t, db)
	f := startFollow(t, base+"/v1/stream/events?appKey="+appA)
	if got := f.next(t, true); got != eventBody(0) {
		t.Fatalf("got %q; want the stored event", got)
	}
	for range 3 {
		if got := f.next(t, true); got != "" {
			t.Fatalf("got %q; want a blank heartbeat line", got)
		}
	}
	store(t, db, appA, bodies(1, 2), 1)
	f.expect(t, 1, 2)
}

func TestStreamClientLeaves(t *testing.T) {
	setHeartbeat(t, 20*time.Millisecond)
	db := openStore(t)
	store(t, db, appA, bodies(0, 3), 1)
	base, _ := streamServer(t, db)
	before := export.ActiveFollowers()
	f := startFollow(t, base+"/v1/stream/events?appKey="+appA)
	f.expect(t, 0, 3)
	testutil.WaitFor(t, 10*time.Second, testutil.Until("the follower is counted", func() bool { return export.ActiveFollowers() == before+1 }))
	f.resp.Body.Close()
	testutil.WaitFor(t, 10*time.Second, testutil.Until("the handler returns after the client left", func() bool { return export.ActiveFollowers() == before }))
	// The store closes: the stream holds no snapshot.
	closeStore(t, db)
}

func TestStreamShutdown(t *testing.T) {
	setHeartbeat(t, time.Minute)
	db := openStore(t)
	store(t, db, appA, bodies(0, 2), 1)
	base, shutdown := streamServer(t, db)
	f := startFollow(t, base+"/v1/stream/events?appKey="+appA)
	f.expect(t, 0, 2)
	shutdown() // fails the test if the stream does not end
	select {
	case <-f.end:
	case <-time.After(10 * time.Second):
		t.Fatal("the client did not see the stream end")
	}
}

func TestStreamStoreCloses(t *testing.T) {
	setHeartbeat(t, 20*time.Millisecond)
	db := openStore(t)
	store(t, db, appA, bodies(0, 2), 1)
	base, _ := streamServer(t, db)
	f := startFollow(t, base+"/v1/stream/events?appKey="+appA)
	f.expect(t, 0, 2)
	closeStore(t, db) // fails the test if a follower holds a snapshot
	select {
	case err := <-f.end:
		if err == io.EOF {
			t.Error("the stream ended cleanly after the store failed; want a broken transfer")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stream did not end after the store closed")
	}
}

func TestStreamBadRequests(t *testing.T) {
	db := openStore(t)
	store(t, db, appA, bodies(0, 2), 1)
	h := export.NewHandler(db, registry(), slog.New(slog.DiscardHandler))
	for _, c := range []struct{ query, field string }{
		{"appKey=" + appA + "&since=3", "since"},
		{"appKey=" + appA + "&since=x", "since"},
		{"appKey=" + appA + "&limit=3", "limit"},
		{"since=1", "appKey"},
	} {
		var ctx fasthttp.RequestCtx
		ctx.Request.SetRequestURI("/v1/stream/events?" + c.query)
		auth.WithToken(&ctx, allToken)
		err := h.Stream(&ctx)
		var pe *apierr.Error
		if !errors.As(err, &pe) || pe.Field != c.field {
			t.Errorf("%s: got %v; want an *apierr.Error naming %s", c.query, err, c.field)
		}
		if ctx.Response.BodyStream() != nil {
			t.Errorf("%s: a body stream was set", c.query)
		}
	}
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI("/v1/stream/events?appKey=" + appB)
	auth.WithToken(&ctx, aToken) // not allowed appB
	if err := h.Stream(&ctx); err == nil {
		t.Error("a token without the app was let through")
	}
}

// TestStreamEnvelope: with envelope=1 each line carries its sequence and
// the heartbeat the follower's watermark, which moves over other apps'
// events too; a bad value is refused before the stream starts.
func TestStreamEnvelope(t *testing.T) {
	setHeartbeat(t, 20*time.Millisecond)
	db := openStore(t)
	store(t, db, appA, bodies(0, 2), 1)
	store(t, db, appB, bodies(9, 10), 1)
	base, _ := streamServer(t, db)
	f := startFollow(t, base+"/v1/stream/events?appKey="+appA+"&envelope=1")
	for i, want := range []string{
		`{"seq":1,"event":` + eventBody(0) + `}`,
		`{"seq":2,"event":` + eventBody(1) + `}`,
		`{"watermark":3}`,
		`{"watermark":3}`,
	} {
		if got := f.next(t, true); got != want {
			t.Fatalf("line %d: got %q; want %q", i, got, want)
		}
	}
	f.resp.Body.Close()
	g := startFollow(t, base+"/v1/stream/events?appKey="+appA+"&envelope=1&since=1")
	if got, want := g.next(t, true), `{"seq":2,"event":`+eventBody(1)+`}`; got != want {
		t.Fatalf("after since=1: got %q; want %q", got, want)
	}
	g.resp.Body.Close()

	resp, err := http.Get(base + "/v1/stream/events?appKey=" + appA + "&envelope=yes")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("envelope=yes: status %d; want 400", resp.StatusCode)
	}
}
