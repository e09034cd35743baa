package profile

import (
	"errors"
	"strings"
	"testing"

	"github.com/goccy/go-json"

	"trove/apierr"
)

// step is one field of a profile object: a name and a JSON value.
type step struct{ field, value string }

// decodeStep validates one field as decodeProfile does.
func decodeStep(t testing.TB, s step) op {
	t.Helper()
	o, err := decodeOp(0, s.field, json.RawMessage(s.value))
	if err != nil {
		t.Fatalf("cannot decode %s=%s: %v", s.field, s.value, err)
	}
	return o
}

// checkInStep fails unless p's Attributes and AttributeTypes name the same
// fields, each a known type and valid JSON.
func checkInStep(t testing.TB, p *Profile) {
	t.Helper()
	if len(p.Attributes) != len(p.AttributeTypes) {
		t.Fatalf("%d attributes but %d attribute types: %v %v", len(p.Attributes), len(p.AttributeTypes), p.Attributes, p.AttributeTypes)
	}
	for k, v := range p.Attributes {
		typ, ok := p.AttributeTypes[k]
		if !ok {
			t.Fatalf("attribute %q has no type", k)
		}
		if !json.Valid(v) {
			t.Fatalf("attribute %q = %s is not valid JSON", k, v)
		}
		switch typ {
		case "integer", "float":
			if numberType(v) != typ {
				t.Fatalf("attribute %q = %s has type %s; its text says %q", k, v, typ, numberType(v))
			}
		case "array":
			if len(v) == 0 || v[0] != '[' {
				t.Fatalf("attribute %q = %s has type array", k, v)
			}
		case "string", "date":
			if len(v) == 0 || v[0] != '"' {
				t.Fatalf("attribute %q = %s has type %s", k, v, typ)
			}
		case "boolean":
			if s := string(v); s != "true" && s != "false" {
				t.Fatalf("attribute %q = %s has type boolean", k, v)
			}
		default:
			t.Fatalf("attribute %q has unknown type %q", k, typ)
		}
	}
}

