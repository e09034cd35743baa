package profile

import (
	"bytes"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/goccy/go-json"

	"trove/apierr"
)

// Limits of SPEC section 4.
const (
	maxIdentityLen = 255
	maxValueBytes  = 32 << 10 // one attribute value, as sent
	maxDepth       = 4        // an attribute value: no deep structures
)

// Alias is one user alias.
type Alias struct {
	Label string `json:"alias_label"`
	ID    string `json:"alias_id"`
}

// opKind is what a field of a profile object does.
type opKind uint8

const (
	opSet opKind = iota
	opUnset
	opInc
	opAdd
	opRemove
)

// op is one validated field operation.
type op struct {
	field string
	kind  opKind
	typ   string          // for opSet on a custom attribute: its type
	raw   json.RawMessage // the value, the increment, or the array to add or remove
}

// update is one validated profile object of a request.
type update struct {
	index   int
	userID  string
	pyzeID  string // canonical lowercase UUID, or ""
	aliases []Alias
	ops     []op
}

// builtins are the Pyze profile fields, each with its check.
var builtins = map[string]func(s string) string{
	"first_name":        nil,
	"last_name":         nil,
	"email_id":          checkEmail,
	"gender":            checkGender,
	"date_of_birth":     checkBirthDate,
	"date_of_first_use": checkTimestamp,
	"date_of_last_use":  checkTimestamp,
	"phone":             nil,
	"city":              nil,
	"country":           nil,
	"language":          nil,
	"time_zone":         nil,
}

func checkEmail(s string) string {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return "must be an email address such as jane.doe@example.com"
	}
	return ""
}

func checkGender(s string) string {
	switch s {
	case "M", "F", "O", "U":
		return ""
	}
	return `must be one of "M", "F", "O", "U"`
}

func checkBirthDate(s string) string {
	if _, err := time.Parse("2006-01-02", s); err != nil {
		return "must be a date as YYYY-MM-DD, such as 1994-07-06"
	}
	return ""
}

func checkTimestamp(s string) string {
	if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
		return "must be an ISO-8601 time with an offset or Z, such as 2016-04-12T17:27:20+00:00"
	}
	return ""
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// request is the body of POST /users/profile.
type request struct {
	AppKey   *string           `json:"appKey"`
	Profiles []json.RawMessage `json:"user_profiles"`
}

// decodeRequest parses and validates a whole request body.
func decodeRequest(body []byte, maxProfiles, maxFields int) (appKey string, ups []update, err error) {
	if depth(body) > 64 {
		return "", nil, invalid(-1, "", "the body is nested too deeply")
	}
	var req request
	if err := json.Unmarshal(body, &req); err != nil {
		return "", nil, invalid(-1, "", "the body is not valid JSON: "+where(body, err))
	}
	if k := duplicateKey(body, 0); k == "appKey" || k == "user_profiles" {
		return "", nil, invalid(-1, k, k+" appears twice")
	}
	if req.AppKey != nil {
		appKey = *req.AppKey
	}
	if req.Profiles == nil {
		return "", nil, invalid(-1, "user_profiles", "user_profiles is required: an array of profile objects")
	}
	if len(req.Profiles) == 0 {
		return "", nil, invalid(-1, "user_profiles", "user_profiles is empty")
	}
	if len(req.Profiles) > maxProfiles {
		return "", nil, invalid(-1, "user_profiles", fmt.Sprintf("user_profiles has %d profiles, over the limit of %d", len(req.Profiles), maxProfiles))
	}
	ups = make([]update, len(req.Profiles))
	for i, raw := range req.Profiles {
		if err := decodeProfile(i, raw, maxFields, &ups[i]); err != nil {
			return "", nil, err
		}
	}
	return appKey, ups, nil
}

// where says where JSON parsing failed, as line and column.
func where(body []byte, err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) && se.Offset > 0 && int(se.Offset) <= len(body) {
		// Offset counts the bytes read, the offending one included.
		pos := int(se.Offset) - 1
		line := 1 + bytes.Count(body[:pos], []byte("\n"))
		col := 1 + utf8.RuneCount(body[bytes.LastIndexByte(body[:pos], '\n')+1:pos])
		return fmt.Sprintf("%s (line %d, column %d)", se.Error(), line, col)
	}
	return err.Error()
}

// depth returns the deepest nesting of objects and arrays in b, before any
// recursive parser sees it.
func depth(b []byte) int {
	d, deepest := 0, 0
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case inString:
			if c == '\\' {
				i++
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			d++
			deepest = max(deepest, d)
		case c == '}' || c == ']':
			d--
		}
	}
	return deepest
}

func identityString(i int, field string, raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", invalid(i, field, field+" must be a string, got "+kindOf(raw))
	}
	if s == "" || utf8.RuneCountInString(s) > maxIdentityLen {
		return "", invalid(i, field, fmt.Sprintf("%s must be 1 to %d characters", field, maxIdentityLen))
	}
	return s, nil
}

