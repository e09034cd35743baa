package posthog

import (
	"testing"

	"github.com/goccy/go-json"

	"trove/internal/compattest"
)

// FuzzServe feeds arbitrary bodies to every PostHog path: no panic, and
// either an error the client caused or a well-formed answer.
func FuzzServe(f *testing.F) {
	compattest.Fuzz(f, NewHandler(compattest.NewCore(f)).Serve, []string{"/batch/"}, []string{
		`{"api_key":"` + compattest.App + `","batch":[{"event":"a","distinct_id":"u","uuid":"x","properties":{"$set":{"email":"a@b.co"},"$unset":["p"]}}]}`,
		`{"api_key":"alias-key","event":"$identify","distinct_id":7,"properties":{"$anon_distinct_id":"anon"},"$set":{"a":{"b":1}}}`,
		`[{"event":"$create_alias","properties":{"token":"` + compattest.Token + `","distinct_id":"u","alias":"v"}}]`,
		`{"api_key":"` + compattest.Token + `","batch":[{"event":"a"},3,null,{"event":"b","distinct_id":"u","properties":[1]}]}`,
		`{"api_key":1}`, `data=eyJldmVudCI6ImEifQ==`, ``, `[`,
	}, func(path, body string) []compattest.Request {
		return []compattest.Request{{URI: "/capture/?" + path, ContentType: "application/json", Body: []byte(body)}}
	})
}

// TestServe: the mapping of one batch, by what the answer counts.
func TestServe(t *testing.T) {
	h := NewHandler(compattest.NewCore(t))
	tests := []struct {
		name, body                    string
		accepted, rejected, unchanged int
		wantErr                       bool
	}{
		{name: "a batch", body: `{"api_key":"` + compattest.App + `","batch":[{"event":"a","distinct_id":"u","uuid":"u1"},{"event":"b","distinct_id":"u"}]}`, accepted: 2},
		{name: "no distinct_id", body: `{"api_key":"` + compattest.App + `","batch":[{"event":"a"}]}`, rejected: 1},
		{name: "a $set with the appKey alone", body: `{"api_key":"` + compattest.App + `","event":"e","distinct_id":"u","properties":{"$set":{"a":1}}}`, accepted: 1, unchanged: 1},
		{name: "a $set with a token", body: `{"api_key":"` + compattest.Token + `","event":"e","distinct_id":"u","properties":{"$set":{"a":1}}}`, accepted: 1},
		{name: "an unknown key", body: `{"api_key":"nope","event":"e","distinct_id":"u"}`, wantErr: true},
		{name: "not JSON", body: `{`, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, err := compattest.Serve(h.Serve, "POST", "/batch/", "application/json", []byte(tc.body))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v; want error %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			var got struct {
				Status, Accepted, Rejected, ProfilesUnchanged int
			}
			json.Unmarshal(ctx.Response.Body(), &got)
			if got.Status != 1 || got.Accepted != tc.accepted || got.Rejected != tc.rejected || got.ProfilesUnchanged != tc.unchanged {
				t.Errorf("got %s; want status 1, %d accepted, %d rejected, %d unchanged", ctx.Response.Body(), tc.accepted, tc.rejected, tc.unchanged)
			}
		})
	}
}
