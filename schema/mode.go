package schema

import "fmt"

// Mode says what happens to an event that breaks its contract (schema_mode)
// or that has none (schema_unknown).
type Mode uint8

// The modes. Off is schema_mode "off" and schema_unknown "allow".
const (
	Off Mode = iota
	Warn
	Reject
)

// ParseMode reads a schema_mode value: "off", "warn" or "reject".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "off":
		return Off, nil
	case "warn":
		return Warn, nil
	case "reject":
		return Reject, nil
	}
	return Off, fmt.Errorf("%q is not one of off, warn, reject", s)
}

// ParseUnknown reads a schema_unknown value: "allow", "warn" or "reject".
func ParseUnknown(s string) (Mode, error) {
	switch s {
	case "allow":
		return Off, nil
	case "warn":
		return Warn, nil
	case "reject":
		return Reject, nil
	}
	return Off, fmt.Errorf("%q is not one of allow, warn, reject", s)
}

// Policy is one app's schema_mode and schema_unknown.
type Policy struct {
	Mode    Mode // events with a contract
	Unknown Mode // events without one
}

// ModeName is m as schema_mode spells it: "off", "warn" or "reject".
func ModeName(m Mode) string {
	switch m {
	case Warn:
		return "warn"
	case Reject:
		return "reject"
	}
	return "off"
}

// UnknownName is m as schema_unknown spells it: "allow", "warn" or
// "reject".
func UnknownName(m Mode) string {
	if m == Off {
		return "allow"
	}
	return ModeName(m)
}
