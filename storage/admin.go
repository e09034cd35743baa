package storage

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// The apps and tokens that the admin API creates (SPEC.md section 2) live in
// two namespaces (keys.go): 0x03 maps an appKey to its app record, 0x04 a
// token id to its token record. Config-declared apps and tokens are not
// stored: the config file is their source of truth.
//
// App record value (version 1):
//
//	+------+-------+------------------+-------------+
//	| 0x01 | flags | created (varint) | name (rest) |
//	+------+-------+------------------+-------------+
//
// flags bit 0 is require_token; created is Unix milliseconds.
//
// Token record value (version 1):
//
//	+------+--------------+------------------+------------------+------+--------+------+
//	| 0x01 | SHA-256 (32) | created (varint) | revoked (varint) | name | scopes | apps |
//	+------+--------------+------------------+------------------+------+--------+------+
//
// Times are Unix milliseconds, revoked 0 while the token is live. name is a
// uvarint length and the bytes; scopes and apps are a uvarint count of such
// strings. Scopes are stored by name ("ingest", "export", "admin"), so that
// their in-memory bits are free to change. A revoked token keeps its record,
// so that the revocation survives restarts and can be named in errors.

// AppRecord is an app created through the admin API.
type AppRecord struct {
	AppKey       string
	Name         string
	RequireToken bool
	Created      time.Time
}

// TokenRecord is a token created through the admin API. Only the digest of
// its secret is kept.
type TokenRecord struct {
	ID     string
	Name   string
	Digest [sha256.Size]byte
	Scopes []string
	// Apps are app keys, or the one element "*" for every app.
	Apps    []string
	Created time.Time
	// Revoked is when the token was revoked; zero while it is live.
	Revoked time.Time
}

const appFlagRequireToken = 1 << 0

// PutApp durably stores an app record and registers its appKey, so that
// the app has an id before its first event.
func (db *DB) PutApp(rec AppRecord) error {
	if err := db.setSynced(appendAppRecordKey(nil, rec.AppKey), appendAppRecordValue(nil, rec)); err != nil {
		return fmt.Errorf("cannot store app %q: %w", rec.AppKey, err)
	}
	_, err := db.EnsureApp(rec.AppKey)
	return err
}

// AppRecords returns every stored app record, by appKey.
func (db *DB) AppRecords() ([]AppRecord, error) {
	var out []AppRecord
	err := db.scanNamespace(nsAppRecord, func(k, v []byte) error {
		key, err := decodeNameKey(k, nsAppRecord)
		if err != nil {
			return err
		}
		rec, err := decodeAppRecordValue(v)
		if err != nil {
			return fmt.Errorf("cannot load app %q: %w", key, err)
		}
		rec.AppKey = string(key)
		out = append(out, rec)
		return nil
	})
	return out, err
}

// PutToken durably stores a token record (fsync'd before it returns, so a
// revocation holds across a crash).
func (db *DB) PutToken(rec TokenRecord) error {
	if err := db.setSynced(appendTokenKey(nil, rec.ID), appendTokenValue(nil, rec)); err != nil {
		return fmt.Errorf("cannot store token %s: %w", rec.ID, err)
	}
	return nil
}

// TokenRecords returns every stored token record, revoked ones included,
// by id.
func (db *DB) TokenRecords() ([]TokenRecord, error) {
	var out []TokenRecord
	err := db.scanNamespace(nsToken, func(k, v []byte) error {
		id, err := decodeNameKey(k, nsToken)
		if err != nil {
			return err
		}
		rec, err := decodeTokenValue(v)
		if err != nil {
			return fmt.Errorf("cannot load token %q: %w", id, err)
		}
		rec.ID = string(id)
		out = append(out, rec)
		return nil
	})
	return out, err
}

// setSynced writes one key with fsync, unless the store is closed.
func (db *DB) setSynced(k, v []byte) error {
	if err := db.enter(); err != nil {
		return err
	}
	defer db.leave()
	return db.pdb.Set(k, v, pebble.Sync)
}