// decodeProfile decodes raw, user_profiles[i], into u: its identity and
// its operations, one per attribute field (at most maxFields), by name.
func decodeProfile(i int, raw json.RawMessage, maxFields int, u *update) error {
	u.index = i
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return invalid(i, "", fmt.Sprintf("user_profiles[%d] must be an object, got %s", i, kindOf(raw)))
	}
	// A map keeps the last of a duplicated key; a reader of the stored
	// request could keep the first. Either way it is ambiguous: refused.
	if k := duplicateKey(raw, len(fields)); k != "" {
		return invalid(i, k, k+" appears twice")
	}
	for _, k := range []string{"userId", "customer_id"} {
		v, ok := fields[k]
		if !ok || isNull(v) {
			continue
		}
		s, err := identityString(i, k, v)
		if err != nil {
			return err
		}
		if u.userID != "" && u.userID != s {
			return invalid(i, k, "userId and customer_id name the same key and must be equal")
		}
		u.userID = s
	}
	if v, ok := fields["pyze_id"]; ok && !isNull(v) {
		s, err := identityString(i, "pyze_id", v)
		if err != nil {
			return err
		}
		if !uuidRE.MatchString(s) {
			return invalid(i, "pyze_id", "pyze_id must be a UUID such as ca1ab028-185d-4833-a3af-5b5d46b62771")
		}
		u.pyzeID = string(bytes.ToLower([]byte(s)))
	}
	if v, ok := fields["user_alias"]; ok && !isNull(v) {
		many, err := decodeAliases(i, v)
		if err != nil {
			return err
		}
		u.aliases = many
	}
	if u.userID == "" && u.pyzeID == "" && len(u.aliases) == 0 {
		return invalid(i, "userId", "a profile needs an identity: userId (or customer_id), pyze_id or user_alias")
	}
	names := make([]string, 0, len(fields))
	for k := range fields {
		switch k {
		case "userId", "customer_id", "pyze_id", "user_alias", "appKey":
			continue
		}
		names = append(names, k)
	}
	if len(names) > maxFields {
		return invalid(i, "", fmt.Sprintf("user_profiles[%d] has %d attribute fields, over the limit of %d (identity keys are not counted)", i, len(names), maxFields))
	}
	slices.Sort(names)
	for _, k := range names {
		o, err := decodeOp(i, k, fields[k])
		if err != nil {
			return err
		}
		u.ops = append(u.ops, o)
	}
	return nil
}

// decodeAliases decodes v, the user_alias of user_profiles[i]: one alias
// object or an array of them, each label and id 1 to maxIdentityLen
// characters.
func decodeAliases(i int, v json.RawMessage) ([]Alias, error) {
	var one Alias
	var many []Alias
	switch {
	case len(v) > 0 && v[0] == '{':
		if err := json.Unmarshal(v, &one); err != nil {
			return nil, invalid(i, "user_alias", "user_alias must be {\"alias_label\":…,\"alias_id\":…} or an array of them")
		}
		many = []Alias{one}
	case len(v) > 0 && v[0] == '[':
		if err := json.Unmarshal(v, &many); err != nil {
			return nil, invalid(i, "user_alias", "user_alias must be {\"alias_label\":…,\"alias_id\":…} or an array of them")
		}
	default:
		return nil, invalid(i, "user_alias", "user_alias must be an object or an array of objects, got "+kindOf(v))
	}
	for _, a := range many {
		if a.Label == "" || a.ID == "" || utf8.RuneCountInString(a.Label) > maxIdentityLen || utf8.RuneCountInString(a.ID) > maxIdentityLen {
			return nil, invalid(i, "user_alias", fmt.Sprintf("each user_alias needs alias_label and alias_id, 1 to %d characters each", maxIdentityLen))
		}
	}
	return many, nil
}

// duplicateKey returns the first top-level key of the valid JSON object
// obj that appears twice (compared unescaped), or "". When the object is
// known to have distinct keys, it has that many of them and a count of
// its keys is enough to find none.
func duplicateKey(obj []byte, distinct int) string {
	if distinct > 0 {
		n := 0
		topKeys(obj, func([]byte) { n++ })
		if n == distinct {
			return ""
		}
	}
	seen := map[string]bool{}
	dup := ""
	topKeys(obj, func(k []byte) {
		s := string(k)
		if bytes.IndexByte(k, '\\') >= 0 {
			var u string
			if json.Unmarshal(append(append([]byte{'"'}, k...), '"'), &u) == nil {
				s = u
			}
		}
		if seen[s] && dup == "" {
			dup = s
		}
		seen[s] = true
	})
	return dup
}

