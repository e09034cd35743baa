package profile

import (
	"bytes"
	"fmt"
	"strconv"
	"time"

	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"

	"trove/auth"
	"trove/storage"
)

// Receipt is the answer to a deletion: what was removed.
type Receipt struct {
	AppKey string `json:"appKey"`
	UserID string `json:"userId"`
	// PyzeID is the removed profile's id, empty when the user had none.
	PyzeID         string  `json:"pyze_id,omitempty"`
	ProfileRemoved bool    `json:"profile_removed"`
	Aliases        []Alias `json:"aliases_removed"`
	// Events says what happened to the user's events: those stored so far
	// are hidden from every export from now on; later ones are stored, or
	// refused with Suppress.
	Events    string `json:"events"`
	Suppress  bool   `json:"suppress"`
	DeletedAt string `json:"deleted_at"`
}

const (
	eventsHidden     = "the events stored so far are hidden from every export from now on, and being removed from storage in the background"
	eventsNewStart   = eventsHidden + "; events sent for this userId from now on are stored as a new start"
	eventsSuppressed = eventsHidden + "; events sent for this userId from now on are refused (DELETE again without suppress=1 to accept them)"
)

// Delete handles DELETE /v1/users/profile?appKey=K&userId=U[&suppress=1]
// (admin scope): the right to be forgotten. It removes the profile with its
// index entries and records the user as deleted, in one synced batch; from
// then on no export returns the user's events stored until then. Events of
// the userId sent later are stored as a new start or, with suppress=1,
// refused by ingest. Deleting a user twice, or one who has no profile,
// still records them (the events may exist without a profile).
func (h *Handler) Delete(ctx *fasthttp.RequestCtx) error {
	args := ctx.QueryArgs()
	appKey := string(args.Peek("appKey"))
	if appKey == "" {
		return invalid(-1, "appKey", "appKey is required")
	}
	for k := range args.All() {
		if s := string(k); s != "appKey" && s != "userId" && s != "suppress" {
			return invalid(-1, s, "unknown parameter "+strconv.Quote(s)+": a deletion takes appKey, userId and suppress")
		}
		if len(args.PeekMulti(string(k))) > 1 {
			return invalid(-1, string(k), string(k)+" is given twice: a deletion names one user")
		}
	}
	suppress := false
	if args.Has("suppress") {
		var err error
		if suppress, err = strconv.ParseBool(string(args.Peek("suppress"))); err != nil {
			return invalid(-1, "suppress", "suppress must be 1 (refuse this user's later events) or 0 (store them as a new start), got "+strconv.Quote(string(args.Peek("suppress"))))
		}
	}
	userID := bytes.Clone(args.Peek("userId"))
	if len(userID) == 0 {
		return invalid(-1, "userId", "userId is required: the user whose profile and events are deleted")
	}
	if err := h.reg.Authorize(auth.TokenOf(ctx), appKey, auth.ScopeAdmin); err != nil {
		return err
	}
	res, err := h.write(func() []byte { return h.deleteEntry(appKey, userID, suppress) },
		func() requestResult { return h.applyDelete(appKey, userID, suppress, h.now(), 0) })
	if err != nil {
		return err
	}
	writeJSON(ctx, fasthttp.StatusOK, res.answer)
	return nil
}

// applyDelete deletes userID's profile and records the deletion, in one
// transaction at now; in a replicated store as log entry logSeq (else 0).
// The answer is the Receipt.
func (h *Handler) applyDelete(appKey string, userID []byte, suppress bool, now time.Time, logSeq uint64) requestResult {
	txn, err := h.beginAt(appKey, now, logSeq)
	if err != nil {
		return requestResult{err: err}
	}
	defer txn.Close()
	r := Receipt{AppKey: appKey, UserID: string(userID), Aliases: []Alias{}, Events: eventsNewStart, Suppress: suppress, DeletedAt: formatTime(now)}
	if suppress {
		r.Events = eventsSuppressed
	}
	id, ok, err := txn.ByUser(userID)
	if err != nil {
		return requestResult{err: err}
	}
	if ok {
		body, found, err := txn.Profile(id)
		if err != nil {
			return requestResult{err: err}
		}
		var aliases [][2][]byte
		if found {
			var p Profile
			if err := json.Unmarshal(body, &p); err != nil {
				return requestResult{err: fmt.Errorf("%w: stored profile: %v", storage.ErrCorrupt, err)}
			}
			for _, a := range p.Aliases {
				aliases = append(aliases, [2][]byte{[]byte(a.Label), []byte(a.ID)})
				r.Aliases = append(r.Aliases, a)
			}
			r.PyzeID, r.ProfileRemoved = p.PyzeID, true
		}
		if err := txn.DeleteProfile(id, [][]byte{userID}, aliases); err != nil {
			return requestResult{err: err}
		}
	}
	txn.Forget(userID, suppress)
	if err := txn.Commit(); err != nil {
		return requestResult{err: err}
	}
	out, err := json.Marshal(r)
	if err != nil {
		return requestResult{err: err}
	}
	return requestResult{answer: out}
}
