package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"

	"trove/auth"
	"trove/storage"
)

// ReplayResult is the answer to POST /admin/quarantine/replay.
type ReplayResult struct {
	// Replayed counts the entries stored now, StillRejected those that
	// fail today's rules again (rewritten with today's reason), and
	// Duplicates those whose messageId was already stored: they leave the
	// quarantine, as Replayed ones do, without being stored twice.
	Replayed      int `json:"replayed"`
	StillRejected int `json:"stillRejected"`
	Duplicates    int `json:"duplicates"`
}

// ReplayQuery selects the quarantine entries of one app to replay:
// sequences in (Since, Until] (Until 0: no bound) whose error code or
// message starts with Reason.
type ReplayQuery struct {
	AppKey       string
	Since, Until uint64
	Reason       string
}

// requarantined is a quarantine entry that a replay rewrites in place,
// with today's reason.
type requarantined struct {
	app  string
	seq  uint64
	line []byte
}

// quarantineRecord is a quarantine entry, as appendRejectedLine writes it.
type quarantineRecord struct {
	ReceivedAt string          `json:"receivedAt"`
	Index      *int            `json:"index"`
	Line       *int            `json:"line"`
	IP         string          `json:"ip"`
	MessageID  string          `json:"messageId"`
	Error      string          `json:"error"`
	Field      string          `json:"field"`
	Message    string          `json:"message"`
	Event      json.RawMessage `json:"event"`
}

// MatchesReason reports whether a quarantine entry's error code or message
// starts with prefix (the reason= of replay and of GET /v1/export/rejected).
func MatchesReason(code, message, prefix string) bool {
	return strings.HasPrefix(code, prefix) || strings.HasPrefix(message, prefix)
}

// errFull stops a read of the quarantine once a chunk is full.
var errFull = errors.New("ingest: chunk full")

// replayChunk bounds the entries replayed in one commit.
const replayChunk = 500

// Replay serves POST /admin/quarantine/replay?appKey=K[&since=S][&until=U][&reason=PREFIX].
func (h *Handler) Replay(ctx *fasthttp.RequestCtx) error {
	args := ctx.QueryArgs()
	q := ReplayQuery{AppKey: string(args.Peek("appKey")), Reason: string(args.Peek("reason"))}
	if q.AppKey == "" {
		return invalid("appKey", "appKey is required")
	}
	if err := h.reg.Authorize(auth.TokenOf(ctx), q.AppKey, auth.ScopeAdmin); err != nil {
		return err
	}
	for _, p := range []struct {
		name string
		dst  *uint64
	}{{"since", &q.Since}, {"until", &q.Until}} {
		if v := args.Peek(p.name); len(v) > 0 {
			n, err := strconv.ParseUint(string(v), 10, 64)
			if err != nil {
				return invalid(p.name, p.name+" must be a non-negative integer")
			}
			*p.dst = n
		}
	}
	res, err := h.ReplayQuarantine(q)
	if err != nil {
		return err
	}
	return Answer(ctx, fasthttp.StatusOK, res)
}

// ReplayQuarantine re-checks q's quarantine entries against today's rules
// and contracts, and stores those that now pass, with their messageId (so
// dedup applies). Each chunk of entries is one commit that stores the
// events and deletes their entries: a replay cut short and run again
// stores nothing twice. One replay runs at a time.
func (h *Handler) ReplayQuarantine(q ReplayQuery) (ReplayResult, error) {
	var res ReplayResult
	ss, ok := h.sink.(interface{ storeSink() StoreSink })
	if !ok {
		return res, fmt.Errorf("BUG: quarantine replay needs a StoreSink, got %T", h.sink)
	}
	sink := ss.storeSink()
	h.replayMu.Lock()
	defer h.replayMu.Unlock()
	app, err := sink.DB.App(q.AppKey)
	if err != nil {
		return res, nil // no event of this app was ever stored: nothing quarantined
	}
	since := q.Since
	for {
		entries, next, err := readQuarantine(sink.DB, app, since, q)
		if err != nil {
			return res, err
		}
		if len(entries) == 0 {
			return res, nil
		}
		if err := h.replayChunk(q.AppKey, entries, &res); err != nil {
			return res, err
		}
		since = next
	}
}

// quarantined is one quarantine entry read for a replay; line is owned.
type quarantined struct {
	seq  uint64
	line []byte
	rec  quarantineRecord
}

