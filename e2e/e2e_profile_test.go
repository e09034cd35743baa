package e2e

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/goccy/go-json"
)

// seedProfiles is the Pyze User Profiles example corrected into valid JSON,
// as SPEC section 4 and the README show it.
const seedProfiles = `{"appKey":"yz1Jn-0pSnekg58etEQO4A",
 "user_profiles":[
  {"customer_id":"user123","user_alias":{"alias_label":"facebook","alias_id":"fb123409"},
   "first_name":"John","last_name":"Doe","date_of_first_use":"2016-04-12T17:27:20+00:00",
   "date_of_birth":"1994-07-06","gender":"F","custom-ltv":35,"custom-purchase":{"inc":30},
   "custom-subscription":"premium","custom-tags":["whale","high-spender"]},
  {"pyze_id":"ca1ab028-185d-4833-a3af-5b5d46b62771","date_of_last_use":"2018-06-20T08:17:00+00:00",
   "email_id":"jane.doe@gmail.com","custom-tags":{"remove":["whale"]}}]}`

func postProfiles(t *testing.T, addr, body string, header ...string) response {
	t.Helper()
	h := append([]string{jsonType, "Authorization: Bearer " + backendSecret}, header...)
	return request(t, "POST", "http://"+addr+"/users/profile", strings.NewReader(body), h...)
}

func getProfile(t *testing.T, addr, query string) (int, map[string]any) {
	t.Helper()
	r := request(t, "GET", "http://"+addr+"/v1/users/profile?appKey="+demoApp+"&"+query, nil, "Authorization: Bearer "+backendSecret)
	var p map[string]any
	if r.status == http.StatusOK {
		if err := json.Unmarshal(r.body, &p); err != nil {
			t.Fatalf("profile is not JSON: %v: %s", err, r.body)
		}
	}
	return r.status, p
}

func TestE2EProfilesSeedExample(t *testing.T) {
	t.Parallel()
	srv := startServer(t, testConfig)
	addr, dir, stop := srv.addr, srv.dataDir, srv.stop
	r := postProfiles(t, addr, seedProfiles)
	if r.status != http.StatusAccepted {
		t.Fatalf("POST /users/profile: %d %s; want 202", r.status, r.body)
	}
	var ans struct {
		Accepted int `json:"accepted"`
		Profiles []struct {
			PyzeID  string `json:"pyze_id"`
			UserID  string `json:"userId"`
			Created bool   `json:"created"`
		} `json:"profiles"`
	}
	if err := json.Unmarshal(r.body, &ans); err != nil || ans.Accepted != 2 || len(ans.Profiles) != 2 {
		t.Fatalf("answer %s; want 2 profiles accepted", r.body)
	}
	if p := ans.Profiles[0]; p.UserID != "user123" || !p.Created || len(p.PyzeID) != 36 {
		t.Errorf("first profile %+v; want user123 created with a pyze_id", p)
	}
	if p := ans.Profiles[1]; p.PyzeID != "ca1ab028-185d-4833-a3af-5b5d46b62771" || !p.Created {
		t.Errorf("second profile %+v; want created under the given pyze_id", p)
	}

	// The same profile by each identity, and after a restart.
	check := func() {
		t.Helper()
		var first map[string]any
		for _, q := range []string{"userId=user123", "pyze_id=" + ans.Profiles[0].PyzeID, "alias_label=facebook&alias_id=fb123409"} {
			status, p := getProfile(t, addr, q)
			if status != http.StatusOK {
				t.Fatalf("GET %s: %d; want 200", q, status)
			}
			if first == nil {
				first = p
			} else if !jsonEqual(first, p) {
				t.Errorf("GET %s: %v; want the same profile as %v", q, p, first)
			}
		}
		attrs, _ := first["attributes"].(map[string]any)
		types, _ := first["attribute_types"].(map[string]any)
		if attrs["custom-purchase"] != 30.0 || types["custom-purchase"] != "integer" || types["custom-tags"] != "array" || first["gender"] != "F" {
			t.Errorf("profile %v; want custom-purchase 30 (integer), tags an array, gender F", first)
		}
		if first["created_at"] == nil || first["updated_at"] == nil {
			t.Errorf("profile %v; want created_at and updated_at", first)
		}
		if status, _ := getProfile(t, addr, "userId=nobody"); status != http.StatusNotFound {
			t.Errorf("GET unknown user: %d; want 404", status)
		}
	}
	check()
	stop()
	srv = startServer(t, testConfig, inDir(dir))
	addr, stop = srv.addr, srv.stop
	defer stop()
	check()
}

func TestE2EProfilesConcurrentIncrements(t *testing.T) {
	t.Parallel()
	srv := startServer(t, testConfig)
	addr, stop := srv.addr, srv.stop
	defer stop()
	const clients, each = 2, 1000
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for range each {
				r := postProfiles(t, addr, `{"appKey":"`+demoApp+`","user_profiles":[{"userId":"counter","custom-n":{"inc":1}}]}`)
				if r.status != http.StatusAccepted {
					t.Errorf("inc: %d %s", r.status, r.body)
					return
				}
			}
		})
	}
	wg.Wait()
	_, p := getProfile(t, addr, "userId=counter")
	if attrs, _ := p["attributes"].(map[string]any); attrs["custom-n"] != float64(clients*each) {
		t.Errorf("custom-n = %v; want %d", attrs["custom-n"], clients*each)
	}
}

