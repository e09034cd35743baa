package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"

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
	fs := newFlagSet("trove backup", backupUsage, stderr)
	fs.StringVar(&o.out, "o", "", "output `FILE` (required; must not exist), e.g. trove-backup.tar.zst")
	fs.StringVar(&o.server, "server", DefaultServer, "base `URL` of the running trove server")
	fs.StringVar(&o.token, "token", "", "admin token (default $TROVE_ADMIN_TOKEN)")
	if err := fs.Parse(args); err != nil {
		return parseExit(err)
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

// run writes the backup to o.out, which must not exist yet.
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
	part, err := createPart(o.out)
	if err != nil {
		return err
	}
	defer part.discard()

	client := streamClient()
	defer client.CloseIdleConnections()
	resp, err := o.request(ctx, client, target)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	m, n, err := receiveBackup(resp.Body, part, stderr)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted after %d bytes; nothing was written to %s", n, o.out)
		}
		return fmt.Errorf("the backup did not arrive whole (%d bytes received): %v; nothing was written to %s. Run it again", n, err, o.out)
	}
	if err := part.finish(); err != nil {
		return err
	}
	if err := placeNew(part.Name(), o.out); err != nil {
		return err
	}
	part.placed = true
	fmt.Fprintf(stderr, "backup written to %s: %d bytes, %d store files (%d bytes), watermark %d, taken %s by trove %s\n  restore it with: trove restore %s -data DIR\n",
		o.out, n, len(m.Files), m.Size(), m.Watermark, m.CreatedAt.Format(time.RFC3339), m.TroveVersion, shellQuote(o.out))
	return nil
}

// request asks the server at target for the backup and returns the
// response of a 200; any other answer is an error that says what the
// server said.
func (o *backupOptions) request(ctx context.Context, client *http.Client, target string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+o.token)
	req.Header.Set("User-Agent", "trove-backup")
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("interrupted before the server answered; nothing was written")
		}
		return nil, unreachable(o.server, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, fmt.Errorf("%w; nothing was written", responseError(resp))
	}
	return resp, nil
}

// receiveBackup copies the archive in body to w, checking it as it passes
// (with a progress bar when stderr is a terminal), and returns its manifest
// and the bytes received, also when the archive did not arrive whole.
func receiveBackup(body io.Reader, w, stderr io.Writer) (*backup.Manifest, int64, error) {
	bw := bufio.NewWriterSize(w, 256<<10)
	got := &countingWriter{w: bw}
	src := body
	var bar *progressbar.ProgressBar
	if isTerminal(stderr) {
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
	return m, got.n, err
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
