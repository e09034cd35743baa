package ingest

import "errors"

var (
	// ErrInvalid means the request is not valid (HTTP 400).
	ErrInvalid = errors.New("ingest: invalid request")
	// ErrTooLarge means a body or event over its configured limit (HTTP 413).
	ErrTooLarge = errors.New("ingest: too large")
	// ErrUnsupportedMediaType means a Content-Type or Content-Encoding the
	// API does not take (HTTP 415).
	ErrUnsupportedMediaType = errors.New("ingest: unsupported media type")
)

// RequestError is a refused request. It wraps one of the sentinels above
// and names the field at fault; for a batch with no valid event, Result
// holds every event's error.
type RequestError struct {
	Kind    error
	Field   string
	Message string
	Result  *Result
}

func (e *RequestError) Error() string { return e.Message }

// Unwrap returns the sentinel.
func (e *RequestError) Unwrap() error { return e.Kind }

// ErrorField returns the name of the field at fault.
func (e *RequestError) ErrorField() string { return e.Field }

// ErrorDetails returns what the error body carries beside the message.
func (e *RequestError) ErrorDetails() any {
	if e.Result == nil {
		return nil
	}
	return e.Result
}

func invalid(field, msg string) *RequestError {
	return &RequestError{Kind: ErrInvalid, Field: field, Message: msg}
}
