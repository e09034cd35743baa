package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func restoreRun(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Restore(context.Background(), args, &stdout, &stderr)
	return code, stderr.String()
}

func TestRestoreCommand(t *testing.T) {
	t.Setenv("TROVE_DATA", "")
	t.Setenv("TROVE_DATA_DIR", "")
	file := filepath.Join(t.TempDir(), "b.tar.zst")
	if err := os.WriteFile(file, testArchive(t), 0o600); err != nil {
		t.Fatal(err)
	}
	parent := t.TempDir()
	// FILE before and after the flag.
	for _, tc := range []struct {
		dir  string
		args []string
	}{
		{filepath.Join(parent, "a"), []string{file, "-data", filepath.Join(parent, "a")}},
		{filepath.Join(parent, "b"), []string{"-data", filepath.Join(parent, "b"), file}},
	} {
		code, stderr := restoreRun(t, tc.args...)
		if code != 0 {
			t.Fatalf("%q: exit %d; stderr:\n%s", tc.args, code, stderr)
		}
		dir := tc.dir
		for _, want := range []string{"watermark 9", "into " + dir, "serve it with: trove serve -data " + dir} {
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr lacks %q:\n%s", want, stderr)
			}
		}
		if b, err := os.ReadFile(filepath.Join(dir, "store", "000001.log")); string(b) != "log" {
			t.Errorf("restored file: %q, %v", b, err)
		}
	}

	// Again into a: not empty now.
	dir := filepath.Join(parent, "a")
	code, stderr := restoreRun(t, file, "-data", dir)
	for _, want := range []string{"cannot restore into " + dir, "not empty", "Nothing was changed", "-data " + dir + ".restored"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("into a non-empty directory: stderr lacks %q:\n%s", want, stderr)
		}
	}
	if code != 1 {
		t.Errorf("into a non-empty directory: exit %d; want 1", code)
	}

	// TROVE_DATA_DIR, or its older name TROVE_DATA, stands in for -data.
	t.Setenv("TROVE_DATA", filepath.Join(parent, "c"))
	if code, stderr := restoreRun(t, file); code != 0 {
		t.Errorf("with TROVE_DATA: exit %d; stderr:\n%s", code, stderr)
	}
	t.Setenv("TROVE_DATA", "")
	t.Setenv("TROVE_DATA_DIR", filepath.Join(parent, "d"))
	if code, stderr := restoreRun(t, file); code != 0 {
		t.Errorf("with TROVE_DATA_DIR: exit %d; stderr:\n%s", code, stderr)
	}
}

func TestRestoreCommandErrors(t *testing.T) {
	t.Setenv("TROVE_DATA", "")
	t.Setenv("TROVE_DATA_DIR", "")
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.tar.zst")
	os.WriteFile(bad, testArchive(t)[:200], 0o600)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "name the backup file"},
		{[]string{"a", "b", "-data", "x"}, 2, "one backup file at a time"},
		{[]string{bad}, 2, "-data DIR"},
		{[]string{filepath.Join(dir, "missing"), "-data", filepath.Join(dir, "x")}, 1, "cannot read the backup"},
		{[]string{bad, "-data", filepath.Join(dir, "x")}, 1, "truncated"},
	} {
		code, stderr := restoreRun(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
	onlyFile(t, dir, "bad.tar.zst")
}
