package ingest

import (
	"bytes"
	"math/bits"
	"net/netip"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Batch is one request's events, decoded and validated, with their stored
// forms. The byte slices in it alias the request body or the Batch's own
// buffers, and are valid until the request ends.
type Batch struct {
	Now      time.Time
	IP       string // the client's address, for context.ip
	NDJSON   bool   // errors name a line, not an index
	Events   []Event
	Rejected []Rejection

	cfg        *Config
	receivedAt []byte // `"receivedAt":"…"`, formatted once per request
	buf        []byte // stored forms, each without its closing '}'
	apps       []string
	members    []rawMember // the current event's members, reused
	out        []byte      // complete stored forms, built by the sink

	// suppressed, when set, returns an app's users deleted with
	// suppress=1, whose events are refused (the sink's Suppressed).
	suppressed func(appKey string) map[string]bool
	supApp     string // the app of supUsers, when supKnown
	supUsers   map[string]bool
	supKnown   bool
	// Warnings are the events stored despite breaking their contract
	// (schema_mode "warn"), as Rejections that are not quarantined.
	Warnings []Rejection
	doc      []byte // one stored form, for a contract check (contracts.go)
	// replay holds the quarantine entries a replay rewrites (replay.go).
	replay []requarantined
}

// codeSuppressed is the Code of a Rejection for an event whose userId was
// deleted with suppress=1: answered and counted, never quarantined, since
// its user asked to be forgotten.
const codeSuppressed = "user_deleted"

// isSuppressed reports whether userID (unescaped) of appKey was deleted
// with suppress=1. The users are looked up once per run of one app.
func (b *Batch) isSuppressed(appKey, userID []byte) bool {
	if b.suppressed == nil {
		return false
	}
	if !b.supKnown || b.supApp != string(appKey) {
		b.supApp, b.supKnown = b.intern(appKey), true
		b.supUsers = b.suppressed(b.supApp)
	}
	return b.supUsers[string(userID)]
}

// Event is one valid event.
type Event struct {
	Index     int
	AppKey    string
	MessageID []byte // as the client sent it; nil when the server generates one
	TimeUs    int64  // eventTime in Unix µs (floored), after clock-skew correction
	Duplicate bool   // set by the sink
	// Name is the event's name, aliasing the request body or the Batch.
	Name  []byte
	raw   []byte // the event as sent, for the quarantine (contracts.go)
	qseq  uint64 // the quarantine entry it is replayed from; 0 for none (replay.go)
	start int
	end   int
}

// Rejection is one invalid event, named in the answer and quarantined.
type Rejection struct {
	Index     int
	AppKey    string // the app it is quarantined under; "" when none is known
	MessageID string
	Field     string
	Code      string // "invalid_event", "too_large", or codeSuppressed
	Message   string
	Raw       []byte
	qseq      uint64 // the quarantine entry it is replayed from; 0 for none (replay.go)
}

var batchPool sync.Pool

// newBatch prepares a Batch for a request received at now from ip. Return
// it with putBatch once nothing refers to its slices.
func newBatch(cfg *Config, now time.Time, ip string) *Batch {
	b, _ := batchPool.Get().(*Batch)
	if b == nil {
		b = &Batch{}
	}
	b.cfg, b.Now, b.IP = cfg, now, ip
	b.receivedAt = append(b.receivedAt[:0], `"receivedAt":"`...)
	b.receivedAt = now.UTC().AppendFormat(b.receivedAt, "2006-01-02T15:04:05.000Z07:00")
	b.receivedAt = append(b.receivedAt, '"')
	return b
}

// putBatch returns b to the pool, unless its buffers grew unusually large.
func putBatch(b *Batch) {
	if cap(b.buf) > 8<<20 || cap(b.out) > 8<<20 || cap(b.Events) > 64<<10 {
		return
	}
	*b = Batch{
		Events:     b.Events[:0],
		Rejected:   b.Rejected[:0],
		receivedAt: b.receivedAt[:0],
		buf:        b.buf[:0],
		out:        b.out[:0],
		apps:       b.apps[:0],
		members:    b.members[:0],
		Warnings:   b.Warnings[:0],
		doc:        b.doc[:0],
		replay:     b.replay[:0],
	}
	batchPool.Put(b)
}

// intern returns appKey as a string, allocating once per distinct app.
func (b *Batch) intern(appKey []byte) string {
	for _, a := range b.apps {
		if a == string(appKey) {
			return a
		}
	}
	s := string(appKey)
	b.apps = append(b.apps, s)
	return s
}

func (b *Batch) reject(idx int, appKey []byte, messageID []byte, field, code, msg string, raw []byte) {
	r := Rejection{Index: idx, Field: field, Code: code, Message: msg, Raw: raw}
	if len(appKey) > 0 && len(appKey) <= 64 {
		r.AppKey = b.intern(appKey)
	}
	if len(messageID) > 0 && len(messageID) <= 255 {
		r.MessageID = string(messageID)
	}
	b.Rejected = append(b.Rejected, r)
}

// rawMember is one top-level member of an event, aliasing the request body.
type rawMember struct{ key, val []byte }

// fields holds the raw values of the members an event's rules look at.
type fields struct {
	typ, event, userID, eventTime, appKey, context, messageID, sentAt, attributes []byte
}

// readFields are the top-level keys the decoder reads, in the order of
// their bits in addScanned's mask of keys seen.
var readFields = [...]string{"type", "event", "userId", "eventTime", "appKey", "context", "messageId", "sentAt", "attributes"}

// fieldBit returns the mask bit of the read field that the raw key key
// names once its escapes are decoded, or 0.
func fieldBit(key []byte) uint16 {
	k := unescapeKey(key)
	for i, f := range readFields {
		if string(k) == f {
			return 1 << i
		}
	}
	return 0
}

// unescapeKey returns the raw key key (without quotes) with its escapes
// decoded, or key itself when it cannot be decoded.
func unescapeKey(key []byte) []byte {
	q := make([]byte, 0, len(key)+2)
	q = append(append(append(q, '"'), key...), '"')
	if s, ok := jsonString(q); ok {
		return s
	}
	return key
}

// add validates one event (raw JSON text) and adds it to the batch as an
// Event or a Rejection. valid says raw is already known to be JSON (it is
// an element of an array that was checked whole).
func (b *Batch) add(idx int, raw []byte, valid bool) {
	var sc eventScan
	if len(raw) <= b.cfg.MaxEventBytes { // else rejected before sc is looked at
		sc, b.members = scanEvent(raw, 0, maxDepth, true, b.members[:0])
	}
	b.addScanned(idx, raw, valid, sc)
}

// addScanned is add, for an event whose text scanEvent has walked and
// whose members it has put in b.members. Its checks run in the order the
// SPEC lists the fields, each one rejecting the event with the first
// problem it finds, and share the fields read and the fail closure: one
// list of rules, which is why it stays one function; the field reading,
// the context check and the stored form are functions of their own.
func (b *Batch) addScanned(idx int, raw []byte, valid bool, sc eventScan) {
	cfg := b.cfg
	if len(raw) > cfg.MaxEventBytes {
		b.reject(idx, nil, nil, "", "too_large", "event is "+strconv.Itoa(len(raw))+" bytes, over the limit of "+strconv.Itoa(cfg.MaxEventBytes)+" (ingest.max_event_bytes)", raw)
		return
	}
	if !utf8.Valid(raw) {
		b.reject(idx, nil, nil, "", "invalid_event", "event is not valid UTF-8", raw)
		return
	}
	if !sc.ok {
		b.reject(idx, nil, nil, "attributes", "invalid_event", "event is nested deeper than 32 levels", raw)
		return
	}
	if !valid && !validJSON(raw) {
		b.reject(idx, nil, nil, "", "invalid_event", "event is not valid JSON", raw)
		return
	}
	if i := skipSpace(raw, 0); i >= len(raw) || raw[i] != '{' {
		b.reject(idx, nil, nil, "", "invalid_event", "event must be a JSON object, got "+kindOf(bytes.TrimSpace(raw)), raw)
		return
	}
	f, dup := readEventFields(b.members)
	appKey, _ := jsonString(f.appKey)
	messageID, _ := jsonString(f.messageID)
	fail := func(field, msg string) {
		b.reject(idx, appKey, messageID, field, "invalid_event", msg, raw)
	}
	str := func(field string, v []byte, required bool) ([]byte, bool) {
		if v == nil || (!required && string(v) == "null") {
			if required {
				fail(field, field+" is required")
			}
			return nil, !required
		}
		s, ok := jsonString(v)
		if !ok {
			fail(field, field+" must be a string, got "+kindOf(v))
			return nil, false
		}
		return s, true
	}
	if uid, ok := jsonString(f.userID); ok && b.isSuppressed(appKey, uid) {
		// Before any other rule: not even a broken event of the user is
		// kept.
		b.reject(idx, appKey, messageID, "userId", codeSuppressed, "userId "+strconv.Quote(string(uid))+" was deleted with suppress=1: its events are refused (DELETE /v1/users/profile again without suppress=1 to accept them)", nil)
		return
	}
	if dup != "" {
		fail(dup, dup+" appears twice")
		return
	}
	typ, ok := str("type", f.typ, true)
	if !ok {
		return
	}
	if string(typ) != "event" {
		fail("type", `type must be "event"`)
		return
	}
	name, ok := str("event", f.event, true)
	if !ok {
		return
	}
	// n bytes are 1 to n runes: only an empty or long name needs counting.
	if len(name) < 1 || len(name) > 255 {
		if n := utf8.RuneCount(name); n < 1 || n > 255 {
			fail("event", "event must be 1 to 255 characters, got "+strconv.Itoa(n))
			return
		}
	}
	userID, ok := str("userId", f.userID, true)
	if !ok {
		return
	}
	if len(userID) == 0 {
		fail("userId", "userId must not be empty")
		return
	}
	et, ok := str("eventTime", f.eventTime, true)
	if !ok {
		return
	}
	eventTime, err := time.Parse(time.RFC3339Nano, string(et))
	if err != nil {
		fail("eventTime", "eventTime must be an ISO-8601 / RFC 3339 time with an offset or Z, such as 2020-06-03T17:03:48-07:00")
		return
	}
	if _, ok := str("appKey", f.appKey, true); !ok {
		return
	}
	if len(appKey) == 0 {
		fail("appKey", "appKey must not be empty")
		return
	}
	if _, ok := str("messageId", f.messageID, false); !ok {
		return
	}
	if f.messageID != nil && string(f.messageID) != "null" {
		if len(messageID) < 1 || len(messageID) > 255 {
			if n := utf8.RuneCount(messageID); n < 1 || n > 255 {
				fail("messageId", "messageId must be 1 to 255 characters, got "+strconv.Itoa(n))
				return
			}
		}
	} else {
		messageID = nil
	}
	sa, ok := str("sentAt", f.sentAt, false)
	if !ok {
		return
	}
	var sentAt time.Time
	if sa != nil {
		if sentAt, err = time.Parse(time.RFC3339Nano, string(sa)); err != nil {
			fail("sentAt", "sentAt must be an ISO-8601 / RFC 3339 time with an offset or Z")
			return
		}
	}
	hasIP, ctxField, ctxErr := checkContext(f.context)
	if ctxErr != "" {
		fail(ctxField, ctxErr)
		return
	}
	if f.attributes != nil && string(f.attributes) != "null" {
		if f.attributes[0] != '{' {
			fail("attributes", "attributes must be an object, got "+kindOf(f.attributes))
			return
		}
		// Each member takes at least 5 bytes (`"":0,`), so only a long
		// object can have too many.
		n := 0
		if len(f.attributes) > 5*cfg.MaxAttributes {
			forEachMember(f.attributes, func(_, _ []byte) error { n++; return nil })
		}
		if n > cfg.MaxAttributes {
			fail("attributes", "attributes has "+strconv.Itoa(n)+" keys, over the limit of "+strconv.Itoa(cfg.MaxAttributes))
			return
		}
	}

	// Clock skew: when the client's clock is off by more than the
	// threshold, shift eventTime by the same amount.
	var skew time.Duration
	if sa != nil {
		if d := b.Now.Sub(sentAt); d > cfg.SkewThreshold || -d > cfg.SkewThreshold {
			skew = d
		}
	}
	corrected := eventTime.Add(skew)
	if corrected.Sub(b.Now) > cfg.MaxFuture {
		fail("eventTime", "eventTime "+string(et)+" is more than "+cfg.MaxFuture.String()+" ahead of the server's clock (ingest.max_future)")
		return
	}
	if cfg.Retention != nil {
		if keep := cfg.Retention(b.intern(appKey)); keep > 0 && b.Now.Sub(corrected) > keep {
			fail("eventTime", "eventTime "+string(et)+" is older than the app's retention of "+days(keep)+": it would be removed at once (retention)")
			return
		}
	}

	ev := Event{Index: idx, AppKey: b.intern(appKey), TimeUs: corrected.UnixMicro(), Name: name, raw: raw, start: len(b.buf)}
	if messageID != nil {
		ev.MessageID = messageID
	}
	b.buf = b.appendStoredForm(b.buf, &f, sc.spaced, hasIP, skew, corrected)
	ev.end = len(b.buf)
	b.Events = append(b.Events, ev)
}

// readEventFields picks the members Trove reads out of an event's members;
// dup names the first of them that appears twice (or "").
func readEventFields(members []rawMember) (f fields, dup string) {
	var seen uint16 // a bit per field read, to refuse a duplicated key
	for _, m := range members {
		var bit uint16
		switch string(m.key) {
		case "type":
			f.typ, bit = m.val, 1<<0
		case "event":
			f.event, bit = m.val, 1<<1
		case "userId":
			f.userID, bit = m.val, 1<<2
		case "eventTime":
			f.eventTime, bit = m.val, 1<<3
		case "appKey":
			f.appKey, bit = m.val, 1<<4
		case "context":
			f.context, bit = m.val, 1<<5
		case "messageId":
			f.messageID, bit = m.val, 1<<6
		case "sentAt":
			f.sentAt, bit = m.val, 1<<7
		case "attributes":
			f.attributes, bit = m.val, 1<<8
		default:
			// A key written with escapes is not read, but a JSON reader
			// of the stored form takes "user\u0049d" for userId: it is a
			// duplicate of the plain one.
			if bytes.IndexByte(m.key, '\\') >= 0 {
				bit = fieldBit(m.key)
			}
		}
		if seen&bit != 0 && dup == "" {
			dup = readFields[bits.TrailingZeros16(bit)]
		}
		seen |= bit
	}
	return f, dup
}

// checkContext checks an event's context (raw JSON, nil when absent):
// userAgent a string, ip an IPv4 or IPv6 address, neither twice. hasIP says
// whether it holds an ip; a problem is named by field and msg.
func checkContext(context []byte) (hasIP bool, ctxField, ctxErr string) {
	if context == nil || string(context) == "null" {
		return false, "", ""
	}
	if context[0] != '{' {
		return false, "context", "context must be an object, got " + kindOf(context)
	}
	var ctxSeen uint8 // userAgent 1, ip 2
	ctxDup := false
	forEachMember(context, func(key, val []byte) error {
		if bytes.IndexByte(key, '\\') >= 0 {
			key = unescapeKey(key)
		}
		var bit uint8
		switch string(key) {
		case "userAgent":
			bit = 1
		case "ip":
			bit = 2
		}
		if ctxSeen&bit != 0 {
			if !ctxDup {
				ctxDup = true
				ctxField = "context." + string(key)
				ctxErr = ctxField + " appears twice"
			}
			return nil
		}
		ctxSeen |= bit
		if ctxDup {
			return nil
		}
		switch string(key) {
		case "userAgent":
			if _, ok := jsonString(val); !ok && string(val) != "null" {
				ctxField, ctxErr = "context.userAgent", "context.userAgent must be a string, got "+kindOf(val)
			}
		case "ip":
			s, ok := jsonString(val)
			if !ok {
				ctxField, ctxErr = "context.ip", "context.ip must be a string, got "+kindOf(val)
			} else if !isIPv4(s) && !parsesAsAddr(s) {
				ctxField, ctxErr = "context.ip", "context.ip must be an IPv4 or IPv6 address"
			} else {
				hasIP = true
			}
		}
		return nil
	})
	return hasIP, ctxField, ctxErr
}

// appendStoredForm appends to buf the stored form of the event whose members
// are b.members (read into f): the members as sent (compacted when spaced),
// with the server's fields substituted or added: eventTime corrected by
// skew (the original kept in originalEventTime, with clockSkewMs),
// context.ip from the connection unless hasIP, and receivedAt.
func (b *Batch) appendStoredForm(buf []byte, f *fields, spaced, hasIP bool, skew time.Duration, corrected time.Time) []byte {
	buf = append(buf, '{')
	first := true
	for _, m := range b.members {
		key, val := m.key, m.val
		switch string(key) {
		case "receivedAt", "originalEventTime", "clockSkewMs":
			continue // the server's to set
		case "context", "messageId":
			if string(val) == "null" {
				continue // the server's value is added below instead
			}
		}
		if !first {
			buf = append(buf, ',')
		}
		first = false
		buf = append(buf, '"')
		buf = append(buf, key...)
		buf = append(buf, '"', ':')
		switch {
		case string(key) == "eventTime" && skew != 0:
			buf = append(buf, '"')
			buf = corrected.AppendFormat(buf, time.RFC3339Nano)
			buf = append(buf, '"')
		case string(key) == "context" && !hasIP && val[0] == '{':
			if spaced {
				buf = appendCompact(buf, val[:len(val)-1])
			} else {
				buf = append(buf, val[:len(val)-1]...) // nothing to compact
			}
			if bytes.IndexByte(bytes.TrimSpace(val[1:len(val)-1]), '"') >= 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, `"ip":`...)
			buf = appendQuoted(buf, b.IP)
			buf = append(buf, '}')
		case spaced:
			buf = appendCompact(buf, val)
		default:
			buf = append(buf, val...)
		}
	}
	if !first {
		buf = append(buf, ',')
	}
	if skew != 0 {
		buf = append(buf, `"originalEventTime":`...)
		buf = append(buf, f.eventTime...)
		buf = append(buf, `,"clockSkewMs":`...)
		buf = strconv.AppendInt(buf, skew.Milliseconds(), 10)
		buf = append(buf, ',')
	}
	if f.context == nil || string(f.context) == "null" {
		buf = append(buf, `"context":{"ip":`...)
		buf = appendQuoted(buf, b.IP)
		buf = append(buf, '}', ',')
	}
	return append(buf, b.receivedAt...)
}

