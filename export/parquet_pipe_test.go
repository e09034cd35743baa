package export

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// TestParquetPipeSlots checks that pipelined Parquet exports are bounded:
// with every slot taken, an export converts in its own goroutine, and a
// slot freed by an export that stopped early (put back without Close) is
// taken by the next one.
func TestParquetPipeSlots(t *testing.T) {
	var held []*ParquetWriter
	for range cap(parquetPipes) {
		p := getParquetWriter(&bytes.Buffer{})
		if p.pipe == nil {
			t.Fatal("an export with a slot free is not pipelined")
		}
		held = append(held, p)
	}
	extra := getParquetWriter(&bytes.Buffer{})
	if extra.pipe != nil || extra.slot {
		t.Error("an export beyond the slots is pipelined")
	}
	var buf bytes.Buffer
	extra.w.Reset(&buf)
	if err := extra.Append(1, []byte(`{"type":"event","event":"e","userId":"u","eventTime":"2024-01-02T03:04:05Z","receivedAt":"2024-01-02T03:04:06.000Z"}`)); err != nil {
		t.Fatal(err)
	}
	if err := extra.Close(); err != nil || buf.Len() == 0 {
		t.Fatalf("the export without a slot: %v, %d bytes", err, buf.Len())
	}
	putParquetWriter(extra)
	putParquetWriter(held[0]) // stopped early: its pipeline ends, its slot is freed
	next := getParquetWriter(&bytes.Buffer{})
	if next.pipe == nil {
		t.Error("the slot of an export that stopped early was not freed")
	}
	putParquetWriter(next)
	for _, p := range held[1:] {
		putParquetWriter(p)
	}
	if n := len(parquetPipes); n != 0 {
		t.Errorf("%d slots still taken after every export ended", n)
	}
}

// TestParquetPipeReuseAfterAbort checks that a pooled writer put back in
// the middle of a pipelined export (row groups committed, others queued)
// then writes a whole new file with only its own rows.
func TestParquetPipeReuseAfterAbort(t *testing.T) {
	body := func(i int) []byte {
		return fmt.Appendf(nil, `{"type":"event","event":"e%d","userId":"u","eventTime":"2024-01-02T03:04:05Z","receivedAt":"2024-01-02T03:04:06.000Z"}`, i)
	}
	for round := range 3 {
		p := getParquetWriter(io.Discard)
		for i := range 2*parquetPipeGroupRows + 1000 {
			if err := p.Append(uint64(i+1), body(i)); err != nil {
				t.Fatal(err)
			}
		}
		putParquetWriter(p) // stopped early
		var buf bytes.Buffer
		p = getParquetWriter(&buf)
		for i := range 100 {
			if err := p.Append(uint64(i+1), body(i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		putParquetWriter(p)
		rows, err := parquet.Read[ParquetRow](bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if len(rows) != 100 || rows[0].Seq != 1 || rows[99].Event != "e99" {
			t.Fatalf("round %d: the file after an aborted export has %d rows; want its own 100", round, len(rows))
		}
	}
}
