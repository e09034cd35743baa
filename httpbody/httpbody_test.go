package httpbody

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"trove/apierr"
	"trove/bench"
	"trove/internal/compresstest"
)

func TestDecompressRoundTrip(t *testing.T) {
	events := bench.NewGenerator(1, appKey).AppendJSONArray(nil, 200)
	tests := []struct {
		name     string
		encoding string // Content-Encoding
		comp     string // compressor
		body     []byte
	}{
		{name: "gzip", encoding: "gzip", comp: "gzip", body: events},
		{name: "x-gzip", encoding: "x-gzip", comp: "gzip", body: events},
		{name: "GZIP with space", encoding: " GZIP ", comp: "gzip", body: events},
		{name: "zstd", encoding: "zstd", comp: "zstd", body: events},
		{name: "deflate as zlib", encoding: "deflate", comp: "zlib", body: events},
		{name: "deflate raw", encoding: "deflate", comp: "raw deflate", body: events},
		{name: "gzip empty", encoding: "gzip", comp: "gzip", body: []byte{}},
		{name: "zstd empty", encoding: "zstd", comp: "zstd", body: []byte{}},
		{name: "zstd one byte", encoding: "zstd", comp: "zstd", body: []byte("{")},
		{name: "deflate raw small", encoding: "deflate", comp: "raw deflate", body: []byte(testEvent(0))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			z := compresstest.Compress(t, tt.comp, tt.body)
			// Twice, so that a pooled decompressor is reused.
			for range 2 {
				got, err := Decompress(nil, []byte(tt.encoding), z, len(tt.body))
				if err != nil {
					t.Fatalf("decompress: %v", err)
				}
				if !bytes.Equal(got, tt.body) {
					t.Fatalf("got %d bytes that differ from the %d sent", len(got), len(tt.body))
				}
			}
		})
	}
}

func TestDecompressMultiMemberGzip(t *testing.T) {
	a, b := []byte(testEvent(0)), []byte(testEvent(1))
	z := append(compresstest.Compress(t, "gzip", a), compresstest.Compress(t, "gzip", b)...)
	got, err := Decompress(nil, []byte("gzip"), z, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if want := string(a) + string(b); string(got) != want {
		t.Fatalf("got %q; want both members %q", got, want)
	}
}

func TestDecompressErrors(t *testing.T) {
	body := []byte(strings.Repeat(testEvent(0), 20))
	gz := compresstest.Compress(t, "gzip", body)
	zs := compresstest.Compress(t, "zstd", body)
	zl := compresstest.Compress(t, "zlib", body)
	corrupt := func(b []byte) []byte {
		c := bytes.Clone(b)
		for i := len(c) / 3; i < len(c)/3+8; i++ {
			c[i] ^= 0x55
		}
		return c
	}
	tests := []struct {
		name      string
		encoding  string
		body      []byte
		limit     int
		wantKind  error
		wantField string
		wantMsg   string
	}{
		{name: "br", encoding: "br", body: body, wantKind: apierr.Unsupported, wantField: "Content-Encoding", wantMsg: `Content-Encoding "br" is not supported`},
		{name: "compress", encoding: "compress", body: body, wantKind: apierr.Unsupported, wantField: "Content-Encoding"},
		{name: "two encodings", encoding: "gzip, zstd", body: gz, wantKind: apierr.Unsupported, wantField: "Content-Encoding"},
		{name: "gzip not gzip", encoding: "gzip", body: body, wantKind: apierr.Invalid, wantMsg: "not valid gzip"},
		{name: "gzip empty", encoding: "gzip", body: nil, wantKind: apierr.Invalid, wantMsg: "not valid gzip"},
		{name: "gzip corrupt", encoding: "gzip", body: corrupt(gz), wantKind: apierr.Invalid, wantMsg: "not valid gzip"},
		{name: "gzip truncated", encoding: "gzip", body: gz[:len(gz)/2], wantKind: apierr.Invalid, wantMsg: "not valid gzip"},
		{name: "gzip bad checksum", encoding: "gzip", body: append(bytes.Clone(gz[:len(gz)-8]), 0, 0, 0, 0, 0, 0, 0, 0), wantKind: apierr.Invalid, wantMsg: "not valid gzip"},
		{name: "zstd not zstd", encoding: "zstd", body: body, wantKind: apierr.Invalid, wantMsg: "not valid zstd"},
		{name: "zstd corrupt", encoding: "zstd", body: corrupt(zs), wantKind: apierr.Invalid, wantMsg: "not valid zstd"},
		{name: "zstd truncated", encoding: "zstd", body: zs[:len(zs)/2], wantKind: apierr.Invalid, wantMsg: "not valid zstd"},
		{name: "deflate corrupt", encoding: "deflate", body: corrupt(zl), wantKind: apierr.Invalid, wantMsg: "not valid deflate"},
		{name: "deflate not deflate", encoding: "deflate", body: []byte("\xff\xff\xff\xff not deflate"), wantKind: apierr.Invalid, wantMsg: "not valid deflate"},
		{name: "gzip over the limit", encoding: "gzip", body: gz, limit: len(body) - 1, wantKind: apierr.TooLarge, wantMsg: "over the limit"},
		{name: "zstd over the limit", encoding: "zstd", body: zs, limit: len(body) - 1, wantKind: apierr.TooLarge, wantMsg: "over the limit"},
		{name: "deflate over the limit", encoding: "deflate", body: zl, limit: len(body) - 1, wantKind: apierr.TooLarge, wantMsg: "over the limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			limit := tt.limit
			if limit == 0 {
				limit = 1 << 20
			}
			_, err := Decompress(nil, []byte(tt.encoding), tt.body, limit)
			var re *apierr.Error
			if !errors.As(err, &re) || !errors.Is(err, tt.wantKind) {
				t.Fatalf("err = %v; want a Error wrapping %v", err, tt.wantKind)
			}
			if re.Field != tt.wantField || !strings.Contains(re.Message, tt.wantMsg) {
				t.Fatalf("got field %q message %q; want field %q and %q", re.Field, re.Message, tt.wantField, tt.wantMsg)
			}
		})
	}
	// At the limit exactly is fine.
	for _, enc := range []string{"gzip", "zstd", "deflate"} {
		z := map[string][]byte{"gzip": gz, "zstd": zs, "deflate": zl}[enc]
		if got, err := Decompress(nil, []byte(enc), z, len(body)); err != nil || len(got) != len(body) {
			t.Fatalf("%s at the limit: got %d bytes, %v; want %d, nil", enc, len(got), err, len(body))
		}
	}
}

