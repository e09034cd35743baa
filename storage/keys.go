package storage

import (
	"encoding/binary"
	"fmt"
	"math"
)

// The key layout. Every key starts with a one-byte namespace prefix; the
// prefixes and the field layouts below are part of the on-disk format.
//
//	prefix | name       | key fields (big-endian)                       | value (values.go)
//	-------+------------+-----------------------------------------------+-----------------------------------
//	0x01   | meta       | 0x01 | name (bytes)                           | version byte | payload
//	       |            |   names: "seq_lease" (seq.go), "dedup_indexed", "dedup_slice" (dedup.go),
//	       |            |   "log_applied" (replicated.go: entry 8B | Unix ns 8B), and through
//	       |            |   GetMeta/SetMeta "sink/<sink>/<app>" (sinks), "admin_token_sha256" (server)
//	       | floor      | 0x01 | "floor/" | appID (4B)                  | version byte | first kept day
//	       |            |                                               | varint (retention.go)
//	0x02   | app        | 0x02 | appKey (bytes)                         | version byte | appID uvarint
//	0x03   | app record | 0x03 | appKey (bytes)                         | version byte | flags | created
//	       |            |                                               | (admin.go)
//	0x04   | token      | 0x04 | token id (bytes)                       | version byte | SHA-256 (32B) |
//	       |            |                                               | created | revoked | name, scopes,
//	       |            |                                               | apps (admin.go)
//	0x10   | block      | 0x10 | appID (4B) | day (4B, biased) | first (8B) | block: events of one app, one
//	       |            |                                               | eventTime day, from one group
//	0x11   | group      | 0x11 | appID (4B) | first (8B)                 | group: last seq, count, raw
//	       |            |                                               | bytes, days present
//	0x20   | dedup (old)| 0x20 | appID (4B) | messageId (bytes)          | version byte | receivedAt (unix s)
//	       |            |  read only to convert it into 0x22 at Open (dedup.go); never written
//	0x21   | dedup slice| 0x21 | slice (4B) | appID (4B) | fingerprint   | refs (dedup.go): seq uvarints,
//	       | (old)      |        (6B)                                   | or 0x00 and tagged refs; read
//	       |            |                                               | only to convert it into 0x22
//	0x22   | dedup      | 0x22 | slice (4B) | appID (4B) | fingerprint's | entries (dedup.go), written
//	       | bucket     |        top 16 bits (2B)                       | with Pebble merges that append:
//	       |            |                                               | per entry the fingerprint's low
//	       |            |                                               | 32 bits (4B) and one ref
//	0x30   | quarantine | 0x30 | appID (4B) | seq (8B)                   | version byte | JSON line
//	0x40   | profile    | 0x40 | appID (4B) | pyzeID (16B)               | version byte | change seq
//	       |            |                                               | uvarint | profile JSON
//	0x41   | user index | 0x41 | appID (4B) | userId (bytes)             | version byte | pyzeID (16B)
//	0x42   | alias index| 0x42 | appID (4B) | len(label) uvarint | label | version byte | pyzeID (16B)
//	       |            |        | alias_id (bytes)                     |
//	0x43   | idem. (old)| 0x43 | appID (4B) | Idempotency-Key (bytes)    | version byte | unix s uvarint
//	       |            |                                               | | the first answer; converted
//	       |            |                                               | into 0x46 at Open
//	0x44   | change     | 0x44 | appID (4B) | seq (8B)                   | version byte | pyzeID (16B)
//	0x45   | forgotten  | 0x45 | appID (4B) | userId (bytes)             | version byte | unix s uvarint
//	       |            |                                               | | v2: bound seq uvarint | flags
//	       |            |                                               | (a deleted user: forget.go)
//	0x46   | idem. slice| 0x46 | slice (4B) | appID (4B) | Idempotency-Key | version byte | unix s uvarint
//	       |            |        (bytes)                                | | the first answer
//	0x50   | schema     | 0x50 | len(appKey) uvarint | appKey | event    | version byte | schema version
//	       |            |        name (bytes)                           | uvarint | updated | flags |
//	       |            |                                               | JSON Schema text (schemas.go)
//
// The slice namespaces (0x21, 0x22, 0x46) lead with the time slice of when
// the entry was written (unix seconds / the store's dedup slice length, see
// dedup.go), so that everything older than the dedup window is one key
// range, dropped with one range deletion.
//
// A group is the set of all of one app's events whose ingest sequence lies in
// [first, last]; it is written by one commit and later merged with its
// neighbours. Its events are stored in one block per eventTime day, so both
// of the export's orders are key-range scans: ingest order walks 0x11 keys
// from a sequence, eventTime order walks 0x10 keys from a day.
//
// day is the eventTime in whole days since the Unix epoch (floor, so the
// event's UTC day; DayOf of its Unix µs), stored as uint32(day) ^ 1<<31 so
// that days before 1970 sort first. Day boundaries fall on whole
// milliseconds, so the days of events stored in ms are the same in µs.