// topKeys calls fn with each key (without quotes, escapes not decoded) of
// the valid JSON object b, in one pass.
func topKeys(b []byte, fn func(key []byte)) {
	d := 0
	expectKey, inObject := false, false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case '"':
			start := i + 1
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
			if expectKey && i <= len(b) {
				fn(b[start:min(i, len(b))])
			}
			expectKey = false
		case '{', '[':
			d++
			if d == 1 {
				inObject = c == '{'
			}
			expectKey = d == 1 && inObject
		case '}', ']':
			d--
		case ',':
			expectKey = d == 1 && inObject
		}
	}
}

func isNull(v json.RawMessage) bool { return string(bytes.TrimSpace(v)) == "null" }

// decodeOp validates one attribute field.
func decodeOp(i int, field string, v json.RawMessage) (op, error) {
	v = json.RawMessage(bytes.TrimSpace(v))
	if field == "" || utf8.RuneCountInString(field) > maxIdentityLen {
		return op{}, invalid(i, field, fmt.Sprintf("attribute names must be 1 to %d characters", maxIdentityLen))
	}
	if len(v) > maxValueBytes {
		return op{}, invalid(i, field, fmt.Sprintf("%s is %d bytes, over the limit of %d for one value", field, len(v), maxValueBytes))
	}
	if isNull(v) {
		return op{field: field, kind: opUnset}, nil
	}
	if check, ok := builtins[field]; ok {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return op{}, invalid(i, field, field+" must be a string, got "+kindOf(v))
		}
		if check != nil {
			if msg := check(s); msg != "" {
				return op{}, invalid(i, field, field+" "+msg)
			}
		}
		return op{field: field, kind: opSet, raw: v}, nil
	}
	switch v[0] {
	case '{':
		var o map[string]json.RawMessage
		if err := json.Unmarshal(v, &o); err != nil || len(o) != 1 {
			return op{}, invalid(i, field, field+`: an object must be one operation: {"inc":N}, {"add":[…]} or {"remove":[…]}`)
		}
		for name, arg := range o {
			arg = json.RawMessage(bytes.TrimSpace(arg))
			switch name {
			case "inc":
				if numberType(arg) == "" {
					return op{}, invalid(i, field, field+`: "inc" needs a number, got `+kindOf(arg))
				}
				return op{field: field, kind: opInc, raw: arg}, nil
			case "add", "remove":
				if err := checkScalarArray(arg); err != "" {
					return op{}, invalid(i, field, field+`: "`+name+`" needs `+err)
				}
				k := opAdd
				if name == "remove" {
					k = opRemove
				}
				return op{field: field, kind: k, raw: arg}, nil
			}
			return op{}, invalid(i, field, fmt.Sprintf("%s: unknown operation %q: use inc, add or remove, or null to remove the attribute", field, name))
		}
	case '[':
		if err := checkScalarArray(v); err != "" {
			return op{}, invalid(i, field, field+" must be "+err)
		}
		return op{field: field, kind: opSet, typ: "array", raw: v}, nil
	case '"':
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return op{}, invalid(i, field, field+" is not a valid string")
		}
		typ := "string"
		if _, err := time.Parse(time.RFC3339Nano, s); err == nil {
			typ = "date"
		}
		return op{field: field, kind: opSet, typ: typ, raw: v}, nil
	case 't', 'f':
		return op{field: field, kind: opSet, typ: "boolean", raw: v}, nil
	}
	typ := numberType(v)
	if typ == "" {
		return op{}, invalid(i, field, field+" has a value of unknown type")
	}
	return op{field: field, kind: opSet, typ: typ, raw: v}, nil
}

// numberType returns "integer" or "float" for a JSON number, "" otherwise.
func numberType(v json.RawMessage) string {
	if len(v) == 0 || !(v[0] == '-' || (v[0] >= '0' && v[0] <= '9')) {
		return ""
	}
	if _, err := strconv.ParseFloat(string(v), 64); err != nil {
		var n json.Number
		if json.Unmarshal(v, &n) != nil {
			return ""
		}
	}
	if bytes.ContainsAny(v, ".eE") {
		return "float"
	}
	return "integer"
}

// checkScalarArray says what is wrong with v as an array of strings,
// numbers and booleans, or "".
func checkScalarArray(v json.RawMessage) string {
	var elems []json.RawMessage
	if len(v) == 0 || v[0] != '[' || json.Unmarshal(v, &elems) != nil {
		return "an array of strings, numbers or booleans, got " + kindOf(v)
	}
	for _, e := range elems {
		switch e = json.RawMessage(bytes.TrimSpace(e)); {
		case len(e) == 0:
		case e[0] == '{' || e[0] == '[':
			return "an array of strings, numbers or booleans, not of objects or arrays"
		case e[0] == 'n':
			return "an array without nulls"
		}
	}
	return ""
}

// kindOf names the JSON type of a raw value for error messages.
func kindOf(raw []byte) string { return apierr.KindOf(raw) }
