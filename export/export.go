package export

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"

	"trove/apierr"
	"trove/auth"
	"trove/httpbody"
	"trove/obs"
	"trove/storage"
)

// Handler serves the export endpoints.
type Handler struct {
	db  *storage.DB
	reg *auth.Registry
	log *slog.Logger
}

// NewHandler returns a Handler reading from db.
func NewHandler(db *storage.DB, reg *auth.Registry, log *slog.Logger) *Handler {
	return &Handler{db: db, reg: reg, log: log}
}

// flushEvery is the buffered writer's size: large writes keep fasthttp's
// streaming path fast.
const flushEvery = 64 << 10

// sinceWait is how long a cluster node that is behind waits to reach a
// since= that another node handed out.
const sinceWait = 5 * time.Second

// checkSince refuses a since= beyond the watermark. A cluster node first
// waits a moment for the stream to bring it there: the watermark came from
// another node, further along the same stream (SPEC section 9).
func (h *Handler) checkSince(since uint64) error {
	wm, _ := h.db.Watermark()
	if since <= wm {
		return nil
	}
	if h.db.Replicated() {
		if h.db.WaitWatermark(since, sinceWait) {
			return nil
		}
		return &apierr.Error{Kind: apierr.Unavailable, Code: "behind", Field: "since",
			Message: fmt.Sprintf("this cluster node has applied the stream up to watermark %d, not yet to since %d; retry, or ask the node that gave you %d", wm, since, since)}
	}
	return apierr.New(apierr.Invalid, "since", fmt.Sprintf("since %d is beyond the watermark %d: use the X-Trove-Watermark of your last export", since, wm))
}

// authorize checks that the request's token may export app.
func (h *Handler) authorize(ctx *fasthttp.RequestCtx, app string) error {
	return h.reg.Authorize(auth.TokenOf(ctx), app, auth.ScopeExport)
}

// appParam returns the appKey parameter, checked against the request's
// token for export scope.
func (h *Handler) appParam(ctx *fasthttp.RequestCtx) (string, error) {
	app := string(ctx.QueryArgs().Peek("appKey"))
	if app == "" {
		return "", apierr.New(apierr.Invalid, "appKey", "appKey is required")
	}
	if err := h.reg.Authorize(auth.TokenOf(ctx), app, auth.ScopeExport); err != nil {
		return "", err
	}
	return app, nil
}

func uintParam(ctx *fasthttp.RequestCtx, name string, def uint64) (uint64, error) {
	v := ctx.QueryArgs().Peek(name)
	if len(v) == 0 {
		return def, nil
	}
	n, err := strconv.ParseUint(string(v), 10, 64)
	if err != nil {
		return 0, apierr.New(apierr.Invalid, name, name+" must be a non-negative integer")
	}
	return n, nil
}

// Rejected serves GET /v1/export/rejected: the app's quarantine as NDJSON.
func (h *Handler) Rejected(ctx *fasthttp.RequestCtx) error {
	app, err := h.appParam(ctx)
	if err != nil {
		return err
	}
	since, err := uintParam(ctx, "since", 0)
	if err != nil {
		return err
	}
	reason := string(ctx.QueryArgs().Peek("reason"))
	// seq=1 leads each line with its sequence (which since= and the
	// replay's since= and until= take); without it, lines are exactly as
	// before, as exports promise across upgrades.
	withSeq := ctx.QueryArgs().GetBool("seq")
	id, err := h.db.App(app)
	if errors.Is(err, storage.ErrUnknownApp) {
		id = 0
	} else if err != nil {
		return err
	}
	snap, err := h.db.NewSnapshot()
	if err != nil {
		return err
	}
	h.stream(ctx, rejectedOut, snap, func(w *bufio.Writer) error {
		if id == 0 {
			return nil
		}
		var seqBuf []byte
		return snap.Rejected(id, since, func(seq uint64, line []byte) error {
			if reason != "" && !hasReason(line, reason) {
				return nil
			}
			if !withSeq {
				w.Write(line)
				return w.WriteByte('\n')
			}
			seqBuf = strconv.AppendUint(append(seqBuf[:0], `{"seq":`...), seq, 10)
			w.Write(seqBuf)
			if len(line) > 2 {
				w.WriteByte(',')
			}
			w.Write(line[1:])
			return w.WriteByte('\n')
		})
	})
	return nil
}

