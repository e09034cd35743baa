package bench

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-json"
)

// profileKind is what a generated profile does.
type profileKind int

const (
	kindCreate profileKind = iota // a new user, puser-N with N >= ProfilePopulation
	kindUpdate                    // an existing user, puser-N with N < ProfilePopulation
	kindAlias                     // known by a user_alias only
)

// checkedProfile is what profileProblem learns about a valid profile.
type checkedProfile struct {
	kind   profileKind
	userID string // "" for alias-only profiles
	user   uint64 // the N of puser-N
	fields int    // attribute fields, identity keys not counted
}

var (
	puserRE     = regexp.MustCompile(`^puser-(0|[1-9][0-9]*)$`)
	emailRE     = regexp.MustCompile(`^[a-z]+\.[a-z]+[0-9]+@[a-z]+\.[a-z]+$`)
	builtinKeys = map[string]bool{
		"first_name": true, "last_name": true, "email_id": true, "gender": true, "date_of_birth": true,
		"date_of_first_use": true, "date_of_last_use": true, "phone": true, "city": true, "country": true,
		"language": true, "time_zone": true,
	}
)

// profileProblem checks one profile object against SPEC.md section 4 and the
// generator's promises. It returns what it learnt, or what is wrong ("" when
// nothing is). It must not call t.Fatal, since fake servers call it too.
func profileProblem(raw []byte) (checkedProfile, string) {
	var p checkedProfile
	if !json.Valid(raw) {
		return p, fmt.Sprintf("not valid JSON: %s", raw)
	}
	keys, err := jsonObjectKeys(raw)
	if err != nil {
		return p, fmt.Sprintf("%v: %s", err, raw)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return p, fmt.Sprintf("cannot decode: %v: %s", err, raw)
	}
	if len(m) != len(keys) {
		return p, fmt.Sprintf("a key appears twice: %s", raw)
	}
	hasAlias := false
	for _, k := range keys {
		v := m[k]
		var problem string
		switch k {
		case "userId", "customer_id":
			var s string
			if json.Unmarshal(v, &s) != nil || !puserRE.MatchString(s) || p.userID != "" {
				problem = "want one puser-N"
				break
			}
			p.userID = s
			p.user, _ = strconv.ParseUint(strings.TrimPrefix(s, "puser-"), 10, 64)
		case "pyze_id":
			problem = "the generator sends no pyze_id"
		case "user_alias":
			var a struct {
				Label string `json:"alias_label"`
				ID    string `json:"alias_id"`
			}
			if json.Unmarshal(v, &a) != nil || a.Label == "" || a.ID == "" {
				problem = "want {alias_label, alias_id}"
			}
			hasAlias = true
		case "gender":
			if s := string(v); s != `"M"` && s != `"F"` && s != `"O"` && s != `"U"` {
				problem = "want M, F, O or U"
			}
		case "date_of_birth":
			if !isStringParsing(v, time.DateOnly) {
				problem = "want YYYY-MM-DD"
			}
		case "date_of_first_use", "date_of_last_use", "custom-signup_date":
			if !isStringParsing(v, time.RFC3339Nano) {
				problem = "want RFC 3339"
			}
		case "email_id":
			var s string
			if json.Unmarshal(v, &s) != nil || !emailRE.MatchString(s) {
				problem = "want an email address"
			}
		default:
			if builtinKeys[k] {
				var s string
				if json.Unmarshal(v, &s) != nil || s == "" {
					problem = "want a non-empty string"
				}
			} else if !strings.HasPrefix(k, "custom-") {
				problem = "want a built-in or a custom- key"
			} else {
				problem = customValueProblem(v)
			}
		}
		if problem != "" {
			return p, fmt.Sprintf("%s = %s: %s, in %s", k, v, problem, raw)
		}
		if k != "userId" && k != "customer_id" && k != "user_alias" {
			p.fields++
		}
	}
	switch {
	case p.userID == "" && !hasAlias:
		return p, fmt.Sprintf("no identity: %s", raw)
	case p.fields < 1 || p.fields > MaxProfileFields:
		return p, fmt.Sprintf("%d attribute fields; want 1-%d: %s", p.fields, MaxProfileFields, raw)
	case p.userID == "":
		p.kind = kindAlias
	case p.user >= ProfilePopulation:
		p.kind = kindCreate
		if m["first_name"] == nil || m["email_id"] == nil || m["custom-tags"] == nil || m["custom-signup_date"] == nil {
			return p, fmt.Sprintf("a created user lacks a name, email, tags or signup date: %s", raw)
		}
	default:
		p.kind = kindUpdate
	}
	return p, ""
}

