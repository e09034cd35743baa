package profile

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/goccy/go-json"
)

// Profile is a stored profile: what GET returns and the export streams.
// Attributes keep the JSON value as sent (numbers are never re-encoded,
// except the result of an inc), and AttributeTypes says what each is:
// boolean, string, integer, float, date or array.
type Profile struct {
	PyzeID         string                     `json:"pyze_id"`
	UserID         string                     `json:"userId,omitempty"`
	Aliases        []Alias                    `json:"user_alias,omitempty"`
	FirstName      string                     `json:"first_name,omitempty"`
	LastName       string                     `json:"last_name,omitempty"`
	EmailID        string                     `json:"email_id,omitempty"`
	Gender         string                     `json:"gender,omitempty"`
	DateOfBirth    string                     `json:"date_of_birth,omitempty"`
	DateOfFirstUse string                     `json:"date_of_first_use,omitempty"`
	DateOfLastUse  string                     `json:"date_of_last_use,omitempty"`
	Phone          string                     `json:"phone,omitempty"`
	City           string                     `json:"city,omitempty"`
	Country        string                     `json:"country,omitempty"`
	Language       string                     `json:"language,omitempty"`
	TimeZone       string                     `json:"time_zone,omitempty"`
	Attributes     map[string]json.RawMessage `json:"attributes,omitempty"`
	AttributeTypes map[string]string          `json:"attribute_types,omitempty"`
	CreatedAt      string                     `json:"created_at"`
	UpdatedAt      string                     `json:"updated_at"`
}

// builtin returns the address of a built-in field.
func (p *Profile) builtin(name string) *string {
	switch name {
	case "first_name":
		return &p.FirstName
	case "last_name":
		return &p.LastName
	case "email_id":
		return &p.EmailID
	case "gender":
		return &p.Gender
	case "date_of_birth":
		return &p.DateOfBirth
	case "date_of_first_use":
		return &p.DateOfFirstUse
	case "date_of_last_use":
		return &p.DateOfLastUse
	case "phone":
		return &p.Phone
	case "city":
		return &p.City
	case "country":
		return &p.Country
	case "language":
		return &p.Language
	case "time_zone":
		return &p.TimeZone
	}
	return nil
}

func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

// apply applies the operations of u to p, in order.
func apply(p *Profile, u *update) error {
	for _, o := range u.ops {
		if err := applyOp(p, o); err != nil {
			return invalid(u.index, o.field, err.Error())
		}
	}
	return nil
}

// applyOp applies one operation to p.
func applyOp(p *Profile, o op) error {
	if b := p.builtin(o.field); b != nil {
		return applyBuiltin(b, o)
	}
	if p.Attributes == nil {
		p.Attributes = map[string]json.RawMessage{}
		p.AttributeTypes = map[string]string{}
	}
	cur, has := p.Attributes[o.field]
	curType := p.AttributeTypes[o.field]
	switch o.kind {
	case opUnset:
		delete(p.Attributes, o.field)
		delete(p.AttributeTypes, o.field)
	case opSet:
		p.Attributes[o.field] = bytes.Clone(o.raw)
		p.AttributeTypes[o.field] = o.typ
	case opInc:
		if !has {
			cur, curType = json.RawMessage("0"), "integer"
		}
		if curType != "integer" && curType != "float" {
			return fmt.Errorf("%s is a %s, not a number: inc needs a number", o.field, curType)
		}
		sum, typ, err := add(cur, o.raw)
		if err != nil {
			return fmt.Errorf("%s: %v", o.field, err)
		}
		p.Attributes[o.field], p.AttributeTypes[o.field] = sum, typ
	case opAdd, opRemove:
		return applyArrayOp(p, o, cur, curType, has)
	}
	return nil
}

// applyBuiltin applies o to b, a built-in string field: only set and
// unset apply to it.
func applyBuiltin(b *string, o op) error {
	switch o.kind {
	case opUnset:
		*b = ""
	case opSet:
		var s string
		if err := json.Unmarshal(o.raw, &s); err != nil {
			return fmt.Errorf("%s must be a string", o.field)
		}
		*b = s
	default:
		return fmt.Errorf("%s is a built-in string field: inc, add and remove do not apply", o.field)
	}
	return nil
}

