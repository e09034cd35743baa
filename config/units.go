package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2/unstable"
)

// Duration is a time.Duration that decodes from text such as "30s", "720h"
// or "400d" (days are accepted because retention is naturally said in days).
// "0" and "" mean zero.
type Duration time.Duration

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// UnmarshalTOML implements go-toml's unstable.Unmarshaler (enabled in
// Parse). Without it go-toml stores a bare integer straight into a Duration
// as nanoseconds, so `dedup_window = 3600` would silently mean 3.6µs.
func (d *Duration) UnmarshalTOML(raw []byte) error {
	var s string
	var err error
	switch {
	case len(raw) >= 2 && raw[0] == '\'' && raw[len(raw)-1] == '\'':
		s = string(raw[1 : len(raw)-1])
	case len(raw) >= 2 && raw[0] == '"':
		if s, err = strconv.Unquote(string(raw)); err != nil {
			err = fmt.Errorf("invalid duration %s", raw)
		}
	default:
		err = fmt.Errorf("invalid duration %s: write it as a string such as \"60s\", \"720h\" or \"400d\"", raw)
	}
	if err == nil {
		err = d.UnmarshalText([]byte(s))
	}
	if err != nil {
		// A ParserError highlighting raw gets the value's line and column.
		return &unstable.ParserError{Highlight: raw, Message: err.Error()}
	}
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(time.Duration(d).String()), nil
}

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// ParseDuration parses a Go duration, extended with a "d" suffix for days.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return 0, nil
	}
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseFloat(n, 64)
		// !(days >= 0) also refuses NaN; the bound refuses overflow.
		if err != nil || !(days >= 0) || days*float64(24*time.Hour) >= math.MaxInt64 {
			return 0, fmt.Errorf("invalid duration %q: want a number of days such as \"400d\"", s)
		}
		return time.Duration(days * float64(24*time.Hour)), nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: want e.g. \"60s\", \"720h\" or \"400d\"", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("invalid duration %q: must not be negative", s)
	}
	return v, nil
}

// Size is a byte count that decodes from text such as "1GiB", "64MiB",
// "512KiB", "10MB" or a plain number of bytes.
type Size int64

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"B", 1},
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Size) UnmarshalText(b []byte) error {
	str := strings.TrimSpace(string(b))
	mult := int64(1)
	for _, u := range sizeUnits {
		if n, ok := strings.CutSuffix(str, u.suffix); ok {
			str, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(str, 64)
	// !(v >= 0) also refuses NaN; the bound refuses overflow.
	if err != nil || !(v >= 0) || v*float64(mult) >= math.MaxInt64 {
		return fmt.Errorf("invalid size %q: want e.g. \"1GiB\", \"64MiB\" or a number of bytes", string(b))
	}
	*s = Size(v * float64(mult))
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (s Size) MarshalText() ([]byte, error) {
	for _, u := range sizeUnits[:4] {
		if s >= Size(u.mult) && int64(s)%u.mult == 0 && int64(s)/u.mult < 1024 {
			return []byte(strconv.FormatInt(int64(s)/u.mult, 10) + u.suffix), nil
		}
	}
	return []byte(strconv.FormatInt(int64(s), 10)), nil
}
