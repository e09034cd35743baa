package export_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/valyala/fasthttp"

	"trove/apierr"
	"trove/auth"
	"trove/export"
	"trove/internal/authtest"
	"trove/storage"
)

const (
	appA = "app-with-events-01" // declared, with events and a rejection
	appB = "app-declared-empty" // declared, nothing stored
)

var (
	allToken    = &auth.Token{Name: "all", Scopes: auth.ScopeIngest | auth.ScopeExport, AllApps: true}
	aToken      = &auth.Token{Name: "a", Scopes: auth.ScopeExport, Apps: map[string]bool{appA: true}}
	ingestToken = &auth.Token{Name: "ingest", Scopes: auth.ScopeIngest, AllApps: true}
)

// registry declares appA and appB, and holds tokens.
func registry(tokens ...authtest.Token) *auth.Registry {
	return authtest.NewRegistry([]auth.App{{Name: "a", AppKey: appA}, {Name: "b", AppKey: appB}}, tokens...)
}

// openStore opens an in-memory store, without the background merger so
// that each commit stays one group. The test fails if Close does not
// return in time, which is what a leaked Snapshot does.
func openStore(t *testing.T) *storage.DB {
	t.Helper()
	db, err := storage.Open("db", storage.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeStore(t, db) })
	return db
}

func closeStore(t *testing.T, db *storage.DB) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- db.Close() }()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, storage.ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("Close did not return within 10s: an export left its snapshot open")
	}
}

// store commits bodies as events of appKey, perCommit events to a write.
func store(t *testing.T, db *storage.DB, appKey string, bodies []string, perCommit int) {
	t.Helper()
	id, err := db.EnsureApp(appKey)
	if err != nil {
		t.Fatal(err)
	}
	for len(bodies) > 0 {
		n := min(perCommit, len(bodies))
		w := db.NewWriter(time.Now())
		seq, err := w.Alloc(n)
		if err != nil {
			t.Fatal(err)
		}
		for i, b := range bodies[:n] {
			w.AddEvent(id, seq+uint64(i), time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC).UnixMicro(), []byte(b))
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		w.Close()
		bodies = bodies[n:]
	}
}

