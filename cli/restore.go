package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"

	"trove/backup"
)

const restoreUsage = `Usage: trove restore FILE -data DIR

Restores a backup made by 'trove backup' (or POST /admin/backup) into DIR,
which must be new or empty; FILE - reads the backup from stdin. The whole
archive is checked as it is read (zstd checksum, manifest, every file), and
DIR appears only once it all checked out: a damaged backup leaves nothing
behind. Then serve it with 'trove serve -data DIR'. The admin token and the
apps and tokens are those of the server the backup came from.

Flags:
`

// Restore runs `trove restore` and returns the exit status: 0 done, 1
// failed, 2 bad usage.
func Restore(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("trove restore", restoreUsage, stderr)
	dir := fs.String("data", "", "data `DIR` to restore into: new or empty (default $TROVE_DATA_DIR or $TROVE_DATA)")
	// FILE may come before or after the flags.
	files, ok, code := parseInterspersed(fs, args)
	if !ok {
		return code
	}
	if len(files) != 1 {
		if len(files) == 0 {
			fmt.Fprint(stderr, "trove restore: name the backup file to restore\n\n")
		} else {
			fmt.Fprintf(stderr, "trove restore: one backup file at a time, not %q\n\n", files)
		}
		fs.Usage()
		return 2
	}
	if *dir == "" {
		*dir = os.Getenv("TROVE_DATA_DIR")
	}
	if *dir == "" {
		*dir = os.Getenv("TROVE_DATA") // the older name
	}
	if *dir == "" {
		fmt.Fprint(stderr, "trove restore: say where to restore to: -data DIR (a new or empty directory)\n")
		return 2
	}
	if err := restore(ctx, files[0], *dir, stderr); err != nil {
		fmt.Fprintln(stderr, "trove restore:", err)
		return 1
	}
	return 0
}

func restore(ctx context.Context, file, dir string, stderr io.Writer) error {
	var (
		r    io.Reader
		size int64 = -1
		name       = file
	)
	if file == "-" {
		r, name = os.Stdin, "stdin"
	} else {
		f, err := os.Open(file)
		if err != nil {
			return fmt.Errorf("cannot read the backup: %v", err)
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			size = fi.Size()
		}
		r = f
	}
	var bar *progressbar.ProgressBar
	if isTerminal(stderr) {
		bar = newByteBar(stderr, "restoring", size)
		r = io.TeeReader(r, bar)
	}
	r = &ctxReader{ctx: ctx, r: r}
	m, err := backup.Restore(r, dir)
	if bar != nil {
		bar.Finish()
	}
	switch {
	case err == nil:
	case errors.Is(err, backup.ErrNotEmpty):
		return fmt.Errorf("cannot restore into %s: %v.\n  Nothing was changed. Restore into a new or empty directory (say -data %s) and serve that with trove serve -data %s;\n  or, to replace %s, stop the server that uses it and move it away first",
			dir, err, shellQuote(dir+".restored"), shellQuote(dir+".restored"), dir)
	case ctx.Err() != nil:
		return fmt.Errorf("interrupted; nothing was written to %s", dir)
	case errors.Is(err, backup.ErrInvalid):
		return fmt.Errorf("%s: %v.\n  Nothing was written to %s. Take a new backup with trove backup -o FILE", name, err, dir)
	default:
		return fmt.Errorf("%v; nothing was written to %s", err, dir)
	}
	fmt.Fprintf(stderr, "restored the backup taken %s by trove %s (watermark %d, %d store files, %d bytes) into %s\n  serve it with: trove serve -data %s\n",
		m.CreatedAt.Format(time.RFC3339), m.TroveVersion, m.Watermark, len(m.Files), m.Size(), dir, shellQuote(dir))
	return nil
}

// ctxReader stops reading once ctx is done (Ctrl-C).
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
