package cli

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestListenURL(t *testing.T) {
	for in, want := range map[string]string{
		"":               "http://127.0.0.1:8080",
		":8080":          "http://127.0.0.1:8080",
		":9000":          "http://127.0.0.1:9000",
		"0.0.0.0:8081":   "http://127.0.0.1:8081",
		"[::]:8082":      "http://127.0.0.1:8082",
		"127.0.0.1:8083": "http://127.0.0.1:8083",
		"10.1.2.3:8084":  "http://10.1.2.3:8084",
		"[::1]:8085":     "http://[::1]:8085",
		"localhost:8086": "http://localhost:8086",
		"nonsense":       DefaultServer,
	} {
		if got := listenURL(in); got != want {
			t.Errorf("listenURL(%q) = %q; want %q", in, got, want)
		}
	}
}

func healthRun(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := Healthcheck(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestHealthcheck(t *testing.T) {
	status := 200
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
		w.Write([]byte("ok\n"))
	}))
	defer s.Close()
	if code, stdout, stderr := healthRun("--server", s.URL); code != 0 || !strings.Contains(stdout, "healthy") {
		t.Errorf("200: exit %d, stdout %q, stderr %q; want 0", code, stdout, stderr)
	}
	// The address from TROVE_LISTEN, as in the container.
	_, port, _ := net.SplitHostPort(s.Listener.Addr().String())
	t.Setenv("TROVE_LISTEN", ":"+port)
	if code, _, stderr := healthRun(); code != 0 {
		t.Errorf("TROVE_LISTEN=:%s: exit %d, stderr %q; want 0", port, code, stderr)
	}
	status = 503
	if code, _, stderr := healthRun(); code != 1 || !strings.Contains(stderr, "unhealthy") || !strings.Contains(stderr, "503") {
		t.Errorf("503: exit %d, stderr %q; want 1 saying why", code, stderr)
	}
	s.Close()
	if code, _, stderr := healthRun(); code != 1 || !strings.Contains(stderr, "cannot reach http://127.0.0.1:"+port+"/healthz") {
		t.Errorf("no server: exit %d, stderr %q; want 1 saying why", code, stderr)
	}
	if code, _, _ := healthRun("extra"); code != 2 {
		t.Errorf("an extra argument: exit %d; want 2", code)
	}
}
