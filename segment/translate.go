package segment

import (
	"bytes"
	"strings"

	"trove/ingest"
)

// kind is a Segment message type.
type kind uint8

const (
	kindUnknown kind = iota
	kindTrack
	kindPage
	kindScreen
	kindIdentify
	kindGroup
	kindAlias
)

var kindNames = [...]string{"", "track", "page", "screen", "identify", "group", "alias"}

func (k kind) String() string { return kindNames[k] }

// kindOf returns the kind a "type" value names.
func kindOf(typ []byte) kind {
	for k, n := range kindNames {
		if k > 0 && string(typ) == n {
			return kind(k)
		}
	}
	return kindUnknown
}

// defaults are the members of a batch that apply to each of its messages.
type defaults struct {
	sentAt, context, integrations []byte
}

// message holds the raw members of one Segment message that the mapping
// reads; every other member is in rest.
type message struct {
	typ, userID, anonymousID, event, name, timestamp, originalTimestamp,
	sentAt, context, properties, traits, messageID, previousID, integrations []byte
	rest []member
	// twice is the first member the mapping reads that appears twice, or
	// "": which one was meant is ambiguous, so the message is refused.
	twice string
}

// member is one raw member of a JSON object: its key (without quotes,
// escapes as sent) and its value.
type member struct{ key, val []byte }

// isAbsent reports whether a raw value is missing or null.
func isAbsent(v []byte) bool { return v == nil || string(v) == "null" }

// decodeMessage reads the members of raw, a valid JSON object.
func decodeMessage(raw []byte, m *message) error {
	*m = message{rest: m.rest[:0]}
	return ingest.ForEachMember(raw, func(key, val []byte) error {
		var f *[]byte
		switch string(key) {
		case "type":
			f = &m.typ
		case "userId":
			f = &m.userID
		case "anonymousId":
			f = &m.anonymousID
		case "event":
			f = &m.event
		case "name":
			f = &m.name
		case "timestamp":
			f = &m.timestamp
		case "originalTimestamp":
			f = &m.originalTimestamp
		case "sentAt":
			f = &m.sentAt
		case "context":
			f = &m.context
		case "properties":
			f = &m.properties
		case "traits":
			f = &m.traits
		case "messageId":
			f = &m.messageID
		case "previousId":
			f = &m.previousID
		case "integrations":
			f = &m.integrations
		case "writeKey":
			// A credential: never stored.
			return nil
		default:
			m.rest = append(m.rest, member{key, val})
			return nil
		}
		if *f != nil && m.twice == "" {
			m.twice = string(key)
		}
		*f = val
		return nil
	})
}

// identity returns v as a JSON string: a non-empty string as sent, a
// number as its text quoted; nil for anything else.
func identity(v []byte) []byte {
	if isAbsent(v) {
		return nil
	}
	if s, ok := ingest.JSONString(v); ok {
		if len(s) == 0 {
			return nil
		}
		return v
	}
	if c := v[0]; c == '-' || (c >= '0' && c <= '9') {
		return append(append([]byte{'"'}, v...), '"')
	}
	return nil
}

// translation is what one message became.
type translation struct {
	event []byte // the Trove event
	// fields maps Trove's field names to the message's, for errors.
	userField, timeField, attrField, eventField string
}

// segmentField names, in the message, the field that ingest named field
// in the event.
func (t *translation) segmentField(field string) string {
	switch field {
	case "userId":
		return t.userField
	case "eventTime":
		return t.timeField
	case "attributes":
		return t.attrField
	case "event":
		return t.eventField
	case "appKey":
		return "writeKey"
	}
	return field
}

// rename rewrites an error message of ingest's that starts with its field
// name so that it starts with the message's field name.
func rename(msg, from, to string) string {
	if from != to && strings.HasPrefix(msg, from) {
		return to + msg[len(from):]
	}
	return msg
}

// rejection is a message refused before it reached ingest.
type rejection struct{ field, message string }

// translate appends to dst the Trove event that m (of kind k) maps to, for
// app appKey, with the batch's defaults d; receivedAt is the server's time
// for a message that carries none. It returns a rejection instead when the
// message cannot be an event.
func translate(dst []byte, k kind, m *message, d *defaults, appKey string, receivedAt []byte, t *translation) ([]byte, *rejection) {
	*t = translation{userField: "userId", attrField: "properties", eventField: "event"}
	if m.twice != "" {
		return dst, &rejection{m.twice, m.twice + " appears twice"}
	}
	userID := identity(m.userID)
	anonID := identity(m.anonymousID)
	if k == kindAlias {
		if userID == nil {
			return dst, &rejection{"userId", "an alias needs userId: the identity that previousId is linked to"}
		}
		if identity(m.previousID) == nil {
			return dst, &rejection{"previousId", "an alias needs previousId, a non-empty string"}
		}
	}
	if userID == nil {
		userID, t.userField = anonID, "anonymousId"
	}
	if userID == nil {
		return dst, &rejection{"userId", "userId or anonymousId is required"}
	}
	name, rej := eventName(k, m, t)
	if rej != nil {
		return dst, rej
	}
	attrs := m.properties
	if k == kindIdentify || k == kindGroup {
		attrs, t.attrField = m.traits, "traits"
	}
	sentAt, eventTime := eventTimes(m, d, receivedAt, t)

	dst = append(dst, `{"type":"event","event":`...)
	dst = append(dst, name...)
	dst = append(dst, `,"userId":`...)
	dst = append(dst, userID...)
	dst = append(dst, `,"eventTime":`...)
	dst = append(dst, eventTime...)
	dst = append(dst, `,"appKey":`...)
	dst = ingest.AppendQuoted(dst, appKey)
	if !isAbsent(m.messageID) {
		dst = append(dst, `,"messageId":`...)
		dst = append(dst, m.messageID...)
	}
	if !isAbsent(sentAt) {
		dst = append(dst, `,"sentAt":`...)
		dst = append(dst, sentAt...)
	}
	if ctx := m.context; !isAbsent(ctx) || !isAbsent(d.context) {
		dst = append(dst, `,"context":`...)
		dst = appendContext(dst, ctx, d.context)
	}
	if !isAbsent(attrs) {
		dst = append(dst, `,"attributes":`...)
		dst = append(dst, attrs...)
	}

	dst = appendSegmentMember(dst, k, m, d, t)
	return append(dst, '}'), nil
}

