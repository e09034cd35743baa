package ingest

import (
	"encoding/binary"
	"fmt"
	"time"

	"trove/logentry"
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

// LogSink stores batches through a replicated log (see above). Suppressed
// users and quarantine replays read the node's own store.
type LogSink struct {
	StoreSink
	Log logentry.Log
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
	dst = logentry.AppendBytes(dst, b.IP)
	dst = logentry.AppendBool(dst, b.NDJSON)
	dst = logentry.AppendBytes(dst, b.receivedAt)
	dst = binary.AppendUvarint(dst, uint64(len(b.Events)))
	for i := range b.Events {
		e := &b.Events[i]
		dst = logentry.AppendBytes(dst, e.AppKey)
		dst = logentry.AppendBool(dst, e.MessageID != nil)
		dst = logentry.AppendBytes(dst, e.MessageID)
		dst = binary.AppendVarint(dst, e.TimeUs)
		dst = binary.AppendUvarint(dst, e.qseq)
		dst = logentry.AppendBytes(dst, b.buf[e.start:e.end])
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
			dst = logentry.AppendBytes(dst, s)
		}
		dst = logentry.AppendBytes(dst, r.Raw)
		dst = binary.AppendUvarint(dst, r.qseq)
	}
	dst = binary.AppendUvarint(dst, uint64(len(b.replay)))
	for _, q := range b.replay {
		dst = logentry.AppendBytes(dst, q.app)
		dst = binary.AppendUvarint(dst, q.seq)
		dst = logentry.AppendBytes(dst, q.line)
	}
	return dst
}

// decodeEntry fills b, fresh from newBatch, with the batch of an entry. b
// aliases entry.
func decodeEntry(b *Batch, entry []byte) error {
	if len(entry) == 0 || entry[0] != entryVersion {
		return fmt.Errorf("%w: version %x is not one this node knows (upgrade it)", logentry.ErrMalformed, entry[:min(len(entry), 1)])
	}
	r := logentry.NewReader(entry[1:])
	b.Now = time.Unix(0, r.Varint())
	b.IP = string(r.Bytes())
	b.NDJSON = r.Bool()
	b.receivedAt = append(b.receivedAt[:0], r.Bytes()...)
	n := r.Count(6)
	for range n {
		var e Event
		e.AppKey = b.intern(r.Bytes())
		hasID := r.Bool()
		if id := r.Bytes(); hasID {
			e.MessageID = id
		}
		e.TimeUs = r.Varint()
		e.qseq = r.Uvarint()
		e.start = len(b.buf)
		b.buf = append(b.buf, r.Bytes()...)
		e.end = len(b.buf)
		b.Events = append(b.Events, e)
	}
	n = r.Count(8)
	for range n {
		var q Rejection
		q.Index = int(r.Uvarint())
		q.AppKey = b.intern(r.Bytes())
		q.MessageID = string(r.Bytes())
		q.Field = string(r.Bytes())
		q.Code = string(r.Bytes())
		q.Message = string(r.Bytes())
		q.Raw = r.Bytes()
		q.qseq = r.Uvarint()
		b.Rejected = append(b.Rejected, q)
	}
	n = r.Count(3)
	for range n {
		var q requarantined
		q.app = string(r.Bytes())
		q.seq = r.Uvarint()
		q.line = r.Bytes()
		b.replay = append(b.replay, q)
	}
	return r.Done()
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
