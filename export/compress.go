package export

import (
	"io"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/valyala/fasthttp"
)

// negotiateEncoding picks the response's Content-Encoding from the
// request's Accept-Encoding: zstd, else gzip, else none. A q=0 entry
// refuses that coding.
func negotiateEncoding(ctx *fasthttp.RequestCtx) string {
	var zstdOK, gzipOK bool
	for _, part := range strings.Split(string(ctx.Request.Header.Peek("Accept-Encoding")), ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.ReplaceAll(strings.TrimSpace(params), " ", "") == "q=0" {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "zstd":
			zstdOK = true
		case "gzip", "x-gzip":
			gzipOK = true
		}
	}
	switch {
	case zstdOK:
		return "zstd"
	case gzipOK:
		return "gzip"
	}
	return ""
}

// compressor is a pooled streaming encoder.
type compressor interface {
	io.WriteCloser
	Reset(w io.Writer)
}

var zstdPool, gzipPool sync.Pool

type zstdCompressor struct{ *zstd.Encoder }

func (z zstdCompressor) Reset(w io.Writer) { z.Encoder.Reset(w) }

// getCompressor returns an encoder for enc writing to w. Exports use the
// fastest levels: they stream at hundreds of MB/s, and the client pays for
// bytes on the wire far less than the server pays for stronger levels.
func getCompressor(enc string, w io.Writer) compressor {
	switch enc {
	case "zstd":
		if c, ok := zstdPool.Get().(compressor); ok {
			c.Reset(w)
			return c
		}
		// Not WithLowerEncoderMem: its smaller history buffer is shifted
		// by a whole window every block, a memmove that held the encoder
		// to ~160 MB/s; a 1 MiB window keeps the buffer small instead and
		// compresses within 0.3 % as well (BenchmarkExport/zstd: ~250 MB/s).
		// Concurrency 2 compresses each block on a goroutine of the
		// encoder's while the export reads the next: compression is most
		// of a zstd export's CPU, and the pair uses the second core
		// (BenchmarkExport/zstd +20-30 %). Write and Close return what that
		// goroutine met, and Reset waits for it.
		e, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(2), zstd.WithWindowSize(1<<20))
		if err != nil {
			panic("BUG: " + err.Error())
		}
		return zstdCompressor{e}
	default:
		if c, ok := gzipPool.Get().(compressor); ok {
			c.Reset(w)
			return c
		}
		g, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
		if err != nil {
			panic("BUG: " + err.Error())
		}
		return g
	}
}

// putCompressor returns c to its pool, detached from its writer.
func putCompressor(enc string, c compressor) {
	c.Reset(io.Discard)
	if enc == "zstd" {
		zstdPool.Put(c)
	} else {
		gzipPool.Put(c)
	}
}
