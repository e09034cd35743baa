package obs

import (
	"bytes"
	"strings"
	"testing"

	"trove/storage"
)

func TestQuote(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "yz1Jn-0pSnekg58etEQO4A", `"yz1Jn-0pSnekg58etEQO4A"`},
		{"empty", "", `""`},
		{"quote and backslash", `a"b\c`, `"a\"b\\c"`},
		{"newline", "a\nb", `"a\nb"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := quote(tt.in); got != tt.want {
				t.Errorf("quote(%q) = %s; want %s", tt.in, got, tt.want)
			}
		})
	}
}

// scrape returns the set's series as text.
func scrape() string {
	var b bytes.Buffer
	WritePrometheus(&b)
	return b.String()
}

func TestAppCounters(t *testing.T) {
	a := App(`obs-test-app "1"`)
	if App(`obs-test-app "1"`) != a {
		t.Fatal("App returned new counters for the same key")
	}
	a.EventsAccepted.Add(3)
	a.ProfileUpdates.Inc()
	out := scrape()
	for _, want := range []string{
		`trove_events_accepted_total{app="obs-test-app \"1\""} 3` + "\n",
		`trove_events_duplicate_total{app="obs-test-app \"1\""} 0` + "\n",
		`trove_profile_updates_total{app="obs-test-app \"1\""} 1` + "\n",
		"go_goroutines ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}

func TestRouteRequest(t *testing.T) {
	r := Route("GET", "/obs-test")
	if Route("GET", "/obs-test") != r {
		t.Fatal("Route returned new series for the same route")
	}
	r.Request(200)
	r.Request(200)
	r.Request(404)
	r.Request(1000) // out of range: counted under code 0
	r.Duration.Update(0.002)
	out := scrape()
	for _, want := range []string{
		`trove_http_requests_total{method="GET",route="/obs-test",code="200"} 2` + "\n",
		`trove_http_requests_total{method="GET",route="/obs-test",code="404"} 1` + "\n",
		`trove_http_requests_total{method="GET",route="/obs-test",code="0"} 1` + "\n",
		`trove_http_request_duration_seconds_count{method="GET",route="/obs-test"} 1` + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}

func TestStoreWriter(t *testing.T) {
	dir := t.TempDir()
	db, err := storage.Open(dir, storage.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	write := StoreWriter(db, dir)
	var b bytes.Buffer
	write(&b)
	out := b.String()
	for _, want := range []string{"trove_storage_open 1\n", "trove_storage_disk_usage_bytes ", "trove_storage_l0_sublevels ",
		"trove_storage_block_cache_hits_total ", "trove_events_stored_total 0\n", "trove_data_dir_free_bytes "} {
		if !strings.Contains(out, want) {
			t.Errorf("store series lack %q:\n%s", want, out)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	b.Reset()
	write(&b) // a scrape racing shutdown must not touch the closed store
	if out := b.String(); !strings.Contains(out, "trove_storage_open 0\n") || strings.Contains(out, "trove_storage_disk_usage_bytes") {
		t.Errorf("after Close: %s; want trove_storage_open 0 and no store figures", out)
	}
}
