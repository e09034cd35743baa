package profile

import (
	"errors"
	"fmt"
	"time"

	"trove/apierr"
	"trove/obs"
	"trove/storage"
)

// This file is the API that other wire protocols (package segment) use to
// update profiles exactly as POST /users/profile does, one profile object
// at a time: the same validation, identities, operations and storage.

// CheckBuiltin reports what is wrong with s as the value of the built-in
// field name ("" when it is fine, or when name is not a built-in).
func CheckBuiltin(name, s string) string {
	if check := builtins[name]; check != nil {
		return check(s)
	}
	return ""
}

// IsBuiltin reports whether name is a built-in profile field.
func IsBuiltin(name string) bool {
	_, ok := builtins[name]
	return ok
}

// Check validates obj, one profile object as user_profiles holds them. The
// error is an *apierr.Error naming the field.
func (h *Handler) Check(obj []byte) error {
	var u update
	return decodeProfile(0, obj, h.cfg.MaxFields, &u)
}

// ApplyEach applies each of objs (profile objects, as Check takes them) to
// appKey's profiles, in one transaction committed once. Unlike a request
// to POST /users/profile, each object stands alone: one that is invalid or
// whose identities conflict is left out, with its *apierr.Error in errs[i], and
// the others are applied. err is a failure of the store (nothing applied).
// Rate limits are the caller's.
func (h *Handler) ApplyEach(appKey string, objs [][]byte) (errs []error, err error) {
	if h.log != nil {
		return h.appendEach(appKey, objs)
	}
	r := h.applyEach(appKey, objs, h.now(), 0)
	return r.errs, r.err
}

// eachResult is what ApplyEach returns.
type eachResult struct {
	errs []error
	err  error
}

// applyEach is ApplyEach at now; in a replicated store as log entry
// logSeq (else 0), committed also when nothing applies, so that the entry
// counts as applied.
func (h *Handler) applyEach(appKey string, objs [][]byte, now time.Time, logSeq uint64) eachResult {
	errs := make([]error, len(objs))
	ups := make([]update, len(objs))
	valid := 0
	for i, obj := range objs {
		if errs[i] = decodeProfile(i, obj, h.cfg.MaxFields, &ups[i]); errs[i] == nil {
			valid++
		}
	}
	if valid == 0 && logSeq == 0 {
		return eachResult{errs: errs}
	}
	txn, err := h.beginAt(appKey, now, logSeq)
	if err != nil {
		return eachResult{err: err}
	}
	defer txn.Close()
	ids := newIDs(logSeq)
	applied := 0
	for i := range ups {
		if errs[i] != nil {
			continue
		}
		u := &ups[i]
		// applyOne may have written index entries when it finds a
		// conflict among the aliases of a known userId: refuse that case
		// before it runs.
		if c, err := aliasConflict(txn, u); err != nil {
			return eachResult{err: err}
		} else if c != nil {
			errs[i] = c
			continue
		}
		if _, err := h.applyOne(txn, u, now, ids); err != nil {
			var pe *apierr.Error
			if !errors.As(err, &pe) {
				return eachResult{err: err}
			}
			errs[i] = err
			continue
		}
		applied++
	}
	if applied == 0 && logSeq == 0 {
		return eachResult{errs: errs}
	}
	if err := txn.Commit(); err != nil {
		return eachResult{err: err}
	}
	obs.App(appKey).ProfileUpdates.Add(applied)
	return eachResult{errs: errs}
}

// aliasConflict returns a conflict *apierr.Error when u names a userId that has a
// profile and an alias that belongs to another one.
func aliasConflict(txn *storage.ProfileTxn, u *update) (error, error) {
	if u.userID == "" || u.pyzeID != "" || len(u.aliases) == 0 {
		return nil, nil
	}
	id, ok, err := txn.ByUser([]byte(u.userID))
	if err != nil || !ok {
		return nil, err
	}
	for _, a := range u.aliases {
		other, ok, err := txn.ByAlias([]byte(a.Label), []byte(a.ID))
		if err != nil {
			return nil, err
		}
		if ok && other != id {
			return refuse(apierr.Conflict, u.index, "user_alias", fmt.Sprintf("alias %s:%s belongs to another profile than userId %q", a.Label, a.ID, u.userID)), nil
		}
	}
	return nil, nil
}
