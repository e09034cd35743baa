package schema

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/goccy/go-json"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// schemaURL names every contract inside the compiler; it appears in no
// answer.
const schemaURL = "trove:///contract.json"

// noLoader refuses every external $ref: a contract is one self-contained
// document, and the server fetches nothing from the network or disk.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("external $ref %q is not supported: a contract must be one self-contained schema (use $defs)", url)
}

// Compile compiles src, a JSON Schema; draft 2020-12 unless its $schema
// names another draft. Formats (date-time, email, …) are asserted, as
// Segment Protocols users expect. The error wraps ErrInvalidSchema and
// names the problem.
func Compile(src []byte) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(src))
	if err != nil {
		return nil, fmt.Errorf("%w: the schema is not valid JSON: %v", ErrInvalidSchema, err)
	}
	switch doc.(type) {
	case map[string]any, bool:
	default:
		return nil, fmt.Errorf("%w: a schema must be a JSON object or a boolean", ErrInvalidSchema)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.UseLoader(noLoader{})
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSchema, err)
	}
	sch, err := c.Compile(schemaURL)
	var sve *jsonschema.SchemaValidationError
	var ve *jsonschema.ValidationError
	if errors.As(err, &sve) && errors.As(sve.Err, &ve) {
		v := firstViolation(ve, nil)
		return nil, fmt.Errorf("%w: the schema is not valid JSON Schema (draft 2020-12): at %s: %s", ErrInvalidSchema, cmp.Or(v.Field, "the top"), v.Message)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalidSchema, strings.ReplaceAll(err.Error(), schemaURL, "the schema"))
	}
	return sch, nil
}

var printer = message.NewPrinter(language.English)

// Violation is the first way in which an event breaks a contract.
type Violation struct {
	// Field is the JSON pointer of the offending value in the stored
	// event ("/attributes/revenue"; "" for the whole event).
	Field string
	// Message says what was expected.
	Message string
}

// validate checks doc, a JSON value as text, against sch; nil when it
// conforms.
func validate(sch *jsonschema.Schema, doc []byte) *Violation {
	// Numbers decode as float64 (Unmarshal is much faster than a Decoder
	// with UseNumber); integers beyond 2^53 lose precision in the check
	// only, never in the stored event.
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		return &Violation{Message: "the event is not valid JSON: " + err.Error()}
	}
	err := sch.Validate(v)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return &Violation{Message: err.Error()}
	}
	return firstViolation(ve, doc)
}

// firstViolation picks, among the leaves of a validation error, the first
// in the text of doc (the instance; nil: the smallest JSON pointer), then
// by pointer and message, so that the same event always names the same
// field: the validator walks object members in map order.
func firstViolation(ve *jsonschema.ValidationError, doc []byte) *Violation {
	type leaf struct {
		v      *Violation
		offset int64
	}
	var leaves []leaf
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		l := leaf{v: describe(e)}
		if doc != nil {
			l.offset, _ = docOrder(doc, e.InstanceLocation)
		}
		leaves = append(leaves, l)
	}
	walk(ve)
	if len(leaves) == 0 {
		return &Violation{Message: ve.Error()}
	}
	return slices.MinFunc(leaves, func(a, b leaf) int {
		return cmp.Or(cmp.Compare(a.offset, b.offset), strings.Compare(a.v.Field, b.v.Field), strings.Compare(a.v.Message, b.v.Message))
	}).v
}

// describe turns one leaf into a field and a sentence saying what was
// expected.
func describe(e *jsonschema.ValidationError) *Violation {
	ptr := pointer(e.InstanceLocation)
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		return &Violation{Field: ptr + "/" + escape(k.Missing[0]), Message: "is required"}
	case *kind.AdditionalProperties:
		return &Violation{Field: ptr + "/" + escape(k.Properties[0]), Message: "is not allowed (additionalProperties)"}
	case *kind.Type:
		return &Violation{Field: ptr, Message: "expected " + strings.Join(k.Want, " or ") + ", got " + k.Got}
	case *kind.Const:
		return &Violation{Field: ptr, Message: "expected " + printJSON(k.Want)}
	case *kind.Enum:
		want := make([]string, len(k.Want))
		for i, w := range k.Want {
			want[i] = printJSON(w)
		}
		return &Violation{Field: ptr, Message: "expected one of " + strings.Join(want, ", ") + ", got " + printJSON(k.Got)}
	}
	return &Violation{Field: ptr, Message: e.ErrorKind.LocalizedString(printer)}
}

func printJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// pointer returns the JSON pointer (RFC 6901) of a path of tokens.
func pointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(escape(t))
	}
	return b.String()
}

func escape(tok string) string {
	return strings.ReplaceAll(strings.ReplaceAll(tok, "~", "~0"), "/", "~1")
}

// Sentence is the message of a violation of c as the answer and the
// quarantine give it: the contract, its version, the field, and what was
// expected.
func (c *Contract) Sentence(v *Violation) string {
	field := v.Field
	if field == "" {
		field = "the event"
	}
	return "schema " + strconv.Quote(c.Event) + " v" + strconv.FormatUint(c.Version, 10) + ": " + field + ": " + v.Message
}
