package export

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"trove/apierr"
	"trove/httpbody"
	"trove/storage"
)

// StreamHeartbeat is how long a follower of GET /v1/stream/events stays
// silent before it sends a blank line, which keeps proxies from closing the
// connection and lets the server notice a client that went away. Set it
// before serving (tests shorten it).
var StreamHeartbeat = 15 * time.Second

// activeFollowers counts the streams being served.
var activeFollowers atomic.Int64

// ActiveFollowers returns how many GET /v1/stream/events responses are
// being written right now.
func ActiveFollowers() int64 { return activeFollowers.Load() }

var streamParams = map[string]bool{"appKey": true, "since": true, "envelope": true}

// Stream serves GET /v1/stream/events: the app's events stored after since,
// in ingest order, then each new one as the watermark moves over it, with
// a blank line as a heartbeat when idle. The response stays open until the
// client leaves or the server shuts down.
//
// By default each line is the stored event, exactly as an export gives it
// (SPEC section 5). With envelope=1 each line is {"seq":N,"event":<stored
// event>} and the heartbeat is {"watermark":N}, so that a follower cut off
// anywhere knows the sequence of the last line it holds and reconnects
// with since=N, repeating nothing and missing nothing: lines come in
// sequence order and since is exclusive.
//
// A follower holds no snapshot while it waits: it only waits on the
// watermark's channel, then reads the new range from a fresh snapshot, so
// followers neither slow ingest nor hold up closing the store.
func (h *Handler) Stream(ctx *fasthttp.RequestCtx) error {
	args := ctx.QueryArgs()
	if err := checkParams(args, streamParams, "appKey, since or envelope"); err != nil {
		return err
	}
	app := string(args.Peek("appKey"))
	if app == "" {
		return apierr.New(apierr.Invalid, "appKey", "appKey is required")
	}
	since, err := uintParam(ctx, "since", 0)
	if err != nil {
		return err
	}
	envelope := false
	switch v := string(args.Peek("envelope")); v {
	case "", "0", "false":
	case "1", "true":
		envelope = true
	default:
		return apierr.New(apierr.Invalid, "envelope", "envelope must be 1 or 0, got "+strconv.Quote(v))
	}
	if err := h.authorize(ctx, app); err != nil {
		return err
	}
	if err := h.checkSince(since); err != nil {
		return err
	}
	wm, _ := h.db.Watermark()
	id, err := h.db.App(app)
	if errors.Is(err, storage.ErrUnknownApp) {
		id = 0 // nothing stored yet: looked up again as the watermark moves
	} else if err != nil {
		return err
	}
	ctx.SetContentType("application/x-ndjson")
	ctx.Response.Header.Set("X-Trove-Watermark", strconv.FormatUint(wm, 10))
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.Response.Header.Set("X-Accel-Buffering", "no") // nginx: pass each batch on
	ctx.Response.ImmediateHeaderFlush = true           // the client sees the headers before the first event
	ctx.SetBodyStream(&follower{
		db:       h.db,
		log:      h.log,
		app:      app,
		id:       id,
		since:    since,
		envelope: envelope,
		done:     ctx.Done(), // taken here: the body writer never touches ctx
		stop:     make(chan struct{}),
	}, -1)
	return nil
}

// follower is a stream's response body. Like body, fasthttp calls WriteTo,
// which frames each flush as one chunk and sends it at once.
type follower struct {
	db    *storage.DB
	log   *slog.Logger
	app   string
	id    uint32
	since uint64
	// envelope wraps each line as {"seq":N,"event":…} and makes the
	// heartbeat {"watermark":N}.
	envelope bool
	done     <-chan struct{} // closed when the server shuts down; nil outside a server
	stop     chan struct{}   // closed by Close
	once     sync.Once
	pipe     httpbody.Pipe
	doneHook
}

// SupportsBodyWriteTo tells fasthttp to use WriteTo.
func (f *follower) SupportsBodyWriteTo() bool { return true }