// zeros is an endless reader of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// bombSize is what a bomb inflates to: 1 GiB, or 128 MiB under -race,
// where compressing a gigabyte takes 20 s. Either is far over the limit.
func bombSize() int64 {
	if raceEnabled {
		return 128 << 20
	}
	return 1 << 30
}

// bombs are bombSize zeros, compressed by streaming into the compressor so
// that the test never holds the uncompressed bytes. Built once.
var bombs = sync.OnceValues(func() (map[string][]byte, error) {
	size := bombSize()
	out := map[string][]byte{}
	for _, enc := range []string{"gzip", "zstd", "zstd with size"} {
		var buf bytes.Buffer
		var w io.WriteCloser
		var err error
		switch enc {
		case "gzip":
			w, err = gzip.NewWriterLevel(&buf, gzip.BestSpeed)
		case "zstd":
			w, err = zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedFastest))
		case "zstd with size":
			// The frame header declares the gigabyte, so the decoder can
			// refuse it before decoding anything.
			var zw *zstd.Encoder
			zw, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
			if err == nil {
				zw.ResetContentSize(&buf, size)
			}
			w = zw
		}
		if err != nil {
			return nil, err
		}
		if _, err := io.Copy(w, io.LimitReader(zeros{}, size)); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		out[enc] = buf.Bytes()
	}
	return out, nil
})

// TestDecompressBomb checks that a small body that inflates to a gigabyte
// is refused once the limit is passed: quickly, and without allocating much
// more than the limit.
func TestDecompressBomb(t *testing.T) {
	if testing.Short() {
		t.Skip("builds bombs of a gigabyte")
	}
	bs, err := bombs()
	if err != nil {
		t.Fatal(err)
	}
	const limit = 5 << 20
	for _, name := range []string{"gzip", "zstd", "zstd with size"} {
		t.Run(name, func(t *testing.T) {
			enc := strings.Fields(name)[0]
			t.Logf("%s bomb: %d bytes for %d MiB", name, len(bs[name]), bombSize()>>20)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			out, err := Decompress(nil, []byte(enc), bs[name], limit)
			took := time.Since(start)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, apierr.TooLarge) {
				t.Fatalf("err = %v; want apierr.TooLarge", err)
			}
			if len(out) > limit+1 {
				t.Fatalf("decompressed %d bytes; want at most limit+1 = %d", len(out), limit+1)
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("refused after %v, %d MiB allocated", took, alloc>>20)
			if alloc > 64<<20 {
				t.Fatalf("allocated %d MiB to refuse a bomb with a %d MiB limit", alloc>>20, limit>>20)
			}
			if took > 5*time.Second {
				t.Fatalf("took %v to refuse; it must stop at the limit, not decompress the gigabyte", took)
			}
		})
	}
}

