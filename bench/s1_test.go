package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// makeTree writes files of the given sizes (path → bytes) under dir.
func makeTree(t *testing.T, dir string, files map[string]int) {
	t.Helper()
	for name, size := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, bytes.Repeat([]byte("x"), size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDirBytes(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]int
		link  bool // add a hard link to the first file and a symbolic link
	}{
		{name: "empty"},
		{name: "flat", files: map[string]int{"a": 100, "b": 0, "c": 70_000}},
		{name: "nested", files: map[string]int{"MANIFEST-000001": 212, "wal/000002.log": 4096, "wal/old/x": 9, "000005.sst": 1 << 20}},
		{name: "links", files: map[string]int{"a": 12_345, "d/b": 10}, link: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			makeTree(t, dir, tt.files)
			if tt.link {
				if err := os.Link(filepath.Join(dir, "a"), filepath.Join(dir, "d", "a-again")); err != nil {
					t.Skipf("no hard links here: %v", err)
				}
				if err := os.Symlink("a", filepath.Join(dir, "sym")); err != nil {
					t.Skipf("no symbolic links here: %v", err)
				}
			}
			got, err := dirBytes(dir)
			if err != nil {
				t.Fatal(err)
			}
			// Every file once, plus what the directories themselves take.
			want := int64(0)
			for _, size := range tt.files {
				want += int64(size)
			}
			if got < want {
				t.Errorf("dirBytes = %d; want at least the files' %d", got, want)
			}
			du, err := exec.Command("du", "-sb", dir).Output()
			if err != nil {
				t.Logf("no du -sb to compare with: %v", err)
				return
			}
			duBytes, err := strconv.ParseInt(strings.Fields(string(du))[0], 10, 64)
			if err != nil {
				t.Fatalf("cannot read du's answer %q: %v", du, err)
			}
			if got != duBytes {
				t.Errorf("dirBytes = %d; du -sb says %d", got, duBytes)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		if _, err := dirBytes(filepath.Join(t.TempDir(), "nope")); err == nil {
			t.Errorf("dirBytes of a missing directory: no error")
		}
	})
}

func TestMainS1(t *testing.T) {
	t.Setenv("TROVE_TOKEN", "")
	tests := []struct {
		name       string
		args       []string
		status     int
		wantCode   int
		wantEvents int64 // in the S1 line; 0 when none is wanted
		wantStderr string
	}{
		{name: "right after the load", args: []string{"-settle", "0"}, wantEvents: 500},
		{name: "after settling", args: []string{"-settle", "30ms"}, wantEvents: 500,
			wantStderr: "trove bench: waiting 30ms before measuring S1 of "},
		{name: "load failed", args: []string{"-settle", "0"}, status: fasthttp.StatusBadRequest, wantCode: 1,
			wantStderr: "S1 not measured: requests of the load failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status := tt.status
			if status == 0 {
				status = fasthttp.StatusAccepted
			}
			srv := startServer(t, status)
			dir := t.TempDir()
			makeTree(t, dir, map[string]int{"000005.sst": 123_456, "wal/000006.log": 7890})
			want, err := dirBytes(dir)
			if err != nil {
				t.Fatal(err)
			}
			args := append([]string{"-server", srv.url, "-n", "500", "-batch", "100", "-conns", "2", "-data-dir", dir}, tt.args...)
			code, stdout, stderr := runMain(t, args...)
			if code != tt.wantCode {
				t.Errorf("exit code %d; want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, stdout, stderr)
			}
			if tt.wantEvents > 0 {
				line := fmt.Sprintf("\nS1: %.1f bytes/event (du of %s: %d bytes, %d events)\n", float64(want)/float64(tt.wantEvents), dir, want, tt.wantEvents)
				if !strings.Contains(stdout, line) {
					t.Errorf("stdout lacks %q:\n%s", line, stdout)
				}
				if base := fmt.Sprintf("\nS1 baseline: du of %s before the load: %d bytes; measured ", dir, want); !strings.Contains(stdout, base) {
					t.Errorf("stdout lacks %q:\n%s", base, stdout)
				}
			} else if strings.Contains(stdout, "S1:") {
				t.Errorf("stdout has an S1 line:\n%s", stdout)
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.wantStderr, stderr)
			}
		})
	}
}

func TestSettle(t *testing.T) {
	dir := t.TempDir()
	makeTree(t, dir, map[string]int{"a": 1000})
	o := options{dataDir: dir, settle: 80 * time.Millisecond, settleEvery: 10 * time.Millisecond}
	t.Run("progress", func(t *testing.T) {
		var stderr bytes.Buffer
		start := time.Now()
		if err := settle(t.Context(), o, 10, &stderr); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < o.settle {
			t.Errorf("settle returned after %v; want %v", d, o.settle)
		}
		if want := ": du "; strings.Count(stderr.String(), want) < 2 || !strings.Contains(stderr.String(), " bytes/event\n") {
			t.Errorf("stderr lacks progress lines with the size:\n%s", stderr.String())
		}
	})
	t.Run("interrupted", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		o := o
		o.settle = time.Hour
		err := settle(ctx, o, 10, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), "interrupted after") {
			t.Errorf("settle with a done context: %v; want interrupted", err)
		}
	})
}
