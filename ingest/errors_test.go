package ingest

import (
	"testing"

	"github.com/goccy/go-json"

	"trove/apierr"
)

// TestBatchErrorDetails checks that the details of a refused batch encode
// as its Result did when web merged Result's JSON members into the error
// body (marshal, unmarshal into a map, marshal again): the bytes on the
// wire do not change.
func TestBatchErrorDetails(t *testing.T) {
	zero, two, seven := 0, 2, 7
	tests := []struct {
		name string
		res  Result
	}{
		{name: "no errors", res: Result{}},
		{name: "empty errors", res: Result{Errors: []ItemError{}}},
		{name: "array", res: Result{Rejected: 2, Errors: []ItemError{
			{Index: &zero, Field: "event", Message: "event is required"},
			{Index: &two, MessageID: "m-2", Field: "time", Message: "time is <in the future> & \"late\""},
		}}},
		{name: "ndjson", res: Result{Accepted: 3, Duplicates: 1, Rejected: 1, Errors: []ItemError{
			{Line: &seven, Field: "", Message: "not JSON: é \u2028"},
		}}},
		{name: "warnings and validate", res: Result{Rejected: 1, Validated: true,
			Errors:   []ItemError{{Index: &zero, Field: "a", Message: "b"}},
			Warnings: []ItemError{{Index: &two, Field: "c", Message: "d"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(&tt.res)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			want, _ := json.Marshal(m)
			got, err := json.Marshal(tt.res.details())
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Fatalf("got %s; want %s", got, want)
			}
		})
	}
	if e := batchError(apierr.Invalid, ItemError{Field: "f", Message: "m"}, &Result{}); e.Code != "invalid_event" || e.Field != "f" {
		t.Fatalf("got code %q field %q; want invalid_event, f", e.Code, e.Field)
	}
	if e := batchError(apierr.TooLarge, ItemError{}, &Result{}); e.Code != "" {
		t.Fatalf("got code %q for a batch too large; want the kind's", e.Code)
	}
}
