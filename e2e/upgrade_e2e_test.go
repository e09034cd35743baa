package e2e

// The upgrade end to end (issue 12): the real server, started on a copy of
// storage/testdata/v1store, a data directory written by the server of
// commit 836b928 (see storage/testdata/v1store.md), must export what that
// server exported, byte for byte, and must still know every messageId and
// Idempotency-Key it stored. storage/upgrade_test.go checks the same
// fixture through the storage API.

import (
	"bytes"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-json"
)

const (
	v1DataDir     = moduleRoot + "/storage/testdata/v1store"
	v1ExpectedDir = moduleRoot + "/storage/testdata/v1store-expected"
)

// v1Config is the configuration the fixture was written with (its second
// run: merger off, so that fresh blocks stay as written), but for the dedup
// window, which must reach back to the fixture's receivedAt from today.
func v1Config(dedupWindow string) string {
	return `admin_token = "adm1n-upgrade-fixture"
log_level = "debug"

[ingest]
dedup_window = "` + dedupWindow + `"

[storage]
merge_interval = "1h"
merge_min_age = "30s"

[[apps]]
name = "demo"
app_key = "yz1Jn-0pSnekg58etEQO4A"
require_token = false

[[apps]]
name = "shop"
app_key = "shop-7Hq2Lx9c-fixture"
require_token = true

[[tokens]]
name = "fixture"
secret = "s3cret-upgrade-fixture"
scopes = ["ingest", "export", "admin"]
apps = ["*"]
`
}

// v1E2EManifest is storage/testdata/v1store-expected/manifest.json.
type v1E2EManifest struct {
	Files       []v1Entry         `json:"files"`
	Watermarks  map[string]uint64 `json:"watermarks"`
	ClientIDs   map[string]string `json:"clientIdFiles"`
	DeletedUser struct {
		App string `json:"app"`
	} `json:"deletedUser"`
	Idempotent struct {
		Path       string `json:"path"`
		Key        string `json:"idempotencyKey"`
		BodyFile   string `json:"bodyFile"`
		AnswerFile string `json:"answerFile"`
	} `json:"idempotentProfileRequest"`
	Tokens struct {
		Admin   string                  `json:"admin_token"`
		Config  string                  `json:"config_token"`
		Reader  struct{ Secret string } `json:"api_reader"`
		Revoked struct{ Secret string } `json:"api_revoked"`
	} `json:"tokens"`
	ReceivedAt struct {
		Min string `json:"min"`
	} `json:"receivedAt"`
}

// v1Entry is one request of the manifest, and what the old server answered.
type v1Entry struct {
	File        string `json:"file"`
	Request     string `json:"request"`
	Kind        string `json:"kind"`
	App         string `json:"app"`
	Auth        string `json:"auth"`
	Status      int    `json:"status"`
	Watermark   string `json:"watermark"`
	ContentType string `json:"contentType"`
}

