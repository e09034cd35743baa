package schema

import (
	"errors"
	"strings"
	"testing"
	"time"

	"trove/storage"
)

const checkout = `{"type":"object","required":["attributes"],"properties":{"attributes":{"type":"object",
 "required":["revenue","currency"],"properties":{"revenue":{"type":"number"},"currency":{"type":"string","pattern":"^[A-Z]{3}$"}}}}}`

func openRegistry(t *testing.T, pol Policy) *Registry {
	t.Helper()
	db, err := storage.Open("", storage.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	r, err := Open(db, func(string) Policy { return pol })
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestCheck(t *testing.T) {
	r := openRegistry(t, Policy{Mode: Reject, Unknown: Warn})
	if _, err := r.Put("app", "Checkout Completed", []byte(checkout)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		event     string
		doc       string
		action    Mode
		field     string
		inMessage string
	}{
		{"conforms", "Checkout Completed", `{"attributes":{"revenue":12.5,"currency":"EUR"}}`, Off, "", ""},
		{"wrong type", "Checkout Completed", `{"attributes":{"revenue":"12","currency":"EUR"}}`, Reject, "/attributes/revenue", "expected number, got string"},
		{"first in the text", "Checkout Completed", `{"attributes":{"revenue":"12","currency":"eur"}}`, Reject, "/attributes/revenue", "expected number"},
		{"first in the text, other order", "Checkout Completed", `{"attributes":{"currency":"eur","revenue":"12"}}`, Reject, "/attributes/currency", "does not match pattern"},
		{"missing", "Checkout Completed", `{"attributes":{"revenue":1}}`, Reject, "/attributes/currency", "is required"},
		{"missing object", "Checkout Completed", `{"event":"Checkout Completed"}`, Reject, "/attributes", "is required"},
		{"version in the message", "Checkout Completed", `{"attributes":[]}`, Reject, "/attributes", `schema "Checkout Completed" v1: /attributes: expected object, got array`},
		{"unknown event", "Signed Up", `{}`, Warn, "/event", `no schema for event "Signed Up" (schema_unknown = warn)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := r.Check("app", r.Policy("app"), []byte(tc.event), []byte(tc.doc), false)
			if v.Action != tc.action || v.Field != tc.field || !strings.Contains(v.Message, tc.inMessage) {
				t.Errorf("got %+v; want action %d, field %q, a message with %q", v, tc.action, tc.field, tc.inMessage)
			}
		})
	}
}

func TestPutVersionsAndReload(t *testing.T) {
	db, err := storage.Open("", storage.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	pol := func(string) Policy { return Policy{Mode: Reject} }
	r, err := Open(db, pol)
	if err != nil {
		t.Fatal(err)
	}
	r.now = func() time.Time { return time.UnixMilli(1e12) }
	for want := uint64(1); want <= 2; want++ {
		c, err := r.Put("app", "e", []byte(`{"required":["x"]}`))
		if err != nil || c.Version != want {
			t.Fatalf("put %d: got %+v, %v; want version %d", want, c, err, want)
		}
	}
	if _, err := r.Put("app", "e", []byte(`{"type":12}`)); !errors.Is(err, ErrInvalidSchema) || !strings.Contains(err.Error(), "/type") {
		t.Fatalf("a schema that does not compile: got %v; want ErrInvalidSchema naming /type", err)
	}
	r2, err := Open(db, pol)
	if err != nil {
		t.Fatal(err)
	}
	if c := r2.Lookup("app", []byte("e")); c == nil || c.Version != 2 {
		t.Fatalf("after reopening: got %+v; want version 2", c)
	}
	if v := r2.Check("app", pol("app"), []byte("e"), []byte(`{}`), false); v.Action != Reject || v.Field != "/x" {
		t.Fatalf("the reloaded contract: got %+v; want a rejection of /x", v)
	}
	if _, err := r2.Delete("app", "e"); err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Delete("app", "e"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting twice: got %v; want ErrNotFound", err)
	}
	if v := r2.Check("app", pol("app"), []byte("e"), []byte(`{}`), false); v.Action != Off {
		t.Fatalf("after delete: got %+v; want no verdict (schema_unknown allow)", v)
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"not JSON", `{"type":`, "not valid JSON"},
		{"not an object", `[1]`, "must be a JSON object or a boolean"},
		{"bad keyword value", `{"minimum":"3"}`, "at /minimum"},
		{"remote ref", `{"$ref":"https://example.com/s.json"}`, "external $ref"},
		{"bad pattern", `{"pattern":"("}`, "pattern"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile([]byte(tc.src))
			if !errors.Is(err, ErrInvalidSchema) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v; want ErrInvalidSchema with %q", err, tc.want)
			}
		})
	}
}

// FuzzCompile checks that no schema text panics the compiler, and that a
// schema that compiles validates any JSON event without panicking.
func FuzzCompile(f *testing.F) {
	f.Add([]byte(checkout), []byte(`{"attributes":{"revenue":"1"}}`))
	f.Add([]byte(`{"$defs":{"a":{"$ref":"#/$defs/a"}},"$ref":"#/$defs/a"}`), []byte(`[]`))
	f.Add([]byte(`true`), []byte(`{"a":[1,{"b":null}]}`))
	f.Fuzz(func(t *testing.T, src, doc []byte) {
		sch, err := Compile(src)
		if err != nil {
			return
		}
		if v := validate(sch, doc); v != nil && v.Message == "" {
			t.Errorf("a violation with no message: %+v", v)
		}
	})
}

// FuzzDocOrder checks that docOrder never panics on arbitrary text and
// that what it returns lies within the text.
func FuzzDocOrder(f *testing.F) {
	f.Add([]byte(`{"attributes":{"revenue":"12","currency":"eur"}}`), "attributes/revenue")
	f.Add([]byte(`[1,[2,{"a":3}]]`), "1/1/a")
	f.Add([]byte(`{"a":`), "a")
	f.Fuzz(func(t *testing.T, doc []byte, path string) {
		tokens := strings.Split(path, "/")
		off, depth := docOrder(doc, tokens)
		if off < 0 || off > int64(len(doc)) || depth < 0 || depth > len(tokens) {
			t.Errorf("docOrder(%q, %q) = %d, %d: outside the text or the path", doc, tokens, off, depth)
		}
	})
}

func TestDocOrder(t *testing.T) {
	doc := []byte(`{"a":1, "b":{"c":[true,{"d":null}]}}`)
	tests := []struct {
		path  []string
		want  string // the text at the offset
		depth int
	}{
		{nil, `{"a"`, 0},
		{[]string{"a"}, `1`, 1},
		{[]string{"b", "c", "1", "d"}, `null`, 4},
		{[]string{"b", "missing"}, `{"c"`, 1},
	}
	for _, tc := range tests {
		off, depth := docOrder(doc, tc.path)
		if got := strings.TrimLeft(string(doc[off:]), " ,:"); !strings.HasPrefix(got, tc.want) || depth != tc.depth {
			t.Errorf("docOrder(%v) = %d (%q), %d; want %q, %d", tc.path, off, got, depth, tc.want, tc.depth)
		}
	}
}
