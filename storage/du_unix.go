//go:build unix

package storage

import (
	"io/fs"
	"syscall"
)

// allocated returns the bytes allocated to a file (its 512-byte blocks, as
// du counts them), its identity, and whether it has other hard links.
func allocated(info fs.FileInfo) (n uint64, id fileID, linked bool) {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return uint64(max(info.Size(), 0)), fileID{}, false
	}
	return uint64(st.Blocks) * 512, fileID{uint64(st.Dev), uint64(st.Ino)}, !info.IsDir() && st.Nlink > 1
}
