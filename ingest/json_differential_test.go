package ingest

import (
	stdjson "encoding/json"
	"testing"
)

// FuzzJSONDifferential: what ingest takes as valid JSON (goccy/go-json's
// Valid, guarded) is exactly what encoding/json takes, so that no body is
// refused or accepted by Trove where the standard library would disagree.
// (lint_test.go allows encoding/json in this one file.)
func FuzzJSONDifferential(f *testing.F) {
	for _, s := range []string{
		testEvent(), "[" + testEvent() + "," + testEvent() + "]", `{"a":"\ud800"}`, `{"a":"\xff"}`,
		`{"a":1e999}`, `[1,]`, `{"a":1}{"b":2}`, ` {"a" : [ true , false , null ] } `, `"\u0000"`, `-0.0e+1`, `01`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if got, want := validJSON(body), stdjson.Valid(body); got != want {
			t.Fatalf("validJSON(%q) = %v; encoding/json says %v", body, got, want)
		}
	})
}
