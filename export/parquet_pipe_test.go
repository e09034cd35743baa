package export

import (
	"bytes"
	"testing"
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
