package storage

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestPendingSetRuns checks the pending set's sorted runs against a map:
// a key added again replaces its entry, lookups see the newest, and the
// merged order holds every key once, in key order, however the runs merged
// and after a failed flush put them back under newer ones.
func TestPendingSetRuns(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var p pendingSet
	want := map[entryKey][]dedupRef{}
	key := func() entryKey {
		// Few distinct keys, so that commits replace each other's entries.
		return entryKey{slice: uint32(rng.IntN(2)), app: uint32(rng.IntN(3)), fp: uint64(rng.IntN(500))}
	}
	commit := func(seq *uint64) ([]entryKey, [][]dedupRef) {
		n := 1 + rng.IntN(40)
		seen := map[entryKey]bool{}
		var keys []entryKey
		var refs [][]dedupRef
		for range n {
			k := key()
			if seen[k] {
				continue
			}
			seen[k] = true
			*seq++
			r := []dedupRef{{seq: *seq}}
			if rng.IntN(10) == 0 { // a fingerprint shared by two ids
				*seq++
				r = append(r, dedupRef{seq: *seq})
			}
			keys, refs = append(keys, k), append(refs, r)
		}
		return keys, refs
	}
	check := func(when string) {
		t.Helper()
		for k, r := range want {
			got, ok := p.get(k)
			if !ok || !sameRefs(got, r) {
				t.Fatalf("%s: get(%v) = %v, %v; want %v", when, k, got, ok, r)
			}
		}
		if _, ok := p.get(entryKey{slice: 9}); ok {
			t.Fatalf("%s: found a key never added", when)
		}
		if len(p.runs) > 16 {
			t.Fatalf("%s: %d runs for %d entries", when, len(p.runs), p.len())
		}
	}
	var seq uint64
	for i := range 300 {
		keys, refs := commit(&seq)
		p.add(keys, refs)
		for j, k := range keys {
			want[k] = refs[j]
		}
		if i%50 == 0 {
			check("after add")
		}
	}
	check("after adds")

	// A failed flush: the frozen set goes back under newer entries.
	frozen := p
	p = pendingSet{}
	for range 20 {
		keys, refs := commit(&seq)
		p.add(keys, refs)
		for j, k := range keys {
			want[k] = refs[j]
		}
	}
	merged := pendingSet{runs: slices.Clone(frozen.runs), multi: frozen.multi}
	p.putUnder(merged.sorted(), frozen.multi)
	check("after putUnder")

	entries := p.sorted()
	if len(entries) != len(want) || p.len() != len(want) {
		t.Fatalf("sorted holds %d entries (len %d), want %d", len(entries), p.len(), len(want))
	}
	if !slices.IsSortedFunc(entries, comparePendingEntries) {
		t.Fatal("sorted entries are out of order")
	}
	for _, e := range entries {
		if got := p.refsOf(e); !sameRefs(got, want[e.k]) {
			t.Fatalf("entry %v holds %v, want %v", e.k, got, want[e.k])
		}
	}
}

func sameRefs(a, b []dedupRef) bool {
	return slices.EqualFunc(a, b, func(x, y dedupRef) bool { return x.seq == y.seq && !x.legacy && !y.legacy })
}
