package profile

import (
	"bytes"
	"fmt"
	"strconv"

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
	// Events says what happened to the user's events: hidden from every
	// export from now on.
	Events    string `json:"events"`
	DeletedAt string `json:"deleted_at"`
}

// Delete handles DELETE /v1/users/profile?appKey=K&userId=U (admin scope):
// the right to be forgotten. It removes the profile with its index entries
// and records the user as deleted, in one synced batch; from then on no
// export returns the user's events. Deleting a user twice, or one who has
// no profile, still records them (the events may exist without a profile).
func (h *Handler) Delete(ctx *fasthttp.RequestCtx) error {
	args := ctx.QueryArgs()
	appKey := string(args.Peek("appKey"))
	if appKey == "" {
		return invalid(-1, "appKey", "appKey is required")
	}
	for k := range args.All() {
		if s := string(k); s != "appKey" && s != "userId" {
			return invalid(-1, s, "unknown parameter "+strconv.Quote(s)+": a deletion takes appKey and userId")
		}
	}
	userID := bytes.Clone(args.Peek("userId"))
	if len(userID) == 0 {
		return invalid(-1, "userId", "userId is required: the user whose profile and events are deleted")
	}
	if err := h.reg.Authorize(auth.TokenOf(ctx), appKey, auth.ScopeAdmin); err != nil {
		return err
	}
	app, err := h.db.EnsureApp(appKey)
	if err != nil {
		return err
	}
	now := h.now()
	txn, err := h.db.BeginProfiles(app, now)
	if err != nil {
		return err
	}
	defer txn.Close()
	r := Receipt{AppKey: appKey, UserID: string(userID), Aliases: []Alias{}, Events: "hidden from every export from now on, and being removed from storage in the background", DeletedAt: formatTime(now)}
	id, ok, err := txn.ByUser(userID)
	if err != nil {
		return err
	}
	if ok {
		body, found, err := txn.Profile(id)
		if err != nil {
			return err
		}
		var aliases [][2][]byte
		if found {
			var p Profile
			if err := json.Unmarshal(body, &p); err != nil {
				return fmt.Errorf("%w: stored profile: %v", storage.ErrCorrupt, err)
			}
			for _, a := range p.Aliases {
				aliases = append(aliases, [2][]byte{[]byte(a.Label), []byte(a.ID)})
				r.Aliases = append(r.Aliases, a)
			}
			r.PyzeID, r.ProfileRemoved = p.PyzeID, true
		}
		if err := txn.DeleteProfile(id, [][]byte{userID}, aliases); err != nil {
			return err
		}
	}
	txn.Forget(userID)
	if err := txn.Commit(); err != nil {
		return err
	}
	out, err := json.Marshal(r)
	if err != nil {
		return err
	}
	writeJSON(ctx, fasthttp.StatusOK, out)
	return nil
}