// Namespace is a key's one-byte prefix.
type Namespace byte

// These constants are part of the on-disk format; never renumber them.
const (
	nsMeta       Namespace = 0x01
	nsApp        Namespace = 0x02
	nsAppRecord  Namespace = 0x03
	nsToken      Namespace = 0x04
	nsBlock      Namespace = 0x10
	nsGroup      Namespace = 0x11
	nsDedup      Namespace = 0x20 // old format: converted at Open, never written
	nsDedupSlice Namespace = 0x21 // old format: converted at Open, never written
	nsDedupIndex Namespace = 0x22
	nsQuarantine Namespace = 0x30
	nsProfile    Namespace = 0x40
	nsUserIndex  Namespace = 0x41
	nsAliasIndex Namespace = 0x42
	nsIdempotent Namespace = 0x43 // old format: converted at Open, never written
	nsChange     Namespace = 0x44
	nsForgotten  Namespace = 0x45
	nsIdemSlice  Namespace = 0x46
	nsSchema     Namespace = 0x50
)

const dayBias = 1 << 31

func appendAppPrefix(dst []byte, ns Namespace, app uint32) []byte {
	dst = append(dst, byte(ns))
	return binary.BigEndian.AppendUint32(dst, app)
}

// appendBlockKey appends the key of the block of app's events on day that
// belongs to the group starting at first.
func appendBlockKey(dst []byte, app uint32, day int32, first uint64) []byte {
	dst = appendAppPrefix(dst, nsBlock, app)
	dst = binary.BigEndian.AppendUint32(dst, uint32(day)^dayBias)
	return binary.BigEndian.AppendUint64(dst, first)
}

// decodeBlockKey is the inverse of appendBlockKey.
func decodeBlockKey(k []byte) (app uint32, day int32, first uint64, err error) {
	if len(k) != 17 || Namespace(k[0]) != nsBlock {
		return 0, 0, 0, fmt.Errorf("storage: malformed block key %x", k)
	}
	app = binary.BigEndian.Uint32(k[1:])
	day = int32(binary.BigEndian.Uint32(k[5:]) ^ dayBias)
	first = binary.BigEndian.Uint64(k[9:])
	return app, day, first, nil
}

// appendGroupKey appends the key of app's group starting at sequence first.
func appendGroupKey(dst []byte, app uint32, first uint64) []byte {
	dst = appendAppPrefix(dst, nsGroup, app)
	return binary.BigEndian.AppendUint64(dst, first)
}

// decodeGroupKey is the inverse of appendGroupKey.
func decodeGroupKey(k []byte) (app uint32, first uint64, err error) {
	if len(k) != 13 || Namespace(k[0]) != nsGroup {
		return 0, 0, fmt.Errorf("storage: malformed group key %x", k)
	}
	return binary.BigEndian.Uint32(k[1:]), binary.BigEndian.Uint64(k[5:]), nil
}

// appendDedupKey appends the key that records app's messageID.
func appendDedupKey(dst []byte, app uint32, messageID []byte) []byte {
	dst = appendAppPrefix(dst, nsDedup, app)
	return append(dst, messageID...)
}

// decodeDedupKey is the inverse of appendDedupKey. The returned messageID
// aliases k.
func decodeDedupKey(k []byte) (app uint32, messageID []byte, err error) {
	if len(k) < 5 || Namespace(k[0]) != nsDedup {
		return 0, nil, fmt.Errorf("storage: malformed dedup key %x", k)
	}
	return binary.BigEndian.Uint32(k[1:]), k[5:], nil
}

// appendDedupSliceKey appends the old-format (0x21) dedup index key of
// fingerprint fp of one of app's messageIds, written in time slice slice;
// only tests write it, to make stores of that format.
func appendDedupSliceKey(dst []byte, slice, app uint32, fp uint64) []byte {
	dst = append(dst, byte(nsDedupSlice))
	dst = binary.BigEndian.AppendUint32(dst, slice)
	dst = binary.BigEndian.AppendUint32(dst, app)
	return append(dst, byte(fp>>40), byte(fp>>32), byte(fp>>24), byte(fp>>16), byte(fp>>8), byte(fp))
}

