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
		`trove_http_request_duration_seconds_bucket{method="GET",route="/obs-test",le="0.001"} 0` + "\n",
		`trove_http_request_duration_seconds_bucket{method="GET",route="/obs-test",le="0.0025"} 1` + "\n",
		`trove_http_request_duration_seconds_bucket{method="GET",route="/obs-test",le="+Inf"} 1` + "\n",
		"# TYPE trove_http_request_duration_seconds histogram\n",
		"# TYPE trove_http_requests_total counter\n",
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

func TestExpose(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"help filled in", "# HELP trove_events_stored_total\n# TYPE trove_events_stored_total counter\ntrove_events_stored_total 3\n",
			"# HELP trove_events_stored_total " + help["trove_events_stored_total"] + "\n# TYPE trove_events_stored_total counter\ntrove_events_stored_total 3\n"},
		{"library help replaced", "# HELP go_goroutines whatever\n", "# HELP go_goroutines " + help["go_goroutines"] + "\n"},
		{"unknown family", "# HELP trove_new_thing\n", "# HELP trove_new_thing Undocumented series trove_new_thing.\n"},
		{"renamed with its samples", "# HELP go_cgo_calls_count\n# TYPE go_cgo_calls_count counter\ngo_cgo_calls_count 0\n",
			"# HELP go_cgo_calls_total " + help["go_cgo_calls_total"] + "\n# TYPE go_cgo_calls_total counter\ngo_cgo_calls_total 0\n"},
		{"only whole names renamed", "go_cpu_count_x 1\ngo_cpu_count 2\n", "go_cpu_count_x 1\ngo_cpus 2\n"},
		{"mistyped counter", "# TYPE process_io_read_bytes_total gauge\n", "# TYPE process_io_read_bytes_total counter\n"},
		{"labels kept", `trove_http_requests_total{method="GET",route="/x",code="200"} 1` + "\n",
			`trove_http_requests_total{method="GET",route="/x",code="200"} 1` + "\n"},
		{"no final newline", "a 1", "a 1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(expose(nil, []byte(tt.in))); got != tt.want {
				t.Errorf("expose(%q) =\n%s\nwant\n%s", tt.in, got, tt.want)
			}
		})
	}
}

// TestEveryFamilyHasHelp scrapes every kind of series Trove writes (the
// set's, the process's, a store's) and checks that each family has a TYPE
// line, a HELP text of its own (not the placeholder), and, for histograms,
// Prometheus' le buckets rather than VictoriaMetrics' vmrange.
func TestEveryFamilyHasHelp(t *testing.T) {
	SetBuildInfo("test")
	App("obs-help-app").EventsRejected.Inc()
	Export(KindEvents).Lines.Inc()
	Route("GET", "/obs-help").Request(200)
	Route("GET", "/obs-help").Duration.Update(0.1)
	dir := t.TempDir()
	db, err := storage.Open(dir, storage.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var b bytes.Buffer
	WritePrometheus(&b)
	StoreWriter(db, dir)(&b)
	out := b.String()

	typed, helped := map[string]string{}, map[string]bool{}
	for line := range strings.Lines(out) {
		line = strings.TrimSuffix(line, "\n")
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, _ := strings.Cut(rest, " ")
			if _, dup := typed[name]; dup {
				t.Errorf("family %s has two TYPE lines", name)
			}
			typed[name] = typ
			if typ == "untyped" || typ == "" {
				t.Errorf("family %s: TYPE %q; want counter, gauge, histogram or summary", name, typ)
			}
			continue
		}
		if rest, ok := strings.CutPrefix(line, "# HELP "); ok {
			name, text, _ := strings.Cut(rest, " ")
			helped[name] = true
			if text == "" || strings.HasPrefix(text, "Undocumented") {
				t.Errorf("family %s has no HELP text of its own (%q): add it to help in obs/help.go", name, text)
			}
			continue
		}
		if strings.Contains(line, "vmrange=") {
			t.Errorf("%s: a vmrange bucket; want le buckets", line)
		}
		name := line[:strings.IndexAny(line, "{ ")]
		fam := name
		if _, ok := typed[fam]; !ok {
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if f, ok := strings.CutSuffix(name, suf); ok {
					if typ := typed[f]; typ == "histogram" || typ == "summary" {
						fam = f
					}
				}
			}
		}
		if _, ok := typed[fam]; !ok {
			t.Errorf("series %s comes before (or without) its family's TYPE line", name)
		}
	}
	for name := range typed {
		if !helped[name] {
			t.Errorf("family %s has a TYPE line but no HELP line", name)
		}
	}
	for _, want := range []string{"trove_http_request_duration_seconds", "trove_storage_open", "go_goroutines", "process_cpu_seconds_total"} {
		if _, ok := typed[want]; !ok {
			t.Errorf("scrape lacks family %s:\n%s", want, out)
		}
	}
}
