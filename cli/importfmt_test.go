package cli

import (
	"strings"
	"testing"

	"github.com/goccy/go-json"
)

func TestDetectFormat(t *testing.T) {
	tests := []struct{ name, line, want string }{
		{"trove", `{"type":"event","event":"a","userId":"u","eventTime":"2026-01-01T00:00:00Z","appKey":"k"}`, "trove"},
		{"segment", `{"type":"track","event":"a","userId":"u","messageId":"m"}`, "segment"},
		{"mixpanel", `{"event":"a","properties":{"distinct_id":"u","time":1}}`, "mixpanel"},
		{"amplitude", `{"event_type":"a","user_id":"u","event_time":"2026-01-01 00:00:00.000000"}`, "amplitude"},
		{"unknown", `{"x":1}`, ""},
		{"not JSON", `nope`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := detectFormat([]byte(tc.line))
			if got != tc.want || (err != nil) != (tc.want == "") {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestConvert(t *testing.T) {
	tests := []struct {
		name, format, line string
		want               map[string]any // members the result must have
		wantErr            string
	}{
		{name: "trove with an id passes as is", format: "trove", line: `{"messageId":"m","event":"a"}`, want: map[string]any{"messageId": "m"}},
		{name: "trove without an id gets the line's hash", format: "trove", line: `{"event":"a"}`, want: map[string]any{"messageId": lineID([]byte(`{"event":"a"}`))}},
		{name: "segment's sentAt is kept aside", format: "segment", line: `{"type":"track","messageId":"m","sentAt":"2020-01-01T00:00:00Z"}`,
			want: map[string]any{"messageId": "m", "archivedSentAt": "2020-01-01T00:00:00Z", "sentAt": nil}},
		{name: "mixpanel without $insert_id", format: "mixpanel", line: `{"event":"a","properties":{"distinct_id":"u"}}`},
		{name: "amplitude event_time", format: "amplitude", line: `{"event_type":"a","event_time":"2026-09-21 14:13:20.123000","uuid":"u-1"}`,
			want: map[string]any{"time": float64(1790000000123), "insert_id": "u-1"}},
		{name: "amplitude $insert_id first", format: "amplitude", line: `{"event_type":"a","$insert_id":"i","uuid":"u"}`, want: map[string]any{"insert_id": "i"}},
		{name: "amplitude bad time", format: "amplitude", line: `{"event_type":"a","event_time":"yesterday"}`, wantErr: "event_time"},
		{name: "not an object", format: "segment", line: `[1]`, wantErr: "not a JSON object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := formats[tc.format].convert([]byte(tc.line))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v; want one naming %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal(out, &m); err != nil {
				t.Fatalf("%s: %v", out, err)
			}
			for k, v := range tc.want {
				if m[k] != v {
					t.Errorf("%s: %s = %v; want %v", out, k, m[k], v)
				}
			}
			if tc.format == "mixpanel" {
				props, _ := m["properties"].(map[string]any)
				if props["$insert_id"] != lineID([]byte(tc.line)) {
					t.Errorf("%s: want $insert_id from the line's hash", out)
				}
			}
		})
	}
}

// FuzzConvert: whatever a line holds, each format's conversion returns
// valid JSON or an error, never panics, and is deterministic.
func FuzzConvert(f *testing.F) {
	for _, s := range []string{
		`{"type":"event","event":"a","userId":"u","eventTime":"2026-01-01T00:00:00Z","appKey":"k"}`,
		`{"type":"track","sentAt":"x","messageId":""}`,
		`{"event":"a","properties":null}`, `{"event":"a","properties":{"$insert_id":""}}`,
		`{"event_type":"a","event_time":"2026-09-21 14:13:20","user_id":null}`,
		`{"$distinct_id":"u","$properties":{"a":1}}`, `{"userId":"u","attributes":{"a":1},"created_at":"x"}`,
		`{`, `[]`, ``, `{"a":1,"a":2}`, "{\"event_type\":\"a\",\"event_time\":\"2026-09-21 14:13:20\",\"uuid\":\"\\u0001\u00e9\"}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		for _, table := range []map[string]*importFormat{formats, profileFormats} {
			for name, fm := range table {
				out, err := fm.convert([]byte(line))
				if err != nil {
					continue
				}
				if name == "trove" && table["trove"].path == "/v1/events" && !json.Valid([]byte(line)) {
					continue // passed through as is: the server names what is wrong
				}
				if !json.Valid(out) {
					t.Fatalf("%s.convert(%q) = %q: not JSON", name, line, out)
				}
				again, _ := fm.convert([]byte(line))
				if string(again) != string(out) {
					t.Fatalf("%s.convert(%q) is not deterministic", name, line)
				}
			}
		}
	})
}