// decodeDedupSliceKey is the inverse of appendDedupSliceKey.
func decodeDedupSliceKey(k []byte) (slice, app uint32, fp uint64, err error) {
	if len(k) != 15 || Namespace(k[0]) != nsDedupSlice {
		return 0, 0, 0, fmt.Errorf("storage: malformed dedup key %x", k)
	}
	fp = uint64(binary.BigEndian.Uint16(k[9:]))<<32 | uint64(binary.BigEndian.Uint32(k[11:]))
	return binary.BigEndian.Uint32(k[1:]), binary.BigEndian.Uint32(k[5:]), fp, nil
}

// appendDedupBucketKey appends the key of the dedup index bucket that holds
// fingerprint fp (48 bits, see fingerprint) of one of app's messageIds,
// written in time slice slice: the bucket is the fingerprint's top 16 bits,
// the entries in it hold the low 32 (dedupEntryFP).
func appendDedupBucketKey(dst []byte, slice, app uint32, fp uint64) []byte {
	dst = append(dst, byte(nsDedupIndex))
	dst = binary.BigEndian.AppendUint32(dst, slice)
	dst = binary.BigEndian.AppendUint32(dst, app)
	return binary.BigEndian.AppendUint16(dst, uint16(fp>>32))
}

// decodeDedupBucketKey is the inverse of appendDedupBucketKey: hi is the
// fingerprint's top 16 bits in place (fp &^ (1<<32 - 1)).
func decodeDedupBucketKey(k []byte) (slice, app uint32, hi uint64, err error) {
	if len(k) != 11 || Namespace(k[0]) != nsDedupIndex {
		return 0, 0, 0, fmt.Errorf("storage: malformed dedup bucket key %x", k)
	}
	return binary.BigEndian.Uint32(k[1:]), binary.BigEndian.Uint32(k[5:]), uint64(binary.BigEndian.Uint16(k[9:])) << 32, nil
}

// appendIdemSliceKey appends the key recording app's Idempotency-Key, written
// in time slice slice.
func appendIdemSliceKey(dst []byte, slice, app uint32, key []byte) []byte {
	dst = append(dst, byte(nsIdemSlice))
	dst = binary.BigEndian.AppendUint32(dst, slice)
	dst = binary.BigEndian.AppendUint32(dst, app)
	return append(dst, key...)
}

// decodeIdemSliceKey is the inverse of appendIdemSliceKey; key aliases k.
func decodeIdemSliceKey(k []byte) (slice, app uint32, key []byte, err error) {
	if len(k) < 9 || Namespace(k[0]) != nsIdemSlice {
		return 0, 0, nil, fmt.Errorf("storage: malformed idempotency key %x", k)
	}
	return binary.BigEndian.Uint32(k[1:]), binary.BigEndian.Uint32(k[5:]), k[9:], nil
}

// sliceStart returns the smallest key of ns (a slice namespace) in slice.
func sliceStart(ns Namespace, slice uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte{byte(ns)}, slice)
}

// decodeIdempotencyKey is the inverse of appendIdempotencyKey (the old
// namespace, read to convert it); key aliases k.
func decodeIdempotencyKey(k []byte) (app uint32, key []byte, err error) {
	if len(k) < 5 || Namespace(k[0]) != nsIdempotent {
		return 0, nil, fmt.Errorf("storage: malformed idempotency key %x", k)
	}
	return binary.BigEndian.Uint32(k[1:]), k[5:], nil
}

// appendSeqKey appends a key of a namespace keyed by (app, seq):
// quarantine (0x30) and change (0x44).
func appendSeqKey(dst []byte, ns Namespace, app uint32, seq uint64) []byte {
	dst = appendAppPrefix(dst, ns, app)
	return binary.BigEndian.AppendUint64(dst, seq)
}

// appendQuarantineKey appends the key of app's rejected event seq.
func appendQuarantineKey(dst []byte, app uint32, seq uint64) []byte {
	return appendSeqKey(dst, nsQuarantine, app, seq)
}

