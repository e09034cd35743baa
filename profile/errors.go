package profile

import "errors"

var (
	// ErrInvalid means the request is not valid (HTTP 400).
	ErrInvalid = errors.New("profile: invalid request")
	// ErrConflict means an identity of the request belongs to another
	// profile (HTTP 409).
	ErrConflict = errors.New("profile: identity conflict")
	// ErrNotFound means no profile has the identity asked for (HTTP 404).
	ErrNotFound = errors.New("profile: not found")
	// ErrTooLarge means a body over the configured limit (HTTP 413).
	ErrTooLarge = errors.New("profile: too large")
	// ErrUnsupportedMediaType means a Content-Type or Content-Encoding the
	// API does not take (HTTP 415).
	ErrUnsupportedMediaType = errors.New("profile: unsupported media type")
)

// Error is a refused request, naming the profile (its index in
// user_profiles, or -1 for the request as a whole) and the field at fault.
type Error struct {
	Kind    error
	Index   int
	Field   string
	Message string
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.Kind }

// ErrorField returns the name of the field at fault.
func (e *Error) ErrorField() string { return e.Field }

// ErrorDetails returns the index of the profile at fault, as the error
// body's "index" and one "errors" entry.
func (e *Error) ErrorDetails() any {
	if e.Index < 0 {
		return nil
	}
	return map[string]any{
		"index":  e.Index,
		"errors": []map[string]any{{"index": e.Index, "field": e.Field, "message": e.Message}},
	}
}

func invalid(index int, field, msg string) *Error {
	return &Error{Kind: ErrInvalid, Index: index, Field: field, Message: msg}
}
