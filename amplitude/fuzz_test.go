package amplitude

import (
	"testing"

	"github.com/goccy/go-json"

	"trove/internal/compattest"
)

// FuzzServe feeds arbitrary bodies to /2/httpapi and /identify: no panic,
// and either an error the client caused or a well-formed answer.
func FuzzServe(f *testing.F) {
	f.Add("/identify", `api_key=`+compattest.App+`&identification={"user_id":"u","user_properties":{"$set":{"a":1}}}`)
	compattest.Fuzz(f, NewHandler(compattest.NewCore(f)).Serve, []string{"/2/httpapi"}, []string{
		`{"api_key":"` + compattest.App + `","events":[{"event_type":"a","user_id":"u","insert_id":"x","time":1790000000000,"event_properties":{"a":1}}]}`,
		`{"api_key":"` + compattest.Token + `","events":[{"event_type":"$identify","device_id":"d","user_properties":{"$set":{"email":"a@b.co"},"$add":{"n":1},"$append":{"t":"x"},"$unset":{"p":"-"},"$setOnce":{"q":1},"plain":2}}]}`,
		`{"api_key":"alias-key","events":[{"user_id":"u"},3,{"event_type":"a","user_id":"u","time":"x"},{"event_type":"a","user_id":"u","user_properties":[]}]}`,
		`{"api_key":"x","events":{}}`, `[]`, ``,
	}, func(path, body string) []compattest.Request {
		p := "/2/httpapi"
		if path == "/identify" {
			p = path
		}
		return []compattest.Request{{URI: p, Body: []byte(body)}}
	})
}

// TestServe: statuses and counts of Amplitude's answers.
func TestServe(t *testing.T) {
	h := NewHandler(compattest.NewCore(t))
	tests := []struct {
		name, body                string
		status, accepted, invalid int
		wantErr                   bool
	}{
		{name: "two events", body: `{"api_key":"` + compattest.App + `","events":[{"event_type":"a","user_id":"u","insert_id":"i1"},{"event_type":"b","device_id":"d"}]}`, status: 200, accepted: 2},
		{name: "a resend", body: `{"api_key":"` + compattest.App + `","events":[{"event_type":"a","user_id":"u","insert_id":"i1"}]}`, status: 200},
		{name: "one invalid", body: `{"api_key":"alias-key","events":[{"event_type":"a","user_id":"u"},{"event_type":"b"}]}`, status: 400, accepted: 1, invalid: 1},
		{name: "no events", body: `{"api_key":"` + compattest.App + `"}`, wantErr: true},
		{name: "an unknown key", body: `{"api_key":"nope","events":[]}`, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, err := compattest.Serve(h.Serve, "POST", "/2/httpapi", "application/json", []byte(tc.body))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v; want error %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			var got struct {
				Code, Accepted          int
				EventsWithInvalidFields map[string][]int `json:"events_with_invalid_fields"`
			}
			json.Unmarshal(ctx.Response.Body(), &got)
			n := 0
			for _, v := range got.EventsWithInvalidFields {
				n += len(v)
			}
			if ctx.Response.StatusCode() != tc.status || got.Code != tc.status || got.Accepted != tc.accepted || n != tc.invalid {
				t.Errorf("got %d %s; want %d, %d accepted, %d invalid", ctx.Response.StatusCode(), ctx.Response.Body(), tc.status, tc.accepted, tc.invalid)
			}
		})
	}
}