// applyArrayOp applies an add or a remove to the attribute o.field of p,
// whose value is cur, of type curType, if has.
func applyArrayOp(p *Profile, o op, cur json.RawMessage, curType string, has bool) error {
	var have []json.Number
	if has {
		if curType != "array" {
			return fmt.Errorf("%s is a %s, not an array: add and remove need an array", o.field, curType)
		}
		if err := unmarshalNumbers(cur, &have); err != nil {
			return fmt.Errorf("%s: stored array is unreadable", o.field)
		}
	}
	var args []json.Number
	if err := unmarshalNumbers(o.raw, &args); err != nil {
		return fmt.Errorf("%s: bad array", o.field)
	}
	// Sets, not scans of slices: comparing each element with every
	// other one made a request of large arrays quadratic.
	if o.kind == opAdd {
		seen := setOf(rawElems(have))
		for i, a := range rawElems(args) {
			if _, ok := seen[a]; !ok {
				have = append(have, args[i])
				seen[a] = struct{}{}
			}
		}
	} else {
		drop := setOf(rawElems(args))
		kept := have[:0]
		for i, h := range rawElems(have) {
			if _, ok := drop[h]; !ok {
				kept = append(kept, have[i])
			}
		}
		have = kept
		if !has {
			return nil
		}
	}
	// The elements are JSON text as sent (strings quoted), which
	// json.Marshal refuses as json.Number: join them as they are.
	out := []byte{'['}
	for i, h := range have {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, h...)
	}
	out = append(out, ']')
	p.Attributes[o.field], p.AttributeTypes[o.field] = out, "array"
	return nil
}

// unmarshalNumbers decodes an array of scalars, keeping numbers' text.
func unmarshalNumbers(raw []byte, dst *[]json.Number) error {
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return err
	}
	*dst = (*dst)[:0]
	for _, e := range elems {
		*dst = append(*dst, json.Number(bytes.TrimSpace(e)))
	}
	return nil
}

// rawElems returns each element's canonical text, for comparisons: strings
// decoded and re-quoted, so that "a" and "\u0061" are one value.
func rawElems(xs []json.Number) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		s := string(x)
		if len(s) > 0 && s[0] == '"' {
			var v string
			if json.Unmarshal([]byte(s), &v) == nil {
				s = strconv.Quote(v)
			}
		}
		out[i] = s
	}
	return out
}

// setOf returns the set of xs.
func setOf(xs []string) map[string]struct{} {
	set := make(map[string]struct{}, len(xs))
	for _, x := range xs {
		set[x] = struct{}{}
	}
	return set
}

// add returns a+b: integer when both are integers and the sum fits in
// int64, else float.
func add(a, b json.RawMessage) (json.RawMessage, string, error) {
	if numberType(a) == "integer" && numberType(b) == "integer" {
		x, errA := strconv.ParseInt(string(a), 10, 64)
		y, errB := strconv.ParseInt(string(b), 10, 64)
		if errA == nil && errB == nil {
			if s := x + y; (y >= 0) == (s >= x) {
				return json.RawMessage(strconv.FormatInt(s, 10)), "integer", nil
			}
		}
	}
	x, errA := strconv.ParseFloat(string(a), 64)
	y, errB := strconv.ParseFloat(string(b), 64)
	if errA != nil || errB != nil {
		return nil, "", fmt.Errorf("cannot add %s and %s", a, b)
	}
	s := x + y
	if math.IsInf(s, 0) || math.IsNaN(s) {
		return nil, "", fmt.Errorf("the sum is out of range")
	}
	out := strconv.FormatFloat(s, 'g', -1, 64)
	if !bytes.ContainsAny([]byte(out), ".eE") {
		out += ".0"
	}
	return json.RawMessage(out), "float", nil
}
