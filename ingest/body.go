package ingest

import "sync"

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
