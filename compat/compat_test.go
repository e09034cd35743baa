package compat

import (
	"testing"

	"github.com/goccy/go-json"

	"trove/ingest"
)

func TestFromData(t *testing.T) {
	tests := []struct {
		name, data, want string
		wantErr          bool
	}{
		{name: "JSON", data: `{"a":1}`, want: `{"a":1}`},
		{name: "base64", data: "eyJhIjoxfQ==", want: `{"a":1}`},
		{name: "base64 unpadded", data: "eyJhIjoxfQ", want: `{"a":1}`},
		{name: "base64 whose + became a space", data: "W3siYSI6Ij8/PyJ9XQ==", want: `[{"a":"???"}]`},
		{name: "empty", data: "", wantErr: true},
		{name: "neither", data: "!!", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := fromData([]byte(tc.data))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v; want error %v", err, tc.wantErr)
			}
			if err == nil && string(p.Bytes()) != tc.want {
				t.Errorf("got %s; want %s", p.Bytes(), tc.want)
			}
		})
	}
}

func TestProfile(t *testing.T) {
	var p Profile
	p.Rename = func(n string) string {
		if n == "$email" {
			return "email"
		}
		return n
	}
	p.SetAll([]byte(`{"$email":"a@b.co","plan":"pro","address":{"city":"Oslo"},"userId":"x"}`))
	p.Op("inc", "n", []byte("2"))
	p.Op("add", "tags", []byte(`"a"`))
	p.Unset("plan") // replaces the earlier set
	got := string(p.Object([]byte(`"u"`), "l", []byte(`"v"`)))
	want := `{"userId":"u","user_alias":{"alias_label":"l","alias_id":"v"},"email_id":"a@b.co","plan":null,"city":"Oslo","traits.userId":"x","n":{"inc":2},"tags":{"add":["a"]}}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestEpochMillis(t *testing.T) {
	tests := []struct {
		name, raw string
		want      int64
		ok        bool
	}{
		{"milliseconds", "1790000000000", 1790000000000, true},
		{"seconds", "1790000000", 1790000000000, true},
		{"fractional seconds", "1790000000.5", 1790000000500, true},
		{"a string", `"1790000000"`, 1790000000000, true},
		{"negative", "-1", 0, false},
		{"text", `"x"`, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := EpochMillis([]byte(tc.raw))
			if got != tc.want || ok != tc.ok {
				t.Errorf("got %d %v; want %d %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// FuzzFromData: any data= value decodes to JSON text or fails, never panics.
func FuzzFromData(f *testing.F) {
	for _, s := range []string{`{"a":1}`, "eyJhIjoxfQ==", "W3siYSI6Ij8/PyJ9XQ", "", " ", "[", "===="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		p, err := fromData([]byte(data))
		if err == nil && (len(p.Bytes()) == 0 || (p.Bytes()[0] != '{' && p.Bytes()[0] != '[')) {
			t.Fatalf("fromData(%q) = %q; want JSON text or an error", data, p.Bytes())
		}
	})
}

// FuzzProfile: whatever object of properties is set, the profile object
// is valid JSON that names no key twice.
func FuzzProfile(f *testing.F) {
	for _, s := range []string{`{"a":1,"a":2}`, `{"email":"x","email":null,"b":{"c":{"d":[1,{"e":2}]}}}`, `{"\"q":1}`, `{}`} {
		f.Add(s, "n")
	}
	f.Fuzz(func(t *testing.T, obj, name string) {
		if ok, _ := ingest.ValidJSON([]byte(obj), 32); !ok {
			return
		}
		q := ingest.AppendQuoted(nil, name)
		name = string(q[1 : len(q)-1]) // raw key text, as the callers pass
		var p Profile
		p.SetAll([]byte(obj))
		p.Unset(name)
		p.Op("inc", name, []byte("1"))
		out := p.Object([]byte(`"u"`), "", nil)
		if !json.Valid(out) {
			t.Fatalf("Object() = %s: not JSON", out)
		}
		seen := map[string]bool{}
		ingest.ForEachMember(out, func(k, _ []byte) error {
			if seen[string(k)] {
				t.Errorf("Object() = %s names %q twice", out, k)
			}
			seen[string(k)] = true
			return nil
		})
	})
}

func TestTwice(t *testing.T) {
	for _, tt := range []struct {
		obj  string
		keys []string
		want string
	}{
		{`{"a":1,"b":2}`, []string{"a", "b"}, ""},
		{`{"a":1,"b":2,"a":3}`, []string{"a", "b"}, "a"},
		{`{"a":1,"b":2,"b":3,"a":4}`, []string{"a", "b"}, "b"},
		{`{"x":1,"x":2}`, []string{"a"}, ""}, // not read: kept
		{`{"o":{"a":1,"a":2}}`, []string{"a"}, ""},
		{`[1,2]`, []string{"a"}, ""},
		{``, []string{"a"}, ""},
	} {
		if got := Twice([]byte(tt.obj), tt.keys...); got != tt.want {
			t.Errorf("Twice(%s, %q) = %q; want %q", tt.obj, tt.keys, got, tt.want)
		}
	}
}
