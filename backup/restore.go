package backup

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// ErrNotEmpty is returned by Restore for a target directory that holds
// something already.
var ErrNotEmpty = errors.New("the directory is not empty")

// Restore reads a backup from r into dir, which must be absent or empty,
// and returns the backup's manifest. It writes into a temporary directory
// first and moves the result into place only once the whole archive has
// been read and checked, so a damaged or truncated archive leaves dir as it
// was and nothing beside it.
//
// When dir does not exist, the temporary directory sits next to it and is
// renamed to dir. When dir exists but is empty (a mount point, say, that
// cannot be renamed), it sits inside dir and its contents are moved up.
func Restore(r io.Reader, dir string) (*Manifest, error) {
	dir = filepath.Clean(dir)
	exists, err := checkEmpty(dir)
	if err != nil {
		return nil, err
	}
	var tmp string
	if exists {
		tmp, err = os.MkdirTemp(dir, ".restore-*")
	} else {
		tmp, err = os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".restore-*")
	}
	if err != nil {
		return nil, fmt.Errorf("cannot create a temporary directory for the restore: %w", err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	m, err := extract(r, tmp)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(tmp, 0o750); err != nil {
		return nil, err
	}
	if exists {
		// Only the store is in tmp; moving it in is the one step that
		// makes the restore visible.
		if err := os.Rename(filepath.Join(tmp, storeDir), filepath.Join(dir, storeDir)); err != nil {
			return nil, fmt.Errorf("cannot move the restored store into %s: %w", dir, err)
		}
		if err := os.Remove(tmp); err != nil {
			return nil, err
		}
	} else if err := os.Rename(tmp, dir); err != nil {
		return nil, fmt.Errorf("cannot move the restored data into place at %s: %w", dir, err)
	}
	done = true
	if exists {
		return m, syncDir(dir)
	}
	return m, syncDir(filepath.Dir(dir))
}

// checkEmpty says whether dir exists, and fails unless it is empty (a
// lost+found of a fresh file system aside) or absent.
func checkEmpty(dir string) (exists bool, err error) {
	fi, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !fi.IsDir() {
		return false, fmt.Errorf("%s exists and is not a directory", dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, err
	}
	for _, e := range entries {
		if e.Name() != "lost+found" {
			return true, fmt.Errorf("%w: %s holds %q", ErrNotEmpty, dir, e.Name())
		}
	}
	return true, nil
}

// extract reads the archive into dir (which exists and is empty): the
// store's files in dir/store, each synced.
func extract(r io.Reader, dir string) (*Manifest, error) {
	store := filepath.Join(dir, storeDir)
	if err := os.Mkdir(store, 0o750); err != nil {
		return nil, err
	}
	m, err := readArchive(r, func(f File, body io.Reader) error {
		w, err := os.OpenFile(filepath.Join(dir, filepath.FromSlash(f.Name)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
		if err != nil {
			return err
		}
		_, err = io.CopyN(w, body, f.Size)
		if err == nil {
			err = w.Sync()
		}
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := syncDir(store); err != nil {
		return nil, err
	}
	return m, syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
