package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/goccy/go-json"
)

const (
	openApp    = "open-app-key-0001"
	openSecret = "s3cret-open-app"
)

// profileWritesConfig has the demo app with the default (profile changes
// through the SDK endpoints need a token) and an app that lets its public
// appKey change profiles, each with a token of its own.
const profileWritesConfig = `
admin_token = "` + adminSecret + `"

[[apps]]
name = "demo"
app_key = "` + demoApp + `"

[[apps]]
name = "open"
app_key = "` + openApp + `"
public_profile_writes = true
` + backendToken + `
[[tokens]]
name = "open"
secret = "` + openSecret + `"
scopes = ["ingest", "export"]
apps = ["` + openApp + `"]
`

// segmentAnswer is the body of a Segment endpoint's 200.
type segmentAnswer struct {
	Success           bool `json:"success"`
	Accepted          int  `json:"accepted"`
	Rejected          int  `json:"rejected"`
	ProfilesUnchanged int  `json:"profilesUnchanged"`
	Warnings          []struct {
		Index     *int   `json:"index"`
		MessageID string `json:"messageId"`
		Field     string `json:"field"`
		Message   string `json:"message"`
	} `json:"warnings"`
}

// TestSegmentProfileWritesNeedToken: identify and alias sent with only the
// public appKey (what every browser and app build carries) are stored as
// events, named in the answer's warnings, and change no profile or alias,
// unless the app sets public_profile_writes; a token with ingest scope as
// write key changes profiles either way. group never changes a profile.
func TestSegmentProfileWritesNeedToken(t *testing.T) {
	t.Parallel()
	addr := startServer(t, profileWritesConfig).addr
	for _, tc := range []struct {
		name   string
		app    string
		secret string
		public bool
	}{
		{"default: a token is needed", demoApp, backendSecret, false},
		{"public_profile_writes = true", openApp, openSecret, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			byToken := "Authorization: Bearer " + tc.secret
			profile := func(query string) (int, map[string]any) {
				t.Helper()
				r := request(t, "GET", "http://"+addr+"/v1/users/profile?appKey="+tc.app+"&"+query, nil, byToken)
				var p map[string]any
				if r.status == http.StatusOK {
					if err := json.Unmarshal(r.body, &p); err != nil {
						t.Fatalf("profile %s: %v", r.body, err)
					}
				}
				return r.status, p
			}
			postProfile := func(obj string) response {
				t.Helper()
				return request(t, "POST", "http://"+addr+"/users/profile", strings.NewReader(`{"appKey":"`+tc.app+`","user_profiles":[`+obj+`]}`), jsonType, byToken)
			}
			// The victim's profile, made with a token.
			if r := postProfile(`{"customer_id":"victim","first_name":"Val","email_id":"val@example.com","user_alias":{"alias_label":"previousId","alias_id":"anon-victim"}}`); r.status != http.StatusAccepted {
				t.Fatalf("POST /users/profile: %d %s; want 202", r.status, r.body)
			}

			// With the appKey alone.
			byKey := []string{jsonType, "Authorization: Basic " + base64Std(tc.app+":")}
			for _, m := range []struct {
				path, body      string
				profileMessages []int // indexes of identify and alias
			}{
				{"/v1/identify", `{"userId":"victim","messageId":"k-identify","traits":{"email":"mallory@evil.example","firstName":"Mallory"}}`, []int{0}},
				{"/v1/alias", `{"userId":"mallory","previousId":"anon-squat","messageId":"k-alias"}`, []int{0}},
				{"/v1/group", `{"userId":"victim","groupId":"g1","messageId":"k-group","traits":{"name":"Evil Corp"}}`, nil},
				{"/v1/batch", `{"batch":[
					{"type":"track","userId":"victim","event":"Viewed","messageId":"k-b-track"},
					{"type":"identify","userId":"victim","messageId":"k-b-identify","traits":{"lastName":"Batch"}},
					{"type":"alias","userId":"mallory2","previousId":"anon-squat2","messageId":"k-b-alias"},
					{"type":"group","userId":"victim","groupId":"g2","messageId":"k-b-group","traits":{"plan":"evil"}}]}`, []int{1, 2}},
			} {
				r := segmentPost(t, addr, m.path, []byte(m.body), byKey...)
				var a segmentAnswer
				if r.status != http.StatusOK || json.Unmarshal(r.body, &a) != nil || !a.Success || a.Rejected != 0 || a.Accepted != len(strings.Split(m.body, `"messageId"`))-1 {
					t.Fatalf("%s with the appKey: %d %s; want 200, every message accepted", m.path, r.status, r.body)
				}
				want := m.profileMessages
				if tc.public {
					want = nil
				}
				if a.ProfilesUnchanged != len(want) || len(a.Warnings) != len(want) {
					t.Errorf("%s with the appKey: %s; want profilesUnchanged %d and a warning for each of messages %v", m.path, r.body, len(want), want)
					continue
				}
				for i, w := range a.Warnings {
					if w.Index == nil || *w.Index != want[i] || w.Field != "writeKey" || w.MessageID == "" || !strings.Contains(w.Message, "public_profile_writes") {
						t.Errorf("%s: warning %+v; want index %d, field writeKey, its messageId, and how to change profiles", m.path, w, want[i])
					}
				}
			}

			_, p := profile("userId=victim")
			aliasStatus, squatter := profile("alias_label=previousId&alias_id=anon-squat")
			alias2Status, _ := profile("alias_label=previousId&alias_id=anon-squat2")
			if tc.public {
				if p["first_name"] != "Mallory" || p["email_id"] != "mallory@evil.example" || p["last_name"] != "Batch" {
					t.Errorf("victim's profile %v; want the identify's traits applied (public_profile_writes)", p)
				}
				if aliasStatus != http.StatusOK || squatter["userId"] != "mallory" || alias2Status != http.StatusOK {
					t.Errorf("aliases anon-squat, anon-squat2: %d %v, %d; want both attached (public_profile_writes)", aliasStatus, squatter, alias2Status)
				}
			} else {
				if p["first_name"] != "Val" || p["email_id"] != "val@example.com" || p["last_name"] != nil {
					t.Errorf("victim's profile %v; want it unchanged by identify with the appKey alone", p)
				}
				if aliasStatus != http.StatusNotFound || alias2Status != http.StatusNotFound {
					t.Errorf("aliases anon-squat, anon-squat2: %d %v, %d; want 404: an alias with the appKey alone attaches nothing", aliasStatus, squatter, alias2Status)
				}
				if st, _ := profile("userId=mallory"); st != http.StatusNotFound {
					t.Errorf("profile of mallory: %d; want 404: alias with the appKey alone creates no profile", st)
				}
				// The real owner can still claim the alias.
				if r := postProfile(`{"customer_id":"victim","user_alias":{"alias_label":"previousId","alias_id":"anon-squat"}}`); r.status != http.StatusAccepted {
					t.Errorf("the owner attaching anon-squat: %d %s; want 202, the alias was not squatted", r.status, r.body)
				}
			}
			if attrs, _ := p["attributes"].(map[string]any); attrs["name"] != nil || attrs["plan"] != nil {
				t.Errorf("victim's attributes %v; want no group trait: group changes no profile", attrs)
			}

			// Nothing sent is dropped: every message is an event.
			got := map[string]bool{}
			for _, id := range messageIDs(t, exportFrom(t, addr, "/v1/export/events", tc.app, "", byToken).lines) {
				got[id] = true
			}
			for _, id := range []string{"k-identify", "k-alias", "k-group", "k-b-track", "k-b-identify", "k-b-alias", "k-b-group"} {
				if !got[id] {
					t.Errorf("%s is not exported; want every message stored as an event (exported %v)", id, got)
				}
			}
			if rej := exportFrom(t, addr, "/v1/export/rejected", tc.app, "", byToken).lines; len(rej) != 0 {
				t.Errorf("quarantine %v; want empty", rej)
			}

			// A token as write key changes profiles whatever the switch.
			byTok := []string{jsonType, "Authorization: Basic " + base64Std(tc.secret+":")}
			for _, m := range []struct{ path, body string }{
				{"/v1/identify", `{"userId":"victim","messageId":"t-identify","traits":{"firstName":"Tok"}}`},
				{"/v1/alias", `{"userId":"victim","previousId":"anon-tok","messageId":"t-alias"}`},
				{"/v1/batch", `{"batch":[{"type":"identify","userId":"victim","messageId":"t-b-identify","traits":{"phone":"+4712345678"}},
					{"type":"alias","userId":"victim","previousId":"anon-tok2","messageId":"t-b-alias"}]}`},
			} {
				r := segmentPost(t, addr, m.path, []byte(m.body), byTok...)
				var a segmentAnswer
				if r.status != http.StatusOK || json.Unmarshal(r.body, &a) != nil || a.ProfilesUnchanged != 0 || len(a.Warnings) != 0 || a.Rejected != 0 {
					t.Errorf("%s with a token: %d %s; want 200 without warnings", m.path, r.status, r.body)
				}
			}
			if _, p := profile("userId=victim"); p["first_name"] != "Tok" || p["phone"] != "+4712345678" {
				t.Errorf("victim's profile %v; want the token's identify applied", p)
			}
			for _, alias := range []string{"anon-tok", "anon-tok2"} {
				if st, p := profile("alias_label=previousId&alias_id=" + url.QueryEscape(alias)); st != http.StatusOK || p["userId"] != "victim" {
					t.Errorf("alias %s: %d %v; want victim's profile", alias, st, p)
				}
			}
		})
	}
	if !t.Failed() {
		t.Log("PUBLICPROFILE: endpoints=identify,alias,group,batch public_key_profile_changes=0 public_key_events_stored=7 public_profile_writes_applied=yes token_writes_applied=yes")
	}
}
