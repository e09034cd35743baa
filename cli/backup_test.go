package cli

import (
	"archive/tar"
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// testArchive is a small backup in the format of package backup, written
// here by hand from its documented layout: manifest.json, store/, files.
func testArchive(t testing.TB) []byte {
	t.Helper()
	files := []struct{ name, body string }{{"store/000001.log", "log"}, {"store/MANIFEST-000001", strings.Repeat("m", 100_000)}}
	manifest := `{"format":1,"troveVersion":"test","createdAt":"2026-11-30T01:02:03Z","watermark":9,"files":[` +
		`{"name":"store/000001.log","size":3},{"name":"store/MANIFEST-000001","size":100000}]}`
	var buf bytes.Buffer
	zw, _ := zstd.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "manifest.json", Size: int64(len(manifest)), Mode: 0o644})
	tw.Write([]byte(manifest))
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "store/", Mode: 0o755})
	for _, f := range files {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Size: int64(len(f.body)), Mode: 0o644})
		tw.Write([]byte(f.body))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	return buf.Bytes()
}

// backupServer imitates POST /admin/backup: body is what it sends, cut
// off (the connection closed without the terminating chunk) after cut
// bytes when cut > 0.
type backupServer struct {
	*httptest.Server
	body []byte
	cut  int

	mu   sync.Mutex
	reqs []*http.Request
}

func newBackupServer(t *testing.T, body []byte) *backupServer {
	s := &backupServer{body: body}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.reqs = append(s.reqs, r.Clone(context.Background()))
		s.mu.Unlock()
		if r.Method != http.MethodPost || r.URL.Path != "/admin/backup" {
			http.NotFound(w, r)
			return
		}
		if r.Header.Get("Authorization") != "Bearer adm" {
			writeAPIError(w, 401, "", "auth: no valid credentials: unknown token")
			return
		}
		w.Header().Set("Content-Type", "application/zstd")
		w.WriteHeader(200)
		if s.cut > 0 {
			w.Write(s.body[:s.cut])
			w.(http.Flusher).Flush()
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				panic(err)
			}
			conn.Close()
			return
		}
		w.Write(s.body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *backupServer) requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

func backupRun(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Backup(context.Background(), args, &stdout, &stderr)
	return code, stderr.String()
}

func TestBackupWritesFile(t *testing.T) {
	archive := testArchive(t)
	s := newBackupServer(t, archive)
	dir := t.TempDir()
	out := filepath.Join(dir, "b.tar.zst")
	code, stderr := backupRun(t, "-o", out, "--server", s.URL, "--token", "adm")
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, archive) {
		t.Errorf("the file has %d bytes that differ from the %d sent", len(got), len(archive))
	}
	onlyFile(t, dir, "b.tar.zst")
	for _, want := range []string{"backup written to " + out, "watermark 9", "2 store files", "trove restore " + out + " -data DIR"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}

	// The token from the environment.
	t.Setenv("TROVE_ADMIN_TOKEN", "adm")
	if code, stderr := backupRun(t, "-o", filepath.Join(dir, "c.tar.zst"), "--server", s.URL); code != 0 {
		t.Errorf("with TROVE_ADMIN_TOKEN: exit %d; stderr:\n%s", code, stderr)
	}
}

func TestBackupRefusesExistingFile(t *testing.T) {
	s := newBackupServer(t, testArchive(t))
	dir := t.TempDir()
	out := filepath.Join(dir, "b.tar.zst")
	os.WriteFile(out, []byte("precious"), 0o600)
	code, stderr := backupRun(t, "-o", out, "--server", s.URL, "--token", "adm")
	if code != 1 || !strings.Contains(stderr, out+" already exists; nothing was changed") {
		t.Errorf("exit %d, stderr %q; want 1 and a clear error", code, stderr)
	}
	if b, _ := os.ReadFile(out); string(b) != "precious" {
		t.Errorf("the file changed to %q", b)
	}
	onlyFile(t, dir, "b.tar.zst")
	if n := s.requests(); n != 0 {
		t.Errorf("the server got %d requests; want none", n)
	}
}

func TestBackupFailures(t *testing.T) {
	archive := testArchive(t)
	tests := []struct {
		name  string
		body  []byte
		cut   int
		token string
		want  []string
	}{
		{"broken transfer", archive, len(archive) / 2, "adm", []string{"did not arrive whole", "truncated", "nothing was written"}},
		{"cut at the very end", archive, len(archive) - 1, "adm", []string{"did not arrive whole", "nothing was written"}},
		{"not a backup", []byte("<html>a proxy's error page</html>"), 0, "adm", []string{"not a valid trove backup", "not zstd-compressed", "nothing was written"}},
		{"short but clean", archive[:len(archive)-10], 0, "adm", []string{"not a valid trove backup", "truncated"}},
		{"wrong token", archive, 0, "nope", []string{"unknown token; nothing was written"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newBackupServer(t, tc.body)
			s.cut = tc.cut
			dir := t.TempDir()
			code, stderr := backupRun(t, "-o", filepath.Join(dir, "b.tar.zst"), "--server", s.URL, "--token", tc.token)
			if code != 1 {
				t.Errorf("exit %d; want 1", code)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("a failed backup left %v", ents)
			}
		})
	}
}

func TestBackupUsage(t *testing.T) {
	t.Setenv("TROVE_ADMIN_TOKEN", "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "-o FILE"},
		{[]string{"-o", "-"}, "-o FILE"},
		{[]string{"-o", "x"}, "needs the admin token"},
		{[]string{"x.tar.zst"}, `unexpected argument "x.tar.zst"`},
		{[]string{"-o", "x", "--token", "t", "--server", "ftp://x"}, "not an http(s) URL"},
	} {
		code, stderr := backupRun(t, tc.args...)
		if (code != 2 && !strings.Contains(tc.want, "URL")) || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
}
