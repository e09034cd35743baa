package config

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/pelletier/go-toml/v2"
)

// EnvPrefix starts the name of every environment variable that sets a
// configuration key.
const EnvPrefix = "TROVE_"

// EnvVar is a configuration key settable from the environment.
type EnvVar struct {
	// Name is the variable: TROVE_<KEY> for a top-level key,
	// TROVE_<SECTION>_<KEY> for a key of a [section], upper-cased
	// (TROVE_LISTEN, TROVE_INGEST_DEDUP_WINDOW).
	Name string
	// Key is the key's path in the file (listen, ingest.dedup_window).
	Key string
	// Section is the key's table ("" for a top-level key).
	Section string

	field []int // index path of the field in Config
	set   func(v reflect.Value, s string) error
}

// envAliases are older variable names still read, each for the canonical
// variable it stands for. Setting both to different values is an error.
var envAliases = map[string]string{"TROVE_DATA": "TROVE_DATA_DIR"}

// EnvVars returns every key of Config that the environment can set, in the
// order of the struct, derived from its toml tags: so a new key has its
// variable without a list to update. Arrays of tables ([[apps]],
// [[tokens]]) have no environment form.
func EnvVars() []EnvVar { return envVars() }

var envVars = sync.OnceValue(func() []EnvVar {
	var out []EnvVar
	var walk func(t reflect.Type, index []int, section string)
	walk = func(t reflect.Type, index []int, section string) {
		for f := range t.Fields() {
			key, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			if key == "" || key == "-" {
				continue
			}
			idx := append(slices.Clone(index), f.Index...)
			if f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct {
				continue // an array of tables
			}
			if f.Type.Kind() == reflect.Struct && setterFor(f.Type) == nil {
				if section != "" {
					panic("BUG: config: table " + section + "." + key + " nested in a table has no environment form")
				}
				walk(f.Type, idx, key)
				continue
			}
			set := setterFor(f.Type)
			if set == nil {
				panic(fmt.Sprintf("BUG: config: key %s has type %s, which has no environment form", key, f.Type))
			}
			v := EnvVar{Name: EnvPrefix + strings.ToUpper(key), Key: key, field: idx, set: set}
			if section != "" {
				v.Name = EnvPrefix + strings.ToUpper(section+"_"+key)
				v.Key, v.Section = section+"."+key, section
			}
			out = append(out, v)
		}
	}
	walk(reflect.TypeFor[Config](), nil, "")
	return out
})

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// setterFor returns how a value of type t is set from a variable's text, or
// nil when t has no text form.
func setterFor(t reflect.Type) func(v reflect.Value, s string) error {
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		return func(v reflect.Value, s string) error {
			return v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s))
		}
	}
	switch t.Kind() {
	case reflect.String:
		return func(v reflect.Value, s string) error { v.SetString(s); return nil }
	case reflect.Bool:
		return func(v reflect.Value, s string) error {
			b, err := strconv.ParseBool(s)
			if err != nil {
				return fmt.Errorf("invalid boolean %q: want true or false", s)
			}
			v.SetBool(b)
			return nil
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return func(v reflect.Value, s string) error {
			n, err := strconv.ParseInt(strings.TrimSpace(s), 10, t.Bits())
			if err != nil {
				return fmt.Errorf("invalid integer %q", s)
			}
			v.SetInt(n)
			return nil
		}
	case reflect.Float32, reflect.Float64:
		return func(v reflect.Value, s string) error {
			n, err := strconv.ParseFloat(strings.TrimSpace(s), t.Bits())
			if err != nil {
				return fmt.Errorf("invalid number %q", s)
			}
			v.SetFloat(n)
			return nil
		}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.String {
			return setStrings
		}
	}
	return nil
}

// setStrings sets a list from comma-separated items ("https://a.example,
// https://b.example"), or from a TOML array when the text starts with "["
// (`["*"]`; `[]` is the empty list, which the comma form cannot say).
func setStrings(v reflect.Value, s string) error {
	var list []string
	if t := strings.TrimSpace(s); strings.HasPrefix(t, "[") {
		var doc struct {
			V []string `toml:"v"`
		}
		if err := toml.Unmarshal([]byte("v = "+t), &doc); err != nil {
			return fmt.Errorf("invalid list %s: want a TOML array of strings such as [\"a\", \"b\"], or comma-separated items", t)
		}
		list = doc.V
		if list == nil {
			list = []string{}
		}
	} else {
		for item := range strings.SplitSeq(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				list = append(list, item)
			}
		}
	}
	v.Set(reflect.ValueOf(list))
	return nil
}

// ApplyEnv sets every key whose variable environ (os.Environ's form,
// "NAME=value") holds with a non-empty value; an empty variable counts as
// unset. It reports every problem at once, each naming its variable: a
// value that does not parse, a variable under a section's prefix
// (TROVE_INGEST_…) that names no key of it, an alias set apart from its
// canonical variable.
func (cfg *Config) ApplyEnv(environ []string) error {
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, EnvPrefix) && v != "" {
			env[k] = v
		}
	}
	var errs []error
	for alias, name := range envAliases {
		a, ok := env[alias]
		if !ok {
			continue
		}
		if v, both := env[name]; both && v != a {
			errs = append(errs, fmt.Errorf("%s and %s: both set, to different values (%q, %q): set one (%s is the older name)", name, alias, v, a, alias))
			continue
		}
		env[name] = a
	}
	known := map[string]bool{}
	sections := map[string]bool{}
	root := reflect.ValueOf(cfg).Elem()
	for _, ev := range envVars() {
		known[ev.Name] = true
		if ev.Section != "" {
			sections[ev.Section] = true
		}
		s, ok := env[ev.Name]
		if !ok {
			continue
		}
		if err := ev.set(root.FieldByIndex(ev.field), s); err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", ev.Name, ev.Key, err))
		}
	}
	var unknown []string
	for name := range env {
		if known[name] || envAliases[name] != "" {
			continue
		}
		for sec := range sections {
			if strings.HasPrefix(name, EnvPrefix+strings.ToUpper(sec)+"_") {
				unknown = append(unknown, name)
				break
			}
		}
	}
	slices.Sort(unknown)
	for _, name := range unknown {
		errs = append(errs, fmt.Errorf("%s: not a configuration key (its prefix is a [section]'s; config.example.toml lists the keys)", name))
	}
	return errors.Join(errs...)
}
