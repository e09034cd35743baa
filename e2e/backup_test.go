package e2e

// Backup and restore, end to end: a backup taken over HTTP while writers
// ingest, restored into a fresh directory and served from there.

import (
	"archive/tar"
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"trove/cli"
	"trove/internal/testutil"

	"github.com/klauspost/compress/zstd"
)

// withStderr returns runCmd's exit code, and its stdout and stderr as one.
func withStderr(code int, stdout, stderr string) (int, string) { return code, stdout + stderr }

// listNames lists dir's entries.
func listNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// TestBackupRestoreUnderLoad takes a backup over HTTP (trove backup) while
// four writers ingest, restores it (trove restore) into a fresh directory,
// serves that, and finds every event acknowledged before the backup was
// asked for, each once.
func TestBackupRestoreUnderLoad(t *testing.T) {
	t.Parallel()
	srv := startServer(t, testConfig)
	addr, dataDir, stop := srv.addr, srv.dataDir, srv.stop
	w := startWriters(t, addr, 4)
	w.waitFirstAck(t)
	testutil.WaitFor(t, 30*time.Second, testutil.Until("20 acknowledged batches", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.mu.acked) >= 20
	}))

	w.mu.Lock()
	ackedBefore := make([]string, 0, len(w.mu.acked))
	for b := range w.mu.acked {
		ackedBefore = append(ackedBefore, b)
	}
	w.mu.Unlock()
	file := filepath.Join(t.TempDir(), "trove.tar.zst")
	code, out := withStderr(runCmd(t, cli.Backup, "-o", file, "--server", "http://"+addr, "--token", adminSecret))
	if code != 0 {
		t.Fatalf("trove backup: exit %d:\n%s", code, out)
	}
	t.Logf("trove backup: %s", strings.TrimSpace(out))
	// Writers go on for a while after the backup.
	w.mu.Lock()
	n := len(w.mu.acked)
	w.mu.Unlock()
	testutil.WaitFor(t, 30*time.Second, testutil.Until("more acknowledged batches", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.mu.acked) >= n+10
	}))
	w.finish()
	// The backup's working directory is gone.
	testutil.WaitFor(t, 10*time.Second, testutil.Until("the backup working directory to go", func() bool {
		m, _ := filepath.Glob(filepath.Join(dataDir, ".backup-*"))
		return len(m) == 0
	}))
	stop()

	restored := filepath.Join(t.TempDir(), "restored")
	code, out = withStderr(runCmd(t, cli.Restore, file, "-data", restored))
	if code != 0 {
		t.Fatalf("trove restore: exit %d:\n%s", code, out)
	}
	if !strings.Contains(out, "serve it with: trove serve -data "+restored) {
		t.Errorf("trove restore says:\n%s", out)
	}
	addr2 := startServer(t, testConfig, inDir(restored)).addr
	perBatch, _, _ := exportedBatches(t, addr2)
	for b, n := range perBatch {
		if n != batchSize {
			t.Errorf("batch %s has %d of its %d events; want all or none", b, n, batchSize)
		}
	}
	missing := 0
	for _, b := range ackedBefore {
		if perBatch[b] != batchSize {
			if missing++; missing <= 5 {
				t.Errorf("batch %s was acknowledged before the backup, but %d of its %d events are in the restored store", b, perBatch[b], batchSize)
			}
		}
	}
	w.mu.Lock()
	t.Logf("%d batches acknowledged before the backup, %d in all; %d restored", len(ackedBefore), len(w.mu.acked), len(perBatch))
	w.mu.Unlock()

	// The restored server takes writes and still knows the old ids.
	a := decodeAnswer(t, postEvents(t, addr2, event("again", ackedBefore[0]+"-e0")), http.StatusAccepted)
	if a.Duplicates != 1 {
		t.Errorf("resending a restored event: %+v; want duplicates 1", a)
	}
}

