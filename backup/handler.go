package backup

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"trove/httpbody"
)

// Store is what a backup needs of the store: a consistent checkpoint into
// a new directory, and its watermark (storage.DB implements it).
type Store interface {
	Checkpoint(dir string) (watermark uint64, err error)
}

// tempPrefix starts the name of a backup's working directory in the data
// directory.
const tempPrefix = ".backup-"

// Handler serves POST /admin/backup.
type Handler struct {
	store   Store
	dataDir string
	version string
	log     *slog.Logger
	now     func() time.Time
	// open opens a checkpoint file for reading (tests make it fail).
	open func(name string) (io.ReadCloser, error)
}

// NewHandler returns a Handler that checkpoints store into working
// directories under dataDir (on the store's file system, so that the
// checkpoint's files are hard links). It removes the working directories
// that a process stopped mid-backup left behind; version goes into each
// manifest.
func NewHandler(store Store, dataDir, version string, log *slog.Logger) *Handler {
	h := &Handler{store: store, dataDir: dataDir, version: version, log: log, now: time.Now,
		open: func(name string) (io.ReadCloser, error) { return os.Open(name) }}
	stale, _ := filepath.Glob(filepath.Join(dataDir, tempPrefix+"*"))
	for _, d := range stale {
		if err := os.RemoveAll(d); err != nil {
			log.Warn("cannot remove an old backup working directory", "dir", d, "err", err)
		} else {
			log.Info("removed an old backup working directory", "dir", d)
		}
	}
	return h
}

// Backup takes a checkpoint of the store and streams it as a .tar.zst
// (manifest.json, then store/...). The checkpoint is taken before the
// first byte; ingest goes on meanwhile. The working directory is removed
// when the body is done with, whether it was sent whole, failed or the
// client left.
func (h *Handler) Backup(ctx *fasthttp.RequestCtx) error {
	tmp, err := os.MkdirTemp(h.dataDir, tempPrefix+"*")
	if err != nil {
		return fmt.Errorf("cannot create the backup's working directory: %w", err)
	}
	handed := false
	defer func() {
		if !handed {
			os.RemoveAll(tmp)
		}
	}()
	start := h.now().UTC()
	wm, err := h.store.Checkpoint(filepath.Join(tmp, storeDir))
	if err != nil {
		return err
	}
	files, err := listStore(tmp)
	if err != nil {
		return err
	}
	m := &Manifest{Format: Format, TroveVersion: h.version, CreatedAt: start.Truncate(time.Second), Watermark: wm, Files: files}
	name := "trove-backup-" + start.Format("20060102T150405Z") + ".tar.zst"
	ctx.SetContentType("application/zstd")
	ctx.Response.Header.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	ctx.Response.Header.Set("X-Trove-Watermark", strconv.FormatUint(wm, 10))
	ctx.Response.Header.Set("Cache-Control", "no-store")
	h.log.Info("backup started", "file", name, "watermark", wm, "files", len(files), "bytes", m.Size(),
		"checkpoint_took", time.Since(start).Round(time.Millisecond).String())
	ctx.SetBodyStream(&body{dir: tmp, m: m, log: h.log, start: start, open: h.open}, -1)
	handed = true
	return nil
}

// body is a backup's response body. As an export's, it reports an error
// after the headers by breaking the connection: WriteTo returns it, and
// fasthttp leaves out the terminating chunk, so the client sees an
// incomplete transfer. Close, which fasthttp calls in every case (also when
// the client went away), removes the working directory.
type body struct {
	dir    string
	m      *Manifest
	log    *slog.Logger
	start  time.Time
	open   func(name string) (io.ReadCloser, error)
	pipe   httpbody.Pipe
	closed bool
}

// SupportsBodyWriteTo tells fasthttp to use WriteTo.
func (b *body) SupportsBodyWriteTo() bool { return true }

// writeBuffer is the size of the writes to fasthttp, each one chunk.
const writeBuffer = 256 << 10

// WriteTo writes the whole archive to w.
func (b *body) WriteTo(w io.Writer) (int64, error) {
	cw := &countingWriter{w: w}
	bw := bufio.NewWriterSize(cw, writeBuffer)
	err := writeArchive(bw, b.dir, b.m, b.open)
	if err == nil {
		err = bw.Flush()
	}
	took := time.Since(b.start).Round(time.Millisecond).String()
	if err != nil {
		b.log.Warn("backup aborted", "err", err, "sent_bytes", cw.n, "took", took)
		return cw.n, fmt.Errorf("backup aborted: %w", err)
	}
	b.log.Info("backup sent", "bytes", cw.n, "watermark", b.m.Watermark, "took", took)
	return cw.n, nil
}

func (b *body) Read(p []byte) (int, error) { return b.pipe.Read(p, b, b.release) }

// Close is called by fasthttp when it is done with the body.
func (b *body) Close() error {
	if b.pipe.Close() {
		return nil // the writing goroutine fails on its next write and cleans up
	}
	b.release()
	return nil
}

func (b *body) release() {
	if b.closed {
		return
	}
	b.closed = true
	if err := os.RemoveAll(b.dir); err != nil {
		b.log.Warn("cannot remove the backup's working directory", "dir", b.dir, "err", err)
	}
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
