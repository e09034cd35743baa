package backup

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-json"
	"github.com/klauspost/compress/zstd"
)

func osOpen(name string) (io.ReadCloser, error) { return os.Open(name) }

// testFiles are the store files of a fake checkpoint, by name.
var testFiles = map[string][]byte{
	"000004.sst":      randomBytes(300 << 10),
	"000005.log":      bytes.Repeat([]byte("log line\n"), 1000),
	"MANIFEST-000001": []byte("manifest"),
	"marker.x":        nil,
}

func randomBytes(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// fakeCheckpoint writes testFiles into dir/store.
func fakeCheckpoint(t testing.TB, dir string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, storeDir), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range testFiles {
		if err := os.WriteFile(filepath.Join(dir, storeDir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// goodArchive returns a valid archive of testFiles and its manifest.
func goodArchive(t testing.TB) ([]byte, *Manifest) {
	t.Helper()
	dir := t.TempDir()
	fakeCheckpoint(t, dir)
	files, err := listStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := &Manifest{Format: Format, TroveVersion: "test", CreatedAt: time.Date(2026, 11, 30, 1, 2, 3, 0, time.UTC), Watermark: 42, Files: files}
	var buf bytes.Buffer
	if err := writeArchive(&buf, dir, m, osOpen); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), m
}

// checkRestored checks that dir/store holds exactly testFiles.
func checkRestored(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != storeDir {
		t.Errorf("%s holds %v; want only %s", dir, entries, storeDir)
	}
	entries, err = os.ReadDir(filepath.Join(dir, storeDir))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(testFiles) {
		t.Errorf("%s/store holds %d files; want %d", dir, len(entries), len(testFiles))
	}
	for name, want := range testFiles {
		got, err := os.ReadFile(filepath.Join(dir, storeDir, name))
		if err != nil {
			t.Error(err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes differ from the %d written", name, len(got), len(want))
		}
	}
}

// checkNothingLeft checks that parent holds only the names in keep.
func checkNothingLeft(t *testing.T, parent string, keep ...string) {
	t.Helper()
	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != strings.Join(keep, ",") {
		t.Errorf("%s holds %q; want %q", parent, names, keep)
	}
}

func TestArchiveRoundTrip(t *testing.T) {
	archive, want := goodArchive(t)
	m, err := Verify(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	if m.Watermark != 42 || m.TroveVersion != "test" || !m.CreatedAt.Equal(want.CreatedAt) || len(m.Files) != len(testFiles) || m.Format != Format {
		t.Errorf("Verify: manifest %+v; want %+v", m, want)
	}

	// Into a directory that does not exist yet.
	parent := t.TempDir()
	dir := filepath.Join(parent, "data")
	m, err = Restore(bytes.NewReader(archive), dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Watermark != 42 {
		t.Errorf("Restore: watermark %d; want 42", m.Watermark)
	}
	checkRestored(t, dir)
	checkNothingLeft(t, parent, "data")

	// Into an empty directory (a volume's mount point), and one with a
	// lost+found.
	for _, pre := range []string{"", "lost+found"} {
		dir := t.TempDir()
		if pre != "" {
			os.Mkdir(filepath.Join(dir, pre), 0o700)
		}
		if _, err := Restore(bytes.NewReader(archive), dir); err != nil {
			t.Fatalf("into an empty directory holding %q: %v", pre, err)
		}
		if pre != "" {
			os.Remove(filepath.Join(dir, pre))
		}
		checkRestored(t, dir)
	}
}

func TestRestoreRefusesNonEmpty(t *testing.T) {
	archive, _ := goodArchive(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "keep"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Restore(bytes.NewReader(archive), dir)
	if !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("got %v; want ErrNotEmpty", err)
	}
	checkNothingLeft(t, dir, "keep")
	if b, _ := os.ReadFile(filepath.Join(dir, "keep")); string(b) != "mine" {
		t.Errorf("the file in the directory changed to %q", b)
	}
	// A file where the directory should be.
	file := filepath.Join(dir, "keep")
	if _, err := Restore(bytes.NewReader(archive), file); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("into a file: got %v; want an error saying it is not a directory", err)
	}
}

// entry is one entry of a crafted archive.
type entry struct {
	hdr  tar.Header
	body []byte
}

func reg(name string, body []byte) entry {
	return entry{tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(body)), Mode: 0o644}, body}
}

func manifestEntry(t testing.TB, m *Manifest) entry {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return reg(manifestName, b)
}

// craft writes entries as a .tar.zst.
func craft(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := zstd.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		if err := tw.WriteHeader(&e.hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestArchiveInvalid checks that damaged and hostile archives are refused
// with a clear error, and that Restore leaves nothing behind.
func TestArchiveInvalid(t *testing.T) {
	good, _ := goodArchive(t)
	one := func(name string, size int) *Manifest {
		return &Manifest{Format: 1, TroveVersion: "test", Files: []File{{Name: name, Size: int64(size)}}}
	}
	x := []byte("x")
	storeDirEntry := entry{tar.Header{Typeflag: tar.TypeDir, Name: "store/", Mode: 0o755}, nil}
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 0x40
	tests := []struct {
		name    string
		archive []byte
		want    string
	}{
		{"empty file", nil, "not zstd-compressed"},
		{"not zstd", []byte("hello, this is plain text and not a backup"), "not zstd-compressed"},
		{"plain tar", func() []byte {
			var b bytes.Buffer
			tw := tar.NewWriter(&b)
			tw.WriteHeader(&tar.Header{Name: manifestName, Size: 1, Mode: 0o644})
			tw.Write(x)
			tw.Close()
			return b.Bytes()
		}(), "not zstd-compressed"},
		{"truncated in the middle", good[:len(good)/2], "truncated"},
		{"truncated near the end", good[:len(good)-3], "truncated"},
		{"truncated after the header", good[:20], "truncated"},
		{"a flipped byte", flipped, "damaged"},
		{"empty tar", craft(t), "empty"},
		{"no manifest first", craft(t, storeDirEntry, reg("store/a", x)), `first entry is "store/", not manifest.json`},
		{"manifest not JSON", craft(t, reg(manifestName, []byte("{nope"))), "not valid JSON"},
		{"newer format", craft(t, manifestEntry(t, &Manifest{Format: 2, TroveVersion: "v9", Files: []File{{"store/a", 1}}})), "restore it with trove v9 or later"},
		{"no format", craft(t, manifestEntry(t, &Manifest{Files: []File{{"store/a", 1}}})), "no format version"},
		{"no files", craft(t, manifestEntry(t, &Manifest{Format: 1})), "lists no files"},
		{"../x entry", craft(t, manifestEntry(t, one("store/a", 1)), storeDirEntry, reg("../x", x)), `"../x" points outside the archive`},
		{"store/../../x entry", craft(t, manifestEntry(t, one("store/a", 1)), storeDirEntry, reg("store/../../x", x)), "points outside the archive"},
		{"absolute entry", craft(t, manifestEntry(t, one("store/a", 1)), storeDirEntry, reg("/etc/x", x)), "absolute path"},
		{"../x first", craft(t, reg("../x", x)), "points outside the archive"},
		{"manifest lists ../x", craft(t, manifestEntry(t, one("store/../x", 1))), "points outside the archive"},
		{"symlink", craft(t, manifestEntry(t, one("store/a", 1)), storeDirEntry,
			entry{tar.Header{Typeflag: tar.TypeSymlink, Name: "store/a", Linkname: "/etc/passwd"}, nil}), "is a link"},
		{"hard link", craft(t, manifestEntry(t, one("store/a", 1)), storeDirEntry,
			entry{tar.Header{Typeflag: tar.TypeLink, Name: "store/a", Linkname: "manifest.json"}, nil}), "is a link"},
		{"device", craft(t, manifestEntry(t, one("store/a", 1)), storeDirEntry,
			entry{tar.Header{Typeflag: tar.TypeChar, Name: "store/a", Devmajor: 1, Devminor: 3}, nil}), "only regular files"},
		{"unexpected entry", craft(t, manifestEntry(t, one("store/a", 1)), storeDirEntry, reg("other.txt", x)), `unexpected entry "other.txt"`},
		{"nested entry", craft(t, manifestEntry(t, one("store/a", 1)), storeDirEntry, reg("store/sub/a", x)), "unexpected entry"},
		{"unlisted file", craft(t, manifestEntry(t, one("store/a", 1)), storeDirEntry, reg("store/b", x)), "not the next file"},
		{"extra file", craft(t, manifestEntry(t, one("store/a", 1)), storeDirEntry, reg("store/a", x), reg("store/b", x)), "not the next file"},
		{"wrong size", craft(t, manifestEntry(t, one("store/a", 1)), storeDirEntry, reg("store/a", []byte("xy"))), "has 2 bytes; its manifest says 1"},
		{"missing file", craft(t, manifestEntry(t, one("store/a", 1)), storeDirEntry), "1 of the 1 files its manifest lists are missing"},
		{"second directory", craft(t, manifestEntry(t, one("store/a", 1)), storeDirEntry, storeDirEntry), "unexpected directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Verify(bytes.NewReader(tc.archive))
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Verify: got %v; want ErrInvalid saying %q", err, tc.want)
			}
			parent := t.TempDir()
			_, err = Restore(bytes.NewReader(tc.archive), filepath.Join(parent, "data"))
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Restore: got %v; want ErrInvalid saying %q", err, tc.want)
			}
			checkNothingLeft(t, parent)
			// Into an existing empty directory: it stays empty.
			dir := t.TempDir()
			if _, err := Restore(bytes.NewReader(tc.archive), dir); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Restore into an empty directory: got %v; want ErrInvalid", err)
			}
			checkNothingLeft(t, dir)
		})
	}
}
