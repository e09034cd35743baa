package admin

import "errors"

var (
	// ErrInvalid means the request is not valid (HTTP 400).
	ErrInvalid = errors.New("admin: invalid request")
	// ErrNotFound means no token has the id asked for (HTTP 404).
	ErrNotFound = errors.New("admin: not found")
	// ErrConflict means the request clashes with what exists: an app name
	// already taken, a config-declared token to revoke (HTTP 409).
	ErrConflict = errors.New("admin: conflict")
	// ErrTooLarge means a body over maxBodyBytes (HTTP 413).
	ErrTooLarge = errors.New("admin: request too large")
)

// Error is a refused request, naming the field at fault.
type Error struct {
	Kind    error
	Field   string
	Message string
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.Kind }

// ErrorField returns the name of the field at fault.
func (e *Error) ErrorField() string { return e.Field }

func invalid(field, msg string) *Error { return &Error{Kind: ErrInvalid, Field: field, Message: msg} }
