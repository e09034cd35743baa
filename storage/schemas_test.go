package storage

import (
	"reflect"
	"testing"
	"time"
)

// TestSchemaVersions checks that versions only grow, across a delete and a
// reopen, and that deleted contracts are not listed.
func TestSchemaVersions(t *testing.T) {
	dir := t.TempDir()
	db := openDiskDB(t, dir, Options{})
	now := time.UnixMilli(1_700_000_000_000).UTC()
	steps := []struct {
		name    string
		del     bool
		wantVer uint64
		wantOK  bool
	}{
		{"first put", false, 1, true},
		{"second put", false, 2, true},
		{"delete", true, 2, true},
		{"delete again", true, 0, false},
		{"put after delete", false, 3, true},
	}
	for _, s := range steps {
		var rec SchemaRecord
		ok, err := true, error(nil)
		if s.del {
			rec, ok, err = db.DeleteSchema("app-key-1", "Checkout Completed", now)
		} else {
			rec, err = db.PutSchema("app-key-1", "Checkout Completed", []byte(`{"type":"object"}`), now)
		}
		if err != nil || ok != s.wantOK || rec.Version != s.wantVer {
			t.Fatalf("%s: got version %d, ok %v, err %v; want %d, %v", s.name, rec.Version, ok, err, s.wantVer, s.wantOK)
		}
	}
	if _, err := db.PutSchema("app-key-2", "Signed Up", []byte(`true`), now); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db = openDiskDB(t, dir, Options{})
	defer db.Close()
	got, err := db.SchemaRecords()
	if err != nil {
		t.Fatal(err)
	}
	want := []SchemaRecord{
		{AppKey: "app-key-1", Event: "Checkout Completed", Version: 3, Updated: now, Schema: []byte(`{"type":"object"}`)},
		{AppKey: "app-key-2", Event: "Signed Up", Version: 1, Updated: now, Schema: []byte(`true`)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v; want %+v", got, want)
	}
}

// FuzzSchemaValue checks that the decoder never panics and that whatever
// decodes survives an encode and decode unchanged.
func FuzzSchemaValue(f *testing.F) {
	f.Add(appendSchemaValue(nil, SchemaRecord{Version: 3, Updated: time.UnixMilli(9), Schema: []byte(`{}`)}))
	f.Add(appendSchemaValue(nil, SchemaRecord{Version: 1, Deleted: true}))
	f.Add([]byte{valueV1, 0x80})
	f.Fuzz(func(t *testing.T, v []byte) {
		rec, err := decodeSchemaValue(v)
		if err != nil {
			return
		}
		again, err := decodeSchemaValue(appendSchemaValue(nil, rec))
		if err != nil || !reflect.DeepEqual(again, rec) {
			t.Errorf("schema value %x decodes to %+v, then to %+v, %v", v, rec, again, err)
		}
	})
}