// isIPv4 reports whether s is a dotted-quad IPv4 address as
// netip.ParseAddr reads one (four fields of digits, each at most 255,
// without a leading zero): it is ParseAddr's IPv4 rule on bytes, for
// the usual case, as the string conversion that ParseAddr needs
// allocates (its argument escapes). false means ask parsesAsAddr.
func isIPv4(s []byte) bool {
	fields, val, digits := 0, 0, 0
	for _, c := range s {
		switch {
		case '0' <= c && c <= '9':
			if digits == 1 && val == 0 {
				return false // leading zero
			}
			val = val*10 + int(c-'0')
			digits++
			if val > 255 {
				return false
			}
		case c == '.':
			if digits == 0 || fields == 3 {
				return false
			}
			fields++
			val, digits = 0, 0
		default:
			return false
		}
	}
	return fields == 3 && digits > 0
}

// parsesAsAddr reports whether netip.ParseAddr accepts s.
func parsesAsAddr(s []byte) bool {
	_, err := netip.ParseAddr(string(s))
	return err == nil
}

// appendStored appends the complete stored form of e: its members, then a
// messageId member generated from seq when the client sent none.
func (b *Batch) appendStored(dst []byte, e *Event, seq uint64) []byte {
	dst = append(dst, b.buf[e.start:e.end]...)
	if e.MessageID == nil {
		dst = append(dst, `,"messageId":"`...)
		dst = appendGeneratedID(dst, seq)
		dst = append(dst, '"')
	}
	return append(dst, '}')
}

// generatedIDLen is the length of `,"messageId":"trv-<16 hex>"}`.
const generatedIDLen = 15 + 20 + 2

func appendGeneratedID(dst []byte, seq uint64) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, "trv-"...)
	for shift := 60; shift >= 0; shift -= 4 {
		dst = append(dst, hex[(seq>>uint(shift))&0xf])
	}
	return dst
}

// days formats d in whole days when it is whole days, as retention is set.
func days(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	return d.String()
}
