package storage

import "errors"

var (
	// ErrClosed is returned by operations on a closed DB.
	ErrClosed = errors.New("storage: closed")
	// ErrDiskFull is returned (in a *DiskFullError) for writes refused
	// while the disk is nearly full or its free space cannot be read.
	ErrDiskFull = errors.New("storage: disk nearly full")
	// ErrUnknownApp is returned when an app key was never registered.
	ErrUnknownApp = errors.New("storage: unknown app")
	// ErrCorrupt marks a value that does not decode; it means damage on disk
	// or a bug, never bad user input.
	ErrCorrupt = errCorrupt
)