func storeRejected(t *testing.T, db *storage.DB, appKey, line string) {
	t.Helper()
	id, err := db.EnsureApp(appKey)
	if err != nil {
		t.Fatal(err)
	}
	w := db.NewWriter(time.Now())
	defer w.Close()
	seq, err := w.Alloc(1)
	if err != nil {
		t.Fatal(err)
	}
	w.AddRejected(id, seq, []byte(line))
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

func eventBody(i int) string {
	return `{"type":"event","event":"e","userId":"u","eventTime":"2024-01-02T03:04:05Z","appKey":"` + appA + `","messageId":"m` + strconv.Itoa(i) + `","attributes":{"big":1234567890123456789}}`
}

// call runs handler on a request for uri with tok, and returns its error,
// or the body it streams (read with Read, as io.ReadAll does) and the
// watermark header.
func call(t *testing.T, handler func(*fasthttp.RequestCtx) error, uri string, tok *auth.Token) (body string, watermark string, err error) {
	t.Helper()
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI(uri)
	if tok != nil {
		auth.WithToken(&ctx, tok)
	}
	if err := handler(&ctx); err != nil {
		if ctx.Response.BodyStream() != nil {
			t.Errorf("the handler failed with %v but set a body stream", err)
		}
		return "", "", err
	}
	if ct := string(ctx.Response.Header.ContentType()); ct != "application/x-ndjson" {
		t.Errorf("Content-Type %q; want application/x-ndjson", ct)
	}
	s := ctx.Response.BodyStream()
	if s == nil {
		t.Fatal("no body stream")
	}
	b, rerr := io.ReadAll(s)
	if rerr != nil {
		t.Errorf("reading the body: %v", rerr)
	}
	ctx.Response.CloseBodyStream()
	return string(b), string(ctx.Response.Header.Peek("X-Trove-Watermark")), nil
}

func TestEvents(t *testing.T) {
	db := openStore(t)
	var bodies []string
	for i := 1; i <= 5; i++ {
		bodies = append(bodies, eventBody(i))
	}
	// Sequences: events 1-2 in one commit, 3 and 4-5 in others, then a
	// rejection (sequence 6) that the event export skips.
	store(t, db, appA, bodies[:2], 2)
	store(t, db, appA, bodies[2:3], 1)
	store(t, db, appA, bodies[3:], 2)
	storeRejected(t, db, appA, `{"index":0,"field":"event","message":"event is required"}`)
	h := export.NewHandler(db, registry(), slog.New(slog.DiscardHandler))

	lines := func(idx ...int) string {
		var sb strings.Builder
		for _, i := range idx {
			sb.WriteString(bodies[i-1] + "\n")
		}
		return sb.String()
	}
	tests := []struct {
		name   string
		query  string
		tok    *auth.Token
		want   string
		err    error  // sentinel the error must match
		field  string // the parameter it names
		wmWant string
	}{
		{name: "all", query: "appKey=" + appA, tok: allToken, want: lines(1, 2, 3, 4, 5), wmWant: "6"},
		{name: "token for the app", query: "appKey=" + appA, tok: aToken, want: lines(1, 2, 3, 4, 5), wmWant: "6"},
		{name: "since", query: "appKey=" + appA + "&since=2", tok: allToken, want: lines(3, 4, 5), wmWant: "6"},
		{name: "since inside a commit", query: "appKey=" + appA + "&since=4", tok: allToken, want: lines(5), wmWant: "6"},
		{name: "since and until", query: "appKey=" + appA + "&since=1&until=4", tok: allToken, want: lines(2, 3, 4), wmWant: "6"},
		{name: "until past the watermark", query: "appKey=" + appA + "&until=99", tok: allToken, want: lines(1, 2, 3, 4, 5), wmWant: "6"},
		{name: "since the watermark", query: "appKey=" + appA + "&since=6", tok: allToken, want: "", wmWant: "6"},
		{name: "limit", query: "appKey=" + appA + "&limit=2", tok: allToken, want: lines(1, 2), wmWant: "6"},
		{name: "limit with since", query: "appKey=" + appA + "&since=2&limit=2", tok: allToken, want: lines(3, 4), wmWant: "6"},
		{name: "limit 0", query: "appKey=" + appA + "&limit=0", tok: allToken, err: apierr.Invalid, field: "limit"},
		{name: "declared app with nothing stored", query: "appKey=" + appB, tok: allToken, want: "", wmWant: "6"},
		{name: "no appKey", query: "", tok: allToken, err: apierr.Invalid, field: "appKey"},
		{name: "bad since", query: "appKey=" + appA + "&since=abc", tok: allToken, err: apierr.Invalid, field: "since"},
		{name: "negative since", query: "appKey=" + appA + "&since=-1", tok: allToken, err: apierr.Invalid, field: "since"},
		{name: "bad until", query: "appKey=" + appA + "&until=1.5", tok: allToken, err: apierr.Invalid, field: "until"},
		{name: "bad limit", query: "appKey=" + appA + "&limit=ten", tok: allToken, err: apierr.Invalid, field: "limit"},
		{name: "no token", query: "appKey=" + appA, tok: nil, err: auth.ErrUnauthenticated},
		{name: "unknown app", query: "appKey=nobody-knows-it", tok: allToken, err: auth.ErrUnauthenticated},
		{name: "token for another app", query: "appKey=" + appB, tok: aToken, err: auth.ErrForbidden},
		{name: "token without export scope", query: "appKey=" + appA, tok: ingestToken, err: auth.ErrForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, wm, err := call(t, h.Events, "/v1/export/events?"+tc.query, tc.tok)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("got error %v; want %v", err, tc.err)
				}
				if f := apierr.Field(err); f != tc.field {
					t.Errorf("error %v names field %q; want %q", err, f, tc.field)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v; want none", err)
			}
			if got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
			if wm != tc.wmWant {
				t.Errorf("X-Trove-Watermark %q; want %q", wm, tc.wmWant)
			}
		})
	}
}

