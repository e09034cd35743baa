package schema

import (
	"bytes"
	"strconv"

	"github.com/goccy/go-json"
)

// docOrder returns where in doc (a JSON text) the value at the path of
// tokens starts or, when the path leads nowhere (a missing property), where
// its deepest existing ancestor starts; and how many of the tokens exist.
// It orders violations as the event's text does, so that "the first
// violation" is the first in the event.
func docOrder(doc []byte, tokens []string) (offset int64, depth int) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	type frame struct {
		object  bool
		wantKey bool
		key     string
		index   int
	}
	var stack []frame
	// matches reports whether the current path is a prefix of tokens.
	matches := func() bool {
		if len(stack) > len(tokens) {
			return false
		}
		for i, f := range stack {
			tok := f.key
			if !f.object {
				tok = strconv.Itoa(f.index)
			}
			if tok != tokens[i] {
				return false
			}
		}
		return true
	}
	for {
		start := dec.InputOffset()
		t, err := dec.Token()
		if err != nil {
			return offset, depth
		}
		if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].wantKey {
			if d, ok := t.(json.Delim); ok && d == '}' {
				stack = stack[:n-1]
				continue
			}
			stack[n-1].key, _ = t.(string)
			stack[n-1].wantKey = false
			continue
		}
		if d, ok := t.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			if n := len(stack); n > 0 {
				if stack[n-1].object {
					stack[n-1].wantKey = true
				} else {
					stack[n-1].index++
				}
			}
			continue
		}
		// A value begins at start (after the separator before it).
		if matches() && len(stack) >= depth {
			offset, depth = start, len(stack)
			if depth == len(tokens) {
				return offset, depth
			}
		}
		if d, ok := t.(json.Delim); ok {
			stack = append(stack, frame{object: d == '{', wantKey: d == '{'})
			continue
		}
		if n := len(stack); n > 0 {
			if stack[n-1].object {
				stack[n-1].wantKey = true
			} else {
				stack[n-1].index++
			}
		}
	}
}