// readQuarantine returns up to replayChunk of app's entries after since
// that q selects, and the sequence to continue from.
func readQuarantine(db *storage.DB, app uint32, since uint64, q ReplayQuery) ([]quarantined, uint64, error) {
	snap, err := db.NewSnapshot()
	if err != nil {
		return nil, 0, err
	}
	defer snap.Close()
	var out []quarantined
	next := since
	err = snap.Rejected(app, since, func(seq uint64, line []byte) error {
		if q.Until > 0 && seq > q.Until {
			return errFull
		}
		if len(out) == replayChunk {
			return errFull
		}
		next = seq
		var rec quarantineRecord
		if json.Unmarshal(line, &rec) != nil || !MatchesReason(rec.Error, rec.Message, q.Reason) {
			return nil
		}
		out = append(out, quarantined{seq: seq, line: bytes.Clone(line), rec: rec})
		return nil
	})
	if err != nil && err != errFull {
		return nil, 0, err
	}
	return out, next, nil
}

// replayChunk replays entries in one commit.
func (h *Handler) replayChunk(appKey string, entries []quarantined, res *ReplayResult) error {
	now := h.now()
	b := newBatch(&h.cfg, now, "")
	b.suppressed = h.suppressed // a user deleted with suppress=1 stays out
	defer putBatch(b)
	// The entries that cannot be read as events again (not JSON, too
	// large) stay as they are.
	for _, e := range entries {
		ev := e.rec.Event
		received, err := time.Parse(time.RFC3339Nano, e.rec.ReceivedAt)
		if len(ev) == 0 || err != nil {
			res.StillRejected++
			continue
		}
		// The rules that depend on the time (clock skew, max_future) are
		// applied as of the event's arrival, and it keeps its receivedAt.
		b.Now, b.IP = received, e.rec.IP
		b.receivedAt = append(append(append(b.receivedAt[:0], `"receivedAt":"`...), e.rec.ReceivedAt...), '"')
		idx := 0
		if e.rec.Index != nil {
			idx = *e.rec.Index
		} else if e.rec.Line != nil {
			idx = *e.rec.Line
		}
		nEv := len(b.Events)
		b.add(idx, ev, true /* valid */)
		if len(b.Events) > nEv {
			b.Events[nEv].qseq = e.seq
			if b.Events[nEv].AppKey != appKey {
				// The entry was quarantined under this app for want of a
				// known one: its own appKey still names no app of the
				// caller's.
				b.Drop(nEv, "appKey", "appKey "+strconv.Quote(b.Events[nEv].AppKey)+" is not the app "+appKey+" whose quarantine was replayed", ev)
				b.Rejected[len(b.Rejected)-1].qseq = e.seq
			}
		} else {
			b.Rejected[len(b.Rejected)-1].qseq = e.seq
		}
	}
	b.Now = now
	h.applyContracts(b, true /* count */)
	byseq := map[uint64]*quarantined{}
	for i := range entries {
		byseq[entries[i].seq] = &entries[i]
	}
	for _, r := range b.Rejected {
		res.StillRejected++
		e := byseq[r.qseq]
		if e.rec.Error == r.Code && e.rec.Field == r.Field && e.rec.Message == r.Message {
			continue
		}
		b.replay = append(b.replay, requarantined{app: appKey, seq: r.qseq, line: rewriteReason(e.line, r)})
	}
	b.Rejected = b.Rejected[:0]
	if len(b.Events) == 0 && len(b.replay) == 0 {
		return nil
	}
	if err := h.sink.AppendEvents(b); err != nil {
		return err
	}
	dups := countStored(b)
	res.Duplicates += dups
	res.Replayed += len(b.Events) - dups
	return nil
}

// rewriteReason returns the quarantine line with its error, field and
// message replaced by r's.
func rewriteReason(line []byte, r Rejection) []byte {
	out := []byte{'{'}
	forEachMember(line, func(key, val []byte) error {
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(append(append(out, '"'), key...), '"', ':')
		switch string(key) {
		case "error":
			out = appendQuoted(out, r.Code)
		case "field":
			out = appendQuoted(out, r.Field)
		case "message":
			out = appendQuoted(out, r.Message)
		default:
			out = append(out, val...)
		}
		return nil
	})
	return append(out, '}')
}
