package ingest

import "testing"

func TestBodyPool(t *testing.T) {
	b := getBodyBuffer()
	b.b = append(b.b, "hello"...)
	putBodyBuffer(b)
	if len(b.b) != 0 {
		t.Fatalf("a returned buffer holds %d bytes; want it reset", len(b.b))
	}
	// Oversized buffers are dropped, not pooled; this only checks that
	// putting one back is safe.
	big := &bodyBuffer{b: make([]byte, 0, 16<<20)}
	putBodyBuffer(big)
}
