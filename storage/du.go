package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
)

// DirUsage returns what dir and everything under it take on disk, as
// `du -s -B1 dir` reports it: the blocks allocated to each file and
// directory (a sparse or preallocated file counts what it holds on disk,
// not its length), a file with several hard links counted once. It is the
// store's real footprint, where Pebble's own figure misses the WAL being
// written and everything outside the store (admin.token, backups kept in
// the data directory). Files that vanish during the walk (Pebble deletes
// obsolete ones as it goes) are skipped.
func DirUsage(dir string) (uint64, error) {
	var total uint64
	seen := map[fileID]bool{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && path != dir {
				return nil
			}
			return err
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		n, id, linked := allocated(info)
		if linked {
			if seen[id] {
				return nil
			}
			seen[id] = true
		}
		total += n
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("cannot measure the disk usage of %s: %w", dir, err)
	}
	return total, nil
}

// fileID names a file whatever its path: its device and inode.
type fileID struct{ dev, ino uint64 }
