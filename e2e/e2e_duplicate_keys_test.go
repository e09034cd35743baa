package e2e

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-json"
)

// TestE2EDuplicateKeys posts events with a key the decoder reads written
// twice: each is refused naming the key, rather than the last one winning,
// and kept in the quarantine.
func TestE2EDuplicateKeys(t *testing.T) {
	t.Parallel()
	addr := startServer(t, testConfig).addr

	single := `{"type":"event","event":"x","userId":"alice","eventTime":"2020-06-03T17:03:48Z","appKey":"` + demoApp + `","messageId":"d-1","userId":"bob"}`
	a := decodeAnswer(t, postEvents(t, addr, single), http.StatusBadRequest)
	if a.Error != "invalid_event" || a.Field != "userId" || a.Message != "userId appears twice" || a.Rejected != 1 {
		t.Fatalf("answer %+v; want a 400 invalid_event naming userId: userId appears twice", a)
	}

	ctxIP := strings.Replace(event("ip", "d-3"), `"messageId"`, `"context":{"ip":"198.51.100.1","ip":"198.51.100.2"},"messageId"`, 1)
	batch := `[` + event("ok", "d-2") + `,` + ctxIP + `]`
	a = decodeAnswer(t, postEvents(t, addr, batch), http.StatusAccepted)
	if a.Accepted != 1 || a.Rejected != 1 || len(a.Errors) != 1 {
		t.Fatalf("answer %+v; want accepted 1, rejected 1", a)
	}
	if e := a.Errors[0]; e.Index == nil || *e.Index != 1 || e.MessageID != "d-3" || e.Field != "context.ip" || e.Message != "context.ip appears twice" {
		t.Errorf("error %+v; want index 1, messageId d-3, field context.ip", e)
	}

	if ids := messageIDs(t, exportEvents(t, addr, "").lines); !slices.Equal(ids, []string{"d-2"}) {
		t.Errorf("exported %q; want [d-2]", ids)
	}
	rej := exportFrom(t, addr, "/v1/export/rejected", demoApp, "")
	var got []string
	for _, l := range rej.lines {
		var q struct {
			MessageID string          `json:"messageId"`
			Field     string          `json:"field"`
			Message   string          `json:"message"`
			Event     json.RawMessage `json:"event"`
		}
		if err := json.Unmarshal([]byte(l), &q); err != nil {
			t.Fatalf("quarantine line %q: %v", l, err)
		}
		got = append(got, q.MessageID+" "+q.Field+": "+q.Message)
		if q.MessageID == "d-1" && !strings.Contains(string(q.Event), `"userId":"alice"`) {
			t.Errorf("quarantined %s; want the event as sent, both userIds", l)
		}
	}
	want := []string{"d-1 userId: userId appears twice", "d-3 context.ip: context.ip appears twice"}
	if slices.Sort(got); !slices.Equal(got, want) {
		t.Errorf("quarantine holds %q; want %q", got, want)
	}
	if !t.Failed() {
		t.Logf("DUPKEYS: events=%d refused_naming_key=%d stored_ambiguous=0 quarantined=%d", 3, len(want), len(got))
	}
}

// TestE2EDuplicateKeysVendors sends a message with its user written twice
// to each SDK-compatible endpoint: none stores it with either user, and
// the answer names the field.
func TestE2EDuplicateKeysVendors(t *testing.T) {
	t.Parallel()
	addr := startServer(t, testConfig).addr
	form := "Content-Type: application/x-www-form-urlencoded"
	for _, tt := range []struct {
		endpoint, body, header, field string
	}{
		{"/v1/batch", `{"writeKey":"` + demoApp + `","batch":[{"type":"track","event":"x","userId":"alice","userId":"bob","messageId":"dk-seg"}]}`, jsonType, "userId"},
		{"/2/httpapi", `{"api_key":"` + demoApp + `","events":[{"event_type":"x","user_id":"alice","user_id":"bob","insert_id":"dk-amp"}]}`, jsonType, "user_id"},
		{"/batch/", `{"api_key":"` + demoApp + `","batch":[{"event":"x","distinct_id":"alice","distinct_id":"bob","uuid":"0b8a4bd2-9d1e-4c55-8b8f-3e0f4c1c0a11"}]}`, jsonType, "distinct_id"},
		{"/track?verbose=1", "data=" + url.QueryEscape(`{"event":"x","properties":{"token":"`+demoApp+`","distinct_id":"alice","distinct_id":"bob","$insert_id":"dk-mp"}}`), form, "properties.distinct_id"},
	} {
		r := request(t, "POST", "http://"+addr+tt.endpoint, strings.NewReader(tt.body), tt.header)
		if !strings.Contains(string(r.body), tt.field+" appears twice") {
			t.Errorf("%s: %d %s; want the message refused naming %s", tt.endpoint, r.status, r.body, tt.field)
		}
	}
	for _, l := range exportEvents(t, addr, "").lines {
		if strings.Contains(l, `"bob"`) || strings.Contains(l, `"alice"`) {
			t.Errorf("stored %s; want no message with a doubled user", l)
		}
	}
}
