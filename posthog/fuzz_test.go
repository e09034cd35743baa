package posthog

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"

	"trove/apierr"
	"trove/auth"
	"trove/compat"
	"trove/ingest"
	"trove/profile"
	"trove/storage"
)

const (
	testApp   = "yz1Jn-0pSnekg58etEQO4A"
	testToken = "s3cret-test-token"
)

// newCore returns a Core over an in-memory store, with one app (alias
// "alias-key") and a token with ingest scope for it.
func newCore(tb testing.TB) *compat.Core {
	tb.Helper()
	db, err := storage.Open(tb.TempDir(), storage.Options{InMemory: true, DedupWindow: time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	reg := auth.NewRegistry()
	reg.AddApp(auth.App{Name: "a", AppKey: testApp})
	reg.AddToken(auth.Token{ID: "t", Name: "t", Digest: auth.Digest([]byte(testToken)), Scopes: auth.ScopeIngest, Apps: map[string]bool{testApp: true}})
	ih := ingest.NewHandler(ingest.DefaultConfig(), reg, ingest.StoreSink{DB: db})
	ph := profile.NewHandler(profile.DefaultConfig(), reg, db)
	return compat.New(compat.Config{Aliases: map[string]string{"alias-key": testApp}}, reg, ih, ph)
}

// serve sends one request to serve and returns the status web would
// answer (0 for a handler's own answer), the body, and the error.
func serve(serve func(*fasthttp.RequestCtx) error, method, uri, contentType string, body []byte) (*fasthttp.RequestCtx, error) {
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod(method)
	ctx.Request.SetRequestURI(uri)
	if contentType != "" {
		ctx.Request.Header.SetContentType(contentType)
	}
	ctx.Request.SetBody(body)
	return &ctx, serve(&ctx)
}

// checkOutcome fails unless err is one a client caused (a request or key
// error, never a failure of the server) or the answer is well formed.
func checkOutcome(t *testing.T, ctx *fasthttp.RequestCtx, err error) {
	t.Helper()
	if err != nil {
		var re *apierr.Error
		var ke *compat.KeyError
		if !errors.As(err, &re) && !errors.As(err, &ke) {
			t.Fatalf("error %T %v; want a request or key error", err, err)
		}
		return
	}
	b := ctx.Response.Body()
	if bytes.Equal(b, []byte("1")) {
		return
	}
	var ans struct{ Accepted, Duplicates, Rejected int }
	if err := json.Unmarshal(b, &ans); err != nil {
		t.Fatalf("answer %q is not JSON: %v", b, err)
	}
	if ans.Accepted < 0 || ans.Duplicates < 0 || ans.Rejected < 0 {
		t.Fatalf("answer %s: negative counts", b)
	}
}

// FuzzServe feeds arbitrary bodies to every PostHog path: no panic, and
// either an error the client caused or a well-formed answer.
func FuzzServe(f *testing.F) {
	for _, s := range []string{
		`{"api_key":"` + testApp + `","batch":[{"event":"a","distinct_id":"u","uuid":"x","properties":{"$set":{"email":"a@b.co"},"$unset":["p"]}}]}`,
		`{"api_key":"alias-key","event":"$identify","distinct_id":7,"properties":{"$anon_distinct_id":"anon"},"$set":{"a":{"b":1}}}`,
		`[{"event":"$create_alias","properties":{"token":"` + testToken + `","distinct_id":"u","alias":"v"}}]`,
		`{"api_key":"` + testToken + `","batch":[{"event":"a"},3,null,{"event":"b","distinct_id":"u","properties":[1]}]}`,
		`{"api_key":1}`, `data=eyJldmVudCI6ImEifQ==`, ``, `[`,
	} {
		f.Add("/batch/", s)
	}
	h := NewHandler(newCore(f))
	f.Fuzz(func(t *testing.T, path, body string) {
		ctx, err := serve(h.Serve, "POST", "/capture/?"+path, "application/json", []byte(body))
		checkOutcome(t, ctx, err)
	})
}

// TestServe: the mapping of one batch, by what the answer counts.
func TestServe(t *testing.T) {
	h := NewHandler(newCore(t))
	tests := []struct {
		name, body                    string
		accepted, rejected, unchanged int
		wantErr                       bool
	}{
		{name: "a batch", body: `{"api_key":"` + testApp + `","batch":[{"event":"a","distinct_id":"u","uuid":"u1"},{"event":"b","distinct_id":"u"}]}`, accepted: 2},
		{name: "no distinct_id", body: `{"api_key":"` + testApp + `","batch":[{"event":"a"}]}`, rejected: 1},
		{name: "a $set with the appKey alone", body: `{"api_key":"` + testApp + `","event":"e","distinct_id":"u","properties":{"$set":{"a":1}}}`, accepted: 1, unchanged: 1},
		{name: "a $set with a token", body: `{"api_key":"` + testToken + `","event":"e","distinct_id":"u","properties":{"$set":{"a":1}}}`, accepted: 1},
		{name: "an unknown key", body: `{"api_key":"nope","event":"e","distinct_id":"u"}`, wantErr: true},
		{name: "not JSON", body: `{`, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, err := serve(h.Serve, "POST", "/batch/", "application/json", []byte(tc.body))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v; want error %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			var got struct {
				Status, Accepted, Rejected, ProfilesUnchanged int
			}
			json.Unmarshal(ctx.Response.Body(), &got)
			if got.Status != 1 || got.Accepted != tc.accepted || got.Rejected != tc.rejected || got.ProfilesUnchanged != tc.unchanged {
				t.Errorf("got %s; want status 1, %d accepted, %d rejected, %d unchanged", ctx.Response.Body(), tc.accepted, tc.rejected, tc.unchanged)
			}
		})
	}
}
