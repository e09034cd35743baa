package schema

import (
	"bytes"
	"os"
	"testing"

	"github.com/goccy/go-json"

	"trove/bench"
)

// benchEvents are events as trove bench sends them (messageIds on), one
// per line.
func benchEvents(b *testing.B) [][]byte {
	b.Helper()
	g := bench.NewGenerator(1, "yz1Jn-0pSnekg58etEQO4A").WithMessageIDs(true)
	var evs [][]byte
	for range 1000 {
		evs = append(evs, bytes.TrimSpace(g.AppendEvent(nil)))
	}
	return evs
}

// BenchmarkValidate is the contract check of W1 with contracts on
// (docs/bench-schema.json on every event), per event.
func BenchmarkValidate(b *testing.B) {
	src, err := os.ReadFile("../docs/bench-schema.json")
	if err != nil {
		b.Fatal(err)
	}
	sch, err := Compile(src)
	if err != nil {
		b.Fatal(err)
	}
	evs := benchEvents(b)
	if v := validate(sch, evs[0]); v != nil {
		b.Fatalf("%s: %+v", evs[0], v)
	}
	b.Run("check", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if validate(sch, evs[i%len(evs)]) != nil {
				b.Fatal("violation")
			}
		}
	})
	b.Run("decode-only", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			var v any
			if err := json.Unmarshal(evs[i%len(evs)], &v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
