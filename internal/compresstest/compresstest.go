// Package compresstest compresses test bodies in each Content-Encoding the
// APIs take, for tests of the readers that undo them.
package compresstest

import (
	"bytes"
	"io"
	"testing"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

// Writers write a body in each encoding: "gzip", "zstd", "zlib" (what
// Content-Encoding: deflate usually carries) and "raw deflate".
var Writers = map[string]func(w io.Writer) io.WriteCloser{
	"gzip": func(w io.Writer) io.WriteCloser { return gzip.NewWriter(w) },
	"zstd": func(w io.Writer) io.WriteCloser {
		zw, err := zstd.NewWriter(w, zstd.WithEncoderConcurrency(1))
		if err != nil {
			panic(err)
		}
		return zw
	},
	"zlib": func(w io.Writer) io.WriteCloser { return zlib.NewWriter(w) },
	"raw deflate": func(w io.Writer) io.WriteCloser {
		fw, err := flate.NewWriter(w, flate.DefaultCompression)
		if err != nil {
			panic(err)
		}
		return fw
	},
}

// Compress returns body compressed by the named writer of Writers.
func Compress(t testing.TB, encoding string, body []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := Writers[encoding](&buf)
	if _, err := w.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
