package storage

import "errors"

var (
	// ErrClosed is returned by operations on a closed DB.
	ErrClosed = errors.New("storage: closed")
	// ErrUnknownApp is returned when an app key was never registered.
	ErrUnknownApp = errors.New("storage: unknown app")
	// ErrCorrupt marks a value that does not decode; it means damage on disk
	// or a bug, never bad user input.
	ErrCorrupt = errCorrupt
)