func readV1File(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(v1ExpectedDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// prepareV1 copies the fixture into a temporary data directory and returns
// the manifest, that directory and the configuration to serve it with.
func prepareV1(t *testing.T) (m *v1E2EManifest, dataDir, cfg string) {
	t.Helper()
	m = &v1E2EManifest{}
	if err := json.Unmarshal(readV1File(t, "manifest.json"), m); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	dataDir = t.TempDir()
	if err := os.CopyFS(dataDir, os.DirFS(v1DataDir)); err != nil {
		t.Fatal(err)
	}
	first, err := time.Parse(time.RFC3339Nano, m.ReceivedAt.Min)
	if err != nil {
		t.Fatalf("manifest receivedAt.min %q: %v", m.ReceivedAt.Min, err)
	}
	// The age of the fixture's oldest receivedAt today, plus the default 30
	// days.
	days := int(math.Ceil(time.Since(first).Hours()/24)) + 30
	return m, dataDir, v1Config(strconv.Itoa(days) + "d")
}

// auth is the Authorization header for a manifest entry's auth.
func (m *v1E2EManifest) auth(t *testing.T, which string) string {
	t.Helper()
	secret := map[string]string{
		"config token (fixture)":     m.Tokens.Config,
		"admin_token":                m.Tokens.Admin,
		"api token (fixture-reader)": m.Tokens.Reader.Secret,
	}[which]
	if secret == "" {
		t.Fatalf("manifest auth %q is not known here", which)
	}
	return "Authorization: Bearer " + secret
}

// entry returns the manifest entry of request.
func (m *v1E2EManifest) entry(t *testing.T, request string) v1Entry {
	t.Helper()
	for _, f := range m.Files {
		if f.Request == request {
			return f
		}
	}
	t.Fatalf("the manifest has no %q", request)
	return v1Entry{}
}

// checkV1Entry repeats the request of f and compares the answer with the
// old server's; it returns the answer's watermark (0 when it has none).
func checkV1Entry(t *testing.T, m *v1E2EManifest, addr string, f v1Entry) uint64 {
	t.Helper()
	method, path, ok := strings.Cut(f.Request, " ")
	if !ok || method != "GET" {
		t.Fatalf("request %q: want GET /path", f.Request)
	}
	r := request(t, method, "http://"+addr+path, nil, m.auth(t, f.Auth), "Accept-Encoding: identity")
	if r.status != f.Status {
		t.Fatalf("%s: status %d (%s); want %d", f.Request, r.status, r.body, f.Status)
	}
	if ct := r.header.Get("Content-Type"); ct != f.ContentType {
		t.Errorf("%s: Content-Type %q; want %q", f.Request, ct, f.ContentType)
	}
	if want := readV1File(t, f.File); !bytes.Equal(r.body, want) {
		t.Fatalf("%s: %s", f.Request, firstDifference(r.body, want))
	}
	if f.Watermark == "" {
		return 0
	}
	// A start skips the unused rest of the last sequence lease
	// (storage/seq.go), so the watermark is above the old server's, never
	// equal to it; what matters is that a pull from the old one misses
	// nothing and repeats nothing (see checkV1Exports).
	got, err := strconv.ParseUint(r.header.Get("X-Trove-Watermark"), 10, 64)
	if err != nil {
		t.Fatalf("%s: X-Trove-Watermark %q: %v", f.Request, r.header.Get("X-Trove-Watermark"), err)
	}
	if old, _ := strconv.ParseUint(f.Watermark, 10, 64); got < old {
		t.Errorf("%s: X-Trove-Watermark %d; want at least %d, the old server's", f.Request, got, old)
	}
	return got
}

// checkV1Exports repeats every request of the manifest, then pulls since
// the old server's watermark, and returns the watermark.
func checkV1Exports(t *testing.T, m *v1E2EManifest, addr string) uint64 {
	t.Helper()
	var wm uint64
	for _, f := range m.Files {
		t.Run(f.File, func(t *testing.T) {
			got := checkV1Entry(t, m, addr, f)
			if got != 0 && wm != 0 && got != wm {
				t.Errorf("%s: X-Trove-Watermark %d; want %d, as for the other exports (nothing was written)", f.Request, got, wm)
			}
			wm = max(wm, got)
		})
	}
	old := m.Watermarks["endB"]
	for app := range m.ClientIDs {
		for _, path := range []string{"/v1/export/events", "/v1/export/profiles", "/v1/export/rejected"} {
			e := exportFrom(t, addr, path, app, "since="+strconv.FormatUint(old, 10), m.auth(t, "config token (fixture)"))
			if len(e.lines) != 0 {
				t.Errorf("%s?appKey=%s&since=%d (the old watermark): %d lines; want none:\n%s", path, app, old, len(e.lines), strings.Join(e.lines, "\n"))
			}
		}
	}
	return wm
}

// firstDifference describes where got first differs from want.
func firstDifference(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("%d bytes; want %d; first difference at line %d:\ngot  %s\nwant %s", len(got), len(want), i+1, gl, wl)
		}
	}
	return "same lines, different bytes"
}

