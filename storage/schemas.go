package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Schema contracts (SPEC.md section 7) live in namespace 0x50, one key per
// (appKey, event name). A deleted contract keeps its key as a tombstone, so
// that a later PUT continues its version numbers instead of reusing them.
//
// Schema value (version 1):
//
//	+------+------------------+------------------+-------+-------------------+
//	| 0x01 | version (uvarint)| updated (varint) | flags | JSON Schema (rest)|
//	+------+------------------+------------------+-------+-------------------+
//
// updated is Unix milliseconds; flags bit 0 marks a deleted contract, whose
// schema is empty.

// SchemaRecord is one app's contract for one event name.
type SchemaRecord struct {
	AppKey  string
	Event   string
	Version uint64
	Updated time.Time
	Deleted bool
	// Schema is the JSON Schema text, as it was put.
	Schema []byte
}

const schemaFlagDeleted = 1 << 0

// PutSchema durably stores schema as the next version of appKey's contract
// for event and returns the stored record. Writes of contracts are
// serialised, so that two of them never take the same version.
func (db *DB) PutSchema(appKey, event string, schema []byte, now time.Time) (SchemaRecord, error) {
	return db.changeSchema(appKey, event, schema, false, now, 0)
}

// DeleteSchema durably deletes appKey's contract for event; ok is false
// (and nothing changes) when there is none.
func (db *DB) DeleteSchema(appKey, event string, now time.Time) (rec SchemaRecord, ok bool, err error) {
	return db.ChangeSchemaInLog(appKey, event, nil, true, now, 0)
}

// ChangeSchemaInLog is PutSchema (del false) or DeleteSchema (del true) as
// log entry logSeq of a replicated store (when not 0): the change and the
// entry's place are one commit (replicated.go), so that the entry is
// applied once.
func (db *DB) ChangeSchemaInLog(appKey, event string, schema []byte, del bool, now time.Time, logSeq uint64) (rec SchemaRecord, ok bool, err error) {
	rec, err = db.changeSchema(appKey, event, schema, del, now, logSeq)
	if errors.Is(err, errNoSchema) {
		return rec, false, nil
	}
	return rec, err == nil, err
}

var errNoSchema = errors.New("storage: no such schema")

func (db *DB) changeSchema(appKey, event string, schema []byte, del bool, now time.Time, logSeq uint64) (SchemaRecord, error) {
	if err := db.enter(); err != nil {
		return SchemaRecord{}, err
	}
	defer db.leave()
	db.schemaMu.Lock()
	defer db.schemaMu.Unlock()
	if logSeq != 0 {
		if err := db.checkEntry(logSeq); err != nil {
			return SchemaRecord{}, err
		}
	}
	k := appendSchemaKey(nil, appKey, event)
	prev := SchemaRecord{Deleted: true}
	v, closer, err := db.pdb.Get(k)
	switch {
	case err == nil:
		prev, err = decodeSchemaValue(v)
		closer.Close()
		if err != nil {
			return SchemaRecord{}, fmt.Errorf("cannot read schema %q of app %q: %w", event, appKey, err)
		}
	case !errors.Is(err, pebble.ErrNotFound):
		return SchemaRecord{}, err
	}
	if del && prev.Deleted {
		return SchemaRecord{}, errNoSchema
	}
	rec := SchemaRecord{AppKey: appKey, Event: event, Version: prev.Version + 1, Updated: now.UTC().Truncate(time.Millisecond), Deleted: del, Schema: schema}
	if del {
		rec.Version, rec.Schema = prev.Version, nil
	}
	b := db.pdb.NewBatch()
	defer b.Close()
	b.Set(k, appendSchemaValue(nil, rec), nil)
	if err := db.commit(b, logSeq, now, true); err != nil {
		return SchemaRecord{}, fmt.Errorf("cannot store schema %q of app %q: %w", event, appKey, err)
	}
	return rec, nil
}

// SchemaRecords returns every live contract, by appKey and event name.
func (db *DB) SchemaRecords() ([]SchemaRecord, error) {
	var out []SchemaRecord
	err := db.scanNamespace(nsSchema, func(k, v []byte) error {
		app, event, err := decodeSchemaKey(k)
		if err != nil {
			return err
		}
		rec, err := decodeSchemaValue(v)
		if err != nil {
			return fmt.Errorf("cannot load schema %q of app %q: %w", event, app, err)
		}
		if rec.Deleted {
			return nil
		}
		rec.AppKey, rec.Event = string(app), string(event)
		out = append(out, rec)
		return nil
	})
	return out, err
}

func appendSchemaValue(dst []byte, rec SchemaRecord) []byte {
	var flags byte
	if rec.Deleted {
		flags |= schemaFlagDeleted
	}
	dst = append(dst, valueV1)
	dst = binary.AppendUvarint(dst, rec.Version)
	dst = binary.AppendVarint(dst, unixMilli(rec.Updated))
	dst = append(dst, flags)
	return append(dst, rec.Schema...)
}

// decodeSchemaValue is the inverse of appendSchemaValue, without the appKey
// and event, which are in the key. The schema is copied.
func decodeSchemaValue(v []byte) (SchemaRecord, error) {
	if len(v) < 1 || v[0] != valueV1 {
		return SchemaRecord{}, fmt.Errorf("%w: schema value of unknown format %x", errCorrupt, v[:min(len(v), 1)])
	}
	ver, n := binary.Uvarint(v[1:])
	if n <= 0 {
		return SchemaRecord{}, fmt.Errorf("%w: malformed schema value", errCorrupt)
	}
	rest := v[1+n:]
	ms, n := binary.Varint(rest)
	if n <= 0 || len(rest) < n+1 {
		return SchemaRecord{}, fmt.Errorf("%w: malformed schema value", errCorrupt)
	}
	flags := rest[n]
	return SchemaRecord{Version: ver, Updated: time.UnixMilli(ms).UTC(), Deleted: flags&schemaFlagDeleted != 0,
		Schema: append([]byte(nil), rest[n+1:]...)}, nil
}
