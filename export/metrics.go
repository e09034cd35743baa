package export

import (
	"bytes"
	"io"
	"sync"

	"trove/obs"
)

// The counters of each export kind, created at start so that their series
// show from the first scrape.
var (
	eventsOut   = obs.Export(obs.KindEvents)
	profilesOut = obs.Export(obs.KindProfiles)
	rejectedOut = obs.Export(obs.KindRejected)
	streamOut   = obs.Export(obs.KindStream)
)

// lineCounter counts the NDJSON lines written through it. It sits under
// the 64 KiB buffer, so it sees large writes: one count of newlines (a
// vectorised scan) and one atomic add per write.
type lineCounter struct {
	w   io.Writer
	out *obs.ExportCounters
}

func (l *lineCounter) Write(p []byte) (int, error) {
	n, err := l.w.Write(p)
	l.out.Lines.Add(bytes.Count(p[:n], []byte{'\n'}))
	return n, err
}

// doneHook lets the HTTP edge learn when a streamed response body ends:
// fasthttp writes it after the handler has returned, and the request is
// only over then. web logs and times the request from it.
type doneHook struct {
	fn   func(bytes int64, err error)
	once sync.Once
}

// OnDone sets fn, called once when the body has been written (err nil),
// was broken off (err says why), or was dropped unwritten. It must be set
// before fasthttp starts writing the body, that is before the handler's
// caller returns.
func (d *doneHook) OnDone(fn func(bytes int64, err error)) { d.fn = fn }

// done calls the OnDone function, once. It reports whether there was one
// (which then reports err, so that it is logged once).
func (d *doneHook) done(n int64, err error) bool {
	d.once.Do(func() {
		if d.fn != nil {
			d.fn(n, err)
		}
	})
	return d.fn != nil
}
