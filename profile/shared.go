package profile

import (
	"errors"
	"fmt"

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
	errs = make([]error, len(objs))
	ups := make([]update, len(objs))
	valid := 0
	for i, obj := range objs {
		if errs[i] = decodeProfile(i, obj, h.cfg.MaxFields, &ups[i]); errs[i] == nil {
			valid++
		}
	}
	if valid == 0 {
		return errs, nil
	}
	txn, now, err := h.begin(appKey)
	if err != nil {
		return nil, err
	}
	defer txn.Close()
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
			return nil, err
		} else if c != nil {
			errs[i] = c
			continue
		}
		if _, err := h.applyOne(txn, u, now); err != nil {
			var pe *apierr.Error
			if !errors.As(err, &pe) {
				return nil, err
			}
			errs[i] = err
			continue
		}
		applied++
	}
	if applied == 0 {
		return errs, nil
	}
	if err := txn.Commit(); err != nil {
		return nil, err
	}
	obs.App(appKey).ProfileUpdates.Add(applied)
	return errs, nil
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