// craftArchive writes a .tar.zst with a manifest listing store/a and the
// given entry names, each holding "x".
func craftArchive(t *testing.T, path string, names ...string) {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := zstd.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	manifest := `{"format":1,"troveVersion":"test","createdAt":"2026-11-30T00:00:00Z","watermark":1,"files":[{"name":"store/a","size":1}]}`
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "manifest.json", Size: int64(len(manifest)), Mode: 0o644})
	tw.Write([]byte(manifest))
	for _, n := range names {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: n, Size: 1, Mode: 0o644})
		tw.Write([]byte("x"))
	}
	tw.Close()
	zw.Close()
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestBackupRestoreBadInput checks the refusals: each with a clear error,
// nothing changed or left behind, and the server serving throughout.
func TestBackupRestoreBadInput(t *testing.T) {
	t.Parallel()
	srv := startServer(t, testConfig)
	addr, dataDir := srv.addr, srv.dataDir
	decodeAnswer(t, postEvents(t, addr, event("before", "m1")), http.StatusAccepted)
	server := "http://" + addr
	work := t.TempDir()

	// A good backup, to truncate below.
	good := filepath.Join(work, "good.tar.zst")
	if code, out := withStderr(runCmd(t, cli.Backup, "-o", good, "--server", server, "--token", adminSecret)); code != 0 {
		t.Fatalf("trove backup: exit %d:\n%s", code, out)
	}
	goodBytes, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("backup to an existing file", func(t *testing.T) {
		code, out := withStderr(runCmd(t, cli.Backup, "-o", good, "--server", server, "--token", adminSecret))
		if code != 1 || !strings.Contains(out, good+" already exists; nothing was changed") {
			t.Errorf("exit %d:\n%s\nwant 1 and a clear error", code, out)
		}
		if b, _ := os.ReadFile(good); !bytes.Equal(b, goodBytes) {
			t.Error("the existing file changed")
		}
	})

	t.Run("backup without admin scope", func(t *testing.T) {
		out := filepath.Join(work, "noadmin.tar.zst")
		code, msg := withStderr(runCmd(t, cli.Backup, "-o", out, "--server", server, "--token", backendSecret))
		if code != 1 || !strings.Contains(msg, "admin scope") || !strings.Contains(msg, "nothing was written") {
			t.Errorf("exit %d:\n%s\nwant 1 saying admin scope is needed", code, msg)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("the refused backup left %s", out)
		}
	})

	t.Run("restore into the server's data directory", func(t *testing.T) {
		before := listNames(t, dataDir)
		code, out := withStderr(runCmd(t, cli.Restore, good, "-data", dataDir))
		if code != 1 || !strings.Contains(out, "not empty") || !strings.Contains(out, "Nothing was changed") {
			t.Errorf("exit %d:\n%s\nwant 1 and a clear error", code, out)
		}
		if after := listNames(t, dataDir); !slices.Equal(before, after) {
			t.Errorf("the data directory held %q and holds %q now", before, after)
		}
	})

	restoreFails := func(t *testing.T, archive, want string) {
		t.Helper()
		parent := t.TempDir()
		target := filepath.Join(parent, "data")
		code, out := withStderr(runCmd(t, cli.Restore, archive, "-data", target))
		if code != 1 || !strings.Contains(out, want) || !strings.Contains(out, "Nothing was written to "+target) {
			t.Errorf("exit %d:\n%s\nwant 1 saying %q", code, out, want)
		}
		if names := listNames(t, parent); len(names) != 0 {
			t.Errorf("the failed restore left %q", names)
		}
	}
	t.Run("restore a truncated archive", func(t *testing.T) {
		for _, n := range []int{len(goodBytes) / 3, len(goodBytes) - 1} {
			p := filepath.Join(t.TempDir(), "cut.tar.zst")
			os.WriteFile(p, goodBytes[:n], 0o600)
			restoreFails(t, p, "truncated")
		}
	})
	t.Run("restore a corrupt archive", func(t *testing.T) {
		b := bytes.Clone(goodBytes)
		b[len(b)/2] ^= 0xff
		p := filepath.Join(t.TempDir(), "flipped.tar.zst")
		os.WriteFile(p, b, 0o600)
		restoreFails(t, p, "not a valid trove backup")
	})
	t.Run("restore an archive with ../x", func(t *testing.T) {
		dir := t.TempDir()
		p := filepath.Join(dir, "evil.tar.zst")
		craftArchive(t, p, "../x")
		restoreFails(t, p, `entry "../x" points outside the archive`)
		craftArchive(t, p, "store/../../x")
		restoreFails(t, p, "points outside the archive")
		if names := listNames(t, dir); !slices.Equal(names, []string{"evil.tar.zst"}) {
			t.Errorf("%s holds %q", dir, names)
		}
	})

	// The server served on, and no backup working directory is left.
	if r := request(t, "GET", server+"/healthz", nil); r.status != 200 {
		t.Errorf("/healthz: %d", r.status)
	}
	decodeAnswer(t, postEvents(t, addr, event("after", "m2")), http.StatusAccepted)
	if e := exportEvents(t, addr, ""); len(e.lines) != 2 {
		t.Errorf("the server exports %d events; want 2", len(e.lines))
	}
	testutil.WaitFor(t, 10*time.Second, testutil.Until("the backup working directories to go", func() bool {
		m, _ := filepath.Glob(filepath.Join(dataDir, ".backup-*"))
		return len(m) == 0
	}))
}