func TestRejected(t *testing.T) {
	db := openStore(t)
	store(t, db, appA, []string{eventBody(1)}, 1)
	r1 := `{"receivedAt":"2024-01-02T03:04:05.000Z","index":1,"error":"invalid_event","field":"event","message":"event is required","event":{"type":"event"}}`
	r2 := `{"receivedAt":"2024-01-02T03:04:06.000Z","line":3,"error":"invalid_event","field":"","message":"event is not valid JSON","raw":"nope"}`
	storeRejected(t, db, appA, r1)
	storeRejected(t, db, appA, r2)
	h := export.NewHandler(db, registry(), slog.New(slog.DiscardHandler))
	// With seq=1, each line leads with its sequence.
	l1, l2 := `{"seq":2,`+r1[1:], `{"seq":3,`+r2[1:]
	tests := []struct {
		name, query string
		tok         *auth.Token
		want        string
		err         error
	}{
		{"all", "appKey=" + appA, aToken, r1 + "\n" + r2 + "\n", nil},
		{"since", "appKey=" + appA + "&since=2", aToken, r2 + "\n", nil},
		{"with seq", "appKey=" + appA + "&seq=1", aToken, l1 + "\n" + l2 + "\n", nil},
		{"reason, a prefix of the message", "appKey=" + appA + "&reason=event%20is%20not", aToken, r2 + "\n", nil},
		{"reason, a prefix of the code", "appKey=" + appA + "&reason=invalid&seq=1", aToken, l1 + "\n" + l2 + "\n", nil},
		{"reason that matches none", "appKey=" + appA + "&reason=schema_violation", aToken, "", nil},
		{"empty app", "appKey=" + appB, allToken, "", nil},
		{"no token", "appKey=" + appA, nil, "", auth.ErrUnauthenticated},
		{"another app", "appKey=" + appB, aToken, "", auth.ErrForbidden},
		{"bad since", "appKey=" + appA + "&since=x", aToken, "", apierr.Invalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := call(t, h.Rejected, "/v1/export/rejected?"+tc.query, tc.tok)
			if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
				t.Fatalf("got error %v; want %v", err, tc.err)
			}
			if got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// TestWatermarkIsASnapshot checks that events committed while an export is
// being read are neither in it nor lost: they come with since=watermark.
func TestWatermarkIsASnapshot(t *testing.T) {
	db := openStore(t)
	store(t, db, appA, []string{eventBody(1), eventBody(2)}, 2)
	h := export.NewHandler(db, registry(), slog.New(slog.DiscardHandler))
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI("/v1/export/events?appKey=" + appA)
	auth.WithToken(&ctx, allToken)
	if err := h.Events(&ctx); err != nil {
		t.Fatal(err)
	}
	// Committed after the export began, before its body is read.
	store(t, db, appA, []string{eventBody(3)}, 1)
	b, err := io.ReadAll(ctx.Response.BodyStream())
	ctx.Response.CloseBodyStream()
	if err != nil {
		t.Fatal(err)
	}
	if want := eventBody(1) + "\n" + eventBody(2) + "\n"; string(b) != want {
		t.Errorf("got\n%s\nwant\n%s", b, want)
	}
	wm := string(ctx.Response.Header.Peek("X-Trove-Watermark"))
	next, _, err := call(t, h.Events, "/v1/export/events?appKey="+appA+"&since="+wm, allToken)
	if err != nil || next != eventBody(3)+"\n" {
		t.Errorf("since=%s: got %q, %v; want event 3 only", wm, next, err)
	}
}

// TestUnreadBodyReleasesSnapshot checks that an export whose body is never
// read, or read in part, still releases its snapshot (else Close hangs).
func TestUnreadBodyReleasesSnapshot(t *testing.T) {
	db := openStore(t)
	var bodies []string
	for i := range 2000 {
		bodies = append(bodies, eventBody(i))
	}
	store(t, db, appA, bodies, 100)
	h := export.NewHandler(db, registry(), slog.New(slog.DiscardHandler))
	for _, read := range []int{0, 1000} {
		var ctx fasthttp.RequestCtx
		ctx.Request.SetRequestURI("/v1/export/events?appKey=" + appA)
		auth.WithToken(&ctx, allToken)
		if err := h.Events(&ctx); err != nil {
			t.Fatal(err)
		}
		if read > 0 {
			if _, err := io.ReadFull(ctx.Response.BodyStream(), make([]byte, read)); err != nil {
				t.Fatal(err)
			}
		}
		ctx.Response.CloseBodyStream()
	}
	closeStore(t, db)
}

// smallBuffers makes the kernel buffer little of a response, so that a
// client that stops reading stops the server soon.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(8 << 10)
	}
	return c, err
}

