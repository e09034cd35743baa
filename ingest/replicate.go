package ingest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"trove/storage"
)

// In cluster mode (SPEC section 9) a node does not store a batch itself:
// LogSink appends the batch, as validated, to the replicated log, and every
// node stores it when it applies that log entry (ApplyEntry). The entry
// carries what StoreSink needs and nothing it would compute again
// differently on another node: the stored forms as this node built them
// (receivedAt, context.ip and the clock-skew fixes made), the quarantine
// records, and the request's time, which the dedup window is measured on.
// Sequences and generated messageIds follow from the entry's place in the
// log (storage.Writer.AllocLog), so every node stores the same bytes.

// A Log appends entries to a replicated log. Append returns once the entry
// is in the log and this node has applied it, with what ApplyEntry
// returned for it here.
type Log interface {
	Append(entry []byte) (any, error)
}

// LogSink stores batches through a replicated log (see above). Suppressed
// users and quarantine replays read the node's own store.
type LogSink struct {
	StoreSink
	Log Log
}

// AppendEvents implements eventSink: the batch's duplicates are those the
// log's order made duplicates, exactly as a single node would answer.
func (s LogSink) AppendEvents(b *Batch) error {
	if n := len(b.Events) + len(b.Rejected); n > storage.MaxEntryEvents {
		return fmt.Errorf("a batch of %d events is more than one log entry holds (%d)", n, storage.MaxEntryEvents)
	}
	res, err := s.Log.Append(b.appendEntry(nil))
	if err != nil {
		return err
	}
	dups, ok := res.([]bool)
	if !ok || len(dups) != len(b.Events) {
		return fmt.Errorf("BUG: the log applied %T for a batch of %d events", res, len(b.Events))
	}
	for i := range b.Events {
		b.Events[i].Duplicate = dups[i]
	}
	return nil
}

// entryVersion is the first byte of an entry; a node refuses entries of a
// version it does not know rather than guess at them.
const entryVersion = 1

// appendEntry appends b's log entry to dst.
func (b *Batch) appendEntry(dst []byte) []byte {
	dst = append(dst, entryVersion)
	dst = binary.AppendVarint(dst, b.Now.UnixNano())
	dst = appendEntryBytes(dst, []byte(b.IP))
	dst = appendEntryBool(dst, b.NDJSON)
	dst = appendEntryBytes(dst, b.receivedAt)
	dst = binary.AppendUvarint(dst, uint64(len(b.Events)))
	for i := range b.Events {
		e := &b.Events[i]
		dst = appendEntryBytes(dst, []byte(e.AppKey))
		dst = appendEntryBool(dst, e.MessageID != nil)
		dst = appendEntryBytes(dst, e.MessageID)
		dst = binary.AppendVarint(dst, e.TimeUs)
		dst = binary.AppendUvarint(dst, e.qseq)
		dst = appendEntryBytes(dst, b.buf[e.start:e.end])
	}
	n := 0
	for i := range b.Rejected {
		if quarantines(&b.Rejected[i]) {
			n++
		}
	}
	dst = binary.AppendUvarint(dst, uint64(n))
	for i := range b.Rejected {
		r := &b.Rejected[i]
		if !quarantines(r) {
			continue
		}
		dst = binary.AppendUvarint(dst, uint64(r.Index))
		for _, s := range [...]string{r.AppKey, r.MessageID, r.Field, r.Code, r.Message} {
			dst = appendEntryBytes(dst, []byte(s))
		}
		dst = appendEntryBytes(dst, r.Raw)
		dst = binary.AppendUvarint(dst, r.qseq)
	}
	dst = binary.AppendUvarint(dst, uint64(len(b.replay)))
	for _, q := range b.replay {
		dst = appendEntryBytes(dst, []byte(q.app))
		dst = binary.AppendUvarint(dst, q.seq)
		dst = appendEntryBytes(dst, q.line)
	}
	return dst
}

func appendEntryBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

func appendEntryBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, 1)
	}
	return append(dst, 0)
}

// errEntry is the error of an entry that cannot be read.
var errEntry = errors.New("malformed log entry")

// entryReader reads an entry, remembering the first error.
type entryReader struct {
	b   []byte
	err error
}

func (r *entryReader) fail() {
	if r.err == nil {
		r.err = errEntry
	}
	r.b = nil
}

func (r *entryReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *entryReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a count of items of at least min bytes each, refusing one
// that the rest of the entry cannot hold.
func (r *entryReader) count(min int) int {
	n := r.uvarint()
	if n > uint64(len(r.b)/min) {
		r.fail()
		return 0
	}
	return int(n)
}

// bytes reads a length-prefixed run; it aliases the entry.
func (r *entryReader) bytes() []byte {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *entryReader) bool() bool {
	if len(r.b) == 0 || r.b[0] > 1 {
		r.fail()
		return false
	}
	v := r.b[0] == 1
	r.b = r.b[1:]
	return v
}

// decodeEntry fills b, fresh from newBatch, with the batch of an entry. b
// aliases entry.
func decodeEntry(b *Batch, entry []byte) error {
	if len(entry) == 0 || entry[0] != entryVersion {
		return fmt.Errorf("%w: version %x is not one this node knows (upgrade it)", errEntry, entry[:min(len(entry), 1)])
	}
	r := entryReader{b: entry[1:]}
	b.Now = time.Unix(0, r.varint())
	b.IP = string(r.bytes())
	b.NDJSON = r.bool()
	b.receivedAt = append(b.receivedAt[:0], r.bytes()...)
	n := r.count(6)
	for range n {
		var e Event
		e.AppKey = b.intern(r.bytes())
		hasID := r.bool()
		if id := r.bytes(); hasID {
			e.MessageID = id
		}
		e.TimeUs = r.varint()
		e.qseq = r.uvarint()
		e.start = len(b.buf)
		b.buf = append(b.buf, r.bytes()...)
		e.end = len(b.buf)
		b.Events = append(b.Events, e)
	}
	n = r.count(8)
	for range n {
		var q Rejection
		q.Index = int(r.uvarint())
		q.AppKey = b.intern(r.bytes())
		q.MessageID = string(r.bytes())
		q.Field = string(r.bytes())
		q.Code = string(r.bytes())
		q.Message = string(r.bytes())
		q.Raw = r.bytes()
		q.qseq = r.uvarint()
		b.Rejected = append(b.Rejected, q)
	}
	n = r.count(3)
	for range n {
		var q requarantined
		q.app = string(r.bytes())
		q.seq = r.uvarint()
		q.line = r.bytes()
		b.replay = append(b.replay, q)
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail()
	}
	return r.err
}

// ApplyEntry stores the batch of log entry logSeq in db, a replicated
// store, and returns, per event of the entry, whether it was a duplicate
// (what LogSink.AppendEvents takes). An entry that cannot be read is an
// error, and so is a store that fails: the caller applies it again.
func ApplyEntry(cfg *Config, db *storage.DB, logSeq uint64, entry []byte) ([]bool, error) {
	b := newBatch(cfg, time.Time{}, "")
	defer putBatch(b)
	if err := decodeEntry(b, entry); err != nil {
		return nil, fmt.Errorf("log entry %d: %w", logSeq, err)
	}
	err := StoreSink{DB: db}.store(b, func(w *storage.Writer, n int) (uint64, error) {
		return w.AllocLog(logSeq, n)
	})
	if err != nil {
		return nil, err
	}
	dups := make([]bool, len(b.Events))
	for i := range b.Events {
		dups[i] = b.Events[i].Duplicate
	}
	return dups, nil
}