// customValueProblem checks a custom attribute's value: a scalar, an array
// of scalars, null, or one of the operations {"inc":N}, {"add":[…]},
// {"remove":[…]}.
func customValueProblem(v json.RawMessage) string {
	var x any
	if err := json.Unmarshal(v, &x); err != nil {
		return err.Error()
	}
	switch x := x.(type) {
	case nil, bool, string, float64:
		return ""
	case []any:
		return scalarsProblem(x)
	case map[string]any:
		if len(x) != 1 {
			return "an operation has one key"
		}
		for op, arg := range x {
			switch op {
			case "inc":
				if _, ok := arg.(float64); !ok {
					return "inc takes a number"
				}
			case "add", "remove":
				a, ok := arg.([]any)
				if !ok || len(a) == 0 {
					return op + " takes a non-empty array"
				}
				return scalarsProblem(a)
			default:
				return "unknown operation " + op
			}
		}
	}
	return ""
}

func scalarsProblem(a []any) string {
	for _, e := range a {
		switch e.(type) {
		case bool, string, float64:
		default:
			return "arrays hold scalars only"
		}
	}
	return ""
}

// isStringParsing reports whether v is a JSON string that parses with layout.
func isStringParsing(v json.RawMessage, layout string) bool {
	var s string
	if json.Unmarshal(v, &s) != nil {
		return false
	}
	_, err := time.Parse(layout, s)
	return err == nil
}

// jsonObjectKeys returns the member names of the JSON object raw, in order
// and with repeats.
func jsonObjectKeys(raw []byte) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("not an object (%v)", err)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		keys = append(keys, tok.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// testProfileRequest is the body of POST /v1/users/profile.
type testProfileRequest struct {
	AppKey   *string           `json:"appKey"`
	Profiles []json.RawMessage `json:"user_profiles"`
}

func TestAppendProfile(t *testing.T) {
	tests := []struct {
		name string
		seed int64
	}{
		{name: "seed 1", seed: 1},
		{name: "seed 2", seed: 2},
		{name: "negative seed", seed: -5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewProfileGenerator(tt.seed)
			var buf []byte
			for range 5000 {
				buf = g.AppendProfile(buf[:0])
				if _, problem := profileProblem(buf); problem != "" {
					t.Fatal(problem)
				}
			}
		})
	}
}

func TestProfileGeneratorDeterministic(t *testing.T) {
	checkSeeded(t, func(seed int64) []byte {
		return NewProfileGenerator(seed).AppendRequest(nil, DefaultAppKey, 500)
	})
	t.Run("reseed repeats a request", func(t *testing.T) {
		g := NewProfileGenerator(1)
		g.reseedRequest(42, 10)
		a := g.AppendRequest(nil, DefaultAppKey, 10)
		g.AppendRequest(nil, DefaultAppKey, 10) // move on, as a worker would
		g.reseedRequest(42, 10)
		if b := g.AppendRequest(nil, DefaultAppKey, 10); !bytes.Equal(a, b) {
			t.Errorf("reseedRequest(42) gave different profiles the second time")
		}
	})
}

func TestAppendRequest(t *testing.T) {
	tests := []struct {
		name   string
		appKey string
		n      int
	}{
		{name: "empty", appKey: DefaultAppKey, n: 0},
		{name: "one", appKey: DefaultAppKey, n: 1},
		{name: "W3 batch", appKey: DefaultAppKey, n: 100},
		{name: "API maximum", appKey: DefaultAppKey, n: 1000},
		{name: "app key needing escapes", appKey: "a\"b\\c\n\x01ü", n: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := NewProfileGenerator(3).AppendRequest([]byte("prefix"), tt.appKey, tt.n)
			body, ok := bytes.CutPrefix(body, []byte("prefix"))
			if !ok {
				t.Fatalf("AppendRequest did not append to dst")
			}
			var req testProfileRequest
			if err := json.Unmarshal(body, &req); err != nil {
				t.Fatalf("body is not valid JSON: %v\n%s", err, body)
			}
			if req.AppKey == nil || *req.AppKey != tt.appKey {
				t.Errorf("appKey = %v; want %q", req.AppKey, tt.appKey)
			}
			if len(req.Profiles) != tt.n {
				t.Fatalf("got %d profiles; want %d", len(req.Profiles), tt.n)
			}
			for _, p := range req.Profiles {
				if _, problem := profileProblem(p); problem != "" {
					t.Fatal(problem)
				}
			}
		})
	}
}

