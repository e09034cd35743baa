package schema

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"trove/obs"
	"trove/storage"
)

// Contract is one version of an app's contract for one event name.
type Contract struct {
	AppKey  string
	Event   string
	Version uint64
	Updated time.Time
	// Source is the schema as it was put; never modified.
	Source []byte

	compiled *jsonschema.Schema
	metrics  *obs.SchemaCounters
}

// contracts maps appKey → event name → the current contract.
type contracts map[string]map[string]*Contract

// Registry holds every app's contracts, compiled, and the apps' policies.
type Registry struct {
	db     *storage.DB
	policy func(appKey string) Policy
	now    func() time.Time
	cur    atomic.Pointer[contracts]

	// mu serialises changes; Check never takes it.
	mu sync.Mutex
}

// Open loads and compiles the contracts stored in db. policy gives each
// app's schema_mode and schema_unknown; it is called on every request, so
// it must be cheap.
func Open(db *storage.DB, policy func(appKey string) Policy) (*Registry, error) {
	r := &Registry{db: db, policy: policy, now: time.Now}
	recs, err := db.SchemaRecords()
	if err != nil {
		return nil, fmt.Errorf("cannot load schema contracts: %w", err)
	}
	m := contracts{}
	for _, rec := range recs {
		c, err := newContract(rec)
		if err != nil {
			// Stored contracts compiled when they were put: one that no
			// longer does is reported, never silently left unenforced.
			return nil, fmt.Errorf("cannot compile stored contract %q of app %q: %w", rec.Event, rec.AppKey, err)
		}
		if m[rec.AppKey] == nil {
			m[rec.AppKey] = map[string]*Contract{}
		}
		m[rec.AppKey][rec.Event] = c
	}
	r.cur.Store(&m)
	return r, nil
}

func newContract(rec storage.SchemaRecord) (*Contract, error) {
	sch, err := Compile(rec.Schema)
	if err != nil {
		return nil, err
	}
	return &Contract{AppKey: rec.AppKey, Event: rec.Event, Version: rec.Version, Updated: rec.Updated,
		Source: rec.Schema, compiled: sch, metrics: obs.Schema(rec.AppKey, rec.Event)}, nil
}

// Policy returns appKey's schema_mode and schema_unknown.
func (r *Registry) Policy(appKey string) Policy { return r.policy(appKey) }

// Put compiles src and, when it compiles, stores it as the next version of
// appKey's contract for event. A schema that does not compile is an error
// wrapping ErrInvalidSchema, and changes nothing.
func (r *Registry) Put(appKey, event string, src []byte) (*Contract, error) {
	return r.PutInLog(appKey, event, src, r.now(), 0)
}

// PutInLog is Put at now, as log entry logSeq of a replicated store when
// it is not 0 (cluster mode: the admin API's changes).
func (r *Registry) PutInLog(appKey, event string, src []byte, now time.Time, logSeq uint64) (*Contract, error) {
	if _, err := Compile(src); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, _, err := r.db.ChangeSchemaInLog(appKey, event, slices.Clone(src), false, now, logSeq)
	if err != nil {
		return nil, err
	}
	c, err := newContract(rec)
	if err != nil {
		return nil, err
	}
	r.swapLocked(appKey, event, c)
	return c, nil
}

// Delete removes appKey's contract for event; ErrNotFound when there is
// none. Its version numbers are not reused.
func (r *Registry) Delete(appKey, event string) (*Contract, error) {
	return r.DeleteInLog(appKey, event, r.now(), 0)
}

// DeleteInLog is Delete at now, as log entry logSeq of a replicated store
// when it is not 0.
func (r *Registry) DeleteInLog(appKey, event string, now time.Time, logSeq uint64) (*Contract, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, ok, err := r.db.ChangeSchemaInLog(appKey, event, nil, true, now, logSeq)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: app %s has no contract for event %q", ErrNotFound, appKey, event)
	}
	r.swapLocked(appKey, event, nil)
	return &Contract{AppKey: appKey, Event: event, Version: rec.Version, Updated: rec.Updated}, nil
}

// swapLocked publishes a copy of the contracts with appKey's contract for
// event replaced by c (removed when c is nil). r.mu must be held.
func (r *Registry) swapLocked(appKey, event string, c *Contract) {
	old := *r.cur.Load()
	m := make(contracts, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	evs := make(map[string]*Contract, len(old[appKey])+1)
	for k, v := range old[appKey] {
		evs[k] = v
	}
	if c == nil {
		delete(evs, event)
	} else {
		evs[event] = c
	}
	m[appKey] = evs
	r.cur.Store(&m)
}

// List returns appKey's contracts, by event name.
func (r *Registry) List(appKey string) []*Contract {
	evs := (*r.cur.Load())[appKey]
	out := make([]*Contract, 0, len(evs))
	for _, c := range evs {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *Contract) int { return strings.Compare(a.Event, b.Event) })
	return out
}

// Lookup returns appKey's contract for the event named name, or nil.
func (r *Registry) Lookup(appKey string, name []byte) *Contract {
	return (*r.cur.Load())[appKey][string(name)]
}
