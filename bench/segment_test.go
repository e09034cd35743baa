package bench

import (
	"testing"

	"github.com/goccy/go-json"
)

// TestAppendSegmentBatch checks that each message is the generated event
// as a Segment track message.
func TestAppendSegmentBatch(t *testing.T) {
	g := NewGenerator(1, DefaultAppKey).WithMessageIDs(true)
	g.reseed(7)
	b := g.AppendSegmentBatch(nil, 50)
	g.reseed(7)
	evs := g.AppendJSONArray(nil, 50)
	var batch struct {
		Batch []map[string]any `json:"batch"`
	}
	if err := json.Unmarshal(b, &batch); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	var want []map[string]any
	if err := json.Unmarshal(evs, &want); err != nil {
		t.Fatal(err)
	}
	if len(batch.Batch) != 50 {
		t.Fatalf("%d messages; want 50", len(batch.Batch))
	}
	for i, m := range batch.Batch {
		w := want[i]
		if m["type"] != "track" || m["event"] != w["event"] || m["userId"] != w["userId"] || m["timestamp"] != w["eventTime"] ||
			m["messageId"] != w["messageId"] || m["appKey"] != nil || m["properties"] == nil || len(m) != len(w)-1 {
			t.Errorf("message %d: %v; want the track form of %v", i, m, w)
		}
	}
}
