package export

import (
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"

	"github.com/goccy/go-json"
	"github.com/parquet-go/parquet-go"
)

// ParquetRow is one event as a row of a Parquet export (SPEC section 8).
// Optional columns are null when the stored event has no such member: the
// zero value of an optional field is written as null.
type ParquetRow struct {
	Seq               int64  `parquet:"seq,delta"`
	AppKey            string `parquet:"appKey,dict"`
	Event             string `parquet:"event,dict"`
	UserID            string `parquet:"userId,dict"`
	MessageID         string `parquet:"messageId"`
	EventTime         int64  `parquet:"eventTime,timestamp(microsecond:utc)"`
	ReceivedAt        int64  `parquet:"receivedAt,timestamp(microsecond:utc),delta"`
	OriginalEventTime int64  `parquet:"originalEventTime,optional,timestamp(microsecond:utc)"`
	ClockSkewMs       int64  `parquet:"clockSkewMs,optional"`
	ContextIP         string `parquet:"context_ip,optional,dict"`
	ContextUserAgent  string `parquet:"context_userAgent,optional,dict"`
	Attributes        string `parquet:"attributes,optional"`
	Raw               string `parquet:"raw"`
}

// storedHead is what a Parquet row takes from a stored event's JSON.
type storedHead struct {
	AppKey            string          `json:"appKey"`
	Event             string          `json:"event"`
	UserID            string          `json:"userId"`
	MessageID         string          `json:"messageId"`
	EventTime         string          `json:"eventTime"`
	ReceivedAt        string          `json:"receivedAt"`
	OriginalEventTime string          `json:"originalEventTime"`
	ClockSkewMs       int64           `json:"clockSkewMs"`
	Context           storedContext   `json:"context"`
	Attributes        json.RawMessage `json:"attributes"`
}

type storedContext struct {
	IP        string `json:"ip"`
	UserAgent string `json:"userAgent"`
}

// ParquetRowGroupRows is the number of rows in each row group of a Parquet
// file written in one goroutine (a sink's; a pipelined writer's have
// parquetPipeGroupRows). The writer holds one row group's compressed pages
// (a few MiB for events of ~500 bytes) before writing it out, so it bounds
// the memory of a file; readers such as DuckDB parallelise over row groups.
const ParquetRowGroupRows = 64 << 10

// parquetBatch is how many events are converted and handed to the Parquet
// writer (or a pipeline's worker) at a time.
const parquetBatch = 512

// ParquetWriter converts stored events to Parquet rows and streams them to
// an io.Writer in row groups: bytes go out as each row group fills, the
// footer last, on Close. It is not safe for concurrent use.
type ParquetWriter struct {
	w     *parquet.GenericWriter[ParquetRow]
	rows  []ParquetRow
	head  storedHead
	n     int64
	pipe  *parquetPipe // nil: rows are written in Append's goroutine
	batch *bodyBatch   // the pipeline's batch being filled
	slot  bool         // holds one of parquetPipes
}

// NewParquetWriter returns a ParquetWriter writing a file to w, with
// rowGroupRows rows in each row group (ParquetRowGroupRows when 0).
func NewParquetWriter(w io.Writer, rowGroupRows int) *ParquetWriter {
	if rowGroupRows <= 0 {
		rowGroupRows = ParquetRowGroupRows
	}
	pw := parquet.NewGenericWriter[ParquetRow](w,
		parquet.Compression(parquetZstd),
		parquet.MaxRowsPerRowGroup(int64(rowGroupRows)),
		parquet.PageBufferSize(parquetPageBytes),
		parquet.WriteBufferSize(0), // the caller buffers
		parquet.CreatedBy("trove", "1", ""),
	)
	return &ParquetWriter{w: pw, rows: make([]ParquetRow, 0, parquetBatch)}
}

// Rows returns the number of rows written so far (buffered ones included).
func (p *ParquetWriter) Rows() int64 {
	n := p.n + int64(len(p.rows))
	if p.pipe != nil {
		n += int64(len(p.batch.seqs))
	}
	return n
}

// Append adds the stored event body with ingest sequence seq. body is
// only read during the call. A pipelined writer converts it later, on a
// worker, so an event that cannot be converted fails a later Append or
// Close instead.
func (p *ParquetWriter) Append(seq uint64, body []byte) error {
	if p.pipe != nil {
		b := p.batch
		b.seqs = append(b.seqs, seq)
		b.arena = append(b.arena, body...)
		b.ends = append(b.ends, len(b.arena))
		if len(b.seqs) == parquetBatch {
			return p.flushRows()
		}
		return nil
	}
	var err error
	if p.rows, err = appendRow(p.rows, &p.head, seq, body, string(body)); err != nil {
		return err
	}
	if len(p.rows) == cap(p.rows) {
		return p.flushRows()
	}
	return nil
}

