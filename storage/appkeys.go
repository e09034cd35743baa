package storage

import "slices"

// AppKeys returns the keys of every app the store has registered (any app
// that has had an event, a rejection or a profile), sorted.
func (db *DB) AppKeys() []string {
	db.apps.RLock()
	keys := make([]string, 0, len(db.apps.byKey))
	for k := range db.apps.byKey {
		keys = append(keys, k)
	}
	db.apps.RUnlock()
	slices.Sort(keys)
	return keys
}
