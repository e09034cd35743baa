// Package compattest is what the tests of the SDK-compatible protocols
// (amplitude, mixpanel, posthog) share: a compat.Core over an in-memory
// store, one request sent to a handler, and the check of its outcome. Only
// tests import it.
package compattest

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
	"trove/internal/authtest"
	"trove/profile"
	"trove/storage"
)

// App is the appKey of NewCore's app, Token the secret of its token with
// ingest scope; "alias-key" is an alias of App.
const (
	App   = "yz1Jn-0pSnekg58etEQO4A"
	Token = "s3cret-test-token"
)

// NewCore returns a Core over an in-memory store, with one app (alias
// "alias-key") and a token with ingest scope for it.
func NewCore(tb testing.TB) *compat.Core {
	tb.Helper()
	db, err := storage.Open(tb.TempDir(), storage.Options{InMemory: true, DedupWindow: time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	reg := authtest.NewRegistry([]auth.App{{Name: "a", AppKey: App}}, authtest.Token{Secret: Token, Name: "t", Scopes: auth.ScopeIngest, Apps: []string{App}})
	ih := ingest.NewHandler(ingest.DefaultConfig(), reg, ingest.StoreSink{DB: db})
	ph := profile.NewHandler(profile.DefaultConfig(), reg, db)
	return compat.New(compat.Config{Aliases: map[string]string{"alias-key": App}}, reg, ih, ph)
}

// Serve sends one request to serve and returns its context, holding the
// answer, and serve's error.
func Serve(serve func(*fasthttp.RequestCtx) error, method, uri, contentType string, body []byte) (*fasthttp.RequestCtx, error) {
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod(method)
	ctx.Request.SetRequestURI(uri)
	if contentType != "" {
		ctx.Request.Header.SetContentType(contentType)
	}
	ctx.Request.SetBody(body)
	return &ctx, serve(&ctx)
}

// CheckOutcome fails unless err is one a client caused (a request or key
// error, never a failure of the server) or the answer is well formed.
func CheckOutcome(t *testing.T, ctx *fasthttp.RequestCtx, err error) {
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

// Request is one POST that a fuzz input becomes.
type Request struct {
	URI, ContentType string
	Body             []byte
}

// Fuzz is the driver of every protocol's FuzzServe: it adds each of bodies
// with each of routes as seeds, and sends to serve the requests that
// requests makes of every input (a route, whose meaning is the protocol's,
// and a body). Whatever the input, serve must not panic and each outcome
// must pass CheckOutcome.
func Fuzz[R string | uint8](f *testing.F, serve func(*fasthttp.RequestCtx) error, routes []R, bodies []string, requests func(route R, body string) []Request) {
	for _, body := range bodies {
		for _, route := range routes {
			f.Add(route, body)
		}
	}
	f.Fuzz(func(t *testing.T, route R, body string) {
		for _, r := range requests(route, body) {
			ctx, err := Serve(serve, "POST", r.URI, r.ContentType, r.Body)
			CheckOutcome(t, ctx, err)
		}
	})
}