// scanNamespace calls fn with every key and value of ns; both are borrowed
// for the call only.
func (db *DB) scanNamespace(ns Namespace, fn func(k, v []byte) error) error {
	if err := db.enter(); err != nil {
		return err
	}
	defer db.leave()
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: []byte{byte(ns)}, UpperBound: []byte{byte(ns) + 1}})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		if err := fn(it.Key(), it.Value()); err != nil {
			it.Close()
			return err
		}
	}
	return it.Close()
}

func appendAppRecordValue(dst []byte, rec AppRecord) []byte {
	var flags byte
	if rec.RequireToken {
		flags |= appFlagRequireToken
	}
	dst = append(dst, valueV1, flags)
	dst = binary.AppendVarint(dst, unixMilli(rec.Created))
	return append(dst, rec.Name...)
}

// decodeAppRecordValue is the inverse of appendAppRecordValue, without the
// appKey, which is in the key.
func decodeAppRecordValue(v []byte) (AppRecord, error) {
	var rec AppRecord
	if len(v) < 2 || v[0] != valueV1 {
		return rec, fmt.Errorf("%w: app record", errCorrupt)
	}
	rec.RequireToken = v[1]&appFlagRequireToken != 0
	created, n := binary.Varint(v[2:])
	if n <= 0 {
		return rec, fmt.Errorf("%w: app record", errCorrupt)
	}
	rec.Created = fromUnixMilli(created)
	rec.Name = string(v[2+n:])
	return rec, nil
}

func appendTokenValue(dst []byte, rec TokenRecord) []byte {
	dst = append(dst, valueV1)
	dst = append(dst, rec.Digest[:]...)
	dst = binary.AppendVarint(dst, unixMilli(rec.Created))
	dst = binary.AppendVarint(dst, unixMilli(rec.Revoked))
	dst = appendString(dst, rec.Name)
	dst = appendStrings(dst, rec.Scopes)
	return appendStrings(dst, rec.Apps)
}

// decodeTokenValue is the inverse of appendTokenValue, without the id,
// which is in the key.
func decodeTokenValue(v []byte) (TokenRecord, error) {
	var rec TokenRecord
	corrupt := fmt.Errorf("%w: token record", errCorrupt)
	if len(v) < 1+sha256.Size || v[0] != valueV1 {
		return rec, corrupt
	}
	copy(rec.Digest[:], v[1:])
	r := v[1+sha256.Size:]
	created, n := binary.Varint(r)
	if n <= 0 {
		return rec, corrupt
	}
	r = r[n:]
	revoked, n := binary.Varint(r)
	if n <= 0 {
		return rec, corrupt
	}
	r = r[n:]
	rec.Created, rec.Revoked = fromUnixMilli(created), fromUnixMilli(revoked)
	var ok bool
	if rec.Name, r, ok = readString(r); !ok {
		return rec, corrupt
	}
	if rec.Scopes, r, ok = readStrings(r); !ok {
		return rec, corrupt
	}
	if rec.Apps, r, ok = readStrings(r); !ok || len(r) != 0 {
		return rec, corrupt
	}
	return rec, nil
}

// unixMilli is t in Unix milliseconds, 0 for the zero time.
func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// fromUnixMilli is the inverse of unixMilli, in UTC.
func fromUnixMilli(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func readString(b []byte) (s string, rest []byte, ok bool) {
	n, w := binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b)-w) {
		return "", nil, false
	}
	return string(b[w : w+int(n)]), b[w+int(n):], true
}

func appendStrings(dst []byte, ss []string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(ss)))
	for _, s := range ss {
		dst = appendString(dst, s)
	}
	return dst
}

func readStrings(b []byte) (ss []string, rest []byte, ok bool) {
	n, w := binary.Uvarint(b)
	// Each string takes at least one byte, which bounds the allocation.
	if w <= 0 || n > uint64(len(b)-w) {
		return nil, nil, false
	}
	b = b[w:]
	ss = make([]string, 0, n)
	for range n {
		var s string
		if s, b, ok = readString(b); !ok {
			return nil, nil, false
		}
		ss = append(ss, s)
	}
	return ss, b, true
}
