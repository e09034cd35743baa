package sinks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/goccy/go-json"

	"trove/config"
	"trove/storage"
)

// Manager runs the configured sinks.
type Manager struct {
	db     *storage.DB
	log    *slog.Logger
	sinks  []*sink
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// sink is one [[sinks]] entry at work.
type sink struct {
	cfg   config.Sink
	db    *storage.DB
	store objectStore
	log   *slog.Logger
	now   func() time.Time

	appsMu sync.Mutex
	apps   map[string]*appState
	all    bool // apps = ["*"]
}

// appState is what a sink knows of one app.
type appState struct {
	key string
	mu  struct {
		sync.Mutex
		p           progress
		loaded      bool
		lagEvents   int64
		oldest      time.Time // receivedAt of the oldest pending event
		errors      int64
		lastError   string
		lastErrorAt time.Time
		lastFileAt  time.Time
		// watermarkPut is the watermark this process last put in
		// _watermark.json: the object may be behind the progress (a
		// crash or a failure right after the file) until they match.
		watermarkPut uint64
	}
}

// Options are what New needs beyond the config.
type Options struct {
	// Transport, when set, carries the sinks' HTTP requests (tests).
	Transport http.RoundTripper
}

// New returns a Manager for cfgs; Start runs it.
func New(db *storage.DB, cfgs []config.Sink, log *slog.Logger, opts Options) (*Manager, error) {
	m := &Manager{db: db, log: log}
	for _, c := range cfgs {
		st, err := newS3Store(c, opts.Transport)
		if err != nil {
			return nil, err
		}
		s := &sink{cfg: c, db: db, store: st, log: log.With("sink", c.Name), now: time.Now, apps: map[string]*appState{}, all: slices.Contains(c.Apps, "*")}
		for _, k := range c.Apps {
			if k != "*" {
				s.apps[k] = &appState{key: k}
			}
		}
		m.sinks = append(m.sinks, s)
	}
	return m, nil
}

// Start runs each sink in its own goroutine until Stop.
func (m *Manager) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	for _, s := range m.sinks {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			s.run(ctx)
		}()
	}
}

// Stop ends the sinks and waits for them: an upload in flight is broken
// off, and done again after the next start (its range stays pending).
func (m *Manager) Stop() {
	if m.cancel != nil {
		m.cancel()
	}
	m.wg.Wait()
}

// poll is how often a sink looks for new events when all is well.
func (s *sink) poll() time.Duration {
	return min(max(s.cfg.Every.Std()/4, 50*time.Millisecond), time.Second)
}

// backoff is the wait after the n-th failure in a row (n >= 1): doubling
// from min(every, 1s) up to a minute, with jitter over its upper half, so
// that sinks (and Trove servers) sharing a store that comes back do not
// all retry at once.
func (s *sink) backoff(n int) time.Duration {
	d := min(s.cfg.Every.Std(), time.Second)
	for i := 1; i < n && d < time.Minute; i++ {
		d *= 2
	}
	d = min(d, time.Minute)
	return d/2 + rand.N(d/2+1)
}

