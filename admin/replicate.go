package admin

import (
	"errors"
	"fmt"
	"time"

	"github.com/goccy/go-json"

	"trove/apierr"
	"trove/logentry"
	"trove/storage"
)

// In cluster mode (SPEC section 9) apps, tokens and revocations go through
// the replicated log: the node that gets a request checks it and draws its
// random parts (appKey, token id and secret, of which only the digest is
// in the entry), and every node applies the change in the log's order
// (ApplyEntry), so that a name is taken once and a token revoked on one
// node is refused by every node once applied. A node answers once it has
// applied the change itself.

// SetLog makes changes go through l (cluster mode).
func (h *Handler) SetLog(l logentry.Log) { h.changes = l }

// The operations of a change.
const (
	opApp    = "app"
	opToken  = "token"
	opRevoke = "revoke"
	opSchema = "schema"
)

// change is one change of the admin API, as a log entry holds it (JSON:
// changes are rare, and readable in the stream).
type change struct {
	Op     string               `json:"op"`
	App    *storage.AppRecord   `json:"app,omitempty"`
	Token  *storage.TokenRecord `json:"token,omitempty"`
	ID     string               `json:"id,omitempty"`
	At     time.Time            `json:"at,omitzero"`
	Schema *schemaChange        `json:"schema,omitempty"`
}

// changeResult is what applying a change gave: the answer's body, or the
// refusal.
type changeResult struct {
	v   any
	err error
}

// change applies c here, or through the log in cluster mode.
func (h *Handler) change(c change) (any, error) {
	if h.changes == nil {
		r := h.apply(c, 0)
		return r.v, r.err
	}
	entry, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	v, err := h.changes.Append(entry)
	if err != nil {
		return nil, err
	}
	r, ok := v.(changeResult)
	if !ok {
		return nil, fmt.Errorf("BUG: the log applied %T for an admin change", v)
	}
	return r.v, r.err
}

// apply applies c, as log entry logSeq in cluster mode (else 0).
func (h *Handler) apply(c change, logSeq uint64) changeResult {
	h.mu.Lock()
	defer h.mu.Unlock()
	var r changeResult
	switch {
	case c.Op == opApp && c.App != nil:
		r.v, r.err = h.applyApp(*c.App)
	case c.Op == opToken && c.Token != nil:
		r.v, r.err = h.applyToken(*c.Token)
	case c.Op == opRevoke:
		r.v, r.err = h.applyRevoke(c.ID, c.At)
	case c.Op == opSchema && c.Schema != nil:
		r.v, r.err = h.applySchema(*c.Schema, c.At, logSeq)
	default:
		r.err = fmt.Errorf("%w: an admin change of op %q", errChange, c.Op)
	}
	return r
}

var errChange = errors.New("malformed admin log entry")

// ApplyEntry applies an admin log entry. A refusal (a name taken, a token
// already revoked) is its result; an error means it must be applied again.
// Contracts record the entry applied with the change (storage's
// log_applied); apps, tokens and revocations do not, so a node that
// restarts may apply one again: it is then refused (the name, the id is
// taken; already revoked) and changes nothing.
func (h *Handler) ApplyEntry(logSeq uint64, entry []byte) (any, error) {
	var c change
	if err := json.Unmarshal(entry, &c); err != nil {
		return nil, fmt.Errorf("%w: %v", errChange, err)
	}
	r := h.apply(c, logSeq)
	if err := apierr.Failure(r.err); err != nil {
		return nil, err
	}
	return r, nil
}