func TestApplyOp(t *testing.T) {
	tests := []struct {
		name  string
		steps []step // applied in order to an empty profile; only the last may fail
		field string // the attribute checked
		want  string // its JSON value; "" means absent
		typ   string // its type
		err   string // a substring of the last step's error; "" means no error
	}{
		{name: "set string", steps: []step{{"x", `"premium"`}}, field: "x", want: `"premium"`, typ: "string"},
		{name: "set replaces value and type", steps: []step{{"x", `"premium"`}, {"x", `35`}}, field: "x", want: `35`, typ: "integer"},
		{name: "set date", steps: []step{{"x", `"2017-07-13T17:44:46Z"`}}, field: "x", want: `"2017-07-13T17:44:46Z"`, typ: "date"},
		{name: "set keeps the text as sent", steps: []step{{"x", `"\u0061"`}}, field: "x", want: `"\u0061"`, typ: "string"},
		{name: "big integer keeps its digits", steps: []step{{"x", `123456789012345678901234567890`}}, field: "x", want: `123456789012345678901234567890`, typ: "integer"},
		{name: "float keeps its text", steps: []step{{"x", `1.50`}}, field: "x", want: `1.50`, typ: "float"},
		{name: "unset custom", steps: []step{{"x", `1`}, {"x", `null`}}, field: "x"},
		{name: "unset missing", steps: []step{{"x", `null`}}, field: "x"},

		{name: "inc on missing counts from 0", steps: []step{{"n", `{"inc":30}`}}, field: "n", want: `30`, typ: "integer"},
		{name: "inc float on missing", steps: []step{{"n", `{"inc":0.5}`}}, field: "n", want: `0.5`, typ: "float"},
		{name: "int plus int stays integer", steps: []step{{"n", `35`}, {"n", `{"inc":30}`}}, field: "n", want: `65`, typ: "integer"},
		{name: "int plus negative int", steps: []step{{"n", `5`}, {"n", `{"inc":-7}`}}, field: "n", want: `-2`, typ: "integer"},
		{name: "int plus float becomes float", steps: []step{{"n", `35`}, {"n", `{"inc":0.5}`}}, field: "n", want: `35.5`, typ: "float"},
		{name: "whole float sum stays float", steps: []step{{"n", `1`}, {"n", `{"inc":1.0}`}}, field: "n", want: `2.0`, typ: "float"},
		{name: "float plus int", steps: []step{{"n", `2.5`}, {"n", `{"inc":1}`}}, field: "n", want: `3.5`, typ: "float"},
		{name: "exponent increment is a float", steps: []step{{"n", `1`}, {"n", `{"inc":1e2}`}}, field: "n", want: `101.0`, typ: "float"},
		{name: "int64 overflow becomes float", steps: []step{{"n", `9223372036854775807`}, {"n", `{"inc":1}`}}, field: "n", want: `9.223372036854776e+18`, typ: "float"},
		{name: "int64 underflow becomes float", steps: []step{{"n", `-9223372036854775808`}, {"n", `{"inc":-1}`}}, field: "n", want: `-9.223372036854776e+18`, typ: "float"},
		{name: "int64 max reached exactly", steps: []step{{"n", `9223372036854775806`}, {"n", `{"inc":1}`}}, field: "n", want: `9223372036854775807`, typ: "integer"},
		{name: "inc on a big integer", steps: []step{{"n", `123456789012345678901234567890`}, {"n", `{"inc":1}`}}, field: "n", want: `1.2345678901234568e+29`, typ: "float"},
		{name: "float sum out of range", steps: []step{{"n", `1e308`}, {"n", `{"inc":1e308}`}}, err: "the sum is out of range"},
		{name: "inc on a string", steps: []step{{"s", `"premium"`}, {"s", `{"inc":1}`}}, err: "s is a string, not a number"},
		{name: "inc on a date", steps: []step{{"s", `"2017-07-13T17:44:46Z"`}, {"s", `{"inc":1}`}}, err: "s is a date, not a number"},
		{name: "inc on an array", steps: []step{{"s", `[1]`}, {"s", `{"inc":1}`}}, err: "s is a array, not a number"},
		{name: "inc on a boolean", steps: []step{{"s", `true`}, {"s", `{"inc":1}`}}, err: "not a number"},
		{name: "failed inc keeps the value", steps: []step{{"s", `"premium"`}, {"s", `{"inc":1}`}}, field: "s", want: `"premium"`, typ: "string", err: "not a number"},

		{name: "add on missing", steps: []step{{"tags", `{"add":["whale","high-spender"]}`}}, field: "tags", want: `["whale","high-spender"]`, typ: "array"},
		{name: "add appends only new values", steps: []step{{"tags", `["whale","high-spender"]`}, {"tags", `{"add":["high-spender","vip"]}`}},
			field: "tags", want: `["whale","high-spender","vip"]`, typ: "array"},
		{name: "add escaped spelling of a present value", steps: []step{{"tags", `["a"]`}, {"tags", `{"add":["\u0061"]}`}}, field: "tags", want: `["a"]`, typ: "array"},
		{name: "add present value to escaped spelling", steps: []step{{"tags", `["\u0061"]`}, {"tags", `{"add":["a","b"]}`}}, field: "tags", want: `["\u0061","b"]`, typ: "array"},
		{name: "add repeated value once", steps: []step{{"tags", `{"add":["x","x"]}`}}, field: "tags", want: `["x"]`, typ: "array"},
		{name: "add number and string apart", steps: []step{{"tags", `[1,2]`}, {"tags", `{"add":[2,"2",3,true]}`}}, field: "tags", want: `[1,2,"2",3,true]`, typ: "array"},
		{name: "add keeps number text", steps: []step{{"tags", `[1.50]`}, {"tags", `{"add":[2.50]}`}}, field: "tags", want: `[1.50,2.50]`, typ: "array"},
		{name: "add nothing to missing", steps: []step{{"tags", `{"add":[]}`}}, field: "tags", want: `[]`, typ: "array"},
		{name: "add to a string", steps: []step{{"s", `"premium"`}, {"s", `{"add":["x"]}`}}, err: "s is a string, not an array"},
		{name: "add to an integer", steps: []step{{"s", `1`}, {"s", `{"add":[1]}`}}, err: "not an array"},
		{name: "remove", steps: []step{{"tags", `["whale","high-spender"]`}, {"tags", `{"remove":["whale"]}`}}, field: "tags", want: `["high-spender"]`, typ: "array"},
		{name: "remove by escaped spelling", steps: []step{{"tags", `["whale","vip"]`}, {"tags", `{"remove":["\u0077hale"]}`}}, field: "tags", want: `["vip"]`, typ: "array"},
		{name: "remove every value", steps: []step{{"tags", `["a","b"]`}, {"tags", `{"remove":["b","a","c"]}`}}, field: "tags", want: `[]`, typ: "array"},
		{name: "remove an absent value", steps: []step{{"tags", `["a"]`}, {"tags", `{"remove":["b"]}`}}, field: "tags", want: `["a"]`, typ: "array"},
		{name: "remove on missing is a no-op", steps: []step{{"tags", `{"remove":["whale"]}`}}, field: "tags"},
		{name: "remove on a string", steps: []step{{"s", `"x"`}, {"s", `{"remove":["x"]}`}}, err: "s is a string, not an array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Profile
			var err error
			for i, s := range tt.steps {
				err = applyOp(&p, decodeStep(t, s))
				if err != nil && i < len(tt.steps)-1 {
					t.Fatalf("step %d (%s=%s): %v", i, s.field, s.value, err)
				}
			}
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("got %v; want no error", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("got error %v; want one containing %q", err, tt.err)
			}
			checkInStep(t, &p)
			if tt.field == "" {
				return
			}
			got, ok := p.Attributes[tt.field]
			if tt.want == "" {
				if ok {
					t.Fatalf("attribute %q = %s; want it absent", tt.field, got)
				}
				return
			}
			if string(got) != tt.want || p.AttributeTypes[tt.field] != tt.typ {
				t.Fatalf("attribute %q = %s (%s); want %s (%s)", tt.field, got, p.AttributeTypes[tt.field], tt.want, tt.typ)
			}
		})
	}
}

