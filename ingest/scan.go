package ingest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/bits"
	"unicode/utf8"

	"github.com/goccy/go-json"

	"trove/apierr"
)

// These helpers walk JSON text that has already been checked by
// json.Valid, so they only need to find boundaries: they never decode
// numbers, which is how a 19-digit integer keeps every digit.

var errNotObject = errors.New("not a JSON object")

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// stringEnd returns the index just past the string starting at b[i] == '"'
// (len(b) when it is not closed). It looks at 8 bytes at a time for the
// first '"' or '\\' (SWAR: a word with no such byte is skipped in a few
// operations), so that the many short and middling strings of an event
// cost a handful of loads each; an escape skips the byte after the
// backslash.
func stringEnd(b []byte, i int) int {
	i++
	for i+8 <= len(b) {
		m := quoteOrBackslash(binary.LittleEndian.Uint64(b[i:]))
		if m == 0 {
			i += 8
			continue
		}
		i += bits.TrailingZeros64(m) / 8
		if b[i] == '"' {
			return i + 1
		}
		i += 2
	}
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			return i + 1
		case '\\':
			i++
		}
	}
	return len(b)
}

const (
	swarLow  = 0x0101010101010101
	swarHigh = 0x8080808080808080
)

// quoteOrBackslash returns x with the high bit set in its lowest byte that
// is '"' or '\\', and possibly in higher bytes too (the borrow in the
// zero-byte test can mark the byte above a match), or 0 when it has none:
// only its lowest set bit is to be trusted.
func quoteOrBackslash(x uint64) uint64 {
	q := x ^ ('"' * swarLow)
	s := x ^ ('\\' * swarLow)
	return ((q-swarLow)&^q | (s-swarLow)&^s) & swarHigh
}

// valueEnd returns the index just past the value starting at b[i].
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = stringEnd(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return len(b)
	default:
		for ; i < len(b); i++ {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
		}
		return len(b)
	}
}

// nestingDepth returns the deepest nesting of objects and arrays in b,
// giving up (false) once it passes limit, and whether b has whitespace
// outside strings (so needs compacting). It runs before a recursive
// parser (json.Unmarshal) sees a body, so that a pathological one never
// reaches it. json.Valid (goccy/go-json's) skips iteratively and stops at
// 10,000 levels, so Decode asks it first about an array body, whose depth
// the scans of its elements then find (see Decode).
func nestingDepth(b []byte, limit int) (deepest int, ok bool) {
	deepest, _, ok = structure(b, limit)
	return deepest, ok
}

func structure(b []byte, limit int) (deepest int, spaced, ok bool) {
	depth := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			i = stringEnd(b, i) - 1
		case '{', '[':
			depth++
			if depth > deepest {
				deepest = depth
				if deepest > limit {
					return deepest, spaced, false
				}
			}
		case '}', ']':
			depth--
		case ' ', '\t', '\n', '\r':
			spaced = true
		}
	}
	return deepest, spaced, true
}

// eventScan is what scanEvent finds in one pass over an event's text.
type eventScan struct {
	end     int  // just past the value, when not scanning the whole text
	deepest int  // as structure finds it
	spaced  bool // as structure finds it
	ok      bool // not nested deeper than the limit
}

