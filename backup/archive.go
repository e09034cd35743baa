package backup

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/goccy/go-json"
	"github.com/klauspost/compress/zstd"
)

// Format is the archive format version this package writes and reads.
const Format = 1

// Names inside the archive.
const (
	manifestName = "manifest.json"
	storeDir     = "store"
)

// maxManifestBytes bounds the manifest a reader accepts.
const maxManifestBytes = 4 << 20

// maxWindow bounds the zstd window a reader accepts (the writer uses far
// less), so that a hostile archive cannot make it allocate much.
const maxWindow = 64 << 20

// Manifest is the archive's first entry, manifest.json.
type Manifest struct {
	// Format is the archive format version (Format).
	Format int `json:"format"`
	// TroveVersion is the version of the server that wrote the archive.
	TroveVersion string `json:"troveVersion"`
	// CreatedAt is when the checkpoint was taken (UTC).
	CreatedAt time.Time `json:"createdAt"`
	// Watermark is the checkpoint's watermark: every event stored at or
	// below this ingest sequence is in the archive (later ones may be too).
	Watermark uint64 `json:"watermark"`
	// Files are the archive's other entries, in order: the store's files,
	// named store/NAME.
	Files []File `json:"files"`
}

// File is one file of the archive.
type File struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
}

// Size is the sum of the files' sizes.
func (m *Manifest) Size() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

// ErrInvalid marks an archive that is not a complete, well-formed backup.
var ErrInvalid = errors.New("not a valid trove backup")

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// listStore returns the files of the store checkpoint in dir/store, sorted,
// as manifest entries. It refuses anything but regular files.
func listStore(dir string) ([]File, error) {
	entries, err := os.ReadDir(filepath.Join(dir, storeDir))
	if err != nil {
		return nil, err
	}
	files := make([]File, 0, len(entries))
	for _, e := range entries {
		if !e.Type().IsRegular() {
			return nil, fmt.Errorf("the checkpoint holds %q, which is not a regular file", e.Name())
		}
		fi, err := e.Info()
		if err != nil {
			return nil, err
		}
		files = append(files, File{Name: storeDir + "/" + e.Name(), Size: fi.Size()})
	}
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Name, b.Name) })
	return files, nil
}

// writeArchive writes the files of m, read from dir, as a zstd-compressed
// tar to w: manifest.json first, then the store directory and its files.
// A file that changed size since it was listed is an error. open opens a
// file for reading. When w has a Flush method, it is called once the
// manifest is written.
func writeArchive(w io.Writer, dir string, m *Manifest, open func(string) (io.ReadCloser, error)) error {
	mj, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	mj = append(mj, '\n')
	zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(4<<20))
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	mtime := m.CreatedAt
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: manifestName, Size: int64(len(mj)), Mode: 0o644, ModTime: mtime}); err != nil {
		return err
	}
	if _, err := tw.Write(mj); err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: storeDir + "/", Mode: 0o755, ModTime: mtime}); err != nil {
		return err
	}
	// The manifest goes out at once, and with it the response's headers.
	if err := zw.Flush(); err != nil {
		return err
	}
	if f, ok := w.(interface{ Flush() error }); ok {
		if err := f.Flush(); err != nil {
			return err
		}
	}
	for _, f := range m.Files {
		if err := writeFile(tw, open, filepath.Join(dir, filepath.FromSlash(f.Name)), f, mtime); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

func writeFile(tw *tar.Writer, open func(string) (io.ReadCloser, error), src string, f File, mtime time.Time) error {
	r, err := open(src)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.Name, Size: f.Size, Mode: 0o644, ModTime: mtime}); err != nil {
		return err
	}
	n, err := io.Copy(tw, r)
	if err != nil {
		return fmt.Errorf("reading %s: %w", f.Name, err)
	}
	if n != f.Size {
		return fmt.Errorf("reading %s: %d bytes; the checkpoint listed %d", f.Name, n, f.Size)
	}
	return nil
}

