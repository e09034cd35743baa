package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"trove/backup"
)

const backupUsage = `Usage: trove backup -o FILE [--server URL] [--token T]

Asks a running server for a consistent snapshot of its store
(POST /admin/backup) and writes it to FILE, a .tar.zst. Ingest goes on
meanwhile; the snapshot holds every event acknowledged before it was taken.
FILE must not exist. It appears only once the whole backup has arrived and
checked out (zstd checksum, every file its manifest lists). Restore it with
'trove restore FILE -data DIR'.

Flags:
`

type backupOptions struct {
	server, token, out string
}

// Backup runs `trove backup` and returns the exit status: 0 done, 1
// failed, 2 bad usage.
func Backup(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o := &backupOptions{}
	fs := flag.NewFlagSet("trove backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), backupUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.out, "o", "", "output `FILE` (required; must not exist), e.g. trove-backup.tar.zst")
	fs.StringVar(&o.server, "server", DefaultServer, "base `URL` of the running trove server")
	fs.StringVar(&o.token, "token", "", "admin token (default $TROVE_ADMIN_TOKEN)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "trove backup: unexpected argument %q (the output file goes after -o)\n", fs.Arg(0))
		return 2
	}
	if o.out == "" || o.out == "-" {
		fmt.Fprint(stderr, "trove backup: say where to write the backup: -o FILE\n\n")
		fs.Usage()
		return 2
	}
	if o.token == "" {
		o.token = os.Getenv("TROVE_ADMIN_TOKEN")
	}
	if o.token == "" {
		fmt.Fprintln(stderr, "trove backup: a backup needs the admin token: pass --token T or set TROVE_ADMIN_TOKEN\n  (a token generated on first start is in <data>/admin.token)")
		return 2
	}
	if err := o.run(ctx, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "trove backup:", err)
		return 1
	}
	return 0
}

func (o *backupOptions) run(ctx context.Context, stdout, stderr io.Writer) error {
	if _, err := os.Lstat(o.out); err == nil {
		return fmt.Errorf("%s already exists; nothing was changed. Choose a new name, or move the old file away first", o.out)
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	target, err := serverURL(o.server, "/admin/backup")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(o.out), "."+filepath.Base(o.out)+".*.part")
	if err != nil {
		return fmt.Errorf("cannot write next to %s: %v", o.out, err)
	}
	finished := false
	defer func() {
		if !finished {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+o.token)
	req.Header.Set("User-Agent", "trove-backup")
	client := streamClient()
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted before the server answered; nothing was written")
		}
		return fmt.Errorf("cannot reach the server at %s: %v\n  Is `trove serve` running there? Point --server at it (default %s)", o.server, unwrapURLError(err), DefaultServer)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w; nothing was written", responseError(resp))
	}

	bw := bufio.NewWriterSize(tmp, 256<<10)
	got := &countingWriter{w: bw}
	var src io.Reader = resp.Body
	var bar *progressbar.ProgressBar
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		bar = newByteBar(stderr, "backing up", -1)
		src = io.TeeReader(src, bar)
	}
	tee := io.TeeReader(src, got)
	m, err := backup.Verify(tee)
	if err == nil {
		// The end of the HTTP body: a broken transfer shows here too.
		_, err = io.Copy(io.Discard, tee)
	}
	if err == nil {
		err = bw.Flush()
	}
	if bar != nil {
		bar.Finish()
	}
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted after %d bytes; nothing was written to %s", got.n, o.out)
		}
		return fmt.Errorf("the backup did not arrive whole (%d bytes received): %v; nothing was written to %s. Run it again", got.n, err, o.out)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("writing %s: %v", o.out, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %v", o.out, err)
	}
	if err := placeNew(tmp.Name(), o.out); err != nil {
		return err
	}
	finished = true
	fmt.Fprintf(stderr, "backup written to %s: %d bytes, %d store files (%d bytes), watermark %d, taken %s by trove %s\n  restore it with: trove restore %s -data DIR\n",
		o.out, got.n, len(m.Files), m.Size(), m.Watermark, m.CreatedAt.Format(time.RFC3339), m.TroveVersion, shellQuote(o.out))
	return nil
}

// placeNew moves the finished file tmp to out without replacing a file
// that appeared at out meanwhile: a hard link fails if out exists.
func placeNew(tmp, out string) error {
	err := os.Link(tmp, out)
	if err == nil {
		os.Remove(tmp)
		return nil
	}
	if errors.Is(err, os.ErrExist) {
		os.Remove(tmp)
		return fmt.Errorf("%s appeared while the backup was running; it was left alone and the backup discarded", out)
	}
	// A file system without hard links.
	if _, serr := os.Lstat(out); serr == nil {
		os.Remove(tmp)
		return fmt.Errorf("%s appeared while the backup was running; it was left alone and the backup discarded", out)
	}
	if err := os.Rename(tmp, out); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cannot put the backup in place at %s: %v", out, err)
	}
	return nil
}

// newByteBar is a progress bar of bytes; total -1 makes it a spinner.
func newByteBar(w io.Writer, what string, total int64) *progressbar.ProgressBar {
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetWidth(20),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionClearOnFinish(),
	)
}
