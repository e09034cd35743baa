package ingest

import (
	"errors"
	"io"
	"sync"

	"trove/httpbody"
)

// bodyBuffer is a pooled request buffer.
type bodyBuffer struct{ b []byte }

var bodyPool sync.Pool

func getBodyBuffer() *bodyBuffer {
	if v := bodyPool.Get(); v != nil {
		return v.(*bodyBuffer)
	}
	return &bodyBuffer{}
}

func putBodyBuffer(b *bodyBuffer) {
	// Keep the pool from pinning buffers of unusually large requests.
	if cap(b.b) > 8<<20 {
		return
	}
	b.b = b.b[:0]
	bodyPool.Put(b)
}

// readLimited is httpbody.ReadLimited with ingest's errors.
func readLimited(dst []byte, r io.Reader, limit int, what string) ([]byte, error) {
	dst, err := httpbody.ReadLimited(dst, r, limit, what)
	return dst, bodyError(err)
}

// decompress is httpbody.Decompress with ingest's errors.
func decompress(dst []byte, encoding []byte, body []byte, limit int) ([]byte, error) {
	dst, err := httpbody.Decompress(dst, encoding, body, limit)
	return dst, bodyError(err)
}

// bodyError turns an httpbody error into a RequestError of the same kind.
func bodyError(err error) error {
	var be *httpbody.Error
	if !errors.As(err, &be) {
		return err
	}
	kind := ErrInvalid
	switch be.Kind {
	case httpbody.ErrTooLarge:
		kind = ErrTooLarge
	case httpbody.ErrUnsupported:
		kind = ErrUnsupportedMediaType
	}
	return &RequestError{Kind: kind, Field: be.Field, Message: be.Message}
}