// serve runs h.Events behind a plain fasthttp server on 127.0.0.1:0, with
// small socket buffers when small is set (which makes whole reads slow).
func serve(t *testing.T, h *export.Handler, small bool) (url string) {
	t.Helper()
	base, _ := serveHTTP(t, small, func(ctx *fasthttp.RequestCtx) {
		auth.WithToken(ctx, allToken)
		if err := h.Events(ctx); err != nil {
			ctx.Error(err.Error(), fasthttp.StatusBadRequest)
		}
	})
	return base + "/v1/export/events?appKey=" + appA
}

// serveHTTP runs handler behind a fasthttp server on 127.0.0.1:0 (with
// small socket buffers when small is set) and returns its base URL and a
// stop that shuts it down, giving its requests 10 s to end. stop returns
// the error of that shutdown the first time and does nothing after; the
// test's cleanup calls it too.
func serveHTTP(t *testing.T, small bool, handler fasthttp.RequestHandler) (base string, stop func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if small {
		ln = smallBuffers{ln}
	}
	srv := &fasthttp.Server{Handler: handler, CloseOnShutdown: true}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	var stopped bool
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := srv.ShutdownWithContext(ctx)
		ln.Close() // in case Serve had not taken it yet
		<-done
		return err
	}
	t.Cleanup(func() { stop() })
	return "http://" + ln.Addr().String(), stop
}

// smallReads is an HTTP client whose connections buffer little.
var smallReads = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
	DisableCompression: true,
	DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetReadBuffer(8 << 10)
		}
		return c, err
	},
}}

// bigStore stores 4,000 events of ~500 bytes whose pads are random hex,
// so that a compressed export of them still takes ~1 MB, and returns the
// NDJSON an export of them is.
func bigStore(t *testing.T) (*storage.DB, string) {
	t.Helper()
	db := openStore(t)
	rnd := rand.New(rand.NewPCG(1, 2))
	var bodies []string
	var want strings.Builder
	for i := range 4000 {
		pad := make([]byte, 450)
		for j := range pad {
			pad[j] = "0123456789abcdef"[rnd.IntN(16)]
		}
		b := fmt.Sprintf(`{"i":%d,"pad":"%s"}`, i, pad)
		bodies = append(bodies, b)
		want.WriteString(b + "\n")
	}
	store(t, db, appA, bodies, 20)
	return db, want.String()
}