// appendRow appends the row of the stored event body with sequence seq to
// rows; raw is body as a string, the row's raw column. h is scratch.
func appendRow(rows []ParquetRow, h *storedHead, seq uint64, body []byte, raw string) ([]ParquetRow, error) {
	*h = storedHead{}
	if err := json.Unmarshal(body, h); err != nil {
		return rows, fmt.Errorf("cannot convert event seq %d to Parquet: %w", seq, err)
	}
	et, err := parseStoredTime(h.EventTime)
	if err != nil {
		return rows, fmt.Errorf("cannot convert event seq %d to Parquet: eventTime: %w", seq, err)
	}
	rt, err := parseStoredTime(h.ReceivedAt)
	if err != nil {
		return rows, fmt.Errorf("cannot convert event seq %d to Parquet: receivedAt: %w", seq, err)
	}
	var ot int64
	if h.OriginalEventTime != "" {
		if ot, err = parseStoredTime(h.OriginalEventTime); err != nil {
			return rows, fmt.Errorf("cannot convert event seq %d to Parquet: originalEventTime: %w", seq, err)
		}
	}
	attrs := ""
	if len(h.Attributes) > 0 && string(h.Attributes) != "null" {
		attrs = string(h.Attributes)
	}
	return append(rows, ParquetRow{
		Seq:               int64(seq),
		AppKey:            h.AppKey,
		Event:             h.Event,
		UserID:            h.UserID,
		MessageID:         h.MessageID,
		EventTime:         et,
		ReceivedAt:        rt,
		OriginalEventTime: ot,
		ClockSkewMs:       h.ClockSkewMs,
		ContextIP:         h.Context.IP,
		ContextUserAgent:  h.Context.UserAgent,
		Attributes:        attrs,
		Raw:               raw,
	}), nil
}

func (p *ParquetWriter) flushRows() error {
	if pp := p.pipe; pp != nil {
		n := len(p.batch.seqs)
		if n == 0 {
			return nil
		}
		var err error
		if p.batch, err = pp.add(p.batch); err != nil {
			return err
		}
		p.n += int64(n)
		return nil
	}
	if len(p.rows) == 0 {
		return nil
	}
	n, err := p.w.Write(p.rows)
	p.n += int64(n)
	clear(p.rows) // drop the strings for the collector
	p.rows = p.rows[:0]
	if err != nil {
		return fmt.Errorf("cannot write Parquet rows: %w", err)
	}
	return nil
}

// Close writes what is buffered and the footer. The file is complete only
// once Close has returned nil; it does not close the underlying writer.
func (p *ParquetWriter) Close() error {
	if err := p.flushRows(); err != nil {
		p.stopPipe(true)
		return err
	}
	if err := p.stopPipe(false); err != nil {
		return err
	}
	if err := p.w.Close(); err != nil {
		return fmt.Errorf("cannot write the Parquet footer: %w", err)
	}
	return nil
}

// parseStoredTime returns an RFC 3339 time in µs since the Unix epoch.
func parseStoredTime(s string) (int64, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, err
	}
	return t.UnixMicro(), nil
}

var parquetWriterPool sync.Pool

// parquetPipes are the slots of pipelined Parquet exports: half the cores'
// worth run at once (one on two cores), each with its two workers; more
// would only share the same cores, so the exports beyond them convert in
// their own goroutine, with the memory of one row group.
var parquetPipes = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2))

// getParquetWriter returns a pooled ParquetWriter writing to w, pipelined
// when a slot is free.
func getParquetWriter(w io.Writer) *ParquetWriter {
	p, ok := parquetWriterPool.Get().(*ParquetWriter)
	if ok {
		p.w.Reset(w)
		p.n = 0
	} else {
		p = NewParquetWriter(w, 0)
	}
	select {
	case parquetPipes <- struct{}{}:
		p.Pipeline()
		p.slot = true
	default:
	}
	return p
}

// putParquetWriter returns p to the pool, ending its pipeline when the
// export stopped before Close, and frees its slot.
func putParquetWriter(p *ParquetWriter) {
	p.stopPipe(true)
	if p.slot {
		p.slot = false
		<-parquetPipes
	}
	clear(p.rows)
	p.rows = p.rows[:0]
	p.w.Reset(io.Discard)
	parquetWriterPool.Put(p)
}

// stopPipe ends p's pipeline, if any: see parquetPipe.stop.
func (p *ParquetWriter) stopPipe(abort bool) error {
	pp := p.pipe
	if pp == nil {
		return nil
	}
	p.pipe = nil
	return pp.stop(abort)
}
