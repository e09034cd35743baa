package backup

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"trove/internal/testutil"
)

// fakeStore checkpoints testFiles, or fails with err.
type fakeStore struct {
	err   error
	extra map[string]int64 // more files: name -> size, sparse
}

func (f *fakeStore) Checkpoint(dir string) (uint64, error) {
	if f.err != nil {
		return 0, f.err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return 0, err
	}
	for name, b := range testFiles {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return 0, err
		}
	}
	for name, size := range f.extra {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			return 0, err
		}
		if err := os.Truncate(filepath.Join(dir, name), size); err != nil {
			return 0, err
		}
	}
	return 7, nil
}

// serveBackup serves h.Backup on 127.0.0.1 until the test ends; an error
// becomes a 500, as web would make it.
func serveBackup(t *testing.T, h *Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if err := h.Backup(ctx); err != nil {
			ctx.Error(err.Error(), fasthttp.StatusInternalServerError)
		}
	}}
	go s.Serve(ln)
	t.Cleanup(func() { s.Shutdown(); ln.Close() })
	return "http://" + ln.Addr().String() + "/admin/backup"
}

func newTestHandler(t *testing.T, store Store) (*Handler, string) {
	dataDir := t.TempDir()
	h := NewHandler(store, dataDir, "test", slog.New(slog.DiscardHandler))
	h.now = func() time.Time { return time.Date(2026, 11, 30, 1, 2, 3, 456, time.UTC) }
	return h, dataDir
}

// waitNoWorkDirs waits until dataDir holds no backup working directory:
// fasthttp closes the body (removing it) after the last byte went out.
func waitNoWorkDirs(t *testing.T, dataDir string) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, func() error {
		if left, _ := filepath.Glob(filepath.Join(dataDir, tempPrefix+"*")); len(left) > 0 {
			return fmt.Errorf("the working directories %q are still there", left)
		}
		return nil
	})
}

func TestBackupHandler(t *testing.T) {
	h, dataDir := newTestHandler(t, &fakeStore{})
	url := serveBackup(t, h)
	resp, err := http.Post(url, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d (%s); want 200", resp.StatusCode, b)
	}
	for k, want := range map[string]string{
		"Content-Type":        "application/zstd",
		"Content-Disposition": `attachment; filename="trove-backup-20261130T010203Z.tar.zst"`,
		"X-Trove-Watermark":   "7",
		"Cache-Control":       "no-store",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s: %q; want %q", k, got, want)
		}
	}
	m, err := Verify(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if m.Watermark != 7 || m.TroveVersion != "test" || len(m.Files) != len(testFiles) ||
		!m.CreatedAt.Equal(time.Date(2026, 11, 30, 1, 2, 3, 0, time.UTC)) {
		t.Errorf("manifest %+v", m)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Errorf("after the archive: %v; want a clean end", err)
	}
	waitNoWorkDirs(t, dataDir)
}

func TestBackupCheckpointFails(t *testing.T) {
	h, dataDir := newTestHandler(t, &fakeStore{err: errors.New("disk on fire")})
	resp, err := http.Post(serveBackup(t, h), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 500 || !strings.Contains(string(b), "disk on fire") {
		t.Errorf("status %d (%s); want 500 with the error", resp.StatusCode, b)
	}
	waitNoWorkDirs(t, dataDir)
}

// failingReader fails after n bytes.
type failingReader struct {
	r io.Reader
	n int
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("injected read error")
	}
	p = p[:min(len(p), f.n)]
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

func (f *failingReader) Close() error { return nil }

// TestBackupStorageErrorBreaksConnection checks that a read error after
// the headers went out breaks the connection, so that the client sees an
// incomplete transfer, never a short archive that looks whole.
func TestBackupStorageErrorBreaksConnection(t *testing.T) {
	h, dataDir := newTestHandler(t, &fakeStore{extra: map[string]int64{"big.sst": 4 << 20}})
	h.open = func(name string) (io.ReadCloser, error) {
		if filepath.Base(name) == "big.sst" {
			return &failingReader{r: &randReader{rand.NewPCG(5, 6)}, n: 2 << 20}, nil
		}
		return os.Open(name)
	}
	resp, err := http.Post(serveBackup(t, h), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d; want 200 (the error comes after the headers)", resp.StatusCode)
	}
	b, err := io.ReadAll(resp.Body)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("reading the body: %d bytes, error %v; want io.ErrUnexpectedEOF", len(b), err)
	}
	if _, err := Verify(bytes.NewReader(b)); !errors.Is(err, ErrInvalid) {
		t.Errorf("Verify of what arrived: %v; want ErrInvalid", err)
	}
	waitNoWorkDirs(t, dataDir)
}

// TestBackupClientLeaves checks that the working directory goes when the
// client disconnects mid-stream.
func TestBackupClientLeaves(t *testing.T) {
	// A 1 GiB file of random bytes (sparse on disk, random when read):
	// far more than the socket buffers hold.
	h, dataDir := newTestHandler(t, &fakeStore{extra: map[string]int64{"big.sst": 1 << 30}})
	h.open = func(name string) (io.ReadCloser, error) {
		if filepath.Base(name) == "big.sst" {
			return io.NopCloser(io.LimitReader(&randReader{rand.NewPCG(3, 4)}, 1<<30)), nil
		}
		return os.Open(name)
	}
	resp, err := http.Post(serveBackup(t, h), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(io.Discard, resp.Body, 1<<20); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(dataDir, tempPrefix+"*")); len(left) != 1 {
		t.Errorf("mid-stream, the data directory holds working directories %q; want one", left)
	}
	resp.Body.Close() // mid-body: the transport closes the connection
	waitNoWorkDirs(t, dataDir)
}

type randReader struct{ src *rand.PCG }

func (r *randReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r.src.Uint64())
	}
	return len(p), nil
}

func TestNewHandlerRemovesStaleWorkDirs(t *testing.T) {
	dataDir := t.TempDir()
	stale := filepath.Join(dataDir, tempPrefix+"123", storeDir)
	if err := os.MkdirAll(stale, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(stale, "000001.sst"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dataDir, "admin.token"), []byte("keep"), 0o600)
	os.Mkdir(filepath.Join(dataDir, "store"), 0o755)
	NewHandler(&fakeStore{}, dataDir, "test", slog.New(slog.DiscardHandler))
	checkNothingLeft(t, dataDir, "admin.token", "store")
}
