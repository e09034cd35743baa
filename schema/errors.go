package schema

import "errors"

// ErrInvalidSchema marks a schema that is not JSON or does not compile; the
// error's text names the problem.
var ErrInvalidSchema = errors.New("schema: invalid schema")

// ErrNotFound is the answer to deleting a contract that does not exist.
var ErrNotFound = errors.New("schema: no such contract")