// hasReason reports whether a quarantine line's error code or message
// starts with prefix (reason=; a replay selects its entries the same way).
func hasReason(line []byte, prefix string) bool {
	var rec struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	if json.Unmarshal(line, &rec) != nil {
		return false
	}
	return strings.HasPrefix(rec.Error, prefix) || strings.HasPrefix(rec.Message, prefix)
}

var errLimit = errors.New("export: limit reached")

// stream sends the NDJSON produced by fill with the snapshot's watermark,
// counting what it sends in out.
func (h *Handler) stream(ctx *fasthttp.RequestCtx, out *obs.ExportCounters, snap *storage.Snapshot, fill func(w *bufio.Writer) error) {
	ctx.SetContentType("application/x-ndjson")
	ctx.Response.Header.Set("X-Trove-Watermark", strconv.FormatUint(snap.Watermark(), 10))
	enc := negotiateEncoding(ctx)
	if enc != "" {
		ctx.Response.Header.Set("Content-Encoding", enc)
	}
	ctx.Response.Header.Add("Vary", "Accept-Encoding")
	ctx.SetBodyStream(&body{snap: snap, fill: fill, log: h.log, enc: enc, out: out}, -1)
}

// body is an export's response body. fasthttp calls WriteTo, which frames
// each 64 KiB write as one chunk with no extra copy; Read, for the other
// paths, goes through a pipe. An error after the headers are sent can only
// be reported by breaking the connection: WriteTo returns it, fasthttp
// then leaves out the terminating chunk and closes, so the client sees an
// incomplete transfer rather than a short file that looks whole.
type body struct {
	snap   *storage.Snapshot
	fill   func(w *bufio.Writer) error
	log    *slog.Logger
	enc    string // "", "zstd" or "gzip"
	pipe   httpbody.Pipe
	closed bool
	out    *obs.ExportCounters
	rows   bool // fill counts rows itself: the body is not NDJSON
	doneHook
}

// SupportsBodyWriteTo tells fasthttp to use WriteTo.
func (b *body) SupportsBodyWriteTo() bool { return true }

// WriteTo writes the whole export to w.
func (b *body) WriteTo(w io.Writer) (int64, error) {
	cw := &countingWriter{w: w, bytes: b.out}
	var out io.Writer = cw
	var zw compressor
	if b.enc != "" {
		zw = getCompressor(b.enc, cw)
		out = zw
	}
	if !b.rows {
		out = &lineCounter{w: out, out: b.out}
	}
	bw := bufio.NewWriterSize(out, flushEvery)
	err := b.fill(bw)
	if errors.Is(err, errLimit) {
		err = nil
	}
	if err == nil {
		err = bw.Flush()
	}
	if zw != nil {
		if err == nil {
			err = zw.Close() // ends the frame; a broken stream must not get one
		}
		// The zstd encoder compresses on a goroutine of its own: once it
		// is back in the pool, nothing writes to w or counts in cw.
		putCompressor(b.enc, zw)
	}
	b.release()
	if err != nil {
		err = fmt.Errorf("export aborted: %w", err)
		if !b.done(cw.n, err) {
			b.log.Warn("export aborted", "err", err)
		}
		return cw.n, err
	}
	b.done(cw.n, nil)
	return cw.n, nil
}

func (b *body) Read(p []byte) (int, error) { return b.pipe.Read(p, b, nil) }

// Close is called by fasthttp when it is done with the body, also when the
// client went away.
func (b *body) Close() error {
	if b.pipe.Close() {
		return nil
	}
	b.release()
	b.done(0, nil) // a no-op after WriteTo
	return nil
}

func (b *body) release() {
	if !b.closed {
		b.closed = true
		b.snap.Close()
	}
}

// countingWriter counts the bytes written to the client, in n and, when
// set, in bytes.Bytes.
type countingWriter struct {
	w     io.Writer
	n     int64
	bytes *obs.ExportCounters
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	if c.bytes != nil {
		c.bytes.Bytes.Add(n)
	}
	return n, err
}
