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
	if _, err := h.applyOne(txn, &ups[0], now, nil); err != nil {
		b.Fatal(err)
	}
	commit(txn)

	txn = begin()
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.applyOne(txn, &ups[0], now, nil); err != nil {
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
// profile objects of ten fields each, then, in the add-distinct cases,
// decoding and applying (as FuzzDecodeRequest does) a request whose profiles
// each add n distinct elements to an array: its cost per byte must stay flat
// as n grows tenfold, since comparing each element with every other one
// made it grow with n (a fuzz run stalled on it).
func BenchmarkDecodeRequest(b *testing.B) {
	b.Run("typical", func(b *testing.B) {
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
	})
	for _, n := range []int{500, 5000} {
		b.Run(fmt.Sprintf("add-distinct-%d", n), func(b *testing.B) {
			body := []byte(addDistinctRequest(4, n))
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				_, ups, err := decodeRequest(body, testMaxProfiles, testMaxFields)
				if err != nil {
					b.Fatal(err)
				}
				for i := range ups {
					var p Profile
					if err := apply(&p, &ups[i]); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(body)), "ns/byte")
		})
	}
}

// addDistinctRequest returns a request of profiles objects, each adding n
// distinct numbers to one array, within the 32 KiB limit of one value for
// n up to 5000.
func addDistinctRequest(profiles, n int) string {
	var sb strings.Builder
	sb.WriteString(`{"user_profiles":[`)
	for i := range profiles {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"userId":"u%d","a":{"add":[`, i)
		for j := range n {
			if j > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprint(&sb, 10000+j)
		}
		sb.WriteString(`]}}`)
	}
	sb.WriteString(`]}`)
	return sb.String()
}