// WriteTo writes the stream to w until the client leaves (a write fails),
// the server shuts down, Close is called or the store fails. Only a clean
// end (shutdown, Close) returns nil; fasthttp then ends the chunked body,
// and on an error it drops the connection instead.
func (f *follower) WriteTo(w io.Writer) (int64, error) {
	activeFollowers.Add(1)
	defer activeFollowers.Add(-1)
	cw := &countingWriter{w: w, bytes: streamOut}
	err := f.follow(bufio.NewWriterSize(cw, flushEvery))
	if err != nil {
		// Mostly a client that left: not worth more than debug.
		f.log.Debug("stream ended", "app", f.app, "bytes", cw.n, "err", err)
		err = fmt.Errorf("cannot stream events of %s: %w", f.app, err)
		f.doneHook.done(cw.n, err)
		return cw.n, err
	}
	f.doneHook.done(cw.n, nil)
	return cw.n, nil
}

// follow does WriteTo's work with bw, the follower's one buffer, reused
// for every batch.
func (f *follower) follow(bw *bufio.Writer) error {
	idle := time.NewTimer(StreamHeartbeat)
	defer idle.Stop()
	var num []byte // the follower's one buffer for formatting numbers
	emit := func(seq uint64, _ int64, body []byte) error {
		streamOut.Lines.Inc()
		if f.envelope {
			num = strconv.AppendUint(num[:0], seq, 10)
			bw.WriteString(`{"seq":`)
			bw.Write(num)
			bw.WriteString(`,"event":`)
			bw.Write(body)
			bw.WriteByte('}')
		} else {
			bw.Write(body)
		}
		return bw.WriteByte('\n')
	}
	last := f.since
	for {
		// The channel first: a move after the snapshot's watermark closes
		// it, so no commit is missed.
		_, moved := f.db.Watermark()
		sent, err := f.send(&last, emit)
		if err != nil {
			return err
		}
		if sent {
			if err := bw.Flush(); err != nil {
				return err
			}
			idle.Reset(StreamHeartbeat)
		}
		for waiting := true; waiting; {
			select {
			case <-moved:
				waiting = false
			case <-idle.C:
				if f.envelope {
					// last is what this follower has sent all of: since=last
					// after a cut skips the events of other apps too.
					num = strconv.AppendUint(num[:0], last, 10)
					bw.WriteString(`{"watermark":`)
					bw.Write(num)
					bw.WriteByte('}')
				}
				bw.WriteByte('\n')
				if err := bw.Flush(); err != nil {
					return err
				}
				// A closed store never moves the watermark again.
				snap, err := f.db.NewSnapshot()
				if err != nil {
					return err
				}
				snap.Close()
				idle.Reset(StreamHeartbeat)
			case <-f.done:
				return bw.Flush()
			case <-f.stop:
				return nil
			}
		}
	}
}

// send writes the events in (*last, watermark] from a new snapshot and
// moves *last to its watermark. It reports whether it wrote anything.
func (f *follower) send(last *uint64, emit storage.EventFunc) (bool, error) {
	if f.id == 0 {
		id, err := f.db.App(f.app)
		if errors.Is(err, storage.ErrUnknownApp) {
			return false, nil // *last stays: its first events are read once it exists
		} else if err != nil {
			return false, err
		}
		f.id = id
	}
	snap, err := f.db.NewSnapshot()
	if err != nil {
		return false, err
	}
	defer snap.Close()
	wm := snap.Watermark()
	if wm <= *last {
		return false, nil
	}
	sent := false
	var filter *storage.Filter
	if deleted := f.db.Forgotten(f.id); len(deleted) > 0 {
		filter = &storage.Filter{Exclude: deleted}
	}
	err = snap.EventsBySeqWhere(f.id, *last, wm, filter, func(seq uint64, t int64, body []byte) error {
		sent = true
		return emit(seq, t, body)
	})
	if err != nil {
		return sent, err
	}
	*last = wm
	return sent, nil
}

func (f *follower) Read(p []byte) (int, error) { return f.pipe.Read(p, f, nil) }

// Close is called by fasthttp when it is done with the body, also when the
// client went away; a WriteTo still waiting for events returns.
func (f *follower) Close() error {
	f.once.Do(func() { close(f.stop) })
	if !f.pipe.Close() {
		f.doneHook.done(0, nil) // a no-op after WriteTo
	}
	return nil
}