func TestProfileMix(t *testing.T) {
	const n = 50_000
	g := NewProfileGenerator(1)
	var kinds [3]int
	updated := map[uint64]int{}
	var created []uint64
	total, maxFields := 0, 0
	var buf []byte
	for range n {
		buf = g.AppendProfile(buf[:0])
		total += len(buf)
		p, problem := profileProblem(buf)
		if problem != "" {
			t.Fatal(problem)
		}
		kinds[p.kind]++
		maxFields = max(maxFields, p.fields)
		switch p.kind {
		case kindCreate:
			created = append(created, p.user)
		case kindUpdate:
			updated[p.user]++
		}
	}
	top := 0
	for _, c := range updated {
		top = max(top, c)
	}
	avg := float64(total) / n
	t.Logf("average profile %.0f bytes; %d creates, %d updates of %d distinct users (top %d), %d alias-only; at most %d fields",
		avg, kinds[kindCreate], kinds[kindUpdate], len(updated), top, kinds[kindAlias], maxFields)
	checks := []struct {
		name string
		ok   bool
		got  string
		want string
	}{
		{"creates", kinds[kindCreate] > n*18/100 && kinds[kindCreate] < n*22/100, strconv.Itoa(kinds[kindCreate]), "about 20 %"},
		{"updates", kinds[kindUpdate] > n*67/100 && kinds[kindUpdate] < n*73/100, strconv.Itoa(kinds[kindUpdate]), "about 70 %"},
		{"alias only", kinds[kindAlias] > n*8/100 && kinds[kindAlias] < n*12/100, strconv.Itoa(kinds[kindAlias]), "about 10 %"},
		{"created users", slices.Equal(created, seq(ProfilePopulation, len(created))), fmt.Sprint(created[:3], "…"), "puser-100000, puser-100001, … in turn"},
		{"distinct updated users", len(updated) > 10_000, strconv.Itoa(len(updated)), "> 10000 of 100k"},
		{"top user share", top > 10*kinds[kindUpdate]/len(updated) && top < kinds[kindUpdate]/50, strconv.Itoa(top), "well above the mean, below 2 %"},
		{"average size", avg > 100 && avg < 400, strconv.FormatFloat(avg, 'f', 0, 64), "100-400 bytes"},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: got %s; want %s", c.name, c.got, c.want)
		}
	}
}

// seq returns n consecutive numbers from first.
func seq(first uint64, n int) []uint64 {
	s := make([]uint64, n)
	for i := range s {
		s[i] = first + uint64(i)
	}
	return s
}

func TestReseedRequest(t *testing.T) {
	const batch = 20
	g := NewProfileGenerator(5)
	g.track = true
	seen := map[string]int64{}
	for i := range int64(200) {
		g.reseedRequest(uint64(i), batch)
		var req testProfileRequest
		if err := json.Unmarshal(g.AppendRequest(nil, DefaultAppKey, batch), &req); err != nil {
			t.Fatalf("request %d is not valid JSON: %v", i, err)
		}
		var named []uint64
		for _, raw := range req.Profiles {
			p, problem := profileProblem(raw)
			if problem != "" {
				t.Fatal(problem)
			}
			if p.userID != "" {
				named = append(named, p.user)
			}
			if p.kind != kindCreate {
				continue
			}
			if lo := ProfilePopulation + uint64(i)*batch; p.user < lo || p.user >= lo+batch {
				t.Errorf("request %d creates %s; want a user in [%d, %d)", i, p.userID, lo, lo+batch)
			}
			if j, dup := seen[p.userID]; dup {
				t.Errorf("requests %d and %d both create %s", j, i, p.userID)
			}
			seen[p.userID] = i
		}
		if !slices.Equal(g.tracked, named) {
			t.Fatalf("request %d: tracked %v; want the users named by userId, %v", i, g.tracked, named)
		}
	}
}

// BenchmarkProfileGenerator measures AppendProfile; SetBytes is the average
// profile size, so MB/s is generated JSON.
func BenchmarkProfileGenerator(b *testing.B) {
	benchAppend(b, NewProfileGenerator(1).AppendProfile)
}
