package compat

import (
	"bytes"

	"trove/ingest"
	"trove/profile"
	"trove/segment"
)

// Profile builds one profile object, as POST /users/profile takes it, from
// a protocol's user-property operations ($set, $unset, $add, $append,
// $remove…). A later operation on a field replaces an earlier one, so that
// the object never names a field twice.
type Profile struct {
	members [][]byte // each `"key":value`
	index   map[string]int
	// Rename, when set, maps a protocol's reserved property names (e.g.
	// Mixpanel's "$email") to the trait names of Segment's mapping
	// ("email"), which set the built-in fields.
	Rename func(name string) string
}

// Empty reports whether p changes nothing.
func (p *Profile) Empty() bool { return len(p.members) == 0 }

func (p *Profile) put(m []byte) {
	key := memberKey(m)
	if p.index == nil {
		p.index = map[string]int{}
	}
	if i, ok := p.index[key]; ok {
		p.members[i] = m
		return
	}
	p.index[key] = len(p.members)
	p.members = append(p.members, m)
}

// memberKey returns the key of `"key":value`.
func memberKey(m []byte) string {
	for i := 1; i < len(m); i++ {
		if m[i] == '\\' {
			i++
			continue
		}
		if m[i] == '"' {
			return string(m[1:i])
		}
	}
	return string(m)
}

func (p *Profile) name(n string) string {
	if p.Rename != nil {
		return p.Rename(n)
	}
	return n
}

// SetAll sets each member of obj, a raw JSON object (anything else is
// ignored); nested objects are flattened with dots.
func (p *Profile) SetAll(obj []byte) { p.setAll("", obj) }

func (p *Profile) setAll(prefix string, obj []byte) {
	if len(obj) == 0 || obj[0] != '{' {
		return
	}
	ingest.ForEachMember(obj, func(key, val []byte) error {
		name := prefix + string(key)
		if prefix == "" {
			name = p.name(name)
		}
		if len(val) > 0 && val[0] == '{' {
			if len(bytes.TrimSpace(val[1:len(val)-1])) > 0 {
				p.setAll(name+".", val)
			}
			return nil
		}
		p.put(segment.AppendTrait(nil, name, val))
		return nil
	})
}

// Unset removes the field a property name maps to. Names, here and in
// Op, are raw JSON key text (escapes as sent, without the quotes).
func (p *Profile) Unset(name string) {
	p.put(segment.AppendTrait(nil, p.name(name), []byte("null")))
}

// customKey is the profile key of a custom property name, as Segment's
// mapping names it.
func customKey(name string) string {
	switch name {
	case "userId", "customer_id", "pyze_id", "user_alias", "appKey":
		return "traits." + name
	}
	if profile.IsBuiltin(name) {
		return "traits." + name
	}
	return name
}

// Op applies op ("inc", "add" or "remove") with the raw value val to the
// custom field name: for add and remove, a value that is not an array is
// taken as an array of one.
func (p *Profile) Op(op, name string, val []byte) {
	m := append([]byte{'"'}, customKey(p.name(name))...)
	m = append(m, `":{"`...)
	m = append(m, op...)
	m = append(m, `":`...)
	if op != "inc" && (len(val) == 0 || val[0] != '[') {
		m = append(m, '[')
		m = append(m, val...)
		m = append(m, ']')
	} else {
		m = append(m, val...)
	}
	p.put(append(m, '}'))
}

// Object returns the profile object of the user userID (a JSON string),
// with p's fields and, when aliasID (a JSON string) is set, the alias
// {alias_label, alias_id} attached.
func (p *Profile) Object(userID []byte, aliasLabel string, aliasID []byte) []byte {
	dst := append([]byte(`{"userId":`), userID...)
	if aliasID != nil {
		dst = append(dst, `,"user_alias":{"alias_label":`...)
		dst = ingest.AppendQuoted(dst, aliasLabel)
		dst = append(dst, `,"alias_id":`...)
		dst = append(dst, aliasID...)
		dst = append(dst, '}')
	}
	for _, m := range p.members {
		dst = append(dst, ',')
		dst = append(dst, m...)
	}
	return append(dst, '}')
}
