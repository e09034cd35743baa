package logentry

import (
	"bytes"
	"errors"
	"testing"
)

// TestRoundTrip reads back what the Append functions wrote, and refuses
// every cut of it and a byte left over.
func TestRoundTrip(t *testing.T) {
	e := AppendBytes(nil, "app")
	e = AppendBytes(e, []byte{1, 2, 3})
	e = AppendBool(e, true)
	e = AppendBytes(e, []byte(nil))
	read := func(b []byte) (string, []byte, bool, []byte, error) {
		r := NewReader(b)
		app, run, ok, empty := string(r.Bytes()), r.Bytes(), r.Bool(), r.Bytes()
		return app, run, ok, empty, r.Done()
	}
	app, run, ok, empty, err := read(e)
	if err != nil || app != "app" || !bytes.Equal(run, []byte{1, 2, 3}) || !ok || len(empty) != 0 {
		t.Fatalf("read back %q %v %v %v, %v", app, run, ok, empty, err)
	}
	for n := range len(e) {
		if _, _, _, _, err := read(e[:n]); !errors.Is(err, ErrMalformed) {
			t.Errorf("cut at %d of %d: %v; want ErrMalformed", n, len(e), err)
		}
	}
	if _, _, _, _, err := read(append(e, 0)); !errors.Is(err, ErrMalformed) {
		t.Errorf("a byte left over: %v; want ErrMalformed", err)
	}
}

// FuzzReader: no entry makes a read panic or return more bytes than the
// entry holds, and a count never promises more items than fit.
func FuzzReader(f *testing.F) {
	f.Add(AppendBool(AppendBytes(nil, "x"), false))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReader(b)
		total := 0
		for range 8 {
			total += len(r.Bytes())
			if n := r.Count(2); n > len(b)/2 {
				t.Fatalf("count %d from %d bytes", n, len(b))
			}
			r.Varint()
			r.Bool()
		}
		if total > len(b) {
			t.Fatalf("read %d bytes from %d", total, len(b))
		}
		r.Done()
	})
}
