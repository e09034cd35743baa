//go:build unix

package bench

import (
	"io/fs"
	"syscall"
)

// fileKey returns the device and inode of fi, and whether the file has
// more than one hard link, so that dirBytes counts it once, as du does.
func fileKey(fi fs.FileInfo) (key [2]uint64, linked bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Nlink <= 1 {
		return key, false
	}
	return [2]uint64{uint64(st.Dev), uint64(st.Ino)}, true
}
