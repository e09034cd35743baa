// Package logentry writes and reads the fields of the entries that cluster
// mode appends to its replicated log (SPEC section 9, README "Cluster
// mode"): uvarint-length-prefixed byte runs, varints and booleans; and
// Log, the log that the write paths append them to. Its Reader remembers
// the first error, so that a decoder reads every field and checks once,
// and a field never reads past the entry.
package logentry

import (
	"encoding/binary"
	"errors"
)

// A Log appends entries to the replicated log. Append returns once the
// entry is in the log and this node has applied it, with what applying it
// returned here (the answer of the write that made it).
type Log interface {
	Append(entry []byte) (any, error)
}

// ErrMalformed is the error of an entry that cannot be read.
var ErrMalformed = errors.New("malformed log entry")

// AppendBytes appends b with its length.
func AppendBytes[T ~string | ~[]byte](dst []byte, b T) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// AppendBool appends v as one byte.
func AppendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, 1)
	}
	return append(dst, 0)
}

// A Reader reads the fields of an entry in the order they were appended.
// After the first field it cannot read, every read returns a zero value
// and Err the failure.
type Reader struct {
	b   []byte
	err error
}

// NewReader reads the fields of b, which the values read alias.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

func (r *Reader) fail() {
	if r.err == nil {
		r.err = ErrMalformed
	}
	r.b = nil
}

// Uvarint reads an unsigned varint.
func (r *Reader) Uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Varint reads a signed varint.
func (r *Reader) Varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Count reads a count of items of at least min bytes each, refusing one
// that the rest of the entry cannot hold.
func (r *Reader) Count(min int) int {
	n := r.Uvarint()
	if n > uint64(len(r.b)/min) {
		r.fail()
		return 0
	}
	return int(n)
}

// Bytes reads a length-prefixed run; it aliases the entry.
func (r *Reader) Bytes() []byte {
	n := r.Uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// Bool reads a byte that must be 0 or 1.
func (r *Reader) Bool() bool {
	if len(r.b) == 0 || r.b[0] > 1 {
		r.fail()
		return false
	}
	v := r.b[0] == 1
	r.b = r.b[1:]
	return v
}

// Done returns the first failure, or ErrMalformed when bytes are left
// after the last field: an entry is read whole or not at all.
func (r *Reader) Done() error {
	if r.err == nil && len(r.b) != 0 {
		r.fail()
	}
	return r.err
}
