package segment

import (
	"bytes"
	"strings"
	"time"

	"trove/ingest"
	"trove/profile"
)

// aliasLabel is the alias_label under which an alias message's previousId
// is attached to the profile of its userId.
const aliasLabel = "previousId"

// traitFields maps Segment's reserved traits (flattened with dots) to
// Trove's built-in profile fields.
var traitFields = map[string]string{
	"firstName":       "first_name",
	"first_name":      "first_name",
	"lastName":        "last_name",
	"last_name":       "last_name",
	"email":           "email_id",
	"phone":           "phone",
	"gender":          "gender",
	"birthday":        "date_of_birth",
	"createdAt":       "date_of_first_use",
	"address.city":    "city",
	"address.country": "country",
}

// identityKeys are the profile object's identity members: a trait with
// one of these names is kept as a custom attribute under another name.
var identityKeys = map[string]bool{"userId": true, "customer_id": true, "pyze_id": true, "user_alias": true, "appKey": true}

// appendIdentify appends the profile object that an identify of userID
// (a JSON string) with traits (raw, possibly absent) maps to.
func appendIdentify(dst, userID, traits []byte) []byte {
	dst = append(dst, `{"userId":`...)
	dst = append(dst, userID...)
	if !isAbsent(traits) && traits[0] == '{' {
		dst = appendTraits(dst, "", traits)
	}
	return append(dst, '}')
}

// appendAlias appends the profile object that links previousID to the
// profile of userID (both JSON strings).
func appendAlias(dst, userID, previousID []byte) []byte {
	dst = append(dst, `{"userId":`...)
	dst = append(dst, userID...)
	dst = append(dst, `,"user_alias":{"alias_label":"`+aliasLabel+`","alias_id":`...)
	dst = append(dst, previousID...)
	return append(dst, '}', '}')
}

// appendTraits appends each member of the object obj as a profile field,
// prefixing keys with prefix: nested objects are flattened with dots.
func appendTraits(dst []byte, prefix string, obj []byte) []byte {
	ingest.ForEachMember(obj, func(key, val []byte) error {
		name := prefix + string(key)
		if len(val) > 0 && val[0] == '{' {
			if len(bytes.TrimSpace(val[1:len(val)-1])) == 0 {
				return nil // an empty object sets nothing
			}
			dst = appendTraits(dst, name+".", val)
			return nil
		}
		dst = append(dst, ',')
		dst = appendTrait(dst, name, val)
		return nil
	})
	return dst
}

// appendTrait appends one trait as a profile member: a built-in field when
// it maps to one and its value passes the field's check, else a custom
// attribute of its own name ("traits." + name when that name is a
// built-in or an identity key).
func appendTrait(dst []byte, name string, val []byte) []byte {
	if field, ok := traitFields[name]; ok {
		if isAbsent(val) {
			return appendMember(dst, field, []byte("null"))
		}
		if s, ok := ingest.JSONString(val); ok {
			if v, ok := builtinValue(field, string(s)); ok {
				return appendMember(dst, field, []byte(v))
			}
		}
	}
	key := name
	if profile.IsBuiltin(name) || identityKeys[name] {
		key = "traits." + name
	}
	if len(val) > 0 && val[0] == '[' && !scalarArray(val) {
		// Profiles keep arrays of strings, numbers and booleans: anything
		// else is kept as its JSON text.
		var q []byte
		q = ingest.AppendQuoted(q, string(val))
		return appendMember(dst, key, q)
	}
	return appendMember(dst, key, val)
}

func appendMember(dst []byte, key string, val []byte) []byte {
	dst = append(dst, '"')
	dst = append(dst, key...)
	dst = append(dst, '"', ':')
	return append(dst, val...)
}

// builtinValue returns the JSON value of built-in field for the trait
// value s, or false when s does not fit the field.
func builtinValue(field, s string) (string, bool) {
	switch field {
	case "gender":
		switch strings.ToLower(s) {
		case "m", "male":
			s = "M"
		case "f", "female":
			s = "F"
		case "o", "other":
			s = "O"
		case "u", "unknown":
			s = "U"
		default:
			return "", false
		}
	case "date_of_birth":
		// Segment's birthday is an ISO-8601 date or time: keep its date.
		if len(s) > 10 {
			if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
				return "", false
			}
			s = s[:10]
		}
	}
	if profile.CheckBuiltin(field, s) != "" {
		return "", false
	}
	return string(ingest.AppendQuoted(nil, s)), true
}

// scalarArray reports whether the JSON array arr holds only strings,
// numbers and booleans.
func scalarArray(arr []byte) bool {
	ok := true
	ingest.ForEachElement(arr, func(_ int, e []byte) error {
		if len(e) == 0 || e[0] == '{' || e[0] == '[' || e[0] == 'n' {
			ok = false
		}
		return nil
	})
	return ok
}
