package export_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"

	"trove/apierr"
	"trove/auth"
	"trove/export"
	"trove/internal/authtest"
	"trove/profile"
	"trove/storage"
)

const profSecret = "profiles-export-secret"

// profProfile returns the stored JSON of profile n, as the profile handler
// writes it, updated at the given time (RFC 3339 with milliseconds).
// Its attribute named updated_at must not confuse the filter.
func profProfile(t *testing.T, n byte, version int, updatedAt string) string {
	t.Helper()
	p := profile.Profile{
		PyzeID:         fmt.Sprintf("00000000-0000-0000-0000-%012x", n),
		UserID:         fmt.Sprintf("user-%d", n),
		Attributes:     map[string]json.RawMessage{"v": json.RawMessage(strconv.Itoa(version)), "updated_at": json.RawMessage(`"2999-01-01T00:00:00.000Z"`)},
		AttributeTypes: map[string]string{"v": "integer", "updated_at": "date"},
		CreatedAt:      "2024-01-01T00:00:00.000Z",
		UpdatedAt:      updatedAt,
	}
	b, err := json.Marshal(&p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// profPut commits one profile transaction putting each body under its
// profile number, reading it first as the profile handler does.
func profPut(t *testing.T, db *storage.DB, appKey string, bodies map[byte]string, order ...byte) {
	t.Helper()
	id, err := db.EnsureApp(appKey)
	if err != nil {
		t.Fatal(err)
	}
	txn, err := db.BeginProfiles(id, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Close()
	for _, n := range order {
		var pid storage.ProfileID
		pid[15] = n
		if _, _, err := txn.Profile(pid); err != nil {
			t.Fatal(err)
		}
		txn.PutProfile(pid, []byte(bodies[n]))
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
}

// profServe runs h.Profiles behind a fasthttp server on 127.0.0.1:0 that
// authenticates Bearer tokens against reg and answers errors with the
// status the web package gives them and the field in X-Field.
func profServe(t *testing.T, h *export.Handler, reg *auth.Registry) (base string) {
	t.Helper()
	base, _ = serveHTTP(t, false, func(ctx *fasthttp.RequestCtx) {
		err := func() error {
			secret, ok, err := auth.Credential(ctx.Request.Header.Peek("Authorization"))
			if err != nil {
				return err
			}
			if ok {
				tok, err := reg.Authenticate(secret)
				if err != nil {
					return err
				}
				auth.WithToken(ctx, tok)
			}
			return h.Profiles(ctx)
		}()
		if err == nil {
			return
		}
		status := fasthttp.StatusInternalServerError
		switch {
		case errors.Is(err, auth.ErrUnauthenticated):
			status = fasthttp.StatusUnauthorized
		case errors.Is(err, auth.ErrForbidden):
			status = fasthttp.StatusForbidden
		case errors.Is(err, apierr.Invalid):
			status = fasthttp.StatusBadRequest
		}
		ctx.Error(err.Error(), status) // resets the response
		var f interface{ ErrorField() string }
		if errors.As(err, &f) {
			ctx.Response.Header.Set("X-Field", f.ErrorField())
		}
	})
	return base + "/v1/export/profiles?"
}

type profResp struct {
	status           int
	body, wm, field  string
	transferEncoding []string
}

func profGet(t *testing.T, url string, secret string) profResp {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading %s: %v", url, err)
	}
	return profResp{resp.StatusCode, string(b), resp.Header.Get("X-Trove-Watermark"), resp.Header.Get("X-Field"), resp.TransferEncoding}
}

func TestProfilesExport(t *testing.T) {
	db := openStore(t)
	reg := registry(authtest.Token{Secret: profSecret, Name: "export", Scopes: auth.ScopeExport, Apps: []string{"*"}},
		authtest.Token{Secret: "ingest-only", Name: "ingest", Scopes: auth.ScopeIngest, Apps: []string{"*"}})
	h := export.NewHandler(db, reg, slog.New(slog.DiscardHandler))
	base := profServe(t, h, reg)

	v1 := map[byte]string{
		1: profProfile(t, 1, 1, "2024-03-01T10:00:00.000Z"),
		2: profProfile(t, 2, 1, "2024-03-02T10:00:00.000Z"),
		3: profProfile(t, 3, 1, "2024-03-03T10:00:00.500Z"),
	}
	profPut(t, db, appA, v1, 1, 2, 3)                                                                      // sequences 1-3
	store(t, db, appA, []string{eventBody(1)}, 1)                                                          // sequence 4: an event
	profPut(t, db, appB+"-other", map[byte]string{7: profProfile(t, 7, 1, "2024-03-09T00:00:00.000Z")}, 7) // 5, another app (not declared)
	lines := func(bs ...string) string { return strings.Join(bs, "\n") + "\n" }

	// The snapshot export.
	r := profGet(t, base+"appKey="+appA, profSecret)
	if r.status != 200 || r.body != lines(v1[1], v1[2], v1[3]) || r.wm != "5" {
		t.Fatalf("snapshot export: status %d, watermark %q, body\n%s\nwant 200, 5, profiles 1-3", r.status, r.wm, r.body)
	}
	if len(r.transferEncoding) != 1 || r.transferEncoding[0] != "chunked" {
		t.Errorf("Transfer-Encoding %v; want chunked", r.transferEncoding)
	}
	wm := r.wm

	// More updates: profile 2 twice (its latest state wins, once), then 1.
	v2 := map[byte]string{
		1: profProfile(t, 1, 2, "2024-03-05T10:00:00.000Z"),
		2: profProfile(t, 2, 2, "2024-03-04T10:00:00.000Z"),
		4: profProfile(t, 4, 1, "2024-03-04T12:00:00.000Z"),
	}
	v3 := map[byte]string{2: profProfile(t, 2, 3, "2024-03-06T10:00:00.000Z")}
	profPut(t, db, appA, v2, 2, 4) // 6, 7
	profPut(t, db, appA, v3, 2)    // 8
	profPut(t, db, appA, v2, 1)    // 9

	tests := []struct {
		name, query string
		want        string
		wm          string
	}{
		{"since the first watermark", "&since=" + wm, lines(v2[4], v3[2], v2[1]), "9"},
		{"everything", "", lines(v1[3], v2[4], v3[2], v2[1]), "9"},
		{"since 0", "&since=0", lines(v1[3], v2[4], v3[2], v2[1]), "9"},
		{"since the watermark", "&since=9", "", "9"},
		{"updatedSince a date", "&updatedSince=2024-03-05", lines(v3[2], v2[1]), "9"},
		{"updatedSince exactly a profile's updated_at", "&updatedSince=2024-03-04T12:00:00Z", lines(v2[4], v3[2], v2[1]), "9"},
		{"updatedSince between milliseconds", "&updatedSince=2024-03-03T10:00:00.4999Z", lines(v1[3], v2[4], v3[2], v2[1]), "9"},
		{"updatedSince after a millisecond", "&updatedSince=2024-03-03T10:00:00.5001Z", lines(v2[4], v3[2], v2[1]), "9"},
		{"updatedSince with an offset", "&updatedSince=2024-03-06T12:00:00%2B02:00", lines(v3[2]), "9"},
		{"updatedSince and since", "&updatedSince=2024-03-05&since=8", lines(v2[1]), "9"},
		{"updatedSince after all", "&updatedSince=2030-01-01", "", "9"},
		{"declared app with nothing stored", "", "", "9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			app := appA
			if strings.HasPrefix(tc.name, "declared") {
				app = appB
			}
			r := profGet(t, base+"appKey="+app+tc.query, profSecret)
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			if r.body != tc.want {
				t.Errorf("got\n%s\nwant\n%s", r.body, tc.want)
			}
			if r.wm != tc.wm {
				t.Errorf("X-Trove-Watermark %q; want %q", r.wm, tc.wm)
			}
		})
	}

	errTests := []struct {
		name, query, secret string
		status              int
		field               string
	}{
		{"bad since", "appKey=" + appA + "&since=abc", profSecret, 400, "since"},
		{"negative since", "appKey=" + appA + "&since=-1", profSecret, 400, "since"},
		{"since beyond the watermark", "appKey=" + appA + "&since=10", profSecret, 400, "since"},
		{"bad updatedSince", "appKey=" + appA + "&updatedSince=yesterday", profSecret, 400, "updatedSince"},
		{"updatedSince without a zone", "appKey=" + appA + "&updatedSince=2024-03-05T10:00:00", profSecret, 400, "updatedSince"},
		{"no appKey", "", profSecret, 400, "appKey"},
		{"no token", "appKey=" + appA, "", 401, ""},
		{"unknown token", "appKey=" + appA, "nope", 401, ""},
		{"token without export scope", "appKey=" + appA, "ingest-only", 403, ""},
	}
	for _, tc := range errTests {
		t.Run(tc.name, func(t *testing.T) {
			r := profGet(t, base+tc.query, tc.secret)
			if r.status != tc.status || r.field != tc.field {
				t.Errorf("status %d, field %q (%s); want %d, %q", r.status, r.field, r.body, tc.status, tc.field)
			}
			if r.wm != "" {
				t.Errorf("an error response carries X-Trove-Watermark %q", r.wm)
			}
		})
	}
}

// TestProfilesExportIsASnapshot checks that profiles changed while an
// export is being read are not in it, and come with since=watermark.
func TestProfilesExportIsASnapshot(t *testing.T) {
	db := openStore(t)
	h := export.NewHandler(db, registry(), slog.New(slog.DiscardHandler))
	a := profProfile(t, 1, 1, "2024-03-01T10:00:00.000Z")
	b := profProfile(t, 1, 2, "2024-03-02T10:00:00.000Z")
	c := profProfile(t, 2, 1, "2024-03-02T10:00:00.000Z")
	profPut(t, db, appA, map[byte]string{1: a}, 1)

	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI("/v1/export/profiles?appKey=" + appA)
	auth.WithToken(&ctx, allToken)
	if err := h.Profiles(&ctx); err != nil {
		t.Fatal(err)
	}
	profPut(t, db, appA, map[byte]string{1: b, 2: c}, 1, 2) // after the export began
	got, err := io.ReadAll(ctx.Response.BodyStream())
	ctx.Response.CloseBodyStream()
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != a+"\n" {
		t.Errorf("got\n%s\nwant\n%s", got, a)
	}
	wm := string(ctx.Response.Header.Peek("X-Trove-Watermark"))
	next, wm2, err := call(t, h.Profiles, "/v1/export/profiles?appKey="+appA+"&since="+wm, allToken)
	if err != nil || next != b+"\n"+c+"\n" || wm2 != "3" {
		t.Errorf("since=%s: got %q (watermark %s), %v; want both changed profiles once, watermark 3", wm, next, wm2, err)
	}
}
