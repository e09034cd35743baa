package export

import (
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go/format"
)

// parquetZstd compresses the pages of Parquet exports: parquet-go's zstd
// codec at the default level, but with a window of the page buffer's size
// (parquetPageBytes) instead of zstd's 8 MiB, which a page of at most that
// size never reaches: the same pages, and 1-2 MiB of history per encoder
// instead of ~8. A pipelined export keeps about four encoders busy, and
// their history made up a quarter of its heap.
var parquetZstd = &zstdCodec{}

// parquetPageBytes is the size at which the column writers cut a page.
const parquetPageBytes = 1 << 20

type zstdCodec struct {
	encoders sync.Pool
	decoder  struct {
		once sync.Once
		d    *zstd.Decoder
		err  error
	}
}

func (c *zstdCodec) String() string { return "ZSTD" }

func (c *zstdCodec) CompressionCodec() format.CompressionCodec { return format.Zstd }

func (c *zstdCodec) Encode(dst, src []byte) ([]byte, error) {
	e, _ := c.encoders.Get().(*zstd.Encoder)
	if e == nil {
		var err error
		e, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(parquetPageBytes), zstd.WithZeroFrames(true), zstd.WithEncoderCRC(false))
		if err != nil {
			return dst, err
		}
	}
	dst = e.EncodeAll(src, dst[:0])
	c.encoders.Put(e)
	return dst, nil
}

// Decode is for readers of the file; Trove only writes Parquet.
func (c *zstdCodec) Decode(dst, src []byte) ([]byte, error) {
	c.decoder.once.Do(func() { c.decoder.d, c.decoder.err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0)) })
	if c.decoder.err != nil {
		return dst, c.decoder.err
	}
	return c.decoder.d.DecodeAll(src, dst[:0])
}
