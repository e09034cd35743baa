package e2e

// Sinks (SPEC section 8): a real server writing to an S3-compatible server
// in the test process (gofakes3); the files, read back with DuckDB, must
// hold every event of the NDJSON export exactly once.

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-json"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"trove/internal/duckdbtest"
	"trove/internal/testutil"
)

// fakeS3 is an S3 server in the process with one bucket.
func fakeS3(t *testing.T, bucket string) (*s3mem.Backend, *httptest.Server) {
	t.Helper()
	be := s3mem.New()
	if err := be.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(be).Server())
	t.Cleanup(srv.Close)
	return be, srv
}

// objects returns the bucket's objects under prefix, by key.
func objects(t *testing.T, be *s3mem.Backend, bucket, prefix string) map[string][]byte {
	t.Helper()
	list, err := be.ListBucket(bucket, &gofakes3.Prefix{Prefix: prefix, HasPrefix: true}, gofakes3.ListBucketPage{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, c := range list.Contents {
		o, err := be.GetObject(bucket, c.Key, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(o.Contents)
		o.Contents.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[c.Key] = b
	}
	return out
}

// sinkStatus is GET /admin/sinks, as far as the tests read it.
type sinkStatus struct {
	StoreWatermark uint64 `json:"storeWatermark"`
	Sinks          []struct {
		Name string `json:"name"`
		Apps []struct {
			AppKey    string `json:"appKey"`
			Watermark uint64 `json:"watermark"`
			LagEvents int64  `json:"lagEvents"`
			Files     int64  `json:"files"`
			Bytes     int64  `json:"bytes"`
			Errors    int64  `json:"errors"`
			LastError string `json:"lastError"`
		} `json:"apps"`
	} `json:"sinks"`
}

// waitSinkDone polls GET /admin/sinks until the sink's watermark for app
// reaches want.
func waitSinkDone(t *testing.T, addr, app string, want uint64) sinkStatus {
	t.Helper()
	var st sinkStatus
	testutil.WaitFor(t, 60*time.Second, func() error {
		r := request(t, "GET", "http://"+addr+"/admin/sinks", nil, "Authorization: Bearer "+adminSecret)
		if r.status != http.StatusOK {
			t.Fatalf("GET /admin/sinks: %d %s", r.status, r.body)
		}
		st = sinkStatus{}
		if err := json.Unmarshal(r.body, &st); err != nil {
			t.Fatal(err)
		}
		for _, s := range st.Sinks {
			for _, a := range s.Apps {
				if a.AppKey == app && a.Watermark >= want {
					return nil
				}
			}
		}
		return fmt.Errorf("the sink has not reached watermark %d for %s: %s", want, app, r.body)
	})
	return st
}

func TestE2ESinkS3Parquet(t *testing.T) {
	duckdbtest.Dir(t)
	be, s3 := fakeS3(t, "analytics")
	cfg := testConfig + `
[[sinks]]
name = "lake"
endpoint = "` + s3.URL + `"
bucket = "analytics"
prefix = "trove/"
access_key_env = ""
secret_key_env = ""
every = "300ms"
max_events = 70
`
	addr := startServer(t, cfg).addr
	parquetEvents(t, addr, demoApp, backendSecret, 0, 100)
	parquetEvents(t, addr, otherApp, otherSecret, 0, 20)
	parquetEvents(t, addr, demoApp, backendSecret, 100, 80)
	all := exportEvents(t, addr, "")
	st := waitSinkDone(t, addr, demoApp, all.watermark)

	objs := objects(t, be, "analytics", "trove/"+demoApp+"/")
	var keys []string
	for k := range objs {
		if !strings.HasSuffix(k, "/_watermark.json") {
			keys = append(keys, k)
		}
	}
	if len(keys) < 3 {
		t.Fatalf("%d files (%q); want at least 3 for 180 events with max_events 70", len(keys), keys)
	}
	// Order the files by their first sequence; they must tile the app's
	// sequence, and together hold the export, each event once.
	sort.Slice(keys, func(i, j int) bool { return seqRange(t, keys[i])[0] < seqRange(t, keys[j])[0] })
	dir := t.TempDir()
	var lines []string
	next := uint64(1)
	for i, k := range keys {
		r := seqRange(t, k)
		if r[0] != next {
			t.Errorf("file %s starts at %d; want %d (right after the previous file)", k, r[0], next)
		}
		next = r[1] + 1
		path := filepath.Join(dir, "f.parquet")
		if err := os.WriteFile(path, objs[k], 0o600); err != nil {
			t.Fatal(err)
		}
		rows := duckdbtest.Query(t, parquetQuery(path))
		for j, row := range rows {
			seq := uint64(0)
			json.Unmarshal([]byte(row["seq"].(string)), &seq)
			if seq < r[0] || seq > r[1] {
				t.Errorf("file %d (%s) row %d: seq %d outside its range", i, k, j, seq)
			}
			lines = append(lines, row["raw"].(string))
		}
		if !strings.Contains(k, "/dt=2026-12-") && !strings.Contains(k, "/dt=20") {
			t.Errorf("file %s has no dt= day", k)
		}
	}
	if strings.Join(lines, "\n") != strings.Join(all.lines, "\n") {
		t.Errorf("the files hold %d events; want the %d of the export, in order, each once", len(lines), len(all.lines))
	}
	var wm struct {
		Watermark uint64 `json:"watermark"`
	}
	if err := json.Unmarshal(objs["trove/"+demoApp+"/_watermark.json"], &wm); err != nil || wm.Watermark < all.watermark {
		t.Errorf("_watermark.json %s; want a watermark of at least %d", objs["trove/"+demoApp+"/_watermark.json"], all.watermark)
	}
	for _, s := range st.Sinks {
		for _, a := range s.Apps {
			if a.AppKey == demoApp && (a.Files != int64(len(keys)) || a.Bytes <= 0) {
				t.Errorf("/admin/sinks: files %d bytes %d; want %d files", a.Files, a.Bytes, len(keys))
			}
		}
	}
	m := request(t, "GET", "http://"+addr+"/metrics", nil)
	if !strings.Contains(string(m.body), `trove_sink_watermark{sink="lake",app="`+demoApp+`"}`) {
		t.Errorf("/metrics has no trove_sink_watermark series for the sink and app")
	}
}

// seqRange reads {from}-{to} from a file's key.
func seqRange(t *testing.T, key string) [2]uint64 {
	t.Helper()
	base := filepath.Base(key)
	base = strings.TrimSuffix(strings.TrimSuffix(base, ".parquet"), ".ndjson.zst")
	from, to, ok := strings.Cut(base, "-")
	var r [2]uint64
	if !ok || json.Unmarshal([]byte(from), &r[0]) != nil || json.Unmarshal([]byte(to), &r[1]) != nil {
		t.Fatalf("file %s is not named {from}-{to}", key)
	}
	return r
}
