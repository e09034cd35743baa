package web_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"trove/apierr"
	"trove/web"
)

// refuseAll answers every POST /v1/events with a 413 without reading the
// body, as a declared length over the limit is refused.
var refuseAll = web.Handlers{Events: func(*fasthttp.RequestCtx) error {
	return apierr.New(apierr.TooLarge, "", "too big")
}}

func dialRequest(t *testing.T, srv *testServer, head string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(srv.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRefusedBodyAnswerFirst: the answer is written before the rest of the
// body is read, so a client that reads while it sends sees it at once; a
// client that stops sending has its connection closed after DrainTimeout.
func TestRefusedBodyAnswerFirst(t *testing.T) {
	srv := startServer(t, web.Config{DrainTimeout: 300 * time.Millisecond}, refuseAll)
	c := dialRequest(t, srv, "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n"+strings.Repeat("x", 10<<10))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the answer with most of the body unsent: %v", err)
	}
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatalf("reading the answer's body: %v", err)
	}
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !resp.Close {
		t.Fatalf("answer %d, close %v; want 413 with Connection: close", resp.StatusCode, resp.Close)
	}
	// The client sends nothing more: the drain gives up.
	start := time.Now()
	if n, err := br.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("after the answer: read %d, %v; want the connection closed", n, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the connection closed %v after the answer; want about DrainTimeout (300ms)", d)
	}
}

// TestRefusedBodyDrainBounded: a body is drained up to DrainBytes, no
// further: a client sending more has its connection closed.
func TestRefusedBodyDrainBounded(t *testing.T) {
	srv := startServer(t, web.Config{DrainBytes: 256 << 10}, refuseAll)
	c := dialRequest(t, srv, "POST /v1/events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
	chunk := fmt.Sprintf("%x\r\n%s\r\n", 64<<10, strings.Repeat("x", 64<<10))
	sent := 0
	var err error
	for sent < 64<<20 && err == nil {
		_, err = io.WriteString(c, chunk)
		sent += 64 << 10
	}
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("sent %d bytes of a chunked body: %v; want the server to close the connection past DrainBytes (256 KiB)", sent, err)
	}
	// Socket buffers hold some more than the server read.
	if sent > 32<<20 {
		t.Errorf("the connection closed after %d bytes were sent; want soon after 256 KiB", sent)
	}
}
