package ingest

import "trove/apierr"

// Ingest refuses requests with *apierr.Error values: apierr.Invalid (400),
// apierr.TooLarge (413) or apierr.Unsupported (415).

func invalid(field, msg string) *apierr.Error {
	return apierr.New(apierr.Invalid, field, msg)
}

// batchError refuses a batch in which no event was stored: first names the
// first event at fault, and the body carries res, every event's error, as
// the answer to a batch does.
func batchError(kind error, first ItemError, res *Result) *apierr.Error {
	e := &apierr.Error{Kind: kind, Field: first.Field, Message: first.Message, Details: res.details()}
	if kind == apierr.Invalid {
		e.Code = "invalid_event"
	}
	return e
}

// details returns res as error body members: what json.Marshal(res) gives,
// as a map so that web merges it with the error's own members.
func (res *Result) details() map[string]any {
	m := map[string]any{
		"accepted":   res.Accepted,
		"duplicates": res.Duplicates,
		"rejected":   res.Rejected,
		"errors":     itemDetails(res.Errors),
	}
	if len(res.Warnings) > 0 {
		m["warnings"] = itemDetails(res.Warnings)
	}
	if res.Validated {
		m["validated"] = true
	}
	return m
}

// itemDetails returns items as json.Marshal gives them, keeping nil apart
// from empty ("errors": null).
func itemDetails(items []ItemError) []map[string]any {
	if items == nil {
		return nil
	}
	out := make([]map[string]any, len(items))
	for i, it := range items {
		m := map[string]any{"field": it.Field, "message": it.Message}
		if it.Index != nil {
			m["index"] = *it.Index
		}
		if it.Line != nil {
			m["line"] = *it.Line
		}
		if it.MessageID != "" {
			m["messageId"] = it.MessageID
		}
		out[i] = m
	}
	return out
}
