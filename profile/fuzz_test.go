package profile

import (
	"bytes"
	"errors"
	"math/big"
	"os"
	"slices"
	"strconv"
	"testing"

	"github.com/goccy/go-json"

	"trove/apierr"
)

// checkStoredForm fails unless p marshals to valid JSON that reads back
// into the same profile: what the handler stores, and reads at the next
// update.
func checkStoredForm(t *testing.T, p *Profile) {
	t.Helper()
	out, err := json.Marshal(p)
	if err != nil {
		t.Fatalf("cannot marshal %+v: %v", p, err)
	}
	// Numbers as sent may lie beyond float64 (1e400): decode them as text.
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	var v any
	if !json.Valid(out) || dec.Decode(&v) != nil {
		t.Fatalf("stored form is not valid JSON: %s", out)
	}
	var q Profile
	if err := json.Unmarshal(out, &q); err != nil {
		t.Fatalf("stored form %s does not read back: %v", out, err)
	}
	again, err := json.Marshal(&q)
	if err != nil || !bytes.Equal(again, out) {
		t.Fatalf("stored form %s reads back as %s (%v)", out, again, err)
	}
}

// FuzzDecodeRequest checks that decoding never panics, refuses only with a
// *apierr.Error of kind apierr.Invalid, and that whatever it accepts applies to a
// profile whose stored form is valid JSON.
func FuzzDecodeRequest(f *testing.F) {
	for _, name := range []string{"testdata/seed_corrected.json", "testdata/seed_malformed.json"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		`{"user_profiles":[{"userId":"u","n":{"inc":1},"t":{"add":["a","\u0061",1,true]},"r":{"remove":[2]},"d":"2017-07-13T17:44:46Z"}]}`,
		`{"user_profiles":[{"pyze_id":"CA1AB028-185D-4833-A3AF-5B5D46B62771","big":123456789012345678901234567890,"f":1e400,"x":null}]}`,
		`{"user_profiles":[{"user_alias":[{"alias_label":"a","alias_id":"1"}],"gender":"F","email_id":"a@b.c"},{"customer_id":"c","n":{"inc":-0.5}}]}`,
		`{"user_profiles":[{"userId":"u","s":"\ud800","e":"","a":[],"b":[[1]],"o":{"foo":1}}]}`,
		`{"appKey":"k","user_profiles":[]}`,
		`[[[[[[[[[[[[[[[[[[[[`,
		`{"appKey":"k","appK\u0065y":"j","user_profiles":[{"userId":"a","user\u0049d":"b","n":{"inc":1},"n":2}]}`,
	} {
		f.Add([]byte(s))
	}
	const maxProfiles, maxFields = 8, 8
	f.Fuzz(func(t *testing.T, body []byte) {
		_, ups, err := decodeRequest(body, maxProfiles, maxFields)
		if err != nil {
			var e *apierr.Error
			if !errors.As(err, &e) || !errors.Is(err, apierr.Invalid) || e.Message == "" || errIndex(e) < -1 || errIndex(e) >= maxProfiles {
				t.Fatalf("got %T %+v; want a *apierr.Error of kind apierr.Invalid", err, err)
			}
			return
		}
		if len(ups) == 0 || len(ups) > maxProfiles {
			t.Fatalf("decoded %d profiles", len(ups))
		}
		var all Profile // every update in turn, as one request to one profile
		for i := range ups {
			u := &ups[i]
			if u.index != i || (u.userID == "" && u.pyzeID == "" && len(u.aliases) == 0) || len(u.ops) > maxFields {
				t.Fatalf("profile %d decoded to %+v", i, u)
			}
			if u.pyzeID != "" && !uuidRE.MatchString(u.pyzeID) {
				t.Fatalf("pyze_id %q is not a UUID", u.pyzeID)
			}
			var p Profile
			if err := apply(&p, u); err != nil {
				// Alone on an empty profile, only an inc out of range
				// fails.
				var e *apierr.Error
				if !errors.As(err, &e) || !errors.Is(err, apierr.Invalid) || errIndex(e) != i {
					t.Fatalf("apply: got %T %+v; want a *apierr.Error of kind apierr.Invalid for profile %d", err, err, i)
				}
			}
			checkInStep(t, &p)
			checkStoredForm(t, &p)
			_ = apply(&all, u)
			checkInStep(t, &all)
		}
		checkStoredForm(t, &all)
	})
}

// The fields and values FuzzApply draws from.
var (
	fuzzFields = []string{"n", "s", "tags", "first_name", "gender"}
	fuzzValues = []string{
		`null`, `0`, `1`, `-1`, `2.5`, `1e2`, `9223372036854775807`, `-9223372036854775808`, `123456789012345678901234567890`, `1e308`,
		`"a"`, `"\u0061"`, `"F"`, `"2017-07-13T17:44:46Z"`, `true`, `[]`, `["a",1,true]`, `[1.50,"b"]`,
		`{"inc":1}`, `{"inc":-1}`, `{"inc":0.5}`, `{"inc":9223372036854775807}`, `{"inc":1e308}`, `{"inc":123456789012345678901234567890}`,
		`{"add":["a","b"]}`, `{"add":["\u0061",1]}`, `{"add":[]}`, `{"remove":["a"]}`, `{"remove":["\u0062",1,true]}`,
	}
)