func (s *sink) run(ctx context.Context) {
	s.log.Info("sink started", "endpoint", s.cfg.Endpoint, "bucket", s.cfg.Bucket, "prefix", s.cfg.Prefix, "format", s.cfg.Format)
	failures := 0
	for {
		err := s.cycle(ctx)
		wait := s.poll()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			failures++
			wait = s.backoff(failures)
			s.log.Warn("sink failed; retrying", "err", err, "failures", failures, "retry_in", wait.Round(time.Millisecond).String())
		case failures > 0:
			s.log.Info("sink recovered", "after_failures", failures)
			failures = 0
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// appStates returns the states of the sink's apps: those it names, or every
// app the store knows when it names "*".
func (s *sink) appStates() []*appState {
	s.appsMu.Lock()
	defer s.appsMu.Unlock()
	if s.all {
		for _, k := range s.db.AppKeys() {
			if s.apps[k] == nil {
				s.apps[k] = &appState{key: k}
			}
		}
	}
	out := make([]*appState, 0, len(s.apps))
	for _, a := range s.apps {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b *appState) int {
		if a.key < b.key {
			return -1
		}
		if a.key > b.key {
			return 1
		}
		return 0
	})
	return out
}

// cycle writes the files that are due for every app; it returns the first
// failure (after trying every app).
func (s *sink) cycle(ctx context.Context) error {
	var first error
	for _, a := range s.appStates() {
		for ctx.Err() == nil {
			wrote, err := s.step(ctx, a)
			if err != nil {
				a.fail(s.now(), err)
				if first == nil {
					first = fmt.Errorf("app %s: %w", a.key, err)
				}
				break
			}
			if !wrote {
				break
			}
		}
	}
	return first
}

func (a *appState) fail(now time.Time, err error) {
	a.mu.Lock()
	a.mu.errors++
	a.mu.lastError = err.Error()
	a.mu.lastErrorAt = now
	a.mu.Unlock()
}

// step writes at most one file of app a: the pending one, or the next one
// if it is due. It reports whether it moved the app's progress.
func (s *sink) step(ctx context.Context, a *appState) (bool, error) {
	id, err := s.db.App(a.key)
	if errors.Is(err, storage.ErrUnknownApp) {
		return false, nil // nothing stored yet
	} else if err != nil {
		return false, err
	}
	p, err := s.progressOf(a)
	if err != nil {
		return false, err
	}

	snap, err := s.db.NewSnapshot()
	if err != nil {
		return false, err
	}
	defer snap.Close()

	var until uint64
	var day string
	if p.Pending != nil {
		until, day = p.Pending.To, p.Pending.Day
	} else {
		var due bool
		if until, due, err = s.due(snap, id, a, p.Done); err != nil {
			return false, err
		}
		if !due {
			return false, s.catchUpWatermark(ctx, a, p)
		}
	}

	f, err := s.build(snap, id, p.Done, until)
	if err != nil {
		return false, err
	}
	if f.rows == 0 {
		// Every event of the range was a deleted user's: no file.
		p.Done, p.Pending = until, nil
		return true, s.save(a, p)
	}
	if p.Pending == nil {
		day = f.day
		p.Pending = &pendingFile{To: until, Day: day}
		if err := s.save(a, p); err != nil {
			return false, err
		}
	}
	key := s.fileKey(a.key, day, p.Done+1, until)
	uctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	err = s.store.PutNew(uctx, key, f.data, contentType(s.cfg.Format))
	if errors.Is(err, errExists) {
		// Uploaded before a crash that came before the progress was
		// stored: the object there holds this range; keep it.
		s.log.Info("sink file already stored; keeping it", "app", a.key, "key", key)
		err = nil
	} else if err == nil {
		p.Files++
		p.Bytes += int64(len(f.data))
	}
	if err != nil {
		return false, err
	}
	p.Done, p.Pending, p.LastFile = until, nil, key
	if err := s.save(a, p); err != nil {
		return false, err
	}
	now := s.now()
	a.mu.Lock()
	a.mu.lastFileAt = now
	a.mu.Unlock()
	s.log.Debug("sink file written", "app", a.key, "key", key, "events", f.rows, "bytes", len(f.data))
	if err := s.putWatermark(uctx, a, p, now); err != nil {
		return true, err
	}
	return true, nil
}

// progressOf returns app a's progress, read from the store the first time.
func (s *sink) progressOf(a *appState) (progress, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.mu.loaded {
		p, err := loadProgress(s.db, s.cfg.Name, a.key)
		if err != nil {
			return progress{}, err
		}
		a.mu.p, a.mu.loaded = p, true
	}
	return a.mu.p, nil
}

// build builds the file of app id's events in (done, until] from snap. If
// a user of the app is deleted meanwhile, it builds again, so that no file
// written after a deletion holds the user's events.
func (s *sink) build(snap *storage.Snapshot, id uint32, done, until uint64) (*builtFile, error) {
	var f *builtFile
	for range 3 {
		gen := s.db.ForgottenGen()
		var err error
		if f, err = buildFile(snap, id, done, until, filterOf(s.db.Forgotten(id)), s.cfg.Format); err != nil {
			return nil, fmt.Errorf("cannot build the file of (%d, %d]: %w", done, until, err)
		}
		if s.db.ForgottenGen() == gen {
			break
		}
	}
	return f, nil
}

// catchUpWatermark puts _watermark.json when no file is due and the object
// may be behind the progress: on the first look after a start (the process
// may have died between storing its progress and putting the object), after
// a failed put of the object, and after a range of deleted users' events
// only, which makes no file.
func (s *sink) catchUpWatermark(ctx context.Context, a *appState, p progress) error {
	a.mu.Lock()
	put := a.mu.watermarkPut
	a.mu.Unlock()
	if p.Done == 0 || put >= p.Done {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return s.putWatermark(ctx, a, p, s.now())
}

// due counts the app's pending events after done and says whether a file
// is due (max_events pending, or the oldest older than every), and up to
// which sequence.
func (s *sink) due(snap *storage.Snapshot, id uint32, a *appState, done uint64) (until uint64, due bool, err error) {
	var n int64
	var oldest time.Time
	var last, cut uint64
	err = snap.EventsBySeqWhere(id, done, snap.Watermark(), filterOf(s.db.Forgotten(id)), func(seq uint64, _ int64, body []byte) error {
		if n == 0 {
			t, err := receivedAt(body)
			if err != nil {
				return fmt.Errorf("event seq %d: %w", seq, err)
			}
			oldest = t
		}
		n++
		last = seq
		if n == int64(s.cfg.MaxEvents) {
			cut = seq
		}
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	a.mu.Lock()
	a.mu.lagEvents, a.mu.oldest = n, oldest
	a.mu.Unlock()
	switch {
	case n == 0:
		return 0, false, nil
	case cut != 0:
		return cut, true, nil
	case s.now().Sub(oldest) >= s.cfg.Every.Std():
		return last, true, nil
	}
	return 0, false, nil
}

func filterOf(deleted map[string]uint64) *storage.Filter {
	if len(deleted) == 0 {
		return nil
	}
	return &storage.Filter{Exclude: deleted}
}

func (s *sink) save(a *appState, p progress) error {
	if err := saveProgress(s.db, s.cfg.Name, a.key, p); err != nil {
		return err
	}
	a.mu.Lock()
	a.mu.p = p
	if p.Pending == nil {
		a.mu.lagEvents, a.mu.oldest = 0, time.Time{} // until the next count
	}
	a.mu.Unlock()
	return nil
}

// fileKey names the file of the app's range [from, to] (SPEC section 8).
func (s *sink) fileKey(app, day string, from, to uint64) string {
	return s.cfg.Prefix + app + "/dt=" + day + "/" + strconv.FormatUint(from, 10) + "-" + strconv.FormatUint(to, 10) + extension(s.cfg.Format)
}

// watermarkFile is {prefix}{appKey}/_watermark.json.
type watermarkFile struct {
	Sink      string `json:"sink"`
	AppKey    string `json:"appKey"`
	Watermark uint64 `json:"watermark"`
	LastFile  string `json:"lastFile"`
	Files     int64  `json:"files"`
	UpdatedAt string `json:"updatedAt"`
}

func (s *sink) putWatermark(ctx context.Context, a *appState, p progress, now time.Time) error {
	b, _ := json.Marshal(watermarkFile{Sink: s.cfg.Name, AppKey: a.key, Watermark: p.Done, LastFile: p.LastFile, Files: p.Files,
		UpdatedAt: now.UTC().Format("2006-01-02T15:04:05.000Z07:00")})
	if err := s.store.Put(ctx, s.cfg.Prefix+a.key+"/_watermark.json", b, "application/json"); err != nil {
		return err
	}
	a.mu.Lock()
	a.mu.watermarkPut = max(a.mu.watermarkPut, p.Done)
	a.mu.Unlock()
	return nil
}
