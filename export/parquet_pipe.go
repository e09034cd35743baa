package export

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/parquet-go/parquet-go"
)

// A pipelined ParquetWriter (Pipeline, the HTTP export's) writes its row
// groups on two goroutines side by side: most of a Parquet export's time
// is compressing pages (zstd), which one row group's columns do one after
// the other, so the caller gathers events into batches and hands row group
// 0 to worker 0, row group 1 to worker 1, row group 2 to worker 0 again
// once it has caught up, and so on. A worker writes each batch into
// its row group's column writers as it comes (parquet-go's
// ConcurrentRowGroupWriter), and commits the row group once the one before
// it is committed, so the file's row groups keep the events' order.
//
// The batches hold the stored bodies, one buffer per batch, and the
// worker converts them to rows (JSON decoding) just before writing them:
// so the conversion runs on the workers too, and the queue holds bodies
// (~570 bytes per event for trove bench's) rather than decoded rows, whose
// strings take twice that. The heap of a pipelined export stays well
// below Go's soft memory limit (128 MiB by default); queued rows used to
// bring it close enough that the collector ran every few milliseconds.
//
// Memory: each worker queues at most a row group of bodies
// (parquetPipeGroupRows) besides the row group it writes, whose compressed
// pages it holds until the commit.

// parquetPipeGroupRows is the number of rows in each row group of a
// pipelined writer.
const parquetPipeGroupRows = 16 << 10

// errAborted ends the work of a pipeline whose export stopped.
var errAborted = errors.New("the Parquet export stopped")

// parquetPipe is the pipeline of a ParquetWriter.
type parquetPipe struct {
	workers [2]*parquetWorker
	cur     int           // the worker of the row group being filled
	rows    int           // rows handed to that row group so far
	last    chan struct{} // closed once the row group before it is committed
	free    chan *bodyBatch

	errMu  sync.Mutex
	err    error
	failed atomic.Bool
}

// parquetWorker writes every other row group.
type parquetWorker struct {
	rg   *parquet.ConcurrentRowGroupWriter
	work chan pipeWork
	done chan struct{}
	rows []ParquetRow      // one batch, converted
	head storedHead        // appendRow's scratch
	vals [][]parquet.Value // per column, the values of one batch
}

// bodyBatch is up to parquetBatch stored events: body i is
// arena[ends[i-1]:ends[i]].
type bodyBatch struct {
	seqs  []uint64
	ends  []int
	arena []byte
}

func newBodyBatch() *bodyBatch {
	return &bodyBatch{seqs: make([]uint64, 0, parquetBatch), ends: make([]int, 0, parquetBatch)}
}

func (b *bodyBatch) reset() {
	b.seqs, b.ends, b.arena = b.seqs[:0], b.ends[:0], b.arena[:0]
}

// pipeWork is a batch of events for a worker's row group, or with batch
// nil the end of the row group: commit it once after is closed, then close
// committed.
type pipeWork struct {
	batch     *bodyBatch
	after     <-chan struct{}
	committed chan struct{}
}

// Pipeline makes p write and compress its rows on two goroutines until
// Close (or, for a pooled writer, until it is put back), in row groups of
// parquetPipeGroupRows: a Parquet export then uses two cores. Call it
// before the first Append.
func (p *ParquetWriter) Pipeline() {
	if p.pipe != nil {
		return
	}
	queue := parquetPipeGroupRows / parquetBatch
	pp := &parquetPipe{last: make(chan struct{}), free: make(chan *bodyBatch, 2*queue+4)}
	close(pp.last)
	for i := range pp.workers {
		wk := &parquetWorker{rg: p.w.BeginRowGroup(), work: make(chan pipeWork, queue), done: make(chan struct{}),
			rows: make([]ParquetRow, 0, parquetBatch), vals: make([][]parquet.Value, len(parquetLeaves))}
		pp.workers[i] = wk
		go pp.run(wk)
	}
	p.pipe, p.batch = pp, newBodyBatch()
}

// add hands a full batch to the current row group's worker, ending the
// row group when it is full, and returns an empty batch to fill.
func (pp *parquetPipe) add(b *bodyBatch) (*bodyBatch, error) {
	if pp.failed.Load() {
		b.reset()
		return b, pp.error()
	}
	n := len(b.seqs)                              // b is the worker's once sent
	pp.workers[pp.cur].work <- pipeWork{batch: b} // waits while that worker is a row group behind
	if pp.rows += n; pp.rows >= parquetPipeGroupRows {
		pp.endGroup()
	}
	select {
	case b := <-pp.free:
		return b, nil
	default:
		return newBodyBatch(), nil
	}
}

// endGroup ends the current row group, to be committed after the last,
// and starts the next on the other worker.
func (pp *parquetPipe) endGroup() {
	committed := make(chan struct{})
	pp.workers[pp.cur].work <- pipeWork{after: pp.last, committed: committed}
	pp.last, pp.cur, pp.rows = committed, 1-pp.cur, 0
}

