package segment

import (
	"testing"

	"github.com/goccy/go-json"
)

func TestTranslate(t *testing.T) {
	d := defaults{sentAt: []byte(`"2026-01-02T03:04:06Z"`), context: []byte(`{"library":{"name":"x"},"app":{"v":1}}`)}
	for _, tc := range []struct {
		name string
		k    kind
		msg  string
		want string // the event, or the rejected field prefixed with "!"
	}{
		{"track", kindTrack, `{"event":"E","userId":"u","timestamp":"2026-01-02T03:04:05Z","properties":{"a":1},"context":{"app":{"v":2}},"x":true,"writeKey":"k"}`,
			`{"type":"event","event":"E","userId":"u","eventTime":"2026-01-02T03:04:05Z","appKey":"K","sentAt":"2026-01-02T03:04:06Z","context":{"app":{"v":2},"library":{"name":"x"}},"attributes":{"a":1},"segment":{"type":"track","x":true}}`},
		{"anonymous page without name", kindPage, `{"anonymousId":7,"originalTimestamp":"2026-01-02T03:04:05Z","category":"Docs"}`,
			`{"type":"event","event":"page","userId":"7","eventTime":"2026-01-02T03:04:05Z","appKey":"K","sentAt":"2026-01-02T03:04:06Z","context":{"library":{"name":"x"},"app":{"v":1}},"segment":{"type":"page","anonymousId":7,"category":"Docs"}}`},
		{"identify", kindIdentify, `{"userId":"u","traits":{"email":"e@x.io"},"properties":{"p":1}}`,
			`{"type":"event","event":"identify","userId":"u","eventTime":"2026-01-02T03:04:06Z","appKey":"K","sentAt":"2026-01-02T03:04:06Z","context":{"library":{"name":"x"},"app":{"v":1}},"attributes":{"email":"e@x.io"},"segment":{"type":"identify","properties":{"p":1}}}`},
		{"no user", kindTrack, `{"event":"E","userId":""}`, "!userId"},
		{"track without event", kindTrack, `{"userId":"u"}`, "!event"},
		{"alias without previousId", kindAlias, `{"userId":"u"}`, "!previousId"},
		{"userId twice", kindTrack, `{"event":"E","userId":"alice","userId":"bob"}`, "!userId"},
		{"traits twice", kindIdentify, `{"userId":"u","traits":{"email":"a@x.io"},"traits":{"email":"b@x.io"}}`, "!traits"},
		{"an unread key twice is kept", kindTrack, `{"event":"E","userId":"u","x":1,"x":2}`,
			`{"type":"event","event":"E","userId":"u","eventTime":"2026-01-02T03:04:06Z","appKey":"K","sentAt":"2026-01-02T03:04:06Z","context":{"library":{"name":"x"},"app":{"v":1}},"segment":{"type":"track","x":1,"x":2}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m message
			if err := decodeMessage([]byte(tc.msg), &m); err != nil {
				t.Fatal(err)
			}
			var tr translation
			got, rej := translate(nil, tc.k, &m, &d, "K", []byte(`"2026-01-02T03:04:07.000Z"`), &tr)
			if rej != nil {
				if "!"+rej.field != tc.want {
					t.Errorf("rejected %+v; want %s", rej, tc.want)
				}
				return
			}
			if !json.Valid(got) || string(got) != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestAppendIdentify(t *testing.T) {
	got := appendIdentify(nil, []byte(`"u"`), []byte(`{"firstName":"Jo","email":"nope","gender":"Female","birthday":"1990-05-06T00:00:00Z","address":{"city":"Oslo","zip":"1"},"tags":["a"],"mixed":[{"a":1}],"userId":"x","phone":null,"empty":{}}`))
	want := `{"userId":"u","first_name":"Jo","email":"nope","gender":"F","date_of_birth":"1990-05-06","city":"Oslo","address.zip":"1","tags":["a"],"mixed":"[{\"a\":1}]","traits.userId":"x","phone":null}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
