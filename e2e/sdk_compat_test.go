package e2e

// The Amplitude, Mixpanel and PostHog endpoints, tested with the real
// posthog-go SDK (thousands of messages, every success callback matched one
// for one against the export) and with requests recorded from the node
// SDKs of npm (testdata/sdk), plus the answers that decide their retries.

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goccy/go-json"
	posthog "github.com/posthog/posthog-go"
)

// posthogCallback records what posthog-go reports, by the "n" property
// each test message carries.
type posthogCallback struct {
	mu     sync.Mutex
	ok     map[string]int
	failed map[string]string
}

func messageKey(m posthog.APIMessage) string {
	switch m := m.(type) {
	case posthog.CaptureInApi:
		return fmt.Sprint(m.Properties["n"])
	case posthog.IdentifyInApi:
		return fmt.Sprint(m.Set["n"])
	}
	return fmt.Sprintf("unknown %T", m)
}

func (c *posthogCallback) Success(m posthog.APIMessage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ok[messageKey(m)]++
}

func (c *posthogCallback) Failure(m posthog.APIMessage, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failed[messageKey(m)] = err.Error()
}

// TestPostHogGoSDK: posthog-go v1.5.2, pointed at Trove by its Endpoint
// alone, sends 2,000 captures and 1,000 identifies with a token as its API
// key; every message its callback reports sent is exported once, and the
// identifies set the profiles.
func TestPostHogGoSDK(t *testing.T) {
	t.Parallel()
	addr := startServer(t, testConfig).addr
	cb := &posthogCallback{ok: map[string]int{}, failed: map[string]string{}}
	log := &sdkLog{}
	client, err := posthog.NewWithConfig(backendSecret, posthog.Config{
		Endpoint: "http://" + addr, Interval: 50 * time.Millisecond, BatchSize: 250,
		Callback: cb, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	const captures, identifies = 2000, 1000
	for i := range captures {
		err := client.Enqueue(posthog.Capture{Uuid: fmt.Sprintf("ph-%05d", i), DistinctId: fmt.Sprintf("ph-user-%d", i%50),
			Event: "Played", Timestamp: time.Date(2026, 11, 1, 0, 0, i%3600, 0, time.UTC),
			Properties: posthog.NewProperties().Set("n", fmt.Sprintf("c%d", i)).Set("track", i)})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range identifies {
		err := client.Enqueue(posthog.Identify{DistinctId: fmt.Sprintf("ph-id-%d", i),
			Properties: posthog.NewProperties().Set("n", fmt.Sprintf("i%d", i)).Set("email", fmt.Sprintf("p%d@example.com", i)).Set("plan", "pro")})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	if len(cb.failed) > 0 || len(cb.ok) != captures+identifies {
		t.Fatalf("callbacks: %d sent, %d failed (e.g. %v); want %d sent\nSDK log:\n%s", len(cb.ok), len(cb.failed), first(cb.failed), captures+identifies, log)
	}
	got := map[string]int{}
	for _, line := range exportEvents(t, addr, "").lines {
		var ev struct {
			Event      string         `json:"event"`
			UserID     string         `json:"userId"`
			MessageID  string         `json:"messageId"`
			EventTime  string         `json:"eventTime"`
			Attributes map[string]any `json:"attributes"`
			PostHog    map[string]any `json:"posthog"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatal(err)
		}
		switch ev.Event {
		case "Played":
			n := fmt.Sprint(ev.Attributes["n"])
			got[n]++
			var i int
			fmt.Sscanf(n, "c%d", &i)
			if ev.MessageID != fmt.Sprintf("ph-%05d", i) || ev.UserID != fmt.Sprintf("ph-user-%d", i%50) ||
				ev.EventTime != time.Date(2026, 11, 1, 0, 0, i%3600, 0, time.UTC).Format("2006-01-02T15:04:05Z") {
				t.Errorf("capture %s exported as %s", n, line)
			}
		case "$identify":
			set, _ := ev.PostHog["$set"].(map[string]any)
			got[fmt.Sprint(set["n"])]++
		default:
			t.Errorf("unexpected event %s", line)
		}
	}
	for n, c := range cb.ok {
		if got[n] != c {
			t.Errorf("message %s: reported sent %d time(s), exported %d", n, c, got[n])
		}
	}
	if len(got) != len(cb.ok) {
		t.Errorf("exported %d messages; the SDK reported %d", len(got), len(cb.ok))
	}
	for _, i := range []int{0, 999} {
		p := profileOf(t, addr, fmt.Sprintf("ph-id-%d", i))
		if p["email_id"] != fmt.Sprintf("p%d@example.com", i) || p["plan"] != "pro" {
			t.Errorf("profile ph-id-%d = %v; want email_id and plan set by the identify", i, p)
		}
	}
}

func first(m map[string]string) string {
	for k, v := range m {
		return k + ": " + v
	}
	return ""
}

// profileOf reads the demo app's profile of userID (getProfile), failing
// unless it exists; its custom attributes are merged beside the built-in
// fields.
func profileOf(t *testing.T, addr, userID string) map[string]any {
	t.Helper()
	status, p := getProfile(t, addr, "userId="+url.QueryEscape(userID))
	if status != http.StatusOK {
		t.Fatalf("profile %s: status %d; want 200", userID, status)
	}
	if attrs, ok := p["attributes"].(map[string]any); ok {
		for k, v := range attrs {
			p[k] = v
		}
	}
	return p
}

// TestNodeSDKRecordedRequests replays what @amplitude/analytics-node
// 1.5.73, mixpanel 0.24.0 and posthog-node 5.70.0 sent with their defaults
// and checks the answers they read as success, then the export: every
// event once, a resend stored nothing more, and the appKey alone changed
// no profile.
func TestNodeSDKRecordedRequests(t *testing.T) {
	t.Parallel()
	addr := startServer(t, testConfig).addr
	tests := []struct {
		name     string
		wantBody func(b []byte) bool
		events   []string // the event names it stores, in order
	}{
		{"amplitude-node-1.5.73-0", func(b []byte) bool {
			return bytes.Contains(b, []byte(`"code":200`)) && bytes.Contains(b, []byte(`"events_ingested":2`))
		},
			[]string{"Signed Up", "$identify"}},
		{"mixpanel-node-0.24.0-0", func(b []byte) bool { return string(b) == "1" }, []string{"Signed Up"}},
		{"mixpanel-node-0.24.0-1", func(b []byte) bool { return string(b) == "1" }, []string{"$engage"}},
		{"mixpanel-node-0.24.0-2", func(b []byte) bool { return string(b) == "1" }, []string{"A"}},
		{"posthog-node-5.70.0-0", func(b []byte) bool { return bytes.Contains(b, []byte(`"status":1`)) }, []string{"Signed Up", "$identify", "$pageview"}},
	}
	var want []string
	for _, tc := range tests {
		r := loadRecorded(t, tc.name)
		resp := r.replay(t, addr)
		if resp.status != http.StatusOK || !tc.wantBody(resp.body) {
			t.Errorf("%s: status %d, body %s; want 200 and the SDK's success", tc.name, resp.status, resp.body)
		}
		want = append(want, tc.events...)
	}
	// Resends of the requests with their own ids store nothing more.
	for _, tc := range []struct{ name, want string }{
		{"amplitude-node-1.5.73-0", `"duplicates":2`}, {"posthog-node-5.70.0-0", `"duplicates":3`}, {"mixpanel-node-0.24.0-1", "1"},
	} {
		r := loadRecorded(t, tc.name)
		if resp := r.replay(t, addr); resp.status != http.StatusOK || !bytes.Contains(resp.body, []byte(tc.want)) {
			t.Errorf("%s resent: status %d (%s); want 200 with %s", tc.name, resp.status, resp.body, tc.want)
		}
	}
	lines := exportEvents(t, addr, "").lines
	var names []string
	for _, line := range lines {
		var ev struct {
			Event  string `json:"event"`
			UserID string `json:"userId"`
		}
		json.Unmarshal([]byte(line), &ev)
		names = append(names, ev.Event)
		if ev.UserID != "user-1" && ev.UserID != "u2" {
			t.Errorf("event %s: userId %q; want the SDK's user", line, ev.UserID)
		}
	}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Errorf("exported %v; want %v", names, want)
	}
	r := request(t, "GET", "http://"+addr+"/v1/users/profile?appKey="+demoApp+"&userId=user-1", nil, "Authorization: Bearer "+backendSecret)
	if r.status != http.StatusNotFound {
		t.Errorf("profile user-1: status %d (%s); want 404: the appKey alone changes no profile", r.status, r.body)
	}
}

// TestAmplitudeAnswers: the statuses and bodies that make Amplitude's SDKs
// drop what a resend cannot fix and retry the rest; a token applies the
// user_properties operations.
func TestAmplitudeAnswers(t *testing.T) {
	t.Parallel()
	addr := startServer(t, testConfig).addr
	post := func(path, body string, header ...string) (int, map[string]any) {
		t.Helper()
		if len(header) == 0 {
			header = []string{jsonType}
		}
		r := request(t, "POST", "http://"+addr+path, strings.NewReader(body), header...)
		var m map[string]any
		if err := json.Unmarshal(r.body, &m); err != nil {
			t.Fatalf("%s: answer %q is not JSON", path, r.body)
		}
		return r.status, m
	}
	status, m := post("/2/httpapi", `{"api_key":"nope","events":[{"event_type":"a","user_id":"u"}]}`)
	if status != 401 || m["code"] != float64(401) || m["missing_field"] != "api_key" {
		t.Errorf("unknown api_key: %d %v; want 401 with code 401 and missing_field api_key (the SDK drops, no retry)", status, m)
	}
	status, m = post("/2/httpapi", `{"api_key":"`+demoApp+`","events":[{"event_type":"a","user_id":"amp-u","insert_id":"amp-1","time":1790000000000},{"user_id":"amp-u","insert_id":"amp-2"},{"event_type":"c","device_id":"dev-9","insert_id":"amp-3","time":"bad"}]}`)
	inv, _ := m["events_with_invalid_fields"].(map[string]any)
	if status != 400 || m["code"] != float64(400) || m["accepted"] != float64(1) || fmt.Sprint(inv["event_type"]) != "[1]" || fmt.Sprint(inv["time"]) != "[2]" {
		t.Errorf("a batch with invalid events: %d %v; want 400 naming events 1 and 2, event 0 stored", status, m)
	}
	// The SDK resends event 0 alone: a duplicate.
	status, m = post("/batch", `{"api_key":"`+demoApp+`","events":[{"event_type":"a","user_id":"amp-u","insert_id":"amp-1","time":1790000000000}]}`)
	if status != 200 || m["code"] != float64(200) || m["duplicates"] != float64(1) || m["events_ingested"] != float64(1) {
		t.Errorf("the resend to /batch: %d %v; want 200, one duplicate", status, m)
	}
	form := url.Values{"api_key": {backendSecret}, "identification": {`[{"user_id":"amp-u","user_properties":{"$set":{"email":"a@example.com","plan":"pro"},"$add":{"logins":2},"$append":{"tags":"new"}}}]`}}
	status, m = post("/identify", form.Encode(), "Content-Type: application/x-www-form-urlencoded")
	if status != 200 || m["accepted"] != float64(1) {
		t.Errorf("/identify with a token: %d %v; want 200", status, m)
	}
	status, m = post("/2/httpapi", `{"api_key":"`+backendSecret+`","events":[{"event_type":"$identify","user_id":"amp-u","insert_id":"amp-4","user_properties":{"$add":{"logins":3},"$unset":{"plan":"-"}}}]}`)
	if status != 200 {
		t.Errorf("identify event with a token: %d %v", status, m)
	}
	p := profileOf(t, addr, "amp-u")
	if p["email_id"] != "a@example.com" || p["logins"] != float64(5) || p["plan"] != nil || fmt.Sprint(p["tags"]) != "[new]" {
		t.Errorf("profile amp-u = %v; want email_id set, logins 5, plan unset, tags [new]", p)
	}
	exp := exportedByID(t, addr)
	if ev := exp["amp-1"]; ev == nil || ev["eventTime"] != "2026-09-21T14:13:20.000Z" || ev["event"] != "a" {
		t.Errorf("amp-1 exported as %v; want event a at 2026-09-21T14:13:20.000Z", ev)
	}
	if exp["amp-2"] != nil || exp["amp-3"] != nil {
		t.Errorf("invalid events exported: %v %v", exp["amp-2"], exp["amp-3"])
	}
	rej := exportFrom(t, addr, "/v1/export/rejected", demoApp, "")
	if len(rej.lines) != 2 || !strings.Contains(rej.lines[0]+rej.lines[1], `event_type`) {
		t.Errorf("quarantine %v; want the two invalid events, named", rej.lines)
	}
}

// TestMixpanelAnswers: /track and /engage in every form the libraries use
// (GET and POST, base64 and plain JSON, verbose), /import's JSON answer,
// $insert_id dedup, and an api_keys alias of the config.
func TestMixpanelAnswers(t *testing.T) {
	t.Parallel()
	cfg := strings.Replace(testConfig, `app_key = "`+demoApp+`"`, `app_key = "`+demoApp+`"`+"\napi_keys = [\"mp-project-token\"]", 1)
	addr := startServer(t, cfg).addr
	ev := func(id, user string) string {
		return `{"event":"Bought","properties":{"token":"mp-project-token","distinct_id":"` + user + `","time":1790000000,"$insert_id":"` + id + `","price":3}}`
	}
	b64 := func(s string) string { return base64Std(s) }
	get := func(path, data, extra string) response {
		return request(t, "GET", "http://"+addr+path+"?data="+url.QueryEscape(data)+extra, nil)
	}
	if r := get("/track", b64(ev("mp-1", "mp-u")), ""); r.status != 200 || string(r.body) != "1" {
		t.Errorf("GET /track base64: %d %s; want 200 1", r.status, r.body)
	}
	if r := get("/track", ev("mp-2", "mp-u"), "&verbose=1"); r.status != 200 || !bytes.Contains(r.body, []byte(`"status":1`)) {
		t.Errorf("GET /track JSON verbose: %d %s; want status 1", r.status, r.body)
	}
	form := url.Values{"data": {b64("[" + ev("mp-3", "mp-u") + "," + ev("mp-1", "mp-u") + "]")}}
	r := request(t, "POST", "http://"+addr+"/track", strings.NewReader(form.Encode()), "Content-Type: application/x-www-form-urlencoded")
	if r.status != 200 || string(r.body) != "1" {
		t.Errorf("POST /track form: %d %s", r.status, r.body)
	}
	if r := get("/track", b64(`{"event":"x","properties":{"token":"wrong-token","distinct_id":"u"}}`), "&verbose=1"); r.status != 401 || !bytes.Contains(r.body, []byte(`"status":0`)) {
		t.Errorf("a wrong token: %d %s; want 401 with status 0 (the library reports a failure)", r.status, r.body)
	}
	r = request(t, "POST", "http://"+addr+"/import?strict=1", strings.NewReader("["+ev("mp-4", "mp-u")+`,{"event":"NoUser","properties":{"time":1790000000,"$insert_id":"mp-5"}}]`),
		jsonType, "Authorization: Basic "+base64Std(backendSecret+":"))
	var imp struct {
		Code     int    `json:"code"`
		Imported int    `json:"num_records_imported"`
		Status   string `json:"status"`
		Failed   []struct {
			Index    int    `json:"index"`
			InsertID string `json:"$insert_id"`
			Field    string `json:"field"`
		} `json:"failed_records"`
	}
	json.Unmarshal(r.body, &imp)
	if r.status != 400 || imp.Code != 400 || imp.Imported != 1 || len(imp.Failed) != 1 || imp.Failed[0].Index != 1 || imp.Failed[0].Field != "properties.distinct_id" {
		t.Errorf("POST /import: %d %s; want 400, 1 imported, record 1 failed on properties.distinct_id", r.status, r.body)
	}
	engage := `{"$token":"` + backendSecret + `","$distinct_id":"mp-u","$set":{"$email":"m@example.com","$first_name":"Mia","plan":"pro"},"$add":{"visits":2},"$union":{"tags":["a","b"]}}`
	if r := get("/engage", b64(engage), ""); r.status != 200 || string(r.body) != "1" {
		t.Errorf("GET /engage: %d %s", r.status, r.body)
	}
	if r := get("/engage", b64(`{"$token":"`+backendSecret+`","$distinct_id":"mp-u","$unset":["plan"],"$remove":{"tags":"a"}}`), ""); r.status != 200 {
		t.Errorf("GET /engage $unset: %d %s", r.status, r.body)
	}
	p := profileOf(t, addr, "mp-u")
	if p["email_id"] != "m@example.com" || p["first_name"] != "Mia" || p["visits"] != float64(2) || p["plan"] != nil || fmt.Sprint(p["tags"]) != "[b]" {
		t.Errorf("profile mp-u = %v; want email_id, first_name, visits 2, plan unset, tags [b]", p)
	}
	exp := exportedByID(t, addr)
	for _, id := range []string{"mp-1", "mp-2", "mp-3", "mp-4"} {
		e := exp[id]
		if e == nil || e["event"] != "Bought" || e["userId"] != "mp-u" || e["eventTime"] != "2026-09-21T14:13:20.000Z" {
			t.Errorf("%s exported as %v", id, e)
		}
		if attrs, _ := e["attributes"].(map[string]any); attrs["token"] != nil || attrs["price"] != float64(3) {
			t.Errorf("%s attributes %v; want price kept and the token dropped", id, attrs)
		}
	}
	if len(exp) != 6 { // 4 events and 2 $engage
		t.Errorf("exported %d events; want 6 (mp-1 resent once is a duplicate)", len(exp))
	}
}

// TestPostHogAnswers: the capture paths, an api_keys alias, the key inside
// the event (posthog-js), a bad event quarantined in a 200, and aliases.
func TestPostHogAnswers(t *testing.T) {
	t.Parallel()
	cfg := strings.Replace(testConfig, `app_key = "`+demoApp+`"`, `app_key = "`+demoApp+`"`+"\napi_keys = [\"phc_demo\"]", 1)
	addr := startServer(t, cfg).addr
	post := func(path, body string) response {
		return request(t, "POST", "http://"+addr+path, strings.NewReader(body), jsonType)
	}
	for i, path := range []string{"/capture/", "/i/v0/e/", "/e/", "/capture"} {
		r := post(path, fmt.Sprintf(`{"api_key":"phc_demo","event":"Viewed","distinct_id":"ph-u","uuid":"ph-cap-%d","properties":{"n":%d}}`, i, i))
		if r.status != 200 || !bytes.Contains(r.body, []byte(`"accepted":1`)) {
			t.Errorf("POST %s: %d %s", path, r.status, r.body)
		}
	}
	r := post("/batch/", `{"api_key":"phc_demo","batch":[{"event":"Viewed","distinct_id":"ph-u","uuid":"ph-cap-9"},{"event":"NoUser","uuid":"ph-bad"}]}`)
	if r.status != 200 || !bytes.Contains(r.body, []byte(`"rejected":1`)) || !bytes.Contains(r.body, []byte(`"field":"distinct_id"`)) {
		t.Errorf("a batch with a bad event: %d %s; want 200, the bad one named by distinct_id", r.status, r.body)
	}
	r = post("/e/", `[{"event":"Clicked","properties":{"token":"phc_demo","distinct_id":"ph-u","$insert_id":"x"},"uuid":"ph-js-1"}]`)
	if r.status != 200 || !bytes.Contains(r.body, []byte(`"accepted":1`)) {
		t.Errorf("posthog-js' form, the key in properties.token: %d %s", r.status, r.body)
	}
	if r := post("/batch/", `{"api_key":"phc_nope","batch":[{"event":"a","distinct_id":"u"}]}`); r.status != 401 {
		t.Errorf("an unknown api_key: %d %s; want 401 (the SDK drops, no retry)", r.status, r.body)
	}
	r = post("/batch/", `{"api_key":"`+backendSecret+`","batch":[{"event":"$identify","distinct_id":"ph-u","uuid":"ph-id-1","properties":{"$set":{"email":"p@example.com"},"$anon_distinct_id":"anon-7"}}]}`)
	if r.status != 200 {
		t.Errorf("identify with a token: %d %s", r.status, r.body)
	}
	ar := request(t, "GET", "http://"+addr+"/v1/users/profile?appKey="+demoApp+"&alias_label=%24anon_distinct_id&alias_id=anon-7", nil, "Authorization: Bearer "+backendSecret)
	if ar.status != 200 || !bytes.Contains(ar.body, []byte(`p@example.com`)) {
		t.Errorf("the profile by its alias anon-7: %d %s; want ph-u's", ar.status, ar.body)
	}
	exp := exportedByID(t, addr)
	for _, id := range []string{"ph-cap-0", "ph-cap-1", "ph-cap-2", "ph-cap-3", "ph-cap-9", "ph-js-1", "ph-id-1"} {
		if exp[id] == nil || exp[id]["userId"] != "ph-u" {
			t.Errorf("%s exported as %v", id, exp[id])
		}
	}
	if attrs, _ := exp["ph-js-1"]["attributes"].(map[string]any); attrs["token"] != nil {
		t.Errorf("ph-js-1 keeps the token: %v", attrs)
	}
}