func TestApplyBuiltin(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
		want  Profile
		err   string
	}{
		{name: "set", steps: []step{{"first_name", `"John"`}, {"gender", `"F"`}, {"date_of_birth", `"1994-07-06"`}},
			want: Profile{FirstName: "John", Gender: "F", DateOfBirth: "1994-07-06"}},
		{name: "set every built-in", steps: []step{{"first_name", `"a"`}, {"last_name", `"b"`}, {"email_id", `"c@example.com"`}, {"gender", `"U"`},
			{"date_of_birth", `"2000-01-02"`}, {"date_of_first_use", `"2016-04-12T17:27:20+00:00"`}, {"date_of_last_use", `"2018-06-20T08:17:00Z"`},
			{"phone", `"d"`}, {"city", `"e"`}, {"country", `"f"`}, {"language", `"g"`}, {"time_zone", `"h"`}},
			want: Profile{FirstName: "a", LastName: "b", EmailID: "c@example.com", Gender: "U", DateOfBirth: "2000-01-02",
				DateOfFirstUse: "2016-04-12T17:27:20+00:00", DateOfLastUse: "2018-06-20T08:17:00Z", Phone: "d", City: "e", Country: "f", Language: "g", TimeZone: "h"}},
		{name: "escapes decoded", steps: []step{{"first_name", `"J\u00f6rg"`}}, want: Profile{FirstName: "Jörg"}},
		{name: "unset", steps: []step{{"first_name", `"John"`}, {"last_name", `"Doe"`}, {"first_name", `null`}}, want: Profile{LastName: "Doe"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Profile
			for _, s := range tt.steps {
				if err := applyOp(&p, decodeStep(t, s)); err != nil {
					t.Fatal(err)
				}
			}
			got, _ := json.Marshal(&p)
			want, _ := json.Marshal(&tt.want)
			if string(got) != string(want) {
				t.Fatalf("got %s; want %s", got, want)
			}
		})
	}
	// Operations decodeOp refuses on built-ins, applied all the same.
	for _, kind := range []opKind{opInc, opAdd, opRemove} {
		var p Profile
		err := applyOp(&p, op{field: "first_name", kind: kind, raw: json.RawMessage(`1`)})
		if err == nil || !strings.Contains(err.Error(), "first_name is a built-in string field") {
			t.Errorf("%s on first_name: got %v; want a built-in field error", opNames[kind], err)
		}
	}
}

