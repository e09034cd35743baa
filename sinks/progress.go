package sinks

import (
	"fmt"

	"github.com/goccy/go-json"

	"trove/storage"
)

// progress is what a sink keeps in the store per app: its value under the
// meta name "sink/{sink}/{appKey}", as JSON. Its fields are a stored format:
// add, never rename.
type progress struct {
	// Done is the sequence at or below which every event of the app is in
	// a file (or was a deleted user's).
	Done uint64 `json:"done"`
	// Pending, when set, is the file being uploaded: the range
	// (Done, Pending.To] under the day Pending.Day. It is built and
	// uploaded again, under the same name, until the upload succeeds.
	Pending *pendingFile `json:"pending,omitempty"`
	// Files and Bytes count what this sink wrote for the app.
	Files int64 `json:"files"`
	Bytes int64 `json:"bytes"`
	// LastFile is the key of the last file written.
	LastFile string `json:"lastFile,omitempty"`
}

type pendingFile struct {
	To  uint64 `json:"to"`
	Day string `json:"day"` // YYYY-MM-DD
}

func metaName(sink, app string) string { return "sink/" + sink + "/" + app }

// loadProgress reads the app's progress, zero when the sink never ran.
func loadProgress(db *storage.DB, sink, app string) (progress, error) {
	var p progress
	v, err := db.GetMeta(metaName(sink, app))
	if err != nil || v == nil {
		return p, err
	}
	if err := json.Unmarshal(v, &p); err != nil {
		return p, fmt.Errorf("cannot read the progress of sink %s for app %s: %w", sink, app, err)
	}
	return p, nil
}

// saveProgress stores p durably.
func saveProgress(db *storage.DB, sink, app string, p progress) error {
	v, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if err := db.SetMeta(metaName(sink, app), v); err != nil {
		return fmt.Errorf("cannot store the progress of sink %s for app %s: %w", sink, app, err)
	}
	return nil
}
