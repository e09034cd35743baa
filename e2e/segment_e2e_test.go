package e2e

import (
	"bytes"
	"net/url"
	"strings"
	"testing"

	"github.com/goccy/go-json"
)

// segmentPost posts body to a Segment endpoint with the demo app's write
// key as the HTTP Basic user name, unless header says otherwise.
func segmentPost(t *testing.T, addr, path string, body []byte, header ...string) response {
	t.Helper()
	if len(header) == 0 {
		header = []string{jsonType, "Authorization: Basic " + base64Std(demoApp+":")}
	}
	return request(t, "POST", "http://"+addr+path, bytes.NewReader(body), header...)
}

// publicProfilesConfig is testConfig with public_profile_writes = true for
// the demo app: identify and alias sent with its appKey alone change
// profiles.
var publicProfilesConfig = strings.Replace(testConfig, `app_key = "`+demoApp+`"`, `app_key = "`+demoApp+`"`+"\npublic_profile_writes = true", 1)

// TestSegmentBadInput: malformed messages are named and quarantined, the
// rest stored; unknown types are kept with their reason; the size limits,
// gzip, the write key in the body and wrong keys.
func TestSegmentBadInput(t *testing.T) {
	t.Parallel()
	addr := startServer(t, publicProfilesConfig).addr
	big := strings.Repeat("x", 33<<10)
	batch := `{"sentAt":"2026-01-02T03:04:05Z","context":{"library":{"name":"curl"}},"batch":[
		{"type":"track","event":"Signed Up","userId":"u1","messageId":"s-1","timestamp":"2026-01-02T03:04:00Z","properties":{"plan":"pro"},"context":{"app":{"name":"shop"}},"extra":{"kept":true}},
		{"type":"track","userId":"u1","messageId":"s-2"},
		{"type":"launch","userId":"u1","messageId":"s-3"},
		{"type":"page","anonymousId":"a1","messageId":"s-4","name":"Home","properties":{"path":"/"}},
		{"type":"track","event":"x","messageId":"s-5"},
		{"type":"track","event":"x","userId":"u1","messageId":"s-6","timestamp":"yesterday"},
		"not an object",
		{"type":"track","event":"big","userId":"u1","messageId":"s-8","properties":{"b":"` + big + `"}},
		{"type":"identify","userId":"u2","messageId":"s-9","traits":{"firstName":"Jo","email":"not-an-email","gender":"female","address":{"city":"Oslo","street":"Main"},"tags":["a","b"],"userId":"spoof"}},
		{"type":"alias","userId":"u2","previousId":"a1","messageId":"s-10"},
		{"type":"alias","userId":"u3","previousId":"a1","messageId":"s-11"},
		{"type":"track","event":"Signed Up","userId":"u1","messageId":"s-1"}
	]}`
	r := segmentPost(t, addr, "/v1/batch", []byte(batch))
	if r.status != 200 {
		t.Fatalf("batch: %d %s; want 200", r.status, r.body)
	}
	var a struct {
		Success bool `json:"success"`
		answer
	}
	if err := json.Unmarshal(r.body, &a); err != nil {
		t.Fatal(err)
	}
	if !a.Success || a.Accepted != 4 || a.Duplicates != 1 || a.Rejected != 7 {
		t.Errorf("answer %s; want success, 4 accepted, 1 duplicate, 7 rejected", r.body)
	}
	wantErr := map[int]string{1: "event", 2: "type", 4: "userId", 5: "timestamp", 6: "", 7: "", 10: "previousId"}
	for _, e := range a.Errors {
		if e.Index == nil {
			t.Errorf("error %+v has no index", e)
			continue
		}
		f, ok := wantErr[*e.Index]
		if !ok || f != e.Field {
			t.Errorf("error %+v; want field %q for index %d", e, f, *e.Index)
		}
		delete(wantErr, *e.Index)
	}
	if len(wantErr) != 0 {
		t.Errorf("no error for %v; got %s", wantErr, r.body)
	}

	// The stored forms.
	byID := map[string]map[string]any{}
	for _, l := range exportEvents(t, addr, "").lines {
		var ev map[string]any
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatal(err)
		}
		byID[ev["messageId"].(string)] = ev
	}
	if len(byID) != 4 {
		t.Errorf("exported %v; want 4 events", byID)
	}
	ev := byID["s-1"]
	ctx, _ := ev["context"].(map[string]any)
	seg, _ := ev["segment"].(map[string]any)
	if ev["event"] != "Signed Up" || ev["userId"] != "u1" || ev["eventTime"] == nil || ev["sentAt"] != "2026-01-02T03:04:05Z" ||
		ctx["app"] == nil || ctx["library"] == nil || seg["type"] != "track" || seg["extra"] == nil || ev["clockSkewMs"] == nil {
		t.Errorf("s-1 stored as %v; want the mapping, the batch's context merged, extra kept, the clock skew corrected", ev)
	}
	if p := byID["s-4"]; p["event"] != "Home" || p["userId"] != "a1" || p["segment"].(map[string]any)["anonymousId"] != "a1" {
		t.Errorf("s-4 stored as %v; want page Home of anonymous a1", p)
	}
	rej := exportFrom(t, addr, "/v1/export/rejected", demoApp, "").lines
	if len(rej) != 7 {
		t.Errorf("quarantine holds %d; want 7", len(rej))
	}
	if s := strings.Join(rej, "\n"); !strings.Contains(s, `unknown message type \"launch\"`) || !strings.Contains(s, `"type":"launch"`) {
		t.Errorf("quarantine %s; want the unknown type kept with its reason", s)
	}

	// Identify: traits mapped, the bad email and the spoofed userId kept as
	// custom attributes; the alias linked; the conflicting one refused.
	p := readProfile(t, addr, "userId=u2")
	if p.FirstName != "Jo" || p.EmailID != "" || p.Attributes["email"] != "not-an-email" || p.Attributes["address.street"] != "Main" || p.Attributes["traits.userId"] != "spoof" {
		t.Errorf("profile of u2: %+v", p)
	}
	if p := readProfile(t, addr, "alias_label=previousId&alias_id="+url.QueryEscape("a1")); p.UserID != "u2" {
		t.Errorf("alias a1 → %+v; want u2", p)
	}

	// Single-message endpoints, gzip, writeKey in the body.
	r = segmentPost(t, addr, "/v1/track", []byte(`{"userId":"u9","event":"One","messageId":"t-1"}`))
	if r.status != 200 || !bytes.Contains(r.body, []byte(`"accepted":1`)) {
		t.Errorf("/v1/track: %d %s", r.status, r.body)
	}
	r = segmentPost(t, addr, "/v1/identify", oaGzip(t, []byte(`{"userId":"u9","traits":{"plan":"gz"},"writeKey":"`+demoApp+`"}`)),
		jsonType, "Content-Encoding: gzip")
	if r.status != 200 || readProfile(t, addr, "userId=u9").Attributes["plan"] != "gz" {
		t.Errorf("/v1/identify gzip with writeKey in the body: %d %s", r.status, r.body)
	}

	// Limits and credentials.
	for _, tc := range []struct {
		name, path string
		body       []byte
		header     []string
		status     int
	}{
		{"a single message over 32 KB", "/v1/track", []byte(`{"userId":"u","event":"` + big + `"}`), nil, 413},
		{"a batch over 500 KB once gunzipped", "/v1/batch", oaGzip(t, []byte(`{"batch":[{"x":"`+strings.Repeat("y", 501<<10)+`"}]}`)),
			[]string{jsonType, "Content-Encoding: gzip", "Authorization: Basic " + base64Std(demoApp+":")}, 413},
		{"not JSON", "/v1/batch", []byte(`{"batch":[`), nil, 400},
		{"no batch", "/v1/batch", []byte(`{}`), nil, 400},
		{"no write key", "/v1/track", []byte(`{"userId":"u","event":"x"}`), []string{jsonType}, 401},
		{"a wrong write key", "/v1/track", []byte(`{"userId":"u","event":"x"}`), []string{jsonType, "Authorization: Basic " + base64Std("nope:")}, 401},
		{"a wrong writeKey in the body", "/v1/track", []byte(`{"userId":"u","event":"x","writeKey":"nope"}`), []string{jsonType}, 401},
		{"a token as write key", "/v1/track", []byte(`{"userId":"u","event":"x"}`), []string{jsonType, "Authorization: Basic " + base64Std(backendSecret+":")}, 200},
	} {
		r := segmentPost(t, addr, tc.path, tc.body, tc.header...)
		if r.status != tc.status {
			t.Errorf("%s: %d %s; want %d", tc.name, r.status, r.body, tc.status)
		}
	}
}
