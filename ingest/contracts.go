package ingest

import (
	"slices"

	"trove/schema"
)

// SetContracts makes the handler apply the apps' schema contracts (SPEC.md
// section 7) to every event it stores or validates, whatever the protocol
// it came in: POST /v1/events and Store, which every SDK-compatible
// endpoint goes through. Call it before serving.
func (h *Handler) SetContracts(r *schema.Registry) { h.contracts = r }

// applyContracts checks each of b's events against its app's contract. An
// event refused by schema_mode or schema_unknown "reject" becomes a
// Rejection (quarantined, with the contract's reason); one that breaks it
// under "warn" stays an Event and is listed in b.Warnings. count says
// whether the checks are counted in the metrics (not for validate=1).
func (h *Handler) applyContracts(b *Batch, count bool) {
	if h.contracts == nil || len(b.Events) == 0 {
		return
	}
	var app string
	var pol schema.Policy
	kept := b.Events[:0]
	for i := range b.Events {
		e := b.Events[i]
		if i == 0 || e.AppKey != app {
			app, pol = e.AppKey, h.contracts.Policy(e.AppKey)
		}
		if pol == (schema.Policy{}) {
			kept = append(kept, e)
			continue
		}
		// The whole stored form, as export will return it, less the
		// messageId the sink generates when the client sent none.
		b.doc = append(append(b.doc[:0], b.buf[e.start:e.end]...), '}')
		v := h.contracts.Check(app, pol, e.Name, b.doc, count)
		r := Rejection{Index: e.Index, AppKey: e.AppKey, Field: v.Field, Code: "schema_violation", Message: v.Message, Raw: e.raw, qseq: e.qseq}
		if e.MessageID != nil {
			r.MessageID = string(e.MessageID)
		}
		switch v.Action {
		case schema.Warn:
			b.Warnings = append(b.Warnings, r)
			kept = append(kept, e)
		case schema.Reject:
			b.Rejected = append(b.Rejected, r)
		default:
			kept = append(kept, e)
		}
	}
	b.Events = kept
	slices.SortStableFunc(b.Rejected, func(x, y Rejection) int { return x.Index - y.Index })
}

// warnings lists b's warnings as the answer names them; nil when none.
func warnings(b *Batch) []ItemError {
	if len(b.Warnings) == 0 {
		return nil
	}
	return itemErrors(b, b.Warnings)
}
