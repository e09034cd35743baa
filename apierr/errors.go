package apierr

import (
	"bytes"
	"errors"
)

// The kinds of refusal. web gives each its status and default code word.
var (
	// Invalid means the request is not valid (HTTP 400).
	Invalid = errors.New("apierr: invalid request")
	// TooLarge means a body or an item over a configured limit (HTTP 413).
	TooLarge = errors.New("apierr: too large")
	// Unsupported means a Content-Type or Content-Encoding the API does
	// not take (HTTP 415).
	Unsupported = errors.New("apierr: unsupported media type")
	// NotFound means nothing has the name or id asked for (HTTP 404).
	NotFound = errors.New("apierr: not found")
	// Conflict means the request clashes with what exists (HTTP 409).
	Conflict = errors.New("apierr: conflict")
	// Unavailable means the server cannot take the request now (HTTP 503).
	Unavailable = errors.New("apierr: unavailable")
	// Unauthorized means no valid credentials (HTTP 401).
	Unauthorized = errors.New("apierr: unauthorized")
	// Forbidden means valid credentials that do not cover the request
	// (HTTP 403).
	Forbidden = errors.New("apierr: forbidden")
)

// Error is a refused request. Its text is Message alone, which the error
// body carries as "message".
type Error struct {
	// Kind is one of the sentinels above; Unwrap returns it.
	Kind error
	// Code, when set, is the body's "error" code word in place of the
	// kind's default ("invalid_event", "invalid_profile").
	Code string
	// Field names the field, parameter or header at fault, if one is.
	Field string
	// Message is a sentence for a person.
	Message string
	// Details are further members of the error body (the per-item
	// "errors" of a batch, "accepted", "index", …). Members named like
	// the ones above are ignored. It must hold only what the JSON encoder
	// takes, and is not modified once the Error is returned.
	Details map[string]any
}

// New returns an Error of kind naming field.
func New(kind error, field, msg string) *Error {
	return &Error{Kind: kind, Field: field, Message: msg}
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the Kind, so that errors.Is(err, apierr.Invalid) holds.
func (e *Error) Unwrap() error { return e.Kind }

// ErrorField returns the name of the field at fault.
func (e *Error) ErrorField() string { return e.Field }

// ErrorDetails returns the further members of the error body.
func (e *Error) ErrorDetails() map[string]any { return e.Details }

// Field returns the field that err, or an error it wraps, names, and ""
// when it names none.
func Field(err error) string {
	var f interface{ ErrorField() string }
	if errors.As(err, &f) {
		return f.ErrorField()
	}
	return ""
}

// Failure returns err when it is a failure (of the store, of the disk)
// rather than a refusal, and nil when err is nil or is, or wraps, an
// *Error: a refusal is the outcome of a request, the same wherever it is
// applied, while a failure means the request must be applied again (a
// replicated log entry, say).
func Failure(err error) error {
	var e *Error
	if err == nil || errors.As(err, &e) {
		return nil
	}
	return err
}

// KindOf names the JSON type of a raw value (surrounding space ignored) as
// messages do: "a string", "an object", "an array", "a boolean", "null",
// "a number", or "nothing" for no value at all.
func KindOf(raw []byte) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}