// scanEvent walks b from i once and finds what structure, valueEnd and
// forEachMember would find in three: it appends to members each top-level
// member of the object at b[i] (key without quotes, escapes not decoded;
// value raw, without the whitespace around it; both alias b), and notes
// the deepest nesting (giving up past limit) and whether there is
// whitespace outside strings. With whole, it goes on to the end of b, so
// that deepest, spaced and ok are exactly structure(b[i:], limit) for any
// bytes; the members are only meaningful when b[i:] is a valid JSON object.
// Without whole, b[i] must be the '{' or '[' of a value in valid JSON, and
// the scan stops just past it (end), unless the value is too deep.
func scanEvent(b []byte, i, limit int, whole bool, members []rawMember) (eventScan, []rawMember) {
	var sc eventScan
	depth := 0
	inObj, haveKey := false, false
	var key []byte
	valStart := 0
	for ; i < len(b); i++ {
		switch c := b[i]; c {
		case '"':
			e := stringEnd(b, i)
			if depth == 1 && inObj && !haveKey {
				key, haveKey = b[i+1:max(i+1, e-1)], true // unclosed: e-1 == i
			}
			i = e - 1
		case ':':
			if depth == 1 {
				valStart = i + 1
			}
		case ',':
			if depth == 1 && haveKey {
				members = append(members, rawMember{key, trimSpace(b[valStart:i])})
				haveKey = false
			}
		case '{', '[':
			depth++
			if depth > sc.deepest {
				sc.deepest = depth
				if sc.deepest > limit {
					return sc, members
				}
			}
			if depth == 1 {
				inObj = c == '{'
			}
		case '}', ']':
			if depth == 1 && haveKey {
				members = append(members, rawMember{key, trimSpace(b[valStart:i])})
				haveKey = false
			}
			depth--
			if depth == 0 && !whole {
				sc.end, sc.ok = i+1, true
				return sc, members
			}
		case ' ', '\t', '\n', '\r':
			sc.spaced = true
		}
	}
	sc.end, sc.ok = len(b), true
	return sc, members
}

// trimSpace returns b without JSON whitespace at either end.
func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// forEachMember calls fn with the raw key (without quotes, escapes not
// decoded) and raw value of each member of the valid JSON object b. Both
// alias b.
func forEachMember(b []byte, fn func(key, val []byte) error) error {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return errNotObject
	}
	i = skipSpace(b, i+1)
	for i < len(b) && b[i] != '}' {
		ke := stringEnd(b, i)
		key := b[i+1 : ke-1]
		i = skipSpace(b, ke)
		i = skipSpace(b, i+1) // ':'
		ve := valueEnd(b, i)
		if err := fn(key, b[i:ve]); err != nil {
			return err
		}
		i = skipSpace(b, ve)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	return nil
}

// forEachElement calls fn with the raw bytes and index of each element of
// the valid JSON array b.
func forEachElement(b []byte, fn func(i int, elem []byte) error) error {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return errors.New("not a JSON array")
	}
	i = skipSpace(b, i+1)
	for n := 0; i < len(b) && b[i] != ']'; n++ {
		ve := valueEnd(b, i)
		if err := fn(n, b[i:ve]); err != nil {
			return err
		}
		i = skipSpace(b, ve)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	return nil
}

// appendCompact appends the valid JSON b without insignificant whitespace.
func appendCompact(dst, b []byte) []byte {
	start := 0
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			i = stringEnd(b, i) - 1
		case isSpace(c):
			dst = append(dst, b[start:i]...)
			start = i + 1
		}
	}
	return append(dst, b[start:]...)
}

// jsonString returns the value of the JSON string raw (with its quotes),
// or ok false when raw is not a string. Without escapes it aliases raw.
func jsonString(raw []byte) (s []byte, ok bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return nil, false
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') >= 0 {
		var out string
		if err := json.Unmarshal(raw, &out); err != nil {
			return nil, false
		}
		return []byte(out), true
	}
	return inner, true
}

// appendQuoted appends s as a JSON string.
func appendQuoted(dst []byte, s string) []byte {
	if !needsEscape(s) {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	q, _ := json.Marshal(s)
	return append(dst, q...)
}

func needsEscape(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			return true
		}
	}
	return false
}

// kindOf names the JSON type of a raw value for error messages.
func kindOf(raw []byte) string { return apierr.KindOf(raw) }

// validJSON is json.Valid, with any panic inside the parser (goccy/go-json
// has had them on malformed input) taken as "not valid" rather than
// failing the whole request.
func validJSON(b []byte) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return json.Valid(b)
}
