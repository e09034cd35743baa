package storage

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// duBytes is what GNU du says dir takes on disk.
func duBytes(t *testing.T, dir string) uint64 {
	t.Helper()
	out, err := exec.Command("du", "-s", "-B1", dir).Output()
	if err != nil {
		t.Fatalf("du -s -B1 %s: %v", dir, err)
	}
	n, err := strconv.ParseUint(strings.Fields(string(out))[0], 10, 64)
	if err != nil {
		t.Fatalf("du's answer %q: %v", out, err)
	}
	return n
}

// TestDirUsageMatchesDu compares DirUsage with du on a directory that has
// nested directories, a sparse file, a preallocated-looking large file
// and a hard link, which du counts once.
func TestDirUsageMatchesDu(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, n int) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(strings.Repeat("x", n)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a", 1)
	write("store/000001.sst", 3<<20)
	write("store/deep/er/b", 70_000)
	if err := os.Link(filepath.Join(dir, "store/000001.sst"), filepath.Join(dir, "backup-000001.sst")); err != nil {
		t.Fatal(err)
	}
	sparse, err := os.Create(filepath.Join(dir, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	if err := sparse.Truncate(64 << 20); err != nil {
		t.Fatal(err)
	}
	sparse.Close()

	got, err := DirUsage(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := duBytes(t, dir); got != want {
		t.Errorf("DirUsage = %d; du -s -B1 says %d", got, want)
	}
	if got >= 64<<20 {
		t.Errorf("DirUsage = %d counts the sparse file's length, not its blocks", got)
	}
	if got < 3<<20 {
		t.Errorf("DirUsage = %d misses the 3 MiB file", got)
	}
	if _, err := DirUsage(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("DirUsage of a missing directory: %v; want an error naming it", err)
	}
}