func TestReadLimited(t *testing.T) {
	data := []byte(strings.Repeat("0123456789", 100))
	tests := []struct {
		name     string
		r        io.Reader
		dst      []byte
		limit    int
		want     string
		wantKind error
	}{
		{name: "under", r: bytes.NewReader(data), limit: 2000, want: string(data)},
		{name: "at the limit", r: bytes.NewReader(data), limit: len(data), want: string(data)},
		{name: "over by one", r: bytes.NewReader(data), limit: len(data) - 1, wantKind: apierr.TooLarge},
		{name: "zero limit, empty", r: bytes.NewReader(nil), limit: 0, want: ""},
		{name: "zero limit", r: bytes.NewReader(data), limit: 0, wantKind: apierr.TooLarge},
		{name: "one byte at a time", r: iotest.OneByteReader(bytes.NewReader(data)), limit: len(data), want: string(data)},
		{name: "data with EOF", r: iotest.DataErrReader(bytes.NewReader(data)), limit: len(data), want: string(data)},
		{name: "half reads", r: iotest.HalfReader(bytes.NewReader(data)), limit: len(data), want: string(data)},
		{name: "appends to dst", r: bytes.NewReader(data[:10]), dst: []byte("x:"), limit: 100, want: "x:0123456789"},
		{name: "dst with spare capacity", r: bytes.NewReader(data), dst: make([]byte, 0, 4096), limit: len(data), want: string(data)},
		{name: "dst capacity over the limit", r: bytes.NewReader(data), dst: make([]byte, 0, 4096), limit: 10, wantKind: apierr.TooLarge},
		{name: "read error", r: iotest.ErrReader(errors.New("connection reset")), limit: 100, wantKind: apierr.Invalid},
		{name: "timeout", r: iotest.TimeoutReader(bytes.NewReader(data)), limit: 2000, wantKind: apierr.Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadLimited(tt.dst, tt.r, tt.limit, "request body")
			if tt.wantKind != nil {
				if !errors.Is(err, tt.wantKind) {
					t.Fatalf("err = %v; want %v", err, tt.wantKind)
				}
				if len(got)-len(tt.dst) > tt.limit+1 {
					t.Fatalf("read %d bytes past a limit of %d", len(got), tt.limit)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("got %q, %v; want %q, nil", got, err, tt.want)
			}
		})
	}
}

// TestDecompressZstdWindow checks that zstd streams with the 8 MiB window
// common encoders declare are taken whatever max_request_bytes is, and
// that larger windows are refused rather than allocated.
func TestDecompressZstdWindow(t *testing.T) {
	body := bench.NewGenerator(2, appKey).AppendNDJSON(nil, 3000)
	tests := []struct {
		name    string
		opts    []zstd.EOption
		limit   int
		wantErr bool
	}{
		{name: "default level", opts: []zstd.EOption{zstd.WithEncoderLevel(zstd.SpeedDefault)}, limit: 5 << 20},
		{name: "best level", opts: []zstd.EOption{zstd.WithEncoderLevel(zstd.SpeedBestCompression)}, limit: 5 << 20},
		{name: "8 MiB window, small limit", opts: []zstd.EOption{zstd.WithWindowSize(8 << 20)}, limit: len(body)},
		{name: "16 MiB window", opts: []zstd.EOption{zstd.WithWindowSize(16 << 20)}, limit: 5 << 20, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			zw, err := zstd.NewWriter(&buf, append(tt.opts, zstd.WithEncoderConcurrency(1))...)
			if err != nil {
				t.Fatal(err)
			}
			// Written in pieces, as a streaming client does: the frame
			// header then declares the window, not the content size.
			for i := 0; i < len(body); i += 64 << 10 {
				if _, err := zw.Write(body[i:min(len(body), i+64<<10)]); err != nil {
					t.Fatal(err)
				}
			}
			if err := zw.Close(); err != nil {
				t.Fatal(err)
			}
			var h zstd.Header
			if err := h.Decode(buf.Bytes()); err != nil || h.HasFCS {
				t.Fatalf("frame header %+v, %v; want a streamed frame without content size", h, err)
			}
			got, err := Decompress(nil, []byte("zstd"), buf.Bytes(), tt.limit)
			if tt.wantErr {
				var re *apierr.Error
				if !errors.As(err, &re) || !(errors.Is(err, apierr.Invalid) || errors.Is(err, apierr.TooLarge)) || !strings.Contains(re.Message, "window") {
					t.Fatalf("err = %v; want the window refused", err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("window %d: got %d bytes, %v; want the %d sent", h.WindowSize, len(got), err, len(body))
			}
		})
	}
}

const appKey = "yz1Jn-0pSnekg58etEQO4A"

// testEvent is the generator's event number i, as one JSON object.
func testEvent(i int) string {
	return string(bytes.TrimSpace(bench.NewGenerator(int64(i)+1, appKey).AppendNDJSON(nil, 1)))
}
