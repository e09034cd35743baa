package backup

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// FuzzVerify feeds Verify archives made of arbitrary bytes: as they are,
// and zstd-compressed, so that the fuzzer reaches the tar and manifest
// checks behind the compression. Verify must never panic and must either
// refuse with ErrInvalid (a local error cannot happen here) or accept, and
// an archive it accepts must restore.
func FuzzVerify(f *testing.F) {
	good, m := goodArchive(f)
	f.Add(good)
	f.Add(craft(f, manifestEntry(f, m)))
	f.Add(craft(f, manifestEntry(f, m), reg("store/MANIFEST-000001", []byte("x"))))
	f.Add([]byte{})
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd})
	f.Fuzz(func(t *testing.T, b []byte) {
		archives := [][]byte{b}
		if len(b) < 1<<16 {
			var buf bytes.Buffer
			zw, _ := zstd.NewWriter(&buf)
			zw.Write(b)
			zw.Close()
			archives = append(archives, buf.Bytes())
		}
		for _, a := range archives {
			got, err := Verify(bytes.NewReader(a))
			if err != nil {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("Verify: %v, not ErrInvalid", err)
				}
				if got != nil {
					t.Fatalf("Verify refused the archive (%v) but returned a manifest", err)
				}
				continue
			}
			dir := filepath.Join(t.TempDir(), "restored")
			if _, err := Restore(bytes.NewReader(a), dir); err != nil {
				t.Fatalf("Verify accepted an archive that Restore refuses: %v", err)
			}
		}
	})
}
