package segment

// This file is what the other SDK-compatible protocols (package compat and
// the packages that use it) share of Segment's mapping of traits onto
// profile fields, so that every protocol maps them the same way.

// AppendTrait appends one trait (name flattened with dots, val raw JSON) as
// a profile member, `"key":value` without a leading comma, as an identify's
// traits are mapped (README, "Segment and RudderStack SDKs").
func AppendTrait(dst []byte, name string, val []byte) []byte { return appendTrait(dst, name, val) }

// IsAbsent reports whether a raw JSON value is missing or null.
func IsAbsent(v []byte) bool { return isAbsent(v) }

// Identity returns v as a JSON string when it is a non-empty string (as
// sent) or a number (its text, quoted); nil for anything else.
func Identity(v []byte) []byte { return identity(v) }
