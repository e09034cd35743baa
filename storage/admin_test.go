package storage

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestAdminKeys(t *testing.T) {
	tests := []struct {
		name string
		key  []byte
		ns   Namespace
		want string
	}{
		{"app record", appendAppRecordKey([]byte("x"), "yz1Jn-0pSnekg58etEQO4A")[1:], nsAppRecord, "yz1Jn-0pSnekg58etEQO4A"},
		{"token", appendTokenKey(nil, "3f2a1b4c5d6e"), nsToken, "3f2a1b4c5d6e"},
		{"empty token id", appendTokenKey(nil, ""), nsToken, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if Namespace(tc.key[0]) != tc.ns {
				t.Fatalf("key %x: prefix %02x; want %02x", tc.key, tc.key[0], byte(tc.ns))
			}
			got, err := decodeNameKey(tc.key, tc.ns)
			if err != nil || string(got) != tc.want {
				t.Errorf("decodeNameKey(%x) = %q, %v; want %q, nil", tc.key, got, err, tc.want)
			}
		})
	}
	if _, err := decodeNameKey(appendTokenKey(nil, "x"), nsAppRecord); err == nil {
		t.Errorf("decodeNameKey of a token key as an app record: got nil; want an error")
	}
	if _, err := decodeNameKey(nil, nsToken); err == nil {
		t.Errorf("decodeNameKey(nil): got nil; want an error")
	}
	// The new namespaces sit between the app registry and the events, and
	// scans of one never see the other.
	if !(nsApp < nsAppRecord && nsAppRecord < nsToken && nsToken < nsBlock) {
		t.Errorf("namespaces out of order: app %02x, app record %02x, token %02x, block %02x", nsApp, nsAppRecord, nsToken, nsBlock)
	}
}

func TestAdminValuesRoundTrip(t *testing.T) {
	created := time.Date(2026, 11, 29, 22, 7, 24, 495e6, time.UTC)
	apps := []AppRecord{
		{Name: "shop", Created: created},
		{Name: "", RequireToken: true, Created: created},
		{Name: "naïve name with spaces", RequireToken: true},
		{Name: "before 1970", Created: time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, rec := range apps {
		got, err := decodeAppRecordValue(appendAppRecordValue(nil, rec))
		if err != nil || !reflect.DeepEqual(got, rec) {
			t.Errorf("app record round trip: got %+v, %v; want %+v", got, err, rec)
		}
	}
	tokens := []TokenRecord{
		{Name: "backend", Digest: [32]byte{1, 2, 3}, Scopes: []string{"ingest", "export"}, Apps: []string{"yz1Jn-0pSnekg58etEQO4A"}, Created: created},
		{Name: "", Scopes: []string{}, Apps: []string{}},
		{Name: "all", Scopes: []string{"admin"}, Apps: []string{"*"}, Created: created, Revoked: created.Add(time.Hour)},
		{Name: string(bytes.Repeat([]byte("n"), 300)), Scopes: []string{"ingest"}, Apps: []string{"a", "b", "c"}},
	}
	for _, rec := range tokens {
		got, err := decodeTokenValue(appendTokenValue(nil, rec))
		if err != nil || !reflect.DeepEqual(got, rec) {
			t.Errorf("token record round trip: got %+v, %v; want %+v", got, err, rec)
		}
	}
	// Every truncation of a value is refused, never half-read.
	v := appendTokenValue(nil, tokens[0])
	for i := range len(v) {
		if _, err := decodeTokenValue(v[:i]); !errors.Is(err, ErrCorrupt) {
			t.Errorf("decodeTokenValue of %d of %d bytes: got %v; want ErrCorrupt", i, len(v), err)
		}
	}
	if _, err := decodeTokenValue(append(v, 0)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("decodeTokenValue with a trailing byte: got %v; want ErrCorrupt", err)
	}
	for _, bad := range [][]byte{nil, {valueV1}, {2, 0, 0}, {valueV1, 0, 0x80}} {
		if _, err := decodeAppRecordValue(bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("decodeAppRecordValue(%x): got %v; want ErrCorrupt", bad, err)
		}
	}
}

// TestAdminRecordsSurviveReopen stores apps and tokens, revokes one, and
// reads them back from a reopened store.
func TestAdminRecordsSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	db := openDiskDB(t, dir, Options{})
	created := time.Now().UTC().Truncate(time.Millisecond)
	app := AppRecord{AppKey: "k0Pq-app-key-0001", Name: "shop", Created: created}
	if err := db.PutApp(app); err != nil {
		t.Fatal(err)
	}
	if _, err := db.App(app.AppKey); err != nil {
		t.Errorf("after PutApp, App(%q): %v; want it registered", app.AppKey, err)
	}
	live := TokenRecord{ID: "aaaaaaaaaaaa", Name: "live", Digest: [32]byte{1}, Scopes: []string{"ingest"}, Apps: []string{app.AppKey}, Created: created}
	gone := TokenRecord{ID: "bbbbbbbbbbbb", Name: "gone", Digest: [32]byte{2}, Scopes: []string{"export"}, Apps: []string{"*"}, Created: created}
	for _, rec := range []TokenRecord{live, gone} {
		if err := db.PutToken(rec); err != nil {
			t.Fatal(err)
		}
	}
	gone.Revoked = created.Add(time.Second)
	if err := db.PutToken(gone); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.PutToken(live); !errors.Is(err, ErrClosed) {
		t.Errorf("PutToken after Close: got %v; want ErrClosed", err)
	}
	if _, err := db.AppRecords(); !errors.Is(err, ErrClosed) {
		t.Errorf("AppRecords after Close: got %v; want ErrClosed", err)
	}

	db = openDiskDB(t, dir, Options{})
	defer db.Close()
	apps, err := db.AppRecords()
	if err != nil || !reflect.DeepEqual(apps, []AppRecord{app}) {
		t.Errorf("AppRecords = %+v, %v; want [%+v]", apps, err, app)
	}
	if _, err := db.App(app.AppKey); err != nil {
		t.Errorf("after reopening, App(%q): %v", app.AppKey, err)
	}
	toks, err := db.TokenRecords()
	if err != nil || !reflect.DeepEqual(toks, []TokenRecord{live, gone}) {
		t.Errorf("TokenRecords = %+v, %v; want %+v", toks, err, []TokenRecord{live, gone})
	}
}

// FuzzAdminValues checks that the decoders never panic on arbitrary bytes
// and that whatever decodes survives an encode and decode unchanged.
func FuzzAdminValues(f *testing.F) {
	f.Add(appendTokenValue(nil, TokenRecord{Name: "n", Scopes: []string{"ingest"}, Apps: []string{"*"}, Created: time.UnixMilli(5)}))
	f.Add(appendAppRecordValue(nil, AppRecord{Name: "shop", RequireToken: true, Created: time.UnixMilli(7)}))
	f.Add([]byte{valueV1, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, v []byte) {
		if rec, err := decodeTokenValue(v); err == nil {
			again, err := decodeTokenValue(appendTokenValue(nil, rec))
			if err != nil || !reflect.DeepEqual(again, rec) {
				t.Errorf("token value %x decodes to %+v, then to %+v, %v", v, rec, again, err)
			}
		}
		if rec, err := decodeAppRecordValue(v); err == nil {
			again, err := decodeAppRecordValue(appendAppRecordValue(nil, rec))
			if err != nil || !reflect.DeepEqual(again, rec) {
				t.Errorf("app record %x decodes to %+v, then to %+v, %v", v, rec, again, err)
			}
		}
	})
}