// checkName says whether name may appear in an archive: a relative,
// clean, slash-separated path inside it.
func checkName(name string) error {
	switch {
	case name == "":
		return invalidf("an entry has an empty name")
	case strings.HasPrefix(name, "/") || filepath.IsAbs(name) || (len(name) > 1 && name[1] == ':'):
		return invalidf("entry %q is an absolute path", name)
	case strings.Contains(name, `\`):
		return invalidf("entry %q contains a backslash", name)
	}
	for _, el := range strings.Split(strings.TrimSuffix(name, "/"), "/") {
		if el == ".." {
			return invalidf("entry %q points outside the archive (..)", name)
		}
		if el == "" || el == "." {
			return invalidf("entry %q is not a clean path", name)
		}
	}
	return nil
}

// checkStoreFile says whether name is a file the archive may hold:
// store/NAME, NAME a plain file name.
func checkStoreFile(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	dir, base := path.Split(name)
	if dir != storeDir+"/" || base == "" {
		return invalidf("unexpected entry %q: a backup holds only %s and %s/<file>", name, manifestName, storeDir)
	}
	return nil
}

// readArchive reads an archive from r, checks it entry by entry against
// its manifest, and calls file (when not nil) with each store file's
// contents. It reads r to its end: a nil error means that the archive was
// complete, its zstd checksum right, and every file the manifest lists was
// there with its size, and nothing else.
func readArchive(r io.Reader, file func(f File, body io.Reader) error) (*Manifest, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	magic, err := br.Peek(4)
	if err != nil || !bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}) {
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		return nil, invalidf("it is not zstd-compressed (a backup is a .tar.zst written by trove backup)")
	}
	zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxWindow), zstd.WithDecoderLowmem(true))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	broken := func(err error) error {
		if errors.Is(err, ErrInvalid) {
			return err
		}
		var pe *os.PathError
		if errors.As(err, &pe) {
			return err // a local file system error, not the archive's
		}
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return invalidf("it ends early: the archive is truncated (an interrupted transfer?)")
		}
		return invalidf("it is damaged: %v", err)
	}

	m, err := readManifest(tr, broken)
	if err != nil {
		return nil, err
	}

	if err := readFiles(tr, m, file, broken); err != nil {
		return nil, err
	}
	// The rest of the zstd stream: tar padding, then the frame's end and
	// checksum.
	if _, err := io.Copy(io.Discard, zr); err != nil {
		return nil, broken(err)
	}
	return m, nil
}

// readFiles reads the store files after the manifest, checking each
// against the manifest m, and hands each to file (when not nil).
func readFiles(tr *tar.Reader, m *Manifest, file func(f File, body io.Reader) error, broken func(error) error) error {
	next, sawDir := 0, false
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return broken(err)
		}
		if err := checkName(hdr.Name); err != nil {
			return err
		}
		switch hdr.Typeflag {
		case tar.TypeSymlink, tar.TypeLink:
			return invalidf("entry %q is a link; a backup holds no links", hdr.Name)
		case tar.TypeDir:
			if hdr.Name != storeDir+"/" || sawDir || next > 0 {
				return invalidf("unexpected directory %q", hdr.Name)
			}
			sawDir = true
			continue
		case tar.TypeReg:
		default:
			return invalidf("entry %q is of type %q; a backup holds only regular files", hdr.Name, hdr.Typeflag)
		}
		if err := checkStoreFile(hdr.Name); err != nil {
			return err
		}
		if next >= len(m.Files) || m.Files[next].Name != hdr.Name {
			return invalidf("entry %q is not the next file its manifest lists", hdr.Name)
		}
		f := m.Files[next]
		if hdr.Size != f.Size {
			return invalidf("entry %q has %d bytes; its manifest says %d", hdr.Name, hdr.Size, f.Size)
		}
		next++
		if file != nil {
			if err := file(f, tr); err != nil {
				return broken(err)
			}
		}
		// Whatever the callback left unread still goes through the checks.
		if _, err := io.Copy(io.Discard, tr); err != nil {
			return broken(err)
		}
	}
	if next < len(m.Files) {
		return invalidf("it ends early: %d of the %d files its manifest lists are missing (a truncated archive?)", len(m.Files)-next, len(m.Files))
	}
	return nil
}

// readManifest reads and checks the archive's first entry, its manifest;
// broken explains a read error.
func readManifest(tr *tar.Reader, broken func(error) error) (*Manifest, error) {
	hdr, err := tr.Next()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, invalidf("it is empty")
		}
		return nil, broken(err)
	}
	if hdr.Name != manifestName || hdr.Typeflag != tar.TypeReg {
		if err := checkName(hdr.Name); err != nil {
			return nil, err
		}
		return nil, invalidf("its first entry is %q, not %s", hdr.Name, manifestName)
	}
	if hdr.Size > maxManifestBytes {
		return nil, invalidf("its manifest is %d bytes, more than a manifest can be", hdr.Size)
	}
	mj, err := io.ReadAll(tr)
	if err != nil {
		return nil, broken(err)
	}
	m := &Manifest{}
	if err := json.Unmarshal(mj, m); err != nil {
		return nil, invalidf("its manifest is not valid JSON: %v", err)
	}
	switch {
	case m.Format > Format:
		return nil, invalidf("it has format %d, written by trove %s; this trove (format %d) is older: restore it with trove %s or later",
			m.Format, m.TroveVersion, Format, m.TroveVersion)
	case m.Format < 1:
		return nil, invalidf("its manifest has no format version")
	case len(m.Files) == 0:
		return nil, invalidf("its manifest lists no files")
	}
	for i, f := range m.Files {
		if err := checkStoreFile(f.Name); err != nil {
			return nil, invalidf("its manifest lists a bad file: %v", err)
		}
		if f.Size < 0 {
			return nil, invalidf("its manifest gives %s a negative size", f.Name)
		}
		if i > 0 && f.Name <= m.Files[i-1].Name {
			return nil, invalidf("its manifest lists %s out of order or twice", f.Name)
		}
	}
	return m, nil
}

// Verify reads a whole archive from r and checks it, as Restore does,
// without writing anything.
func Verify(r io.Reader) (*Manifest, error) {
	return readArchive(r, nil)
}
