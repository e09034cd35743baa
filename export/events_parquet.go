package export

import (
	"bufio"
	"errors"
	"strconv"

	"github.com/valyala/fasthttp"

	"trove/storage"
)

// ParquetContentType is the media type of a Parquet export.
const ParquetContentType = "application/vnd.apache.parquet"

// streamParquet sends the events scan yields as one Parquet file, with the
// snapshot's watermark. The file is already compressed (zstd columns), so
// Accept-Encoding is ignored. Row groups go out as they fill and the footer
// last: an error before the footer aborts the connection (see body), and a
// reader then finds no footer, never a short file that looks whole.
func (h *Handler) streamParquet(ctx *fasthttp.RequestCtx, snap *storage.Snapshot, scan func(fn func(seq uint64, body []byte) error) error) {
	ctx.SetContentType(ParquetContentType)
	ctx.Response.Header.Set("X-Trove-Watermark", strconv.FormatUint(snap.Watermark(), 10))
	out := eventsOut
	fill := func(w *bufio.Writer) error {
		pw := getParquetWriter(w)
		defer putParquetWriter(pw)
		counted := int64(0)
		err := scan(func(seq uint64, body []byte) error {
			if err := pw.Append(seq, body); err != nil {
				return err
			}
			if n := pw.Rows(); n-counted >= parquetBatch {
				out.Lines.Add(int(n - counted))
				counted = n
			}
			return nil
		})
		if err != nil && !errors.Is(err, errLimit) {
			return err
		}
		err = pw.Close()
		out.Lines.Add(int(pw.Rows() - counted))
		return err
	}
	ctx.SetBodyStream(&body{snap: snap, fill: fill, log: h.log, out: out, rows: true}, -1)
}
