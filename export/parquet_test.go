package export_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"trove/export"
	"trove/internal/duckdbtest"
)

// parquetBody is a stored event of appA with the members a Parquet row
// takes.
func parquetBody(i int) string {
	return fmt.Sprintf(`{"type":"event","event":"e%d","userId":"u%d","eventTime":"2024-01-02T03:04:05.%06dZ","appKey":"%s","messageId":"m%d","attributes":{"i":%d},"context":{"ip":"10.0.0.1"},"receivedAt":"2024-01-02T03:04:06.000Z"}`,
		i%5, i%11, i%1000000, appA, i, i)
}

// firstWrite records how many rows had been appended when the first byte
// reached the underlying writer.
type firstWrite struct {
	w        io.Writer
	rows     func() int64
	atRows   int64
	n        int64
	wroteAny bool
}

func (f *firstWrite) Write(p []byte) (int, error) {
	if !f.wroteAny && len(p) > 0 {
		f.wroteAny, f.atRows = true, f.rows()
	}
	f.n += int64(len(p))
	return f.w.Write(p)
}

// TestParquetWriterStreams checks that a file goes out in row groups as
// they fill, before the footer, and that DuckDB reads every row back.
func TestParquetWriterStreams(t *testing.T) {
	duckdbtest.Dir(t)
	path := filepath.Join(t.TempDir(), "rows.parquet")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	const rows, perGroup = 2500, 1000
	fw := &firstWrite{w: f}
	pw := export.NewParquetWriter(fw, perGroup)
	fw.rows = pw.Rows
	for i := range rows {
		if err := pw.Append(uint64(i+1), []byte(parquetBody(i))); err != nil {
			t.Fatal(err)
		}
	}
	if !fw.wroteAny || fw.atRows > perGroup+512 {
		t.Errorf("first byte written after %d of %d rows (wrote any: %v); want it once the first row group of %d filled", fw.atRows, rows, fw.wroteAny, perGroup)
	}
	if err := pw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	lit := duckdbtest.Literal(path)
	groups := duckdbtest.Query(t, "SELECT count(DISTINCT row_group_id) AS n FROM parquet_metadata("+lit+")")
	if got := fmt.Sprint(groups[0]["n"]); got != "3" {
		t.Errorf("%s row groups; want 3 of at most %d rows", got, perGroup)
	}
	got := duckdbtest.Query(t, "SELECT seq, raw, epoch_us(eventTime) AS us FROM read_parquet("+lit+")")
	if len(got) != rows {
		t.Fatalf("DuckDB read %d rows; want %d", len(got), rows)
	}
	for i, r := range got {
		want := parquetBody(i)
		us := time.Date(2024, 1, 2, 3, 4, 5, (i%1000000)*1000, time.UTC).UnixMicro()
		if r["seq"] != strconv.Itoa(i+1) || r["raw"] != want || r["us"] != strconv.FormatInt(us, 10) {
			t.Fatalf("row %d: %v; want seq %d, eventTime %d µs and raw %s", i, r, i+1, us, want)
		}
	}
}

// TestParquetWriterRefusesBadEvent checks that a stored line that is not
// an event's JSON is an error naming its sequence, not a silent row.
func TestParquetWriterRefusesBadEvent(t *testing.T) {
	pw := export.NewParquetWriter(io.Discard, 0)
	for _, tc := range []struct{ name, body, want string }{
		{"not JSON", `{"event":`, "seq 7"},
		{"no eventTime", `{"event":"e","receivedAt":"2024-01-02T03:04:06.000Z"}`, "eventTime"},
		{"bad receivedAt", `{"event":"e","eventTime":"2024-01-02T03:04:06Z","receivedAt":"yesterday"}`, "receivedAt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := pw.Append(7, []byte(tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v; want an error naming %s", err, tc.want)
			}
		})
	}
}

