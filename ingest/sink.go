package ingest

import (
	"fmt"
	"slices"
	"unicode/utf8"

	"trove/storage"
)

// StoreSink stores batches in a storage.DB: client messageIds are
// deduplicated, every stored event and quarantined rejection gets an ingest
// sequence, and all of it is one atomic, durable commit.
type StoreSink struct {
	DB *storage.DB
}

// AppendEvents implements eventSink.
func (s StoreSink) AppendEvents(b *Batch) error {
	return s.store(b, (*storage.Writer).Alloc)
}

// store stores b in one commit, its sequences taken by alloc (Writer.Alloc,
// or Writer.AllocLog of a replicated store: replicate.go).
func (s StoreSink) store(b *Batch, alloc func(w *storage.Writer, n int) (uint64, error)) error {
	w := s.DB.NewWriter(b.Now)
	defer w.Close()
	apps := appIDs{db: s.DB, ids: map[string]uint32{}}
	keyIdx, err := markDuplicates(w, b, &apps)
	if err != nil {
		return err
	}
	n, size := 0, 0
	for i := range b.Events {
		if !b.Events[i].Duplicate {
			n++
			size += b.Events[i].end - b.Events[i].start + generatedIDLen
		}
	}
	quarantined := 0
	for i := range b.Rejected {
		if quarantines(&b.Rejected[i]) {
			quarantined++
		}
	}
	seq, err := alloc(w, n+quarantined)
	if err != nil {
		return err
	}
	// Sized up front: the Writer keeps slices of out until Commit, so out
	// must never move.
	out := slices.Grow(b.out[:0], size)
	defer func() { b.out = out[:0] }()
	for i := range b.Events {
		e := &b.Events[i]
		if e.Duplicate {
			continue
		}
		id, err := apps.id(e.AppKey)
		if err != nil {
			return err
		}
		start := len(out)
		out = b.appendStored(out, e, seq)
		if k := keyIdx[i]; k >= 0 {
			w.AddKeyedEvent(int(k), seq, e.TimeUs, out[start:])
		} else {
			w.AddEvent(id, seq, e.TimeUs, out[start:])
		}
		seq++
	}
	if err := addQuarantine(w, b, &apps, seq); err != nil {
		return err
	}
	if err := w.Commit(); err != nil {
		return fmt.Errorf("cannot store events: %w", err)
	}
	return nil
}

// storeSink is the store a quarantine replay reads (replay.go).
func (s StoreSink) storeSink() StoreSink { return s }

// appIDs caches the store's app ids of the appKeys of one batch.
type appIDs struct {
	db  *storage.DB
	ids map[string]uint32
}

func (a *appIDs) id(key string) (uint32, error) {
	if id, ok := a.ids[key]; ok {
		return id, nil
	}
	id, err := a.db.EnsureApp(key)
	if err != nil {
		return 0, err
	}
	a.ids[key] = id
	return id, nil
}

// markDuplicates checks the batch's client messageIds with w, marks the
// events already stored Duplicate, and returns, per event, its index into
// the checked keys (-1 for an event without a client messageId), which
// Writer.AddKeyedEvent takes.
func markDuplicates(w *storage.Writer, b *Batch, apps *appIDs) ([]int32, error) {
	var keys []storage.DedupKey
	var keyOf []int
	keyIdx := make([]int32, len(b.Events))
	for i := range b.Events {
		keyIdx[i] = -1
		e := &b.Events[i]
		if e.MessageID == nil {
			continue
		}
		id, err := apps.id(e.AppKey)
		if err != nil {
			return nil, err
		}
		keyIdx[i] = int32(len(keys))
		keys = append(keys, storage.DedupKey{App: id, MessageID: e.MessageID})
		keyOf = append(keyOf, i)
	}
	if len(keys) == 0 {
		return keyIdx, nil
	}
	dup, err := w.CheckDuplicates(keys)
	if err != nil {
		return nil, err
	}
	for j, d := range dup {
		b.Events[keyOf[j]].Duplicate = d
	}
	return keyIdx, nil
}

// addQuarantine adds to w the batch's quarantine changes, the rejections
// it keeps numbered from seq on. A replay's events leave the quarantine in
// the commit that stores them (or finds them already stored), and the
// entries that still fail are rewritten in place with today's reason
// (replay.go).
func addQuarantine(w *storage.Writer, b *Batch, apps *appIDs, seq uint64) error {
	for i := range b.Events {
		if e := &b.Events[i]; e.qseq != 0 {
			id, err := apps.id(e.AppKey)
			if err != nil {
				return err
			}
			w.DeleteRejected(id, e.qseq)
		}
	}
	for _, q := range b.replay {
		id, err := apps.id(q.app)
		if err != nil {
			return err
		}
		w.AddRejected(id, q.seq, q.line)
	}
	var line []byte
	for i := range b.Rejected {
		r := &b.Rejected[i]
		if !quarantines(r) {
			continue
		}
		id, err := apps.id(r.AppKey)
		if err != nil {
			return err
		}
		line = b.appendRejectedLine(line[:0], r)
		w.AddRejected(id, seq, line)
		seq++
	}
	return nil
}

// quarantines reports whether r is kept in the quarantine: it names an app
// to keep it under, and its user did not ask to be forgotten.
func quarantines(r *Rejection) bool { return r.AppKey != "" && r.Code != codeSuppressed }

// Suppressed returns the users of appKey deleted with suppress=1, or nil.
func (s StoreSink) Suppressed(appKey string) map[string]bool {
	id, err := s.DB.App(appKey)
	if err != nil {
		return nil // no app, no deleted users
	}
	return s.DB.Suppressed(id)
}

// appendRejectedLine appends the quarantine record of r: when it was
// received and from where, where it was in the request, why it was
// refused, and the event itself (as JSON when it is JSON, else as a
// string). The address is what a replay adds as context.ip when the event
// has none, as ingest would have.
func (b *Batch) appendRejectedLine(dst []byte, r *Rejection) []byte {
	dst = append(dst, '{')
	dst = append(dst, b.receivedAt...)
	if b.NDJSON {
		dst = append(dst, `,"line":`...)
	} else {
		dst = append(dst, `,"index":`...)
	}
	dst = fmt.Appendf(dst, "%d", r.Index)
	if b.IP != "" {
		dst = append(dst, `,"ip":`...)
		dst = appendQuoted(dst, b.IP)
	}
	if r.MessageID != "" {
		dst = append(dst, `,"messageId":`...)
		dst = appendQuoted(dst, r.MessageID)
	}
	dst = append(dst, `,"error":`...)
	dst = appendQuoted(dst, r.Code)
	dst = append(dst, `,"field":`...)
	dst = appendQuoted(dst, r.Field)
	dst = append(dst, `,"message":`...)
	dst = appendQuoted(dst, r.Message)
	if _, ok := nestingDepth(r.Raw, 512); ok && utf8.Valid(r.Raw) && validJSON(r.Raw) {
		dst = append(dst, `,"event":`...)
		dst = appendCompact(dst, r.Raw)
	} else {
		dst = append(dst, `,"raw":`...)
		dst = appendQuoted(dst, string(r.Raw)) // invalid UTF-8 becomes U+FFFD
	}
	return append(dst, '}')
}
