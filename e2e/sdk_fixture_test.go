package e2e

// Requests recorded from the node SDKs of npm (testdata/sdk/README.md says
// how), replayed byte for byte against a real server: what those SDKs
// send with their defaults is taken, answered as they expect, and exported.

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goccy/go-json"
	"github.com/klauspost/compress/gzip"
)

// recordedRequest is one request a node SDK sent, as testdata/sdk holds it:
// NAME.req.json (method, url, headers) and NAME.body[.gz] (the body as sent).
type recordedRequest struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	body    []byte
}

// loadRecorded reads testdata/sdk/NAME.req.json and its body.
func loadRecorded(t *testing.T, name string) recordedRequest {
	t.Helper()
	var r recordedRequest
	b, err := os.ReadFile(filepath.Join(moduleRoot, "testdata", "sdk", name+".req.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s.req.json: %v", name, err)
	}
	for _, suffix := range []string{".body.gz", ".body"} {
		if r.body, err = os.ReadFile(filepath.Join(moduleRoot, "testdata", "sdk", name+suffix)); err == nil {
			return r
		}
	}
	if r.Method == "POST" {
		t.Fatalf("%s: no body file", name)
	}
	return r
}

// replay sends r to addr as it was recorded.
func (r recordedRequest) replay(t *testing.T, addr string) response {
	t.Helper()
	var hs []string
	for k, v := range r.Headers {
		hs = append(hs, http.CanonicalHeaderKey(k)+": "+v)
	}
	var body *bytes.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	} else {
		body = bytes.NewReader(nil)
	}
	return request(t, r.Method, "http://"+addr+r.URL, body, hs...)
}

// plainBody is the body decompressed when it was sent gzip'd.
func (r recordedRequest) plainBody(t *testing.T) []byte {
	t.Helper()
	if r.Headers["content-encoding"] != "gzip" {
		return r.body
	}
	zr, err := gzip.NewReader(bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := out.ReadFrom(zr); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// exportedByID exports the demo app's events and indexes them by messageId,
// failing on a messageId exported twice.
func exportedByID(t *testing.T, addr string) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, line := range exportEvents(t, addr, "").lines {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("exported line %q: %v", line, err)
		}
		id, _ := ev["messageId"].(string)
		if out[id] != nil {
			t.Errorf("messageId %q exported twice", id)
		}
		out[id] = ev
	}
	return out
}

// TestRudderNodeSDKDefaults: @rudderstack/rudder-sdk-node 3.0.13 with its
// defaults gzips its batches and sends them labelled
// application/x-www-form-urlencoded (axios' label for a Buffer); Trove
// answers 200 and stores every message once, resends included.
func TestRudderNodeSDKDefaults(t *testing.T) {
	t.Parallel()
	addr := startServer(t, testConfig).addr
	want := map[string]string{} // messageId → type
	for _, name := range []string{"rudder-node-3.0.13-0", "rudder-node-3.0.13-1"} {
		r := loadRecorded(t, name)
		if ct := r.Headers["content-type"]; ct != "application/x-www-form-urlencoded" || r.Headers["content-encoding"] != "gzip" {
			t.Fatalf("%s: recorded Content-Type %q, Content-Encoding %q; want the SDK's defaults", name, ct, r.Headers["content-encoding"])
		}
		var batch struct {
			Batch []struct {
				MessageID string `json:"messageId"`
				Type      string `json:"type"`
			} `json:"batch"`
		}
		if err := json.Unmarshal(r.plainBody(t), &batch); err != nil {
			t.Fatal(err)
		}
		for _, m := range batch.Batch {
			want[m.MessageID] = m.Type
		}
		for attempt := range 2 { // the second is the SDK's resend after a lost answer
			resp := r.replay(t, addr)
			if resp.status != http.StatusOK {
				t.Fatalf("%s attempt %d: status %d (%s); want 200", name, attempt, resp.status, resp.body)
			}
			var a struct {
				Success    bool `json:"success"`
				Accepted   int  `json:"accepted"`
				Duplicates int  `json:"duplicates"`
				Rejected   int  `json:"rejected"`
			}
			if err := json.Unmarshal(resp.body, &a); err != nil {
				t.Fatal(err)
			}
			n := len(batch.Batch)
			if wantA, wantD := n*(1-attempt), n*attempt; !a.Success || a.Accepted != wantA || a.Duplicates != wantD || a.Rejected != 0 {
				t.Errorf("%s attempt %d: answer %s; want success, %d accepted, %d duplicates", name, attempt, resp.body, wantA, wantD)
			}
		}
	}
	if len(want) != 12 {
		t.Fatalf("the fixtures hold %d messages; want 12", len(want))
	}
	got := exportedByID(t, addr)
	if len(got) != len(want) {
		t.Errorf("exported %d events; want %d", len(got), len(want))
	}
	for id, typ := range want {
		ev := got[id]
		if ev == nil {
			t.Errorf("message %s (%s) not exported", id, typ)
			continue
		}
		wantEvent := map[string]string{"track": "Signed Up", "identify": "identify", "page": "Home"}[typ]
		if ev["event"] != wantEvent || !strings.HasPrefix(ev["userId"].(string), "rn-") {
			t.Errorf("message %s (%s) exported as event %v of user %v; want %q", id, typ, ev["event"], ev["userId"], wantEvent)
		}
	}
}
