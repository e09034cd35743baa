// Package httpbody reads request bodies for every API that takes one: a
// limit on the bytes as sent and another once decompressed, and every
// Content-Encoding of SPEC.md section 3 (gzip, zstd, deflate raw or
// zlib-wrapped), with pooled decoders. Its errors are *apierr.Error
// values of kind TooLarge, Unsupported (naming Content-Encoding) or
// Invalid, which say which limit or encoding. Read is the reader: the
// Events API, the User Profiles API, the SDK protocols (through ingest's
// ReadBody) and the admin API all read their bodies with it.
package httpbody

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"sync"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
	"github.com/valyala/fasthttp"

	"trove/apierr"
)

// LimitKey is the config key of the request limit, which messages name.
const LimitKey = "ingest.max_request_bytes"

func invalid(msg string) *apierr.Error { return apierr.New(apierr.Invalid, "", msg) }

// Buffers are what Read reads a body into: Raw a streamed body as sent
// (one fasthttp has read whole is used where it is) and, when the body
// has a Content-Encoding, Dec once decoded (Encoded says so). The caller
// may pool them; Read grows them as it needs.
type Buffers struct {
	Raw, Dec []byte
	Encoded  bool
}

// Encoded says whether ctx's request body has a Content-Encoding other
// than identity, so that Read will decode it into Buffers.Dec.
func Encoded(ctx *fasthttp.RequestCtx) bool { return encoded(ctx.Request.Header.ContentEncoding()) }

func encoded(enc []byte) bool {
	return len(enc) > 0 && !bytes.EqualFold(bytes.TrimSpace(enc), []byte("identity"))
}

// Read reads ctx's request body whole into bufs and returns it, decoded
// per Content-Encoding: at most limit bytes as declared (Content-Length),
// as sent, and once decoded. Past the limit, and for a stream cut there,
// it fails with a TooLarge error whose message names key, the config key
// of limit; an encoding it does not know is Unsupported, a broken one
// Invalid. Every API that takes a body reads it here.
func Read(ctx *fasthttp.RequestCtx, bufs *Buffers, limit int, key string) ([]byte, error) {
	if cl := ctx.Request.Header.ContentLength(); cl > limit {
		return nil, &apierr.Error{Kind: apierr.TooLarge, Message: "request body is " + strconv.Itoa(cl) + " bytes, over the limit of " + strconv.Itoa(limit) + " (" + key + ")"}
	}
	// A body fasthttp has read whole is used in place (it lives as long as
	// the request); only a streamed one is read into bufs.Raw. PostBody
	// must not be asked for a streamed body: it would read all of it.
	var (
		body []byte
		err  error
	)
	if s := ctx.RequestBodyStream(); s != nil {
		bufs.Raw, err = ReadLimited(bufs.Raw[:0], s, limit, "request body")
		body = bufs.Raw
	} else if body = ctx.PostBody(); len(body) > limit {
		err = &apierr.Error{Kind: apierr.TooLarge}
	}
	sent := len(body)
	enc := ctx.Request.Header.ContentEncoding()
	bufs.Encoded = encoded(enc)
	if err == nil && bufs.Encoded {
		bufs.Dec, err = Decompress(bufs.Dec[:0], enc, body, limit)
		body = bufs.Dec
	}
	if errors.Is(err, apierr.TooLarge) {
		what := "request body"
		if bufs.Encoded && sent <= limit {
			what = "decompressed request body"
		}
		return nil, &apierr.Error{Kind: apierr.TooLarge, Message: what + " is over the limit of " + strconv.Itoa(limit) + " bytes (" + key + ")"}
	}
	if err != nil {
		return nil, err
	}
	return body, nil
}

// ReadLimited appends all of r to dst, failing with apierr.TooLarge past limit
// bytes; what names the body in the message.
func ReadLimited(dst []byte, r io.Reader, limit int, what string) ([]byte, error) {
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := r.Read(dst[len(dst):min(cap(dst), limit+1)])
		dst = dst[:len(dst)+n]
		if len(dst) > limit {
			return dst, &apierr.Error{Kind: apierr.TooLarge, Message: what + " is over the limit of " + strconv.Itoa(limit) + " bytes (" + LimitKey + ")"}
		}
		if errors.Is(err, io.EOF) {
			return dst, nil
		}
		if err != nil {
			return dst, invalid("cannot read request body: " + err.Error())
		}
	}
}

var gzipPool, zstdPool sync.Pool

// zstdMaxWindow is the largest zstd window decoded, which bounds the
// decoder's memory.
const zstdMaxWindow = 8 << 20

// Decompress returns body decoded per Content-Encoding, written into dst,
// refusing more than limit decompressed bytes (decompression bombs).
func Decompress(dst []byte, encoding []byte, body []byte, limit int) ([]byte, error) {
	what := "decompressed request body"
	switch string(bytes.ToLower(bytes.TrimSpace(encoding))) {
	case "gzip", "x-gzip":
		zr, _ := gzipPool.Get().(*gzip.Reader)
		var err error
		if zr == nil {
			zr, err = gzip.NewReader(bytes.NewReader(body))
		} else {
			err = zr.Reset(bytes.NewReader(body))
		}
		if err != nil {
			return dst, invalid("body is not valid gzip: " + err.Error())
		}
		defer gzipPool.Put(zr)
		out, err := ReadLimited(dst, zr, limit, what)
		return out, encodingError(err, "gzip")
	case "zstd":
		// The window is bounded on its own: tying it to limit would refuse
		// ordinary streams, since encoders (zstd -19, klauspost's default
		// level) declare 8 MiB windows, the size RFC 8878 asks decoders to
		// support. readLimited caps the output.
		// Decoders are pooled: a new one allocates its window each time.
		zr, _ := zstdPool.Get().(*zstd.Decoder)
		var err error
		if zr == nil {
			zr, err = zstd.NewReader(bytes.NewReader(body), zstd.WithDecoderConcurrency(1),
				zstd.WithDecoderMaxWindow(zstdMaxWindow), zstd.WithDecoderLowmem(true))
		} else {
			err = zr.Reset(bytes.NewReader(body))
		}
		if err != nil {
			return dst, invalid("body is not valid zstd: " + err.Error())
		}
		out, err := ReadLimited(dst, zr, limit, what)
		// Drop the reference to body before pooling.
		if zr.Reset(nil) == nil {
			zstdPool.Put(zr)
		}
		return out, encodingError(err, "zstd")
	case "deflate":
		// HTTP's deflate is zlib-wrapped, but many clients send raw deflate.
		var r io.ReadCloser
		if zr, err := zlib.NewReader(bytes.NewReader(body)); err == nil {
			r = zr
		} else {
			r = flate.NewReader(bytes.NewReader(body))
		}
		defer r.Close()
		out, err := ReadLimited(dst, r, limit, what)
		return out, encodingError(err, "deflate")
	}
	return dst, &apierr.Error{Kind: apierr.Unsupported, Field: "Content-Encoding",
		Message: "Content-Encoding " + strconv.Quote(string(encoding)) + " is not supported: use gzip, zstd, deflate or none"}
}

// encodingError turns a read error inside a decompressor into a 400 that
// says which encoding was broken, leaving size errors as they are.
func encodingError(err error, enc string) error {
	if err == nil || errors.Is(err, apierr.TooLarge) {
		return err
	}
	if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) {
		return &apierr.Error{Kind: apierr.TooLarge, Message: "decompressed request body is over the limit (" + LimitKey + ")"}
	}
	return invalid("body is not valid " + enc + ": " + err.Error())
}