func TestStreamOverHTTP(t *testing.T) {
	db, want := bigStore(t)
	h := export.NewHandler(db, registry(), slog.New(slog.DiscardHandler))

	t.Run("whole", func(t *testing.T) {
		resp, err := http.Get(serve(t, h, false))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		got, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("reading the export: %v", err)
		}
		if string(got) != want {
			t.Errorf("got %d bytes; want the %d stored", len(got), len(want))
		}
		if !slices.Equal(resp.TransferEncoding, []string{"chunked"}) || resp.Header.Get("X-Trove-Watermark") != "4000" {
			t.Errorf("Transfer-Encoding %v, X-Trove-Watermark %q; want chunked and 4000", resp.TransferEncoding, resp.Header.Get("X-Trove-Watermark"))
		}
	})

	url := serve(t, h, true)
	t.Run("client leaves", func(t *testing.T) {
		resp, err := smallReads.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(resp.Body, make([]byte, 64<<10)); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close() // mid-stream: the connection is dropped
	})

	// A store failure mid-stream must not end the body like a complete
	// file: the connection is aborted, without the last chunk.
	t.Run("store fails mid-stream", func(t *testing.T) {
		resp, err := smallReads.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		if got := failMidStream(t, db, resp); len(got) >= len(want) || !bytes.HasPrefix([]byte(want), got) {
			t.Errorf("got %d bytes; want a prefix of the %d stored", len(got), len(want))
		}
	})
}

// TestZstdStreamOverHTTP checks a zstd export, whose encoder compresses
// on a goroutine of its own: whole, it decodes to the stored lines; a
// client that leaves and a store that fails mid-stream end it without a
// race, and a failure leaves the client a broken transfer whose bytes are
// a frame without its end.
func TestZstdStreamOverHTTP(t *testing.T) {
	db, want := bigStore(t)
	h := export.NewHandler(db, registry(), slog.New(slog.DiscardHandler))
	url := serve(t, h, true)
	get := func(t *testing.T, c *http.Client) *http.Response {
		t.Helper()
		req, err := http.NewRequest("GET", url, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept-Encoding", "zstd") // set here, so not decoded by the client
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if enc := resp.Header.Get("Content-Encoding"); enc != "zstd" {
			t.Fatalf("Content-Encoding %q; want zstd", enc)
		}
		return resp
	}

	t.Run("whole", func(t *testing.T) {
		resp := get(t, http.DefaultClient)
		defer resp.Body.Close()
		zr, err := zstd.NewReader(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		got, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("decoding the export: %v", err)
		}
		if string(got) != want {
			t.Errorf("got %d bytes; want the %d stored", len(got), len(want))
		}
	})
	t.Run("client leaves", func(t *testing.T) {
		resp := get(t, smallReads)
		if _, err := io.ReadFull(resp.Body, make([]byte, 64<<10)); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close() // mid-stream: the connection is dropped
	})
	t.Run("store fails mid-stream", func(t *testing.T) {
		sent := failMidStream(t, db, get(t, smallReads))
		zr, err := zstd.NewReader(bytes.NewReader(sent))
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		got, err := io.ReadAll(zr)
		if err == nil {
			t.Errorf("the %d bytes received decode as a whole frame", len(sent))
		}
		if len(got) >= len(want) || !strings.HasPrefix(want, string(got)) {
			t.Errorf("decoded %d bytes; want a prefix of the %d stored", len(got), len(want))
		}
	})
}

// failMidStream reads 64 KiB of the export resp, closes db so that its
// scan stops with ErrClosed, and returns all that the client received; it
// checks that the transfer broke rather than ended like a whole body, and
// that Close returned.
func failMidStream(t *testing.T, db *storage.DB, resp *http.Response) []byte {
	t.Helper()
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	head := make([]byte, 64<<10)
	if _, err := io.ReadFull(br, head); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- db.Close() }()
	rest, err := io.ReadAll(br)
	if err == nil {
		t.Errorf("the export ended cleanly after %d bytes; want a broken transfer", len(head)+len(rest))
	} else if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Logf("read error: %v", err)
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Close did not return within 20s")
	}
	return append(head, rest...)
}