// decodeSeqKey is the inverse of appendSeqKey.
func decodeSeqKey(k []byte, ns Namespace) (app uint32, seq uint64, err error) {
	if len(k) != 13 || Namespace(k[0]) != ns {
		return 0, 0, fmt.Errorf("storage: malformed %s key %x", nsNames[ns], k)
	}
	return binary.BigEndian.Uint32(k[1:]), binary.BigEndian.Uint64(k[5:]), nil
}

// nsNames names the namespaces keyed by (app, seq) in decoding errors.
var nsNames = map[Namespace]string{nsQuarantine: "quarantine", nsChange: "change"}

// decodeQuarantineKey is the inverse of appendQuarantineKey.
func decodeQuarantineKey(k []byte) (app uint32, seq uint64, err error) {
	return decodeSeqKey(k, nsQuarantine)
}

// A profile's change entry (0x44) is replaced at every update, so the
// change namespace read from a sequence on lists each changed profile once,
// in its latest state: the basis of the profile export's watermark.

// appendProfileKey appends the key of app's profile pyzeID.
func appendProfileKey(dst []byte, app uint32, pyzeID [16]byte) []byte {
	dst = appendAppPrefix(dst, nsProfile, app)
	return append(dst, pyzeID[:]...)
}

// decodeProfileKey is the inverse of appendProfileKey.
func decodeProfileKey(k []byte) (app uint32, pyzeID [16]byte, err error) {
	if len(k) != 21 || Namespace(k[0]) != nsProfile {
		return 0, pyzeID, fmt.Errorf("storage: malformed profile key %x", k)
	}
	copy(pyzeID[:], k[5:])
	return binary.BigEndian.Uint32(k[1:]), pyzeID, nil
}

// appendUserIndexKey appends the key mapping app's userID to a profile.
func appendUserIndexKey(dst []byte, app uint32, userID []byte) []byte {
	dst = appendAppPrefix(dst, nsUserIndex, app)
	return append(dst, userID...)
}

// appendForgottenKey appends the key that records app's deleted userID.
func appendForgottenKey(dst []byte, app uint32, userID []byte) []byte {
	dst = appendAppPrefix(dst, nsForgotten, app)
	return append(dst, userID...)
}

// decodeForgottenKey is the inverse of appendForgottenKey; userID aliases
// k.
func decodeForgottenKey(k []byte) (app uint32, userID []byte, err error) {
	if len(k) < 5 || Namespace(k[0]) != nsForgotten {
		return 0, nil, fmt.Errorf("storage: malformed forgotten user key %x", k)
	}
	return binary.BigEndian.Uint32(k[1:]), k[5:], nil
}

// appendAliasIndexKey appends the key mapping app's alias (label, id) to a
// profile. The label is length-prefixed so that no two pairs share a key.
func appendAliasIndexKey(dst []byte, app uint32, label, id []byte) []byte {
	dst = appendAppPrefix(dst, nsAliasIndex, app)
	dst = binary.AppendUvarint(dst, uint64(len(label)))
	dst = append(dst, label...)
	return append(dst, id...)
}

// decodeAliasIndexKey is the inverse of appendAliasIndexKey; label and id
// alias k.
func decodeAliasIndexKey(k []byte) (app uint32, label, id []byte, err error) {
	if len(k) < 6 || Namespace(k[0]) != nsAliasIndex {
		return 0, nil, nil, fmt.Errorf("storage: malformed alias key %x", k)
	}
	n, w := binary.Uvarint(k[5:])
	if w <= 0 || uint64(len(k)-5-w) < n {
		return 0, nil, nil, fmt.Errorf("storage: malformed alias key %x", k)
	}
	rest := k[5+w:]
	return binary.BigEndian.Uint32(k[1:]), rest[:n], rest[n:], nil
}

// appendIdempotencyKey appends the key recording app's Idempotency-Key.
func appendIdempotencyKey(dst []byte, app uint32, key []byte) []byte {
	dst = appendAppPrefix(dst, nsIdempotent, app)
	return append(dst, key...)
}

// appendChangeKey appends the key of app's profile change seq.
func appendChangeKey(dst []byte, app uint32, seq uint64) []byte {
	return appendSeqKey(dst, nsChange, app, seq)
}

// decodeChangeKey is the inverse of appendChangeKey.
func decodeChangeKey(k []byte) (app uint32, seq uint64, err error) {
	return decodeSeqKey(k, nsChange)
}

