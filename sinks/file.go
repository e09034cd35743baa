package sinks

import (
	"bytes"
	"fmt"
	"time"

	"github.com/klauspost/compress/zstd"

	"trove/export"
	"trove/storage"
)

// builtFile is one file's bytes, built in memory.
type builtFile struct {
	data []byte
	rows int
	day  string // the UTC day of the first event's receivedAt
}

// buildFile writes the app's events with since < seq <= until in snap that
// f keeps, as format.
func buildFile(snap *storage.Snapshot, app uint32, since, until uint64, f *storage.Filter, format string) (*builtFile, error) {
	var buf bytes.Buffer
	out := &builtFile{}
	var add func(seq uint64, body []byte) error
	var finish func() error
	switch format {
	case "parquet":
		pw := export.NewParquetWriter(&buf, 0)
		add, finish = pw.Append, pw.Close
	default: // ndjson.zst
		zw, err := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		add = func(_ uint64, body []byte) error {
			zw.Write(body)
			_, err := zw.Write([]byte{'\n'})
			return err
		}
		finish = zw.Close
	}
	err := snap.EventsBySeqWhere(app, since, until, f, func(seq uint64, _ int64, body []byte) error {
		if out.rows == 0 {
			t, err := receivedAt(body)
			if err != nil {
				return fmt.Errorf("event seq %d: %w", seq, err)
			}
			out.day = t.UTC().Format("2006-01-02")
		}
		out.rows++
		return add(seq, body)
	})
	if err != nil {
		return nil, err
	}
	if err := finish(); err != nil {
		return nil, err
	}
	out.data = buf.Bytes()
	return out, nil
}

var receivedAtMember = []byte(`"receivedAt":"`)

// receivedAt reads the server's receivedAt from a stored event, which puts
// it last.
func receivedAt(body []byte) (time.Time, error) {
	i := bytes.LastIndex(body, receivedAtMember)
	if i < 0 {
		return time.Time{}, fmt.Errorf("the stored event has no receivedAt")
	}
	v := body[i+len(receivedAtMember):]
	j := bytes.IndexByte(v, '"')
	if j < 0 {
		return time.Time{}, fmt.Errorf("the stored event's receivedAt is not a string")
	}
	return time.Parse(time.RFC3339Nano, string(v[:j]))
}

// extension is the file name suffix of format.
func extension(format string) string {
	if format == "parquet" {
		return ".parquet"
	}
	return ".ndjson.zst"
}

func contentType(format string) string {
	if format == "parquet" {
		return export.ParquetContentType
	}
	return "application/zstd"
}