// stop ends the row group being filled (when it has rows and abort is
// false), waits for the workers to finish and returns the first error.
// With abort, queued rows are dropped.
func (pp *parquetPipe) stop(abort bool) error {
	if abort {
		pp.fail(errAborted)
	} else if pp.rows > 0 {
		pp.endGroup()
	}
	for _, wk := range pp.workers {
		close(wk.work)
	}
	for _, wk := range pp.workers {
		<-wk.done
	}
	if abort {
		return nil
	}
	return pp.error()
}

// run is a worker's loop.
func (pp *parquetPipe) run(wk *parquetWorker) {
	defer close(wk.done)
	for w := range wk.work {
		if w.batch == nil {
			<-w.after
			if !pp.failed.Load() {
				err := wk.rg.Flush()
				if err == nil {
					_, err = wk.rg.Commit()
				}
				pp.fail(err)
			}
			close(w.committed)
			continue
		}
		if !pp.failed.Load() {
			pp.fail(wk.convert(w.batch))
		}
		if !pp.failed.Load() {
			pp.fail(wk.write(wk.rows))
		}
		clear(wk.rows) // drop the strings for the collector
		w.batch.reset()
		select {
		case pp.free <- w.batch:
		default:
		}
	}
}

func (pp *parquetPipe) fail(err error) {
	if err == nil {
		return
	}
	pp.errMu.Lock()
	if pp.err == nil {
		pp.err = fmt.Errorf("cannot write Parquet rows: %w", err)
	}
	pp.errMu.Unlock()
	pp.failed.Store(true)
}

func (pp *parquetPipe) error() error {
	pp.errMu.Lock()
	defer pp.errMu.Unlock()
	return pp.err
}

// parquetLeaf is where a field of ParquetRow goes in the file.
type parquetLeaf struct {
	name     string
	index    int
	optional bool
}

// parquetLeaves are ParquetRow's columns, in the order write fills them.
var parquetLeaves = func() []parquetLeaf {
	schema := parquet.SchemaOf(ParquetRow{})
	var leaves []parquetLeaf
	for _, name := range []string{"seq", "appKey", "event", "userId", "messageId", "eventTime", "receivedAt",
		"originalEventTime", "clockSkewMs", "context_ip", "context_userAgent", "attributes", "raw"} {
		leaf, ok := schema.Lookup(name)
		if !ok || leaf.MaxRepetitionLevel != 0 || leaf.MaxDefinitionLevel > 1 {
			panic("BUG: the Parquet schema has no flat column " + name)
		}
		leaves = append(leaves, parquetLeaf{name, leaf.ColumnIndex, leaf.MaxDefinitionLevel == 1})
	}
	if len(leaves) != len(schema.Columns()) {
		panic("BUG: ParquetRow has columns that the pipeline does not write")
	}
	return leaves
}()

// convert turns b's bodies into wk.rows. A row's raw column is its body
// in b's buffer, which the column writers copy before write returns.
func (wk *parquetWorker) convert(b *bodyBatch) error {
	wk.rows = wk.rows[:0]
	start := 0
	for i, seq := range b.seqs {
		body := b.arena[start:b.ends[i]]
		start = b.ends[i]
		var err error
		if wk.rows, err = appendRow(wk.rows, &wk.head, seq, body, unsafe.String(unsafe.SliceData(body), len(body))); err != nil {
			return err
		}
	}
	return nil
}

// write adds rows to the worker's row group, column by column. An
// optional column's zero value is null, as GenericWriter writes it.
func (wk *parquetWorker) write(rows []ParquetRow) error {
	for i := range wk.vals {
		wk.vals[i] = wk.vals[i][:0]
	}
	for k := range rows {
		r := &rows[k]
		wk.int64(0, r.Seq, true)
		wk.bytes(1, r.AppKey)
		wk.bytes(2, r.Event)
		wk.bytes(3, r.UserID)
		wk.bytes(4, r.MessageID)
		wk.int64(5, r.EventTime, true)
		wk.int64(6, r.ReceivedAt, true)
		wk.int64(7, r.OriginalEventTime, r.OriginalEventTime != 0)
		wk.int64(8, r.ClockSkewMs, r.ClockSkewMs != 0)
		wk.bytes(9, r.ContextIP)
		wk.bytes(10, r.ContextUserAgent)
		wk.bytes(11, r.Attributes)
		wk.bytes(12, r.Raw)
	}
	cols := wk.rg.ColumnWriters()
	for i, l := range parquetLeaves {
		if _, err := cols[l.index].WriteRowValues(wk.vals[i]); err != nil {
			return fmt.Errorf("column %s: %w", l.name, err)
		}
	}
	return nil
}

func (wk *parquetWorker) int64(i int, v int64, present bool) {
	wk.add(i, parquet.Int64Value(v), present)
}

// bytes adds a string without copying it: the column writer copies the
// value before write returns.
func (wk *parquetWorker) bytes(i int, s string) {
	wk.add(i, parquet.ByteArrayValue(unsafe.Slice(unsafe.StringData(s), len(s))), s != "")
}

func (wk *parquetWorker) add(i int, v parquet.Value, present bool) {
	l := parquetLeaves[i]
	switch {
	case !l.optional:
		v = v.Level(0, 0, l.index)
	case present:
		v = v.Level(0, 1, l.index)
	default:
		v = parquet.NullValue().Level(0, 0, l.index)
	}
	wk.vals[i] = append(wk.vals[i], v)
}