// TestE2EUpgradeV1 serves the v1 fixture twice (the first start after an
// upgrade, and the next) and checks every export against the old server's;
// then it resends every client messageId the old server stored (each is a
// duplicate), and the Idempotency-Key profile request (not applied again).
func TestE2EUpgradeV1(t *testing.T) {
	t.Parallel()
	m, dir, cfg := prepareV1(t)
	var wm uint64
	t.Run("first start", func(t *testing.T) {
		srv := startServer(t, cfg, inDir(dir))
		addr, stop := srv.addr, srv.stop
		defer stop()
		wm = checkV1Exports(t, m, addr)
	})
	addr := startServer(t, cfg, inDir(dir)).addr
	t.Run("second start", func(t *testing.T) {
		if again := checkV1Exports(t, m, addr); again != wm {
			t.Errorf("watermark %d; want %d, as after the first start (a start without writes moves no sequence)", again, wm)
		}
	})
	if t.Failed() {
		return
	}

	// Every client messageId stored, the deleted user's too, is a
	// duplicate; one new id in the same request is stored, and is a
	// duplicate the next time.
	ingest := m.auth(t, "config token (fixture)")
	for app, file := range m.ClientIDs {
		var ids []string
		for l := range strings.Lines(string(readV1File(t, file))) {
			ids = append(ids, strings.TrimSuffix(l, "\n"))
		}
		newID := "upgrade-e2e-new-" + app
		var evs []string
		for _, id := range append(ids, newID) {
			evs = append(evs, fmt.Sprintf(`{"type":"event","event":"resent","userId":"upgrade-e2e","eventTime":"2026-11-22T12:00:00Z","appKey":%q,"messageId":%q}`, app, id))
		}
		body := "[" + strings.Join(evs, ",") + "]"
		a := decodeAnswer(t, postEvents(t, addr, body, jsonType, ingest), http.StatusAccepted)
		if a.Accepted != 1 || a.Duplicates != len(ids) || a.Rejected != 0 {
			t.Errorf("app %s: %d old messageIds and a new one resent: accepted %d, duplicates %d, rejected %d; want 1, %d, 0",
				app, len(ids), a.Accepted, a.Duplicates, a.Rejected, len(ids))
		}
		a = decodeAnswer(t, postEvents(t, addr, body, jsonType, ingest), http.StatusAccepted)
		if a.Accepted != 0 || a.Duplicates != len(ids)+1 {
			t.Errorf("app %s: the same again: accepted %d, duplicates %d; want 0, %d", app, a.Accepted, a.Duplicates, len(ids)+1)
		}
		// The export is the old one and the new event, nothing else.
		f := m.entry(t, "GET /v1/export/events?appKey="+app)
		e := exportFrom(t, addr, "/v1/export/events", app, "", ingest)
		want := strings.Split(strings.TrimSuffix(string(readV1File(t, f.File)), "\n"), "\n")
		if len(e.lines) != len(want)+1 || strings.Join(e.lines[:len(want)], "\n") != strings.Join(want, "\n") {
			t.Fatalf("app %s after the resend: %d lines; want the %d old ones, then the new event", app, len(e.lines), len(want))
		}
		if got := messageIDs(t, e.lines[len(want):]); got[0] != newID {
			t.Errorf("app %s: the new line has messageId %q; want %q", app, got[0], newID)
		}
	}

	// The profile request with an Idempotency-Key is answered as the first
	// time and not applied again.
	idem := m.Idempotent
	r := request(t, "POST", "http://"+addr+idem.Path, bytes.NewReader(readV1File(t, idem.BodyFile)),
		jsonType, ingest, "Idempotency-Key: "+idem.Key)
	if r.status != http.StatusAccepted || r.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("POST %s with Idempotency-Key %q: status %d, Idempotent-Replayed %q (%s); want 202, true", idem.Path, idem.Key, r.status, r.header.Get("Idempotent-Replayed"), r.body)
	}
	if want := readV1File(t, idem.AnswerFile); !bytes.Equal(r.body, want) {
		t.Errorf("POST %s with Idempotency-Key %q: answer %s; want the first one, %s", idem.Path, idem.Key, r.body, want)
	}
	// So every profile, and the rejected events, are still as exported.
	for _, f := range m.Files {
		if f.Kind == "profiles" || f.Kind == "profile" || f.Kind == "rejected" || f.Kind == "admin" {
			checkV1Entry(t, m, addr, f)
		}
	}

	// The token revoked before the upgrade stays refused.
	r = request(t, "GET", "http://"+addr+"/v1/export/events?appKey="+m.DeletedUser.App, nil, "Authorization: Bearer "+m.Tokens.Revoked.Secret)
	if r.status != http.StatusUnauthorized {
		t.Errorf("export with the token revoked before the upgrade: status %d (%s); want 401", r.status, r.body)
	}
}
