package web

import (
	"log/slog"
	"testing"

	"trove/auth"
)

// TestIsWrite checks which routes of the real route table a full disk
// refuses.
func TestIsWrite(t *testing.T) {
	want := map[string]bool{
		"POST /v1/events":          true,
		"POST /users/profile":      true,
		"POST /v1/users/profile":   true,
		"DELETE /v1/users/profile": true,
		"POST /admin/apps":         true,
		"POST /admin/tokens":       true,
		"DELETE /admin/tokens/":    false, // revocation must not wait
		"POST /admin/backup":       false, // stores nothing
		"GET /v1/export/events":    false,
		"GET /readyz":              false,
	}
	s := New(Config{}, auth.NewRegistry(), Handlers{}, slog.New(slog.DiscardHandler))
	seen := map[string]bool{}
	for i := range s.Routes() {
		r := &s.Routes()[i]
		key := r.Method + " " + r.Path
		seen[key] = true
		w, ok := want[key]
		if !ok {
			// Routes added later: every writing method is gated.
			w = r.Method != "GET" && r.Method != "HEAD"
		}
		if got := isWrite(r); got != w {
			t.Errorf("%s: got isWrite %v; want %v", key, got, w)
		}
	}
	for _, key := range []string{"POST /v1/events", "POST /users/profile", "GET /readyz"} {
		if !seen[key] {
			t.Errorf("route %s is not in the table", key)
		}
	}
}