// TestParquetOverHTTPAborted checks that a store failure after the first
// row group has gone out breaks the connection: the client sees an
// incomplete transfer, and what it got has no footer, so DuckDB refuses it.
func TestParquetOverHTTPAborted(t *testing.T) {
	duckdbtest.Dir(t)
	db := openStore(t)
	var bodies []string
	for i := range export.ParquetRowGroupRows + 20000 {
		bodies = append(bodies, parquetBody(i))
	}
	store(t, db, appA, bodies, 5000)
	h := export.NewHandler(db, registry(), slog.New(slog.DiscardHandler))
	resp, err := smallReads.Get(serve(t, h, true) + "&format=parquet")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != export.ParquetContentType {
		t.Errorf("Content-Type %q; want %s", ct, export.ParquetContentType)
	}
	sent := failMidStream(t, db, resp)
	if !bytes.HasPrefix(sent, []byte("PAR1")) {
		t.Errorf("the first bytes %q; want the PAR1 magic of a row group on its way", sent[:min(len(sent), 4)])
	}
	path := filepath.Join(t.TempDir(), "cut.parquet")
	if err := os.WriteFile(path, sent, 0o600); err != nil {
		t.Fatal(err)
	}
	if msg := duckdbtest.QueryErr(t, "SELECT count(*) FROM read_parquet("+duckdbtest.Literal(path)+")"); msg == "" {
		t.Errorf("DuckDB read the cut file as a whole one")
	}
}

// failingWriter fails every write after the first n bytes.
type failingWriter struct{ n int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if f.n -= len(p); f.n < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

// TestParquetPipeline checks that a pipelined writer (Pipeline, as the
// HTTP export writes) makes a file that parquet-go reads back as the rows
// of one that writes in the caller's goroutine, in the same order, with
// its row groups committed in order; and that a write that fails in a
// worker is the error of a later Append or of Close, without a hang.
func TestParquetPipeline(t *testing.T) {
	// Three row groups of a pipelined writer, with optional columns null
	// and set.
	const rows = 40000
	body := func(i int) string {
		b := parquetBody(i)
		switch i % 3 {
		case 1:
			b = strings.Replace(b, `"context":{"ip":"10.0.0.1"}`, `"context":{"ip":"10.0.0.1","userAgent":"ua/1"},"originalEventTime":"2024-01-02T04:04:05Z","clockSkewMs":-3600000`, 1)
		case 2:
			b = strings.Replace(strings.Replace(b, `,"context":{"ip":"10.0.0.1"}`, "", 1), `,"attributes":{"i":`+strconv.Itoa(i)+`}`, "", 1)
		}
		return b
	}
	write := func(pipelined bool) []export.ParquetRow {
		var buf bytes.Buffer
		pw := export.NewParquetWriter(&buf, 1000)
		if pipelined {
			pw.Pipeline()
		}
		for i := range rows {
			if err := pw.Append(uint64(i+1), []byte(body(i))); err != nil {
				t.Fatal(err)
			}
		}
		if err := pw.Close(); err != nil {
			t.Fatal(err)
		}
		got, err := parquet.Read[export.ParquetRow](bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	a, b := write(false), write(true)
	if len(a) != rows || len(b) != rows {
		t.Fatalf("read back %d and %d rows; want %d", len(a), len(b), rows)
	}
	if a[1].ClockSkewMs != -3600000 || a[1].ContextUserAgent != "ua/1" || a[2].ContextIP != "" || a[2].Attributes != "" {
		t.Fatalf("the rows do not hold what the test gave them: %+v, %+v", a[1], a[2])
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("row %d: pipelined %+v; want %+v", i, b[i], a[i])
		}
	}

	pw := export.NewParquetWriter(&failingWriter{n: 10}, 1000)
	pw.Pipeline()
	var err error
	for i := 0; i < 20000 && err == nil; i++ {
		err = pw.Append(uint64(i+1), []byte(parquetBody(i)))
	}
	if cerr := pw.Close(); err == nil {
		err = cerr
	}
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("a pipelined writer whose output fails: %v; want the write's error", err)
	}

	// A pipelined writer converts on its workers: an event that is not a
	// stored event fails a later Append or Close, naming its sequence,
	// whether it is the last one or more follow.
	for _, more := range []int{0, 5000} {
		pw = export.NewParquetWriter(io.Discard, 1000)
		pw.Pipeline()
		err = nil
		for i := 0; i < 700 && err == nil; i++ {
			err = pw.Append(uint64(i+1), []byte(parquetBody(i)))
		}
		if err == nil {
			err = pw.Append(701, []byte(`{"event":"x","eventTime":"yesterday"}`))
		}
		for i := 0; i < more && err == nil; i++ {
			err = pw.Append(uint64(702+i), []byte(parquetBody(i)))
		}
		if cerr := pw.Close(); err == nil {
			err = cerr
		}
		if err == nil || !strings.Contains(err.Error(), "seq 701") || !strings.Contains(err.Error(), "eventTime") {
			t.Errorf("a pipelined writer given an event it cannot convert (%d after it): %v; want an error naming seq 701's eventTime", more, err)
		}
	}
}
