package profile

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"trove/logentry"
)

// TestProfileEntryRoundTrip checks that both kinds of entries decode into
// what they were made of, and that every cut of one is refused.
func TestProfileEntryRoundTrip(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 123, time.UTC)
	req := appendProfileEntryHead(nil, entryRequest, now, "app-key-0001")
	req = logentry.AppendBytes(req, []byte("idem-1"))
	req = logentry.AppendBytes(req, []byte(`{"user_profiles":[{"userId":"u"}]}`))
	d, err := decodeProfileEntry(req)
	if err != nil || d.kind != entryRequest || !d.now.Equal(now) || string(d.appKey) != "app-key-0001" ||
		string(d.idemKey) != "idem-1" || string(d.body) != `{"user_profiles":[{"userId":"u"}]}` {
		t.Fatalf("request entry decoded as %+v, %v", d, err)
	}
	each := appendProfileEntryHead(nil, entryEach, now, "app-key-0001")
	each = append(each, 2)
	each = logentry.AppendBytes(each, []byte(`{"userId":"a"}`))
	each = logentry.AppendBytes(each, []byte(nil))
	d, err = decodeProfileEntry(each)
	if err != nil || d.kind != entryEach || !slices.EqualFunc(d.objs, [][]byte{[]byte(`{"userId":"a"}`), {}}, bytes.Equal) {
		t.Fatalf("objects entry decoded as %+v, %v", d, err)
	}
	del := logentry.AppendBytes(appendProfileEntryHead(nil, entryDelete, now, "app-key-0001"), []byte("u-1"))
	del = append(del, 1)
	d, err = decodeProfileEntry(del)
	if err != nil || d.kind != entryDelete || string(d.userID) != "u-1" || !d.suppress {
		t.Fatalf("deletion entry decoded as %+v, %v", d, err)
	}
	for _, e := range [][]byte{req, each, del} {
		for n := range len(e) {
			if _, err := decodeProfileEntry(e[:n]); err == nil {
				t.Errorf("an entry cut at %d of %d decoded", n, len(e))
			}
		}
	}
}

// TestIDGen checks that a log entry's pyze_ids are version 4 UUIDs that
// depend only on the entry and their order, and random ones are not.
func TestIDGen(t *testing.T) {
	a, b := newIDs(7), newIDs(7)
	for range 3 {
		x, y := a.next(), b.next()
		if x != y || x[6]>>4 != 4 || x[8]>>6 != 2 {
			t.Fatalf("entry 7 gave %x and %x; want equal version 4 UUIDs", x, y)
		}
	}
	if newIDs(8).next() == newIDs(7).next() {
		t.Error("entries 7 and 8 gave the same first id")
	}
	if newIDs(0).next() == newIDs(0).next() {
		t.Error("two random ids are equal")
	}
}

// FuzzDecodeProfileEntry checks that any bytes decode without a panic.
func FuzzDecodeProfileEntry(f *testing.F) {
	f.Add(logentry.AppendBytes(logentry.AppendBytes(appendProfileEntryHead(nil, entryRequest, time.Unix(1, 0), "k"), []byte(nil)), []byte("{}")))
	f.Add(append(appendProfileEntryHead(nil, entryEach, time.Unix(1, 0), "k"), 0))
	f.Add(append(logentry.AppendBytes(appendProfileEntryHead(nil, entryDelete, time.Unix(1, 0), "k"), []byte("u")), 0))
	f.Fuzz(func(t *testing.T, entry []byte) {
		d, err := decodeProfileEntry(entry)
		if err == nil && d.kind != entryRequest && d.kind != entryEach && d.kind != entryDelete {
			t.Fatalf("decoded kind %d", d.kind)
		}
	})
}
