package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-json"
)

// TestE2ERefusedBodyAnswerArrives: a body refused as too large from its
// declared length, before it is read, must still let the client read the
// 413: the server reads the rest of a modest body first, since closing on
// unread bytes makes the kernel reset the connection, and the reset can
// destroy the answer before the client reads it.
func TestE2ERefusedBodyAnswerArrives(t *testing.T) {
	t.Parallel()
	addr := startServer(t, testConfig).addr
	body := `{"name":"` + strings.Repeat("a", 70<<10) + `"}`
	for i := range 200 {
		req, _ := http.NewRequest("POST", "http://"+addr+"/admin/apps", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+adminSecret)
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatalf("request %d: %v; want a 413", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("request %d: status %d; want 413", i, resp.StatusCode)
		}
	}
}

// TestE2ERefusedBodyWholeBodyClients: clients that write their whole body
// before reading the answer, and send no "Expect: 100-continue" (Python's
// http.client, Node's fetch), read the answer to a refused body, however
// far past the limit it is (up to 4 × max_request_bytes), and
// then see the connection closed in order, not reset; several times in a
// row, since a reset is a race the client loses only sometimes.
func TestE2ERefusedBodyWholeBodyClients(t *testing.T) {
	t.Parallel()
	addr := startServer(t, testConfig).addr
	const size = 8 << 20 // 3 MiB past ingest.max_request_bytes (5 MiB)
	cases, answered := 0, 0
	for _, tc := range []struct {
		name    string
		head    string // request line and headers, without the body's framing
		chunked bool
		status  int
		code    string
	}{
		{"a declared length over the limit", "POST /v1/events HTTP/1.1\r\nContent-Type: application/json\r\n", false, 413, "payload_too_large"},
		{"a chunked body over the limit", "POST /v1/events HTTP/1.1\r\nContent-Type: application/json\r\n", true, 413, "payload_too_large"},
		{"a Segment batch over its 500 KB", "POST /v1/batch HTTP/1.1\r\nContent-Type: application/json\r\nAuthorization: Basic " + base64Std(demoApp+":") + "\r\n", false, 413, "payload_too_large"},
		{"no credentials, refused before the body", "POST /users/profile HTTP/1.1\r\nContent-Type: application/json\r\n", false, 401, "unauthorized"},
		{"a content type refused before the body", "POST /v1/events HTTP/1.1\r\nContent-Type: text/csv\r\n", true, 415, "unsupported_media_type"},
	} {
		cases++
		t.Run(tc.name, func(t *testing.T) {
			for i := range 3 {
				status, code, err := writeWholeBodyThenRead(addr, tc.head, size, tc.chunked)
				if err != nil {
					t.Fatalf("attempt %d: %v; want a %d answer, then an orderly close", i, err, tc.status)
				}
				if status != tc.status || code != tc.code {
					t.Fatalf("attempt %d: %d %q; want %d %q", i, status, code, tc.status, tc.code)
				}
				answered++
			}
		})
	}
	if !t.Failed() {
		t.Logf("REFUSEDBODY: body_mib=%d cases=%d attempts=%d answered_then_closed_in_order=%d resets=0", size>>20, cases, 3*cases, answered)
	}
}

// writeWholeBodyThenRead sends head and a body of size bytes, all of it,
// before reading anything, as a plain client does; then reads the answer
// and the connection's end. It returns the status and the error body's
// code word.
func writeWholeBodyThenRead(addr, head string, size int, chunked bool) (int, string, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	var req bytes.Buffer
	req.WriteString(head)
	req.WriteString("Host: " + addr + "\r\n")
	if chunked {
		req.WriteString("Transfer-Encoding: chunked\r\n\r\n")
	} else {
		fmt.Fprintf(&req, "Content-Length: %d\r\n\r\n", size)
	}
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	for n := 0; n < size; n += len(chunk) {
		if chunked {
			fmt.Fprintf(&req, "%x\r\n%s\r\n", len(chunk), chunk)
		} else {
			req.Write(chunk)
		}
	}
	if chunked {
		req.WriteString("0\r\n\r\n")
	}
	if _, err := c.Write(req.Bytes()); err != nil {
		return 0, "", fmt.Errorf("writing the request: %w", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, "", fmt.Errorf("reading the answer: %w", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", fmt.Errorf("reading the answer's body: %w", err)
	}
	var e struct {
		Error string `json:"error"`
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" || json.Unmarshal(body, &e) != nil {
		return 0, "", fmt.Errorf("answer %d %s %q; want a JSON error body", resp.StatusCode, ct, body)
	}
	if !resp.Close {
		return 0, "", fmt.Errorf("answer %d without Connection: close", resp.StatusCode)
	}
	if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		return 0, "", fmt.Errorf("after the answer: read %d, %v; want the connection closed in order (EOF)", n, err)
	}
	return resp.StatusCode, e.Error, nil
}
