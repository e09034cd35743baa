package profile

import (
	"encoding/binary"
	"fmt"
	"time"

	"trove/apierr"
	"trove/logentry"
)

// In cluster mode (SPEC section 9) profile writes go through the
// replicated log, as events do (ingest/replicate.go): the node that gets a
// request checks it and appends it as one entry, and every node applies
// the entry in the log's order (ApplyEntry), at the entry's time and with
// pyze_ids derived from its place in the log (idGen), so that inc, add and
// remove converge to the same profiles everywhere and the answer, 409s
// included, is the one a single node gives.

// SetLog makes profile writes go through l (cluster mode).
func (h *Handler) SetLog(l logentry.Log) { h.log = l }

// The kinds of profile entries.
const (
	entryRequest = 1 // a POST /users/profile: appKey, Idempotency-Key, body
	entryEach    = 2 // an ApplyEach: appKey, the profile objects
	entryDelete  = 3 // a DELETE /users/profile: appKey, userId, suppress
)

const profileEntryVersion = 1

// requestEntry is the entry of a POST /users/profile.
func (h *Handler) requestEntry(appKey string, idemKey, body []byte) []byte {
	e := appendProfileEntryHead(nil, entryRequest, h.now(), appKey)
	e = logentry.AppendBytes(e, idemKey)
	return logentry.AppendBytes(e, body)
}

// appendForResult appends e, a request or a deletion, and returns how
// applying it went.
func (h *Handler) appendForResult(e []byte) (requestResult, error) {
	v, err := h.log.Append(e)
	if err != nil {
		return requestResult{}, err
	}
	r, ok := v.(requestResult)
	if !ok {
		return requestResult{}, fmt.Errorf("BUG: the log applied %T for a profile entry of kind %d", v, e[1])
	}
	return r, nil
}

func (h *Handler) appendEach(appKey string, objs [][]byte) ([]error, error) {
	e := appendProfileEntryHead(nil, entryEach, h.now(), appKey)
	e = binary.AppendUvarint(e, uint64(len(objs)))
	for _, o := range objs {
		e = logentry.AppendBytes(e, o)
	}
	v, err := h.log.Append(e)
	if err != nil {
		return nil, err
	}
	r, ok := v.(eachResult)
	if !ok {
		return nil, fmt.Errorf("BUG: the log applied %T for profile objects", v)
	}
	return r.errs, r.err
}

// deleteEntry is the entry of a DELETE /users/profile.
func (h *Handler) deleteEntry(appKey string, userID []byte, suppress bool) []byte {
	e := appendProfileEntryHead(nil, entryDelete, h.now(), appKey)
	e = logentry.AppendBytes(e, userID)
	return logentry.AppendBool(e, suppress)
}

func appendProfileEntryHead(dst []byte, kind byte, now time.Time, appKey string) []byte {
	dst = append(dst, profileEntryVersion, kind)
	dst = binary.AppendVarint(dst, now.UnixNano())
	return logentry.AppendBytes(dst, appKey)
}

// decodedEntry is a profile entry, aliasing its bytes.
type decodedEntry struct {
	kind     byte
	now      time.Time
	appKey   []byte
	idemKey  []byte   // entryRequest
	body     []byte   // entryRequest
	objs     [][]byte // entryEach
	userID   []byte   // entryDelete
	suppress bool     // entryDelete
}

// decodeProfileEntry parses an entry that requestEntry, appendEach or
// deleteEntry made.
func decodeProfileEntry(entry []byte) (decodedEntry, error) {
	var d decodedEntry
	if len(entry) < 2 || entry[0] != profileEntryVersion {
		return d, fmt.Errorf("%w: a profile entry of a version this node does not know (upgrade it)", logentry.ErrMalformed)
	}
	d.kind = entry[1]
	r := logentry.NewReader(entry[2:])
	d.now = time.Unix(0, r.Varint())
	d.appKey = r.Bytes()
	switch d.kind {
	case entryRequest:
		d.idemKey = r.Bytes()
		d.body = r.Bytes()
	case entryEach:
		d.objs = make([][]byte, r.Count(1))
		for i := range d.objs {
			d.objs[i] = r.Bytes()
		}
	case entryDelete:
		d.userID = r.Bytes()
		d.suppress = r.Bool()
	default:
		return d, fmt.Errorf("%w: a profile entry of kind %d", logentry.ErrMalformed, d.kind)
	}
	if err := r.Done(); err != nil {
		return d, fmt.Errorf("a profile entry: %w", err)
	}
	return d, nil
}

// ApplyEntry applies profile log entry logSeq to the handler's store, a
// replicated one. The result (what the appending node answers: the
// request's answer or refusal, each object's error) is a value; an error
// means the entry is not applied and must be applied again.
func (h *Handler) ApplyEntry(logSeq uint64, entry []byte) (any, error) {
	d, err := decodeProfileEntry(entry)
	if err != nil {
		return nil, fmt.Errorf("log entry %d: %w", logSeq, err)
	}
	switch d.kind {
	case entryEach:
		res := h.applyEach(string(d.appKey), d.objs, d.now, logSeq)
		return res, apierr.Failure(res.err)
	case entryDelete:
		res := h.applyDelete(string(d.appKey), d.userID, d.suppress, d.now, logSeq)
		return res, apierr.Failure(res.err)
	}
	_, ups, err := decodeRequest(d.body, h.cfg.MaxProfiles, h.cfg.MaxFields)
	if err != nil {
		return requestResult{err: err}, nil // checked by the appending node; refused alike here
	}
	res := h.applyRequest(string(d.appKey), d.idemKey, ups, d.now, logSeq)
	return res, apierr.Failure(res.err)
}
