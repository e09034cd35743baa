package profile

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"trove/auth"
	"trove/storage"
)

// benchProfile returns a profile object of about ten fields (sets of
// built-ins and custom attributes, incs and an add) for userId u.
func benchProfile(u string) string {
	return `{"userId":"` + u + `","user_alias":{"alias_label":"facebook","alias_id":"fb-` + u + `"},` +
		`"first_name":"John","last_name":"Doe","email_id":"john.doe@example.com","gender":"M",` +
		`"date_of_last_use":"2026-01-02T03:04:05Z","custom-plan":"premium","custom-active":true,` +
		`"custom-purchases":{"inc":1},"custom-ltv":{"inc":12.5},"custom-tags":{"add":["whale","vip"]}}`
}

// BenchmarkApplyUpdate measures one decoded update of ten fields applied
// to a stored profile as the handler does it (find by userId, read,
// decode, apply, encode, put), through a ProfileTxn on an in-memory store
// that commits every 100 updates.
func BenchmarkApplyUpdate(b *testing.B) {
	const perCommit = 100
	db, err := storage.Open(b.TempDir(), storage.Options{InMemory: true, DedupWindow: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	h := NewHandler(DefaultConfig(), auth.NewRegistry(), db)
	app, err := db.EnsureApp(appA)
	if err != nil {
		b.Fatal(err)
	}
	_, ups, err := decodeRequest([]byte(`{"user_profiles":[`+benchProfile("bench-user")+`]}`), testMaxProfiles, testMaxFields)
	if err != nil {
		b.Fatal(err)
	}
	if n := len(ups[0].ops); n != 10 {
		b.Fatalf("update has %d fields; want 10", n)
	}
	now := time.Now()
	begin := func() *storage.ProfileTxn {
		txn, err := db.BeginProfiles(app, now)
		if err != nil {
			b.Fatal(err)
		}
		return txn
	}
	commit := func(txn *storage.ProfileTxn) {
		if err := txn.Commit(); err != nil {
			b.Fatal(err)
		}
		txn.Close()
	}
	// The profile is stored before the clock starts.
	txn := begin()
	if _, err := h.applyOne(txn, &ups[0], now); err != nil {
		b.Fatal(err)
	}
	commit(txn)

	txn = begin()
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.applyOne(txn, &ups[0], now); err != nil {
			b.Fatal(err)
		}
		if n++; n%perCommit == 0 {
			commit(txn)
			txn = begin()
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "updates/s")
	commit(txn)
}

// BenchmarkDecodeRequest measures decoding and validating a request of 100
// profile objects of ten fields each.
func BenchmarkDecodeRequest(b *testing.B) {
	const profiles = 100
	var sb strings.Builder
	sb.WriteString(`{"appKey":"` + appA + `","user_profiles":[`)
	for i := range profiles {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(benchProfile(fmt.Sprintf("user-%04d", i)))
	}
	sb.WriteString(`]}`)
	body := []byte(sb.String())
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		_, ups, err := decodeRequest(body, testMaxProfiles, testMaxFields)
		if err != nil || len(ups) != profiles {
			b.Fatalf("decoded %d profiles (%v); want %d", len(ups), err, profiles)
		}
	}
}
