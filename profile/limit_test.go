package profile

import (
	"errors"
	"strconv"
	"sync"
	"testing"

	"github.com/valyala/fasthttp"

	"trove/auth"
)

// recordingLimiter records what it is charged and refuses when told to.
type recordingLimiter struct {
	mu     sync.Mutex
	refuse error
	calls  []string
}

func (l *recordingLimiter) Take(keys []string, counts []int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, k := range keys {
		l.calls = append(l.calls, k+"="+strconv.Itoa(counts[i]))
	}
	return l.refuse
}

// TestUpdateRateLimited: each profile of a request is one event of its
// app, and a refused request changes nothing.
func TestUpdateRateLimited(t *testing.T) {
	s := startServer(t)
	refused := errors.New("over the limit")
	l := &recordingLimiter{refuse: refused}
	s.h.SetLimiter(l)
	update := func() (*fasthttp.RequestCtx, error) {
		t.Helper()
		ctx := &fasthttp.RequestCtx{}
		ctx.Request.Header.SetMethod("POST")
		ctx.Request.Header.SetContentType("application/json")
		ctx.Request.SetBodyString(`{"appKey":"` + appA + `","user_profiles":[{"userId":"u1","first_name":"A"},{"userId":"u2","first_name":"B"},{"userId":"u3","first_name":"C"}]}`)
		tok, err := s.reg.Authenticate([]byte(tokOnlyA))
		if err != nil {
			t.Fatal(err)
		}
		auth.WithToken(ctx, tok)
		return ctx, s.h.Update(ctx)
	}
	if _, err := update(); !errors.Is(err, refused) {
		t.Fatalf("got %v; want the limiter's error", err)
	}
	if _, err := s.db.App(appA); err == nil {
		t.Errorf("app %s was registered by a refused request; want nothing written", appA)
	}
	l.mu.Lock()
	l.refuse = nil
	l.mu.Unlock()
	ctx, err := update()
	if err != nil || ctx.Response.StatusCode() != fasthttp.StatusAccepted {
		t.Fatalf("got %v, status %d; want 202", err, ctx.Response.StatusCode())
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if want := []string{appA + "=3", appA + "=3"}; len(l.calls) != 2 || l.calls[0] != want[0] || l.calls[1] != want[1] {
		t.Errorf("got charges %q; want %q", l.calls, want)
	}
}