func TestE2EProfilesErrors(t *testing.T) {
	t.Parallel()
	srv := startServer(t, testConfig)
	addr, stop := srv.addr, srv.stop
	defer stop()
	tests := []struct {
		name, body string
		header     []string
		status     int
		field      string
	}{
		{"seed's malformed example", `{"user_profiles": [ "customer_id": "user123" ], [ "custom-tags": {"remove" :['whale']} ] }`, nil, 400, ""},
		{"no identity", `{"appKey":"` + demoApp + `","user_profiles":[{"first_name":"x"}]}`, nil, 400, "userId"},
		{"inc by a string", `{"appKey":"` + demoApp + `","user_profiles":[{"userId":"a","custom-n":{"inc":"1"}}]}`, nil, 400, "custom-n"},
		{"unknown operation", `{"appKey":"` + demoApp + `","user_profiles":[{"userId":"a","custom-n":{"mul":2}}]}`, nil, 400, "custom-n"},
		{"bad gender", `{"appKey":"` + demoApp + `","user_profiles":[{"userId":"a","gender":"X"}]}`, nil, 400, "gender"},
		{"another app's key", `{"appKey":"` + otherApp + `","user_profiles":[{"userId":"a"}]}`, nil, 403, ""},
		{"app from X-App-Key", `{"user_profiles":[{"userId":"from-header"}]}`, []string{"X-App-Key: " + demoApp}, 202, ""},
		{"app from the token's only app", `{"user_profiles":[{"userId":"from-token"}]}`, nil, 202, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := postProfiles(t, addr, tc.body, tc.header...)
			if r.status != tc.status {
				t.Fatalf("status %d (%s); want %d", r.status, r.body, tc.status)
			}
			if tc.status == 400 {
				var e struct {
					Message string `json:"message"`
					Field   string `json:"field"`
				}
				json.Unmarshal(r.body, &e)
				if e.Field != tc.field || e.Message == "" {
					t.Errorf("error %s; want field %q and a message", r.body, tc.field)
				}
			}
		})
	}
	// A conflict applies nothing of the request.
	if r := postProfiles(t, addr, `{"appKey":"`+demoApp+`","user_profiles":[{"userId":"owner","user_alias":{"alias_label":"l","alias_id":"1"}}]}`); r.status != 202 {
		t.Fatalf("owner: %d %s", r.status, r.body)
	}
	r := postProfiles(t, addr, `{"appKey":"`+demoApp+`","user_profiles":[{"userId":"fresh"},{"userId":"thief","user_alias":{"alias_label":"l","alias_id":"1"}}]}`)
	if r.status != http.StatusConflict {
		t.Fatalf("alias of another profile: %d %s; want 409", r.status, r.body)
	}
	if status, _ := getProfile(t, addr, "userId=fresh"); status != http.StatusNotFound {
		t.Errorf("the first profile of a refused request was stored (GET %d)", status)
	}
	// Idempotency-Key: the retry is answered the same and applied once.
	body := `{"appKey":"` + demoApp + `","user_profiles":[{"userId":"retry","custom-n":{"inc":1}}]}`
	a := postProfiles(t, addr, body, "Idempotency-Key: k1")
	b := postProfiles(t, addr, body, "Idempotency-Key: k1")
	if a.status != 202 || b.status != 202 || string(a.body) != string(b.body) {
		t.Errorf("retry answers %d %s and %d %s; want the same 202", a.status, a.body, b.status, b.body)
	}
	if _, p := getProfile(t, addr, "userId=retry"); p["attributes"].(map[string]any)["custom-n"] != 1.0 {
		t.Errorf("after a retried inc: %v; want custom-n 1", p["attributes"])
	}
}

func TestE2EProfilesAliasThenUserID(t *testing.T) {
	t.Parallel()
	srv := startServer(t, testConfig)
	addr, stop := srv.addr, srv.stop
	defer stop()
	first := postProfiles(t, addr, `{"appKey":"`+demoApp+`","user_profiles":[{"user_alias":{"alias_label":"device","alias_id":"d-1"},"custom-visits":{"inc":1}}]}`)
	if first.status != http.StatusAccepted {
		t.Fatalf("anonymous profile: %d %s", first.status, first.body)
	}
	r := postProfiles(t, addr, `{"appKey":"`+demoApp+`","user_profiles":[{"userId":"later-known","user_alias":{"alias_label":"device","alias_id":"d-1"},"custom-visits":{"inc":1}}]}`)
	if r.status != http.StatusAccepted || !strings.Contains(string(r.body), `"created":false`) {
		t.Fatalf("identifying the anonymous profile: %d %s; want 202 with created false", r.status, r.body)
	}
	_, byUser := getProfile(t, addr, "userId=later-known")
	_, byAlias := getProfile(t, addr, "alias_label=device&alias_id=d-1")
	if !jsonEqual(byUser, byAlias) || byUser["attributes"].(map[string]any)["custom-visits"] != 2.0 {
		t.Errorf("by userId %v, by alias %v; want one profile with custom-visits 2", byUser, byAlias)
	}
}