// canonical returns the elements of a JSON array as rawElems compares them.
func canonical(t *testing.T, raw []byte) []string {
	t.Helper()
	var xs []json.Number
	if err := unmarshalNumbers(raw, &xs); err != nil {
		t.Fatalf("array %s does not decode: %v", raw, err)
	}
	return rawElems(xs)
}

// FuzzApply runs sequences of operations on one profile: they never panic,
// keep Attributes and AttributeTypes in step, and each does what it says.
// Each pair of script bytes picks a field and a value; extra, when it is
// one valid JSON value, joins the values.
func FuzzApply(f *testing.F) {
	f.Add([]byte{0, 1, 0, 18, 0, 19, 0, 20}, `{"inc":2}`)
	f.Add([]byte{0, 6, 0, 18, 0, 29}, `5`)
	f.Add([]byte{2, 16, 2, 24, 2, 25, 2, 27, 2, 28, 2, 18}, `["x","a"]`)
	f.Add([]byte{1, 10, 1, 18, 1, 0, 1, 18, 3, 10, 3, 0, 4, 12}, `"2017-07-13T17:44:46.5+02:00"`)
	f.Add([]byte{0, 9, 0, 22, 0, 8, 0, 23}, `{"add":[[1]]}`)
	values := slices.Clone(fuzzValues)
	f.Fuzz(func(t *testing.T, script []byte, extra string) {
		vals := values
		if x := bytes.TrimSpace([]byte(extra)); len(x) > 0 && json.Valid(x) {
			vals = append(values[:len(values):len(values)], string(x))
		}
		var p Profile
		for i := 0; i+1 < len(script); i += 2 {
			field, value := fuzzFields[int(script[i])%len(fuzzFields)], vals[int(script[i+1])%len(vals)]
			o, err := decodeOp(0, field, json.RawMessage(value))
			if err != nil {
				continue
			}
			before, had := bytes.Clone(p.Attributes[field]), p.Attributes[field] != nil
			beforeType := p.AttributeTypes[field]
			err = applyOp(&p, o)
			checkInStep(t, &p)
			after, has := p.Attributes[field], p.Attributes[field] != nil
			if err != nil {
				if !bytes.Equal(after, before) || p.AttributeTypes[field] != beforeType {
					t.Fatalf("%s=%s failed (%v) but changed %s (%s) to %s (%s)", field, value, err, before, beforeType, after, p.AttributeTypes[field])
				}
				continue
			}
			if p.builtin(field) != nil {
				if has {
					t.Fatalf("built-in %s is also an attribute", field)
				}
				continue
			}
			switch o.kind {
			case opUnset:
				if has {
					t.Fatalf("%s=null left %s", field, after)
				}
			case opSet:
				if string(after) != string(o.raw) || p.AttributeTypes[field] != o.typ {
					t.Fatalf("%s=%s stored %s (%s)", field, value, after, p.AttributeTypes[field])
				}
			case opInc:
				cur, curType := before, beforeType
				if !had {
					cur, curType = []byte("0"), "integer"
				}
				typ := p.AttributeTypes[field]
				if curType == "integer" && numberType(o.raw) == "integer" {
					x, _ := new(big.Int).SetString(string(cur), 10)
					y, _ := new(big.Int).SetString(string(o.raw), 10)
					sum := new(big.Int).Add(x, y)
					if typ == "integer" && string(after) != sum.String() {
						t.Fatalf("%s + %s = %s; want %s", cur, o.raw, after, sum)
					}
					if typ == "float" && sum.IsInt64() && x.IsInt64() && y.IsInt64() {
						t.Fatalf("%s + %s became a float %s; the sum fits in int64", cur, o.raw, after)
					}
				} else {
					x, _ := strconv.ParseFloat(string(cur), 64)
					y, _ := strconv.ParseFloat(string(o.raw), 64)
					got, err := strconv.ParseFloat(string(after), 64)
					if typ != "float" || err != nil || got != x+y {
						t.Fatalf("%s + %s = %s (%s); want the float %v", cur, o.raw, after, typ, x+y)
					}
				}
			case opAdd, opRemove:
				if !had && o.kind == opRemove {
					if has {
						t.Fatalf("remove on a missing attribute stored %s", after)
					}
					continue
				}
				got := canonical(t, after)
				args := canonical(t, o.raw)
				var old []string
				if had {
					old = canonical(t, before)
				}
				for _, a := range args {
					if o.kind == opAdd && !slices.Contains(got, a) {
						t.Fatalf("add %s to %s gave %s: %s missing", o.raw, before, after, a)
					}
					if o.kind == opRemove && slices.Contains(got, a) {
						t.Fatalf("remove %s from %s gave %s: %s still there", o.raw, before, after, a)
					}
				}
				if o.kind == opAdd {
					// Old values first, then each new value once.
					if len(got) < len(old) || !slices.Equal(got[:len(old)], old) {
						t.Fatalf("add %s to %s gave %s", o.raw, before, after)
					}
					for j, g := range got[len(old):] {
						if slices.Contains(old, g) || slices.Contains(got[len(old):len(old)+j], g) {
							t.Fatalf("add %s to %s gave %s: %s twice", o.raw, before, after, g)
						}
					}
				} else {
					kept := slices.DeleteFunc(old, func(s string) bool { return slices.Contains(args, s) })
					if !slices.Equal(got, kept) {
						t.Fatalf("remove %s from %s gave %s", o.raw, before, after)
					}
				}
			}
		}
		checkStoredForm(t, &p)
	})
}
