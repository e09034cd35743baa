package profile

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"trove/apierr"
)

// Limits the tests decode with: those of DefaultConfig.
const (
	testMaxProfiles = 1000
	testMaxFields   = 50
)

// oneProfile wraps the JSON text of one profile object in a request body.
func oneProfile(p string) []byte {
	return []byte(`{"user_profiles":[` + p + `]}`)
}

// withAttrs returns a profile object of userId u1 with n custom attributes
// a0…, plus extra members (JSON text without braces, may be empty).
func withAttrs(n int, extra string) string {
	var sb strings.Builder
	sb.WriteString(`{"userId":"u1"`)
	for i := range n {
		fmt.Fprintf(&sb, `,"a%d":%d`, i, i)
	}
	if extra != "" {
		sb.WriteString("," + extra)
	}
	sb.WriteString("}")
	return sb.String()
}

// nProfiles returns a request body of n small profile objects.
func nProfiles(n int) []byte {
	var sb strings.Builder
	sb.WriteString(`{"user_profiles":[`)
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"userId":"u%d","custom-n":{"inc":1}}`, i)
	}
	sb.WriteString(`]}`)
	return []byte(sb.String())
}

var opNames = map[opKind]string{opSet: "set", opUnset: "unset", opInc: "inc", opAdd: "add", opRemove: "remove"}

// describeOps renders ops as "field kind[:type]" strings, in decode order.
func describeOps(ops []op) []string {
	out := make([]string, len(ops))
	for i, o := range ops {
		out[i] = o.field + " " + opNames[o.kind]
		if o.typ != "" {
			out[i] += ":" + o.typ
		}
	}
	return out
}

// checkInvalid fails unless err is a *apierr.Error of kind apierr.Invalid naming index
// and field, with a message containing msg.
func checkInvalid(t *testing.T, err error, index int, field, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error; want a 400 naming index %d, field %q, %q", index, field, msg)
	}
	var e *apierr.Error
	if !errors.As(err, &e) || !errors.Is(err, apierr.Invalid) {
		t.Fatalf("got %T %v; want a *apierr.Error of kind apierr.Invalid", err, err)
	}
	if errIndex(e) != index || e.Field != field || !strings.Contains(e.Message, msg) {
		t.Fatalf("got index %d, field %q, message %q; want index %d, field %q, a message containing %q",
			errIndex(e), e.Field, e.Message, index, field, msg)
	}
}

func TestDecodeProfile(t *testing.T) {
	tests := []struct {
		name    string
		profile string   // one profile object
		ops     []string // when valid: the decoded operations (describeOps), nil to skip
		field   string   // when invalid: the field named
		msg     string   // when invalid: a substring of the message; "" means valid
	}{
		// Identity.
		{name: "userId", profile: `{"userId":"u1"}`, ops: []string{}},
		{name: "customer_id alone", profile: `{"customer_id":"u1"}`, ops: []string{}},
		{name: "userId and customer_id equal", profile: `{"userId":"u1","customer_id":"u1"}`, ops: []string{}},
		{name: "userId and customer_id differ", profile: `{"userId":"u1","customer_id":"u2"}`, field: "customer_id", msg: "must be equal"},
		{name: "userId empty", profile: `{"userId":""}`, field: "userId", msg: "1 to 255 characters"},
		{name: "userId 255 characters", profile: `{"userId":"` + strings.Repeat("é", 255) + `"}`, ops: []string{}},
		{name: "userId 256 characters", profile: `{"userId":"` + strings.Repeat("u", 256) + `"}`, field: "userId", msg: "1 to 255 characters"},
		{name: "userId a number", profile: `{"userId":123}`, field: "userId", msg: "must be a string, got a number"},
		{name: "customer_id an object", profile: `{"customer_id":{"id":1}}`, field: "customer_id", msg: "must be a string, got an object"},
		{name: "userId null and nothing else", profile: `{"userId":null}`, field: "userId", msg: "needs an identity"},
		{name: "pyze_id valid", profile: `{"pyze_id":"ca1ab028-185d-4833-a3af-5b5d46b62771"}`, ops: []string{}},
		{name: "pyze_id upper case", profile: `{"pyze_id":"CA1AB028-185D-4833-A3AF-5B5D46B62771"}`, ops: []string{}},
		{name: "pyze_id not a UUID", profile: `{"pyze_id":"user123"}`, field: "pyze_id", msg: "must be a UUID"},
		{name: "pyze_id without dashes", profile: `{"pyze_id":"ca1ab028185d4833a3af5b5d46b62771"}`, field: "pyze_id", msg: "must be a UUID"},
		{name: "pyze_id one digit short", profile: `{"pyze_id":"ca1ab028-185d-4833-a3af-5b5d46b6277"}`, field: "pyze_id", msg: "must be a UUID"},
		{name: "pyze_id not hex", profile: `{"pyze_id":"ga1ab028-185d-4833-a3af-5b5d46b62771"}`, field: "pyze_id", msg: "must be a UUID"},
		{name: "pyze_id a number", profile: `{"pyze_id":1}`, field: "pyze_id", msg: "must be a string"},
		{name: "user_alias object", profile: `{"user_alias":{"alias_label":"facebook","alias_id":"fb123409"}}`, ops: []string{}},
		{name: "user_alias array", profile: `{"user_alias":[{"alias_label":"facebook","alias_id":"fb1"},{"alias_label":"google","alias_id":"g1"}]}`, ops: []string{}},
		{name: "user_alias missing alias_id", profile: `{"user_alias":{"alias_label":"facebook"}}`, field: "user_alias", msg: "needs alias_label and alias_id"},
		{name: "user_alias missing alias_label", profile: `{"user_alias":{"alias_id":"fb1"}}`, field: "user_alias", msg: "needs alias_label and alias_id"},
		{name: "user_alias second of array missing label", profile: `{"userId":"u1","user_alias":[{"alias_label":"a","alias_id":"1"},{"alias_id":"2"}]}`, field: "user_alias", msg: "needs alias_label and alias_id"},
		{name: "user_alias label too long", profile: `{"user_alias":{"alias_label":"` + strings.Repeat("l", 256) + `","alias_id":"1"}}`, field: "user_alias", msg: "1 to 255 characters"},
		{name: "user_alias a string", profile: `{"user_alias":"fb123409"}`, field: "user_alias", msg: "must be an object or an array of objects, got a string"},
		{name: "user_alias a number", profile: `{"user_alias":7}`, field: "user_alias", msg: "got a number"},
		{name: "user_alias array of strings", profile: `{"user_alias":["fb123409"]}`, field: "user_alias", msg: "or an array of them"},
		{name: "user_alias alias_id a number", profile: `{"user_alias":{"alias_label":"facebook","alias_id":123409}}`, field: "user_alias", msg: "or an array of them"},
		{name: "user_alias empty array alone", profile: `{"user_alias":[]}`, field: "userId", msg: "needs an identity"},
		{name: "no identity", profile: `{"first_name":"John"}`, field: "userId", msg: "needs an identity"},
		{name: "empty object", profile: `{}`, field: "userId", msg: "needs an identity"},
		{name: "profile a string", profile: `"u1"`, field: "", msg: "user_profiles[0] must be an object, got a string"},
		{name: "profile null", profile: `null`, field: "", msg: "must be an object, got null"},
		{name: "profile an array", profile: `[{"userId":"u1"}]`, field: "", msg: "must be an object, got an array"},

		// Built-in fields.
		{name: "built-ins valid", profile: `{"userId":"u1","first_name":"John","last_name":"Doe","email_id":"jane.doe@gmail.com","gender":"F",` +
			`"date_of_birth":"1994-07-06","date_of_first_use":"2016-04-12T17:27:20+00:00","date_of_last_use":"2018-06-20T08:17:00.123Z",` +
			`"phone":"+1 555 0100","city":"Paris","country":"FR","language":"fr","time_zone":"Europe/Paris"}`,
			ops: []string{"city set", "country set", "date_of_birth set", "date_of_first_use set", "date_of_last_use set", "email_id set",
				"first_name set", "gender set", "language set", "last_name set", "phone set", "time_zone set"}},
		{name: "email without @", profile: `{"userId":"u1","email_id":"jane.doe"}`, field: "email_id", msg: "must be an email address"},
		{name: "email with a display name", profile: `{"userId":"u1","email_id":"Jane <jane@example.com>"}`, field: "email_id", msg: "must be an email address"},
		{name: "email empty", profile: `{"userId":"u1","email_id":""}`, field: "email_id", msg: "must be an email address"},
		{name: "email a number", profile: `{"userId":"u1","email_id":1}`, field: "email_id", msg: "email_id must be a string, got a number"},
		{name: "gender M", profile: `{"userId":"u1","gender":"M"}`, ops: []string{"gender set"}},
		{name: "gender O", profile: `{"userId":"u1","gender":"O"}`, ops: []string{"gender set"}},
		{name: "gender U", profile: `{"userId":"u1","gender":"U"}`, ops: []string{"gender set"}},
		{name: "gender lower case", profile: `{"userId":"u1","gender":"f"}`, field: "gender", msg: `must be one of "M", "F", "O", "U"`},
		{name: "gender word", profile: `{"userId":"u1","gender":"female"}`, field: "gender", msg: `must be one of`},
		{name: "gender null unsets", profile: `{"userId":"u1","gender":null}`, ops: []string{"gender unset"}},
		{name: "date_of_birth with time", profile: `{"userId":"u1","date_of_birth":"1994-07-06T00:00:00Z"}`, field: "date_of_birth", msg: "YYYY-MM-DD"},
		{name: "date_of_birth unpadded", profile: `{"userId":"u1","date_of_birth":"1994-7-6"}`, field: "date_of_birth", msg: "YYYY-MM-DD"},
		{name: "date_of_birth impossible day", profile: `{"userId":"u1","date_of_birth":"1994-02-30"}`, field: "date_of_birth", msg: "YYYY-MM-DD"},
		{name: "date_of_birth a number", profile: `{"userId":"u1","date_of_birth":19940706}`, field: "date_of_birth", msg: "must be a string, got a number"},
		{name: "date_of_first_use Z with fraction", profile: `{"userId":"u1","date_of_first_use":"2016-04-12T17:27:20.5Z"}`, ops: []string{"date_of_first_use set"}},
		{name: "date_of_first_use without offset", profile: `{"userId":"u1","date_of_first_use":"2016-04-12T17:27:20"}`, field: "date_of_first_use", msg: "ISO-8601"},
		{name: "date_of_first_use a date", profile: `{"userId":"u1","date_of_first_use":"2016-04-12"}`, field: "date_of_first_use", msg: "ISO-8601"},
		{name: "date_of_last_use a number", profile: `{"userId":"u1","date_of_last_use":1466410620}`, field: "date_of_last_use", msg: "must be a string, got a number"},
		{name: "first_name a number", profile: `{"userId":"u1","first_name":7}`, field: "first_name", msg: "first_name must be a string, got a number"},
		{name: "phone an array", profile: `{"userId":"u1","phone":["1"]}`, field: "phone", msg: "must be a string, got an array"},
		{name: "city a boolean", profile: `{"userId":"u1","city":true}`, field: "city", msg: "must be a string, got a boolean"},
		{name: "first_name inc", profile: `{"userId":"u1","first_name":{"inc":1}}`, field: "first_name", msg: "must be a string, got an object"},

		// Custom attributes and their types.
		{name: "boolean true", profile: `{"userId":"u1","subscribed":true}`, ops: []string{"subscribed set:boolean"}},
		{name: "boolean false", profile: `{"userId":"u1","subscribed":false}`, ops: []string{"subscribed set:boolean"}},
		{name: "string", profile: `{"userId":"u1","subscription_type":"Silver"}`, ops: []string{"subscription_type set:string"}},
		{name: "empty string", profile: `{"userId":"u1","s":""}`, ops: []string{"s set:string"}},
		{name: "integer", profile: `{"userId":"u1","score":30}`, ops: []string{"score set:integer"}},
		{name: "negative integer", profile: `{"userId":"u1","score":-7}`, ops: []string{"score set:integer"}},
		{name: "integer beyond int64", profile: `{"userId":"u1","big":123456789012345678901234567890}`, ops: []string{"big set:integer"}},
		{name: "float", profile: `{"userId":"u1","ratio":2.5}`, ops: []string{"ratio set:float"}},
		{name: "float with exponent", profile: `{"userId":"u1","ratio":1e3}`, ops: []string{"ratio set:float"}},
		{name: "date RFC 3339 Z", profile: `{"userId":"u1","subscription_start":"2017-07-13T17:44:46Z"}`, ops: []string{"subscription_start set:date"}},
		{name: "date RFC 3339 offset and fraction", profile: `{"userId":"u1","d":"2017-07-13T17:44:46.123+02:00"}`, ops: []string{"d set:date"}},
		{name: "day alone is a string", profile: `{"userId":"u1","d":"2017-07-13"}`, ops: []string{"d set:string"}},
		{name: "time without offset is a string", profile: `{"userId":"u1","d":"2017-07-13T17:44:46"}`, ops: []string{"d set:string"}},
		{name: "array of strings", profile: `{"userId":"u1","categories":["electronics","computers"]}`, ops: []string{"categories set:array"}},
		{name: "array of mixed scalars", profile: `{"userId":"u1","a":[1,"x",true,2.5]}`, ops: []string{"a set:array"}},
		{name: "empty array", profile: `{"userId":"u1","a":[]}`, ops: []string{"a set:array"}},
		{name: "array of objects", profile: `{"userId":"u1","a":[{"x":1}]}`, field: "a", msg: "not of objects or arrays"},
		{name: "nested array", profile: `{"userId":"u1","a":[1,[2]]}`, field: "a", msg: "not of objects or arrays"},
		{name: "null inside array", profile: `{"userId":"u1","a":["x",null]}`, field: "a", msg: "without nulls"},
		{name: "attribute names sorted", profile: `{"userId":"u1","b":1,"a":"x","c":true}`, ops: []string{"a set:string", "b set:integer", "c set:boolean"}},
		{name: "empty attribute name", profile: `{"userId":"u1","":1}`, field: "", msg: "attribute names must be 1 to 255 characters"},
		{name: "attribute name 256 characters", profile: `{"userId":"u1","` + strings.Repeat("k", 256) + `":1}`, field: strings.Repeat("k", 256), msg: "attribute names must be 1 to 255"},

		// Operations.
		{name: "null unsets", profile: `{"userId":"u1","custom-ltv":null}`, ops: []string{"custom-ltv unset"}},
		{name: "inc integer", profile: `{"userId":"u1","n":{"inc":30}}`, ops: []string{"n inc"}},
		{name: "inc negative", profile: `{"userId":"u1","n":{"inc":-1}}`, ops: []string{"n inc"}},
		{name: "inc float", profile: `{"userId":"u1","n":{"inc":0.5}}`, ops: []string{"n inc"}},
		{name: "inc with spaces", profile: `{"userId":"u1","n":{ "inc" : 2 }}`, ops: []string{"n inc"}},
		{name: "inc by a string", profile: `{"userId":"u1","n":{"inc":"5"}}`, field: "n", msg: `"inc" needs a number, got a string`},
		{name: "inc by null", profile: `{"userId":"u1","n":{"inc":null}}`, field: "n", msg: `"inc" needs a number, got null`},
		{name: "inc by an array", profile: `{"userId":"u1","n":{"inc":[1]}}`, field: "n", msg: `"inc" needs a number, got an array`},
		{name: "add", profile: `{"userId":"u1","tags":{"add":["whale",1,true]}}`, ops: []string{"tags add"}},
		{name: "remove", profile: `{"userId":"u1","tags":{"remove":["whale"]}}`, ops: []string{"tags remove"}},
		{name: "add empty array", profile: `{"userId":"u1","tags":{"add":[]}}`, ops: []string{"tags add"}},
		{name: "add a string", profile: `{"userId":"u1","tags":{"add":"whale"}}`, field: "tags", msg: `"add" needs an array of strings, numbers or booleans, got a string`},
		{name: "add objects", profile: `{"userId":"u1","tags":{"add":[{"a":1}]}}`, field: "tags", msg: `"add" needs an array of strings, numbers or booleans, not of objects`},
		{name: "remove with null", profile: `{"userId":"u1","tags":{"remove":[null]}}`, field: "tags", msg: `"remove" needs an array without nulls`},
		{name: "unknown operation", profile: `{"userId":"u1","custom-x":{"foo":1}}`, field: "custom-x", msg: `unknown operation "foo"`},
		{name: "two operations", profile: `{"userId":"u1","custom-x":{"inc":1,"add":[1]}}`, field: "custom-x", msg: "an object must be one operation"},
		{name: "empty object value", profile: `{"userId":"u1","custom-x":{}}`, field: "custom-x", msg: "an object must be one operation"},
		{name: "nested object value", profile: `{"userId":"u1","custom-x":{"a":{"b":1}}}`, field: "custom-x", msg: `unknown operation "a"`},

		// Limits.
		{name: "50 fields", profile: withAttrs(50, ""), ops: nil},
		{name: "50 fields and every identity key", profile: withAttrs(50, `"customer_id":"u1","pyze_id":"ca1ab028-185d-4833-a3af-5b5d46b62771","user_alias":{"alias_label":"l","alias_id":"i"}`), ops: nil},
		{name: "51 fields", profile: withAttrs(51, ""), field: "", msg: "has 51 attribute fields, over the limit of 50"},
		{name: "value over 32 KiB", profile: `{"userId":"u1","big":"` + strings.Repeat("x", 32<<10) + `"}`, field: "big", msg: "over the limit"},
		{name: "2 MiB string", profile: `{"userId":"u1","first_name":"John","bio":"` + strings.Repeat("x", 2<<20) + `"}`, field: "bio", msg: "bio is 2097154 bytes, over the limit of 32768"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ups, err := decodeRequest(oneProfile(tt.profile), testMaxProfiles, testMaxFields)
			if tt.msg != "" {
				checkInvalid(t, err, 0, tt.field, tt.msg)
				return
			}
			if err != nil {
				t.Fatalf("got %v; want no error", err)
			}
			if len(ups) != 1 {
				t.Fatalf("got %d updates; want 1", len(ups))
			}
			if tt.ops == nil {
				return
			}
			if got := describeOps(ups[0].ops); !slices.Equal(got, tt.ops) {
				t.Fatalf("got ops %q; want %q", got, tt.ops)
			}
		})
	}
}

func TestDecodeIdentity(t *testing.T) {
	tests := []struct {
		name    string
		profile string
		userID  string
		pyzeID  string
		aliases []Alias
	}{
		{name: "customer_id is the userId", profile: `{"customer_id":"user123"}`, userID: "user123"},
		{name: "userId null beside customer_id", profile: `{"userId":null,"customer_id":"user123"}`, userID: "user123"},
		{name: "pyze_id lower-cased", profile: `{"pyze_id":"CA1AB028-185D-4833-A3AF-5B5D46B62771"}`, pyzeID: "ca1ab028-185d-4833-a3af-5b5d46b62771"},
		{name: "one alias", profile: `{"userId":"u","user_alias":{"alias_label":"facebook","alias_id":"fb1"}}`, userID: "u",
			aliases: []Alias{{"facebook", "fb1"}}},
		{name: "two aliases in order", profile: `{"user_alias":[{"alias_label":"g","alias_id":"2"},{"alias_label":"f","alias_id":"1"}]}`,
			aliases: []Alias{{"g", "2"}, {"f", "1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ups, err := decodeRequest(oneProfile(tt.profile), testMaxProfiles, testMaxFields)
			if err != nil {
				t.Fatal(err)
			}
			u := ups[0]
			if u.userID != tt.userID || u.pyzeID != tt.pyzeID || !slices.Equal(u.aliases, tt.aliases) {
				t.Fatalf("got userId %q, pyze_id %q, aliases %v; want %q, %q, %v", u.userID, u.pyzeID, u.aliases, tt.userID, tt.pyzeID, tt.aliases)
			}
		})
	}
}

func TestDecodeRequest(t *testing.T) {
	malformed, err := os.ReadFile("testdata/seed_malformed.json")
	if err != nil {
		t.Fatal(err)
	}
	corrected, err := os.ReadFile("testdata/seed_corrected.json")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		body     []byte
		profiles int    // when valid: how many
		appKey   string // when valid
		index    int    // when invalid
		field    string // when invalid
		msg      string // when invalid: a substring of the message; "" means valid
	}{
		{name: "seed example corrected", body: corrected, profiles: 2, appKey: "yz1Jn-0pSnekg58etEQO4A"},
		// The bad character is the ':' after "customer_id" (column 21,
		// counting the tab as one), where an array element must end.
		{name: "seed example as published", body: malformed, index: -1, msg: "the body is not valid JSON: invalid character ':' after array element (line 4, column 21)"},
		{name: "single quotes", body: []byte("{\"user_profiles\":[\n  {'userId':'u1'}]}"), index: -1, msg: "(line 2, column 4)"},
		{name: "column counts characters", body: []byte(`{"user_profiles":[{"userId":"é","x":01}]}`), index: -1, msg: "(line 1, column 38)"},
		{name: "truncated", body: []byte(`{"user_profiles":[{"userId":"u1"}`), index: -1, msg: "not valid JSON"},
		{name: "empty body", body: nil, index: -1, msg: "not valid JSON"},
		{name: "no appKey", body: []byte(`{"user_profiles":[{"userId":"u1"}]}`), profiles: 1},
		{name: "user_profiles missing", body: []byte(`{"appKey":"k"}`), index: -1, field: "user_profiles", msg: "user_profiles is required"},
		{name: "user_profiles null", body: []byte(`{"user_profiles":null}`), index: -1, field: "user_profiles", msg: "user_profiles is required"},
		{name: "user_profiles empty", body: []byte(`{"user_profiles":[]}`), index: -1, field: "user_profiles", msg: "user_profiles is empty"},
		{name: "user_profiles an object", body: []byte(`{"user_profiles":{"userId":"u1"}}`), index: -1, msg: "cannot unmarshal"},
		{name: "1000 profiles", body: nProfiles(1000), profiles: 1000},
		{name: "1001 profiles", body: nProfiles(1001), index: -1, field: "user_profiles", msg: "user_profiles has 1001 profiles, over the limit of 1000"},
		{name: "nested too deeply", body: []byte(`{"user_profiles":[{"userId":"u1","x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}]}`), index: -1, msg: "nested too deeply"},
		{name: "brackets inside strings do not nest", body: []byte(`{"user_profiles":[{"userId":"` + strings.Repeat("[", 100) + `"}]}`), profiles: 1},
		{name: "third of five refused", body: []byte(`{"user_profiles":[{"userId":"u1"},{"userId":"u2"},{"userId":"u3","gender":"X"},{"userId":"u4"},{"userId":"u5"}]}`),
			index: 2, field: "gender", msg: "must be one of"},
		{name: "first error wins", body: []byte(`{"user_profiles":[{"userId":"u1"},{"first_name":"x"},{"userId":"u3","gender":"X"}]}`),
			index: 1, field: "userId", msg: "needs an identity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			appKey, ups, err := decodeRequest(tt.body, testMaxProfiles, testMaxFields)
			if tt.msg != "" {
				checkInvalid(t, err, tt.index, tt.field, tt.msg)
				return
			}
			if err != nil {
				t.Fatalf("got %v; want no error", err)
			}
			if len(ups) != tt.profiles || appKey != tt.appKey {
				t.Fatalf("got %d profiles of app %q; want %d of %q", len(ups), appKey, tt.profiles, tt.appKey)
			}
			for i, u := range ups {
				if u.index != i {
					t.Fatalf("profile %d has index %d", i, u.index)
				}
			}
		})
	}
}

// TestDecodeSeedExample checks what the corrected seed example decodes to.
func TestDecodeSeedExample(t *testing.T) {
	body, err := os.ReadFile("testdata/seed_corrected.json")
	if err != nil {
		t.Fatal(err)
	}
	_, ups, err := decodeRequest(body, testMaxProfiles, testMaxFields)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		userID, pyzeID string
		aliases        []Alias
		ops            []string
	}{
		{
			userID:  "user123",
			aliases: []Alias{{"facebook", "fb123409"}},
			ops: []string{"custom-ltv set:integer", "custom-purchase inc", "custom-subscription set:string", "custom-tags set:array",
				"date_of_birth set", "date_of_first_use set", "first_name set", "gender set", "last_name set"},
		},
		{
			pyzeID: "ca1ab028-185d-4833-a3af-5b5d46b62771",
			ops:    []string{"custom-tags remove", "date_of_last_use set", "email_id set"},
		},
	}
	for i, w := range want {
		u := ups[i]
		if u.userID != w.userID || u.pyzeID != w.pyzeID || !slices.Equal(u.aliases, w.aliases) {
			t.Errorf("profile %d: got userId %q, pyze_id %q, aliases %v; want %q, %q, %v", i, u.userID, u.pyzeID, u.aliases, w.userID, w.pyzeID, w.aliases)
		}
		if got := describeOps(u.ops); !slices.Equal(got, w.ops) {
			t.Errorf("profile %d: got ops %q; want %q", i, got, w.ops)
		}
	}
}

// TestErrorDetails checks what a refused profile adds to the error body.
func TestErrorDetails(t *testing.T) {
	e := invalid(2, "gender", "gender must be one of")
	d := e.ErrorDetails()
	if d["index"] != 2 || e.Code != "invalid_profile" {
		t.Fatalf("got details %v; want index 2", e.ErrorDetails())
	}
	errs, ok := d["errors"].([]map[string]any)
	if !ok || len(errs) != 1 || errs[0]["index"] != 2 || errs[0]["field"] != "gender" || errs[0]["message"] != "gender must be one of" {
		t.Fatalf("got errors %v; want one naming index 2 and field gender", d["errors"])
	}
	if d := invalid(-1, "user_profiles", "x").ErrorDetails(); len(d) != 0 {
		t.Fatalf("got details %v for a request-wide error; want none", d)
	}
	if e.ErrorField() != "gender" || e.Error() != "gender must be one of" {
		t.Fatalf("got field %q, message %q", e.ErrorField(), e.Error())
	}
}

func TestDuplicateKeys(t *testing.T) {
	for _, tt := range []struct {
		name, body, field string
	}{
		{"userId twice", `{"appKey":"` + appA + `","user_profiles":[{"userId":"alice","userId":"bob"}]}`, "userId"},
		{"escaped userId", `{"appKey":"` + appA + `","user_profiles":[{"userId":"alice","user\u0049d":"bob"}]}`, "userId"},
		{"customer_id twice", `{"appKey":"` + appA + `","user_profiles":[{"customer_id":"a","customer_id":"b"}]}`, "customer_id"},
		{"pyze_id twice", `{"appKey":"` + appA + `","user_profiles":[{"userId":"a","pyze_id":"ca1ab028-185d-4833-a3af-5b5d46b62771","pyze_id":"ca1ab028-185d-4833-a3af-5b5d46b62772"}]}`, "pyze_id"},
		{"user_alias twice", `{"appKey":"` + appA + `","user_profiles":[{"userId":"a","user_alias":{"alias_label":"x","alias_id":"1"},"user_alias":{"alias_label":"x","alias_id":"2"}}]}`, "user_alias"},
		{"attribute twice", `{"appKey":"` + appA + `","user_profiles":[{"userId":"a","email_id":"a@x.org","email_id":"b@x.org"}]}`, "email_id"},
		{"appKey twice", `{"appKey":"` + appA + `","appKey":"other","user_profiles":[{"userId":"a"}]}`, "appKey"},
		{"user_profiles twice", `{"appKey":"` + appA + `","user_profiles":[{"userId":"a"}],"user_profiles":[{"userId":"b"}]}`, "user_profiles"},
		{"nested keys may repeat", `{"appKey":"` + appA + `","user_profiles":[{"userId":"a","tags":{"add":["userId","userId"]},"n":{"inc":1},"m":{"inc":2}}]}`, ""},
		{"same key in two profiles", `{"appKey":"` + appA + `","user_profiles":[{"userId":"a"},{"userId":"b"}]}`, ""},
		{"a key inside a string", `{"appKey":"` + appA + `","user_profiles":[{"userId":"a","note":"\"userId\":\"b\", userId"}]}`, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := decodeRequest([]byte(tt.body), testMaxProfiles, testMaxFields)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("decodeRequest: %v; want no error", err)
				}
				return
			}
			var e *apierr.Error
			if !errors.As(err, &e) || e.Field != tt.field || e.Message != tt.field+" appears twice" {
				t.Fatalf("decodeRequest: %v; want an error naming %s: %s appears twice", err, tt.field, tt.field)
			}
		})
	}
}

// errIndex returns the index of the profile e names, -1 for none.
func errIndex(e *apierr.Error) int {
	if i, ok := e.Details["index"].(int); ok {
		return i
	}
	return -1
}
