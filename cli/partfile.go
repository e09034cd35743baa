package cli

import (
	"fmt"
	"os"
	"path/filepath"
)

// partFile is a temporary file next to out that takes out's place only
// once all of it has arrived, so that a broken transfer never leaves a
// complete-looking out behind.
type partFile struct {
	*os.File
	out    string
	placed bool // out is the file now; discard leaves it alone
}

// createPart creates the temporary file for out in out's directory, so
// that putting it in place is a rename on one file system.
func createPart(out string) (*partFile, error) {
	f, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*.part")
	if err != nil {
		return nil, fmt.Errorf("cannot write next to %s: %v", out, err)
	}
	return &partFile{File: f, out: out}, nil
}

// finish makes the file durable and closes it, ready to be put in place.
func (p *partFile) finish() error {
	if err := p.Sync(); err != nil {
		return fmt.Errorf("writing %s: %v", p.out, err)
	}
	if err := p.Close(); err != nil {
		return fmt.Errorf("writing %s: %v", p.out, err)
	}
	return nil
}

// discard removes the file unless it was put in place; it is deferred
// right after createPart.
func (p *partFile) discard() {
	if !p.placed {
		p.Close()
		os.Remove(p.Name())
	}
}
