package compat

// KeyError is a refused API key: Err is auth.ErrUnauthenticated or
// auth.ErrForbidden, wrapped, and Field names where the key was sent.
type KeyError struct {
	Field string
	Err   error
}

func (e *KeyError) Error() string { return e.Err.Error() }

// Unwrap returns the auth error, which sets the status.
func (e *KeyError) Unwrap() error { return e.Err }

// ErrorField names the key's field.
func (e *KeyError) ErrorField() string { return e.Field }

// ErrorBodyKey is the key of a RequestCtx user value, an ErrorBodyFunc,
// that a protocol's handler sets so that the error bodies web writes for
// its requests carry what its SDKs read (Amplitude's SDKs, for one, read the
// status from the body's "code").
const ErrorBodyKey = "trove.compat.errorBody"

// ErrorBodyFunc adds a protocol's members to the error body of status; it
// must not remove or change the members already there.
type ErrorBodyFunc func(status int, body map[string]any)