// appendSchemaKey appends the key of app's contract for events named
// event. The appKey is length-prefixed so that no two pairs share a key,
// and keyed by appKey rather than app id so that a contract can be
// declared before the app's first event.
func appendSchemaKey(dst []byte, appKey, event string) []byte {
	dst = append(dst, byte(nsSchema))
	dst = binary.AppendUvarint(dst, uint64(len(appKey)))
	dst = append(dst, appKey...)
	return append(dst, event...)
}

// decodeSchemaKey is the inverse of appendSchemaKey; both results alias k.
func decodeSchemaKey(k []byte) (appKey, event []byte, err error) {
	if len(k) < 2 || Namespace(k[0]) != nsSchema {
		return nil, nil, fmt.Errorf("storage: malformed schema key %x", k)
	}
	n, w := binary.Uvarint(k[1:])
	if w <= 0 || uint64(len(k)-1-w) < n {
		return nil, nil, fmt.Errorf("storage: malformed schema key %x", k)
	}
	rest := k[1+w:]
	return rest[:n], rest[n:], nil
}

// appendAppKey appends the registry key of the app with the given appKey.
func appendAppKey(dst []byte, appKey string) []byte {
	dst = append(dst, byte(nsApp))
	return append(dst, appKey...)
}

// appendAppRecordKey appends the key of the record of an app created
// through the admin API.
func appendAppRecordKey(dst []byte, appKey string) []byte {
	dst = append(dst, byte(nsAppRecord))
	return append(dst, appKey...)
}

// appendTokenKey appends the key of the token with the given id.
func appendTokenKey(dst []byte, id string) []byte {
	dst = append(dst, byte(nsToken))
	return append(dst, id...)
}

// decodeNameKey returns the name part of a key of a namespace keyed by one
// name (meta, app, app record, token). It aliases k.
func decodeNameKey(k []byte, ns Namespace) ([]byte, error) {
	if len(k) < 1 || Namespace(k[0]) != ns {
		return nil, fmt.Errorf("storage: malformed key %x: want prefix %02x", k, byte(ns))
	}
	return k[1:], nil
}

// appendMetaKey appends the key of a named meta value.
func appendMetaKey(dst []byte, name string) []byte {
	dst = append(dst, byte(nsMeta))
	return append(dst, name...)
}

// The meta namespace has one sub-namespace of its own: an app's retention
// floor (retention.go), keyed 0x01 | "floor/" | appID (4B), value version
// byte | first kept day (varint).
const floorMetaPrefix = "floor/"

// appendFloorKey appends the key of app's retention floor.
func appendFloorKey(dst []byte, app uint32) []byte {
	dst = appendMetaKey(dst, floorMetaPrefix)
	return binary.BigEndian.AppendUint32(dst, app)
}

// decodeFloorKey is the inverse of appendFloorKey.
func decodeFloorKey(k []byte) (app uint32, err error) {
	if len(k) != 1+len(floorMetaPrefix)+4 || Namespace(k[0]) != nsMeta || string(k[1:1+len(floorMetaPrefix)]) != floorMetaPrefix {
		return 0, fmt.Errorf("storage: malformed retention floor key %x", k)
	}
	return binary.BigEndian.Uint32(k[1+len(floorMetaPrefix):]), nil
}

// floorKeyBounds returns the key range that holds every retention floor.
func floorKeyBounds() (lower, upper []byte) {
	lower = appendMetaKey(nil, floorMetaPrefix)
	upper = append(appendMetaKey(nil, floorMetaPrefix[:len(floorMetaPrefix)-1]), floorMetaPrefix[len(floorMetaPrefix)-1]+1)
	return lower, upper
}

// appUpperBound returns the smallest key after every key of app in ns.
func appUpperBound(ns Namespace, app uint32) []byte {
	if app == ^uint32(0) {
		return []byte{byte(ns) + 1}
	}
	return appendAppPrefix(nil, ns, app+1)
}

// dayUs is a day in microseconds.
const dayUs = 86_400_000_000

// DayOf returns the day bucket (the UTC day, floored) of a Unix time in
// microseconds. Every int64 time has a day within the int32 range; the
// clamp only states it.
func DayOf(us int64) int32 {
	d := us / dayUs
	if us < 0 && us%dayUs != 0 {
		d--
	}
	return int32(max(min(d, math.MaxInt32), math.MinInt32))
}

// dayStart returns the first microsecond of day, saturated at the ends of
// int64 (the first day DayOf(math.MinInt64) begins before it).
func dayStart(day int32) int64 {
	if int64(day) < math.MinInt64/dayUs {
		return math.MinInt64
	}
	return int64(day) * dayUs
}
