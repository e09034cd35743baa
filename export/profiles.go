package export

import (
	"bufio"
	"bytes"
	"errors"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"trove/apierr"
	"trove/storage"
)

// Profiles serves GET /v1/export/profiles: the app's profiles as NDJSON,
// each as stored, in the order of their latest change. With since (a
// watermark from an earlier export) it is the profiles changed after it,
// each once, in its latest state; updatedSince (RFC 3339, or YYYY-MM-DD
// for midnight UTC) keeps those whose updated_at is at or after it.
func (h *Handler) Profiles(ctx *fasthttp.RequestCtx) error {
	app, err := h.appParam(ctx)
	if err != nil {
		return err
	}
	since, err := uintParam(ctx, "since", 0)
	if err != nil {
		return err
	}
	from, filter, err := timeParam(ctx, "updatedSince")
	if err != nil {
		return err
	}
	id, err := h.db.App(app)
	if errors.Is(err, storage.ErrUnknownApp) {
		id = 0 // declared but nothing stored yet: an empty export
	} else if err != nil {
		return err
	}
	snap, err := h.db.NewSnapshot()
	if err != nil {
		return err
	}
	if wm := snap.Watermark(); since > wm {
		snap.Close()
		return apierr.New(apierr.Invalid, "since", "since "+strconv.FormatUint(since, 10)+
			" is beyond the watermark "+strconv.FormatUint(wm, 10))
	}
	h.stream(ctx, profilesOut, snap, func(w *bufio.Writer) error {
		if id == 0 {
			return nil
		}
		return snap.ProfileChanges(id, since, func(_ uint64, body []byte) error {
			if filter && !updatedAtOrAfter(body, from) {
				return nil
			}
			w.Write(body)
			return w.WriteByte('\n')
		})
	})
	return nil
}

// timeParam returns the time in parameter name, an RFC 3339 time or a
// date (midnight UTC); ok is false when it is absent.
func timeParam(ctx *fasthttp.RequestCtx, name string) (t time.Time, ok bool, err error) {
	v := string(ctx.QueryArgs().Peek(name))
	if v == "" {
		return time.Time{}, false, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, true, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, true, nil
	}
	return time.Time{}, false, apierr.New(apierr.Invalid, name,
		name+" must be an RFC 3339 time (2024-01-02T03:04:05Z) or a date (2024-01-02)")
}

var updatedAtMember = []byte(`"updated_at":"`)

// updatedAtOrAfter reports whether the stored profile JSON body has an
// updated_at at or after t. updated_at is the profile's last member, so the
// last match is the top-level one even when an attribute bears the name;
// a profile without a readable updated_at does not match.
func updatedAtOrAfter(body []byte, t time.Time) bool {
	i := bytes.LastIndex(body, updatedAtMember)
	if i < 0 {
		return false
	}
	v := body[i+len(updatedAtMember):]
	end := bytes.IndexByte(v, '"')
	if end < 0 {
		return false
	}
	u, err := time.Parse(time.RFC3339Nano, string(v[:end]))
	return err == nil && !u.Before(t)
}