// TestApply checks that apply runs a decoded profile's operations in order
// and names the profile and field at fault.
func TestApply(t *testing.T) {
	_, ups, err := decodeRequest([]byte(`{"user_profiles":[
		{"userId":"u1","custom-ltv":35,"custom-purchase":{"inc":30},"custom-tags":["whale","high-spender"]},
		{"userId":"u1","custom-ltv":{"inc":5},"custom-purchase":{"inc":0.5},"custom-tags":{"remove":["whale"]},"first_name":"John"},
		{"userId":"u1","custom-tags":{"inc":1}}]}`), testMaxProfiles, testMaxFields)
	if err != nil {
		t.Fatal(err)
	}
	var p Profile
	for _, u := range ups[:2] {
		if err := apply(&p, &u); err != nil {
			t.Fatal(err)
		}
	}
	checkInStep(t, &p)
	got, err := json.Marshal(&p)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"pyze_id":"","first_name":"John",` +
		`"attributes":{"custom-ltv":40,"custom-purchase":30.5,"custom-tags":["high-spender"]},` +
		`"attribute_types":{"custom-ltv":"integer","custom-purchase":"float","custom-tags":"array"},"created_at":"","updated_at":""}`
	if string(got) != want {
		t.Fatalf("got %s; want %s", got, want)
	}
	err = apply(&p, &ups[2])
	checkInvalid(t, err, 2, "custom-tags", "custom-tags is a array, not a number")
}

// TestProfileRoundTrip checks that a stored profile reads back as it was
// written: big integers, escapes and number text included.
func TestProfileRoundTrip(t *testing.T) {
	var p Profile
	for _, s := range []step{{"big", `123456789012345678901234567890`}, {"f", `1.50`}, {"s", `"\u0061\"b"`}, {"tags", `["x",1.0,true]`}, {"first_name", `"Jörg"`}} {
		if err := applyOp(&p, decodeStep(t, s)); err != nil {
			t.Fatal(err)
		}
	}
	b1, err := json.Marshal(&p)
	if err != nil {
		t.Fatal(err)
	}
	var q Profile
	if err := json.Unmarshal(b1, &q); err != nil {
		t.Fatal(err)
	}
	b2, err := json.Marshal(&q)
	if err != nil {
		t.Fatal(err)
	}
	if string(b1) != string(b2) {
		t.Fatalf("got %s after a round trip; want %s", b2, b1)
	}
	if !strings.Contains(string(b1), `"big":123456789012345678901234567890`) {
		t.Fatalf("big integer lost its digits: %s", b1)
	}
	var e *apierr.Error
	if err := apply(&q, &update{index: 4, ops: []op{{field: "s", kind: opInc, raw: json.RawMessage(`1`)}}}); !errors.As(err, &e) || errIndex(e) != 4 || e.Field != "s" {
		t.Fatalf("got %v; want an error naming profile 4, field s", err)
	}
}