// eventName returns the event's name for message m of kind k: a track's
// event, a page's or screen's name (or its kind), any other kind itself.
// It names in t the field it took the name from.
func eventName(k kind, m *message, t *translation) ([]byte, *rejection) {
	switch k {
	case kindTrack:
		if isAbsent(m.event) {
			return nil, &rejection{"event", "a track needs event, its name"}
		}
		return m.event, nil
	case kindPage, kindScreen:
		t.eventField = "name"
		if !isAbsent(m.name) {
			return m.name, nil
		}
	}
	return []byte(`"` + k.String() + `"`), nil
}

// eventTimes returns m's sentAt (its own, else the batch's in d) and its
// event time: the first of timestamp, originalTimestamp, sentAt and
// receivedAt it has, whose name it puts in t.timeField.
func eventTimes(m *message, d *defaults, receivedAt []byte, t *translation) (sentAt, eventTime []byte) {
	sentAt = m.sentAt
	if isAbsent(sentAt) {
		sentAt = d.sentAt
	}
	eventTime = m.timestamp
	t.timeField = "timestamp"
	if isAbsent(eventTime) {
		eventTime, t.timeField = m.originalTimestamp, "originalTimestamp"
	}
	if isAbsent(eventTime) {
		eventTime, t.timeField = sentAt, "sentAt"
	}
	if isAbsent(eventTime) {
		eventTime, t.timeField = receivedAt, "receivedAt"
	}
	return sentAt, eventTime
}

// appendSegmentMember appends the event's "segment" member: what Trove's
// event has no field for (the message's type, its identities and names not
// mapped, the other time fields, integrations, and every member Trove does
// not read), as t says the translation mapped them.
func appendSegmentMember(dst []byte, k kind, m *message, d *defaults, t *translation) []byte {
	dst = append(dst, `,"segment":{"type":"`...)
	dst = append(dst, k.String()...)
	dst = append(dst, '"')
	keep := func(key string, v []byte) {
		if !isAbsent(v) {
			dst = append(dst, `,"`...)
			dst = append(dst, key...)
			dst = append(dst, `":`...)
			dst = append(dst, v...)
		}
	}
	keep("anonymousId", m.anonymousID)
	if t.userField == "anonymousId" {
		keep("userId", m.userID) // an unusable userId, such as ""
	}
	if t.eventField == "name" && !isAbsent(m.name) {
		// mapped to event
	} else {
		keep("name", m.name)
	}
	if k != kindTrack {
		keep("event", m.event)
	}
	if t.timeField != "timestamp" {
		keep("timestamp", m.timestamp)
	}
	if t.timeField != "originalTimestamp" {
		keep("originalTimestamp", m.originalTimestamp)
	}
	if t.attrField == "traits" {
		keep("properties", m.properties)
	} else {
		keep("traits", m.traits)
	}
	keep("previousId", m.previousID)
	integrations := m.integrations
	if isAbsent(integrations) {
		integrations = d.integrations
	}
	keep("integrations", integrations)
	for _, r := range m.rest {
		dst = append(dst, `,"`...)
		dst = append(dst, r.key...)
		dst = append(dst, `":`...)
		dst = append(dst, r.val...)
	}
	return append(dst, '}')
}

// appendContext appends the message's context with the batch's context
// members it does not have; either may be absent.
func appendContext(dst, msg, batch []byte) []byte {
	if isAbsent(batch) || batch[0] != '{' {
		return append(dst, msg...)
	}
	if isAbsent(msg) {
		return append(dst, batch...)
	}
	if msg[0] != '{' {
		return append(dst, msg...) // ingest names what is wrong with it
	}
	inner := bytes.TrimSpace(msg[1 : len(msg)-1])
	dst = append(dst, '{')
	dst = append(dst, inner...)
	n := len(inner)
	ingest.ForEachMember(batch, func(key, val []byte) error {
		if hasMember(msg, key) {
			return nil
		}
		if n > 0 {
			dst = append(dst, ',')
		}
		n++
		dst = append(dst, '"')
		dst = append(dst, key...)
		dst = append(dst, '"', ':')
		dst = append(dst, val...)
		return nil
	})
	return append(dst, '}')
}

// hasMember reports whether the JSON object obj has a member key (raw).
func hasMember(obj, key []byte) bool {
	found := false
	ingest.ForEachMember(obj, func(k, _ []byte) error {
		if bytes.Equal(k, key) {
			found = true
		}
		return nil
	})
	return found
}
