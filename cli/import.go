package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/goccy/go-json"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/schollz/progressbar/v3"
)

const importUsage = `Usage: trove import events|profiles FILE... --app KEY [flags]

Sends the events (or profiles) of each FILE to a running server: NDJSON or a
JSON array, plain, .gz or .zst. --format says what the lines are (auto, the
default, guesses from the first line): trove (Trove's export), segment
(Segment's archive/warehouse JSON lines), mixpanel (Mixpanel's raw export),
amplitude (Amplitude's export); for profiles trove or mixpanel. Each line is
sent to that vendor's endpoint on the server, so it is mapped exactly as the
vendor's SDKs' messages are. A line without an id of its own gets one from a
hash of its text: importing a file twice stores it once. 429 and 503 are
retried after their Retry-After. --state FILE records how far each input got,
so that a re-run continues there. The rejected lines go to
FILE.rejected.ndjson beside each input, and a summary to stderr.

Flags:
`

// importOptions are the flags of one `trove import` run.
type importOptions struct {
	kind, server, token, app, format, state string
	concurrency, batch                      int
	files                                   []string
}

// Import runs `trove import events|profiles FILE... [flags]` and returns
// the exit status: 0 done (rejected lines included), 1 failed, 2 bad usage.
func Import(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, "trove import: say what to import: events or profiles\n\n"+importUsage)
		return 2
	}
	o := &importOptions{kind: args[0]}
	switch o.kind {
	case "events", "profiles":
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, importUsage)
		newImportFlags(&importOptions{}, stdout).PrintDefaults()
		return 0
	default:
		fmt.Fprintf(stderr, "trove import: unknown import %q: use events or profiles\n\n%s", o.kind, importUsage)
		return 2
	}
	fs := newImportFlags(o, stderr)
	files, ok, code := parseInterspersed(fs, args[1:])
	if !ok {
		return code
	}
	o.files = files
	switch {
	case len(o.files) == 0:
		fmt.Fprintf(stderr, "trove import %s: name at least one FILE\n", o.kind)
		return 2
	case o.app == "":
		fmt.Fprintf(stderr, "trove import %s: --app KEY is required\n", o.kind)
		return 2
	case o.concurrency < 1 || o.batch < 1:
		fmt.Fprintf(stderr, "trove import %s: --concurrency and --batch must be at least 1\n", o.kind)
		return 2
	}
	if o.kind == "profiles" && o.batch > 1000 {
		o.batch = 1000 // the User Profiles API's limit per request
	}
	if o.token == "" {
		o.token = os.Getenv("TROVE_TOKEN")
	}
	if o.token == "" {
		fmt.Fprintf(stderr, "trove import %s: a token with ingest scope for the app is required (--token or TROVE_TOKEN)\n", o.kind)
		return 2
	}
	if err := o.run(ctx, stderr); err != nil {
		fmt.Fprintln(stderr, "trove import:", err)
		return 1
	}
	return 0
}

func newImportFlags(o *importOptions, out io.Writer) *flag.FlagSet {
	fs := newFlagSet("trove import "+o.kind, importUsage, out)
	fs.StringVar(&o.server, "server", DefaultServer, "base `URL` of the running trove server")
	fs.StringVar(&o.token, "token", "", "token with ingest scope for the app (default $TROVE_TOKEN)")
	fs.StringVar(&o.app, "app", "", "app `KEY` to import into (required)")
	fs.StringVar(&o.format, "format", "auto", "what the lines are: auto, trove, segment, mixpanel or amplitude")
	fs.StringVar(&o.state, "state", "", "`FILE` that records progress; a re-run with it continues where it stopped")
	fs.IntVar(&o.concurrency, "concurrency", 4, "requests in flight at once")
	fs.IntVar(&o.batch, "batch", 500, "lines per request")
	return fs
}

// importState is what --state keeps: per input (by absolute path), how
// many of its lines are done.
type importState struct {
	Files map[string]int `json:"files"`
}

// importTotals counts what the server answered.
type importTotals struct {
	lines, accepted, duplicates, rejected int
}

func (o *importOptions) run(ctx context.Context, stderr io.Writer) error {
	st := importState{Files: map[string]int{}}
	if o.state != "" {
		if b, err := os.ReadFile(o.state); err == nil {
			if err := json.Unmarshal(b, &st); err != nil {
				return fmt.Errorf("cannot read state file %s: %w", o.state, err)
			}
			if st.Files == nil {
				st.Files = map[string]int{}
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("cannot read state file %s: %w", o.state, err)
		}
	}
	var total importTotals
	start := time.Now()
	for _, f := range o.files {
		t, err := o.importFile(ctx, f, &st, stderr)
		total.lines += t.lines
		total.accepted += t.accepted
		total.duplicates += t.duplicates
		total.rejected += t.rejected
		if err != nil {
			return err
		}
	}
	if len(o.files) > 1 {
		el := time.Since(start)
		fmt.Fprintf(stderr, "total: %d lines sent, %d stored, %d duplicates, %d rejected, in %s (%.0f lines/s)\n",
			total.lines, total.accepted, total.duplicates, total.rejected, el.Round(time.Millisecond), float64(total.lines)/el.Seconds())
	}
	return nil
}

// importBatch is one request's worth of lines.
type importBatch struct {
	seq   int
	first int      // the 1-based line number of lines[0]
	lines [][]byte // as read
	end   int      // lines done once this batch is
}

// countingReader counts the bytes read through it, for the progress bar.
type countingReader struct {
	r   io.Reader
	bar *progressbar.ProgressBar
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.bar != nil {
		c.bar.Add(n)
	}
	return n, err
}

// openInput returns the decompressed stream of path, by its suffix.
func openInput(path string, bar *progressbar.ProgressBar) (io.Reader, func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	var r io.Reader = &countingReader{r: bufio.NewReaderSize(f, 1<<20), bar: bar}
	closeAll := func() { f.Close() }
	switch {
	case strings.HasSuffix(path, ".gz"):
		zr, err := gzip.NewReader(r)
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("cannot read %s as gzip: %w", path, err)
		}
		r = zr
	case strings.HasSuffix(path, ".zst"):
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("cannot read %s as zstd: %w", path, err)
		}
		r = zr
		closeAll = func() { zr.Close(); f.Close() }
	}
	return r, closeAll, nil
}

// lineSource yields the items of an input: its lines, or the elements of
// a JSON array. Each item is owned by the caller.
type lineSource struct {
	br  *bufio.Reader
	dec *json.Decoder
}

func newLineSource(r io.Reader) (*lineSource, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		b, err := br.Peek(1)
		if err != nil {
			return &lineSource{br: br}, nil // empty: next says EOF
		}
		if b[0] == ' ' || b[0] == '\t' || b[0] == '\r' || b[0] == '\n' {
			br.ReadByte()
			continue
		}
		if b[0] == '[' {
			dec := json.NewDecoder(br)
			if _, err := dec.Token(); err != nil {
				return nil, fmt.Errorf("cannot read the JSON array: %w", err)
			}
			return &lineSource{dec: dec}, nil
		}
		return &lineSource{br: br}, nil
	}
}

// next returns the next item, or io.EOF. Blank lines count as lines (so
// that numbers match the file's) and come back empty.
func (s *lineSource) next() ([]byte, error) {
	if s.dec != nil {
		if !s.dec.More() {
			return nil, io.EOF
		}
		var raw json.RawMessage
		if err := s.dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("cannot read the JSON array: %w", err)
		}
		return raw, nil
	}
	line, err := s.br.ReadBytes('\n')
	if len(line) == 0 && err != nil {
		return nil, err
	}
	return bytes.Clone(bytes.TrimSpace(line)), nil
}

// importFile sends one input, resuming after the lines st says are done:
// a reader cuts the lines into batches, o.concurrency senders send them,
// and the state advances over the batches done without a gap.
func (o *importOptions) importFile(ctx context.Context, path string, st *importState, stderr io.Writer) (importTotals, error) {
	var t importTotals
	abs, err := filepath.Abs(path)
	if err != nil {
		return t, err
	}
	var bar *progressbar.ProgressBar
	if isTerminal(stderr) {
		size := int64(-1)
		if fi, err := os.Stat(path); err == nil {
			size = fi.Size()
		}
		bar = newByteBar(stderr, "importing "+filepath.Base(path), size)
	}
	r, closeInput, err := openInput(path, bar)
	if err != nil {
		return t, err
	}
	defer closeInput()
	src, err := newLineSource(r)
	if err != nil {
		return t, fmt.Errorf("%s: %w", path, err)
	}
	done := st.Files[abs]
	first, pending, lineNo, err := skipDone(src, done)
	if err != nil {
		return t, fmt.Errorf("%s: %w", path, err)
	}
	if first == nil || len(pending) == 0 {
		fmt.Fprintf(stderr, "%s: nothing to import (%d lines done before)\n", path, done)
		return t, nil
	}
	f, err := o.formatOf(first)
	if err != nil {
		return t, fmt.Errorf("%s: %w", path, err)
	}
	rej := &rejectFile{path: path + ".rejected.ndjson"}
	defer rej.close()
	// An earlier run's rejected lines are superseded by this run's.
	if done == 0 {
		os.Remove(rej.path)
	}

	start := time.Now()
	batches := make(chan *importBatch, o.concurrency*2)
	results := make(chan batchResult, o.concurrency*2)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	o.startSenders(ctx, f, rej, batches, results)
	readErr := make(chan error, 1)
	go func() {
		defer close(batches)
		err := o.readBatches(ctx, src, f, pending, lineNo, batches)
		if err != nil && !errors.Is(err, context.Canceled) {
			err = fmt.Errorf("%s: %w", path, err)
		}
		readErr <- err
	}()
	firstErr := o.collect(results, abs, st, &t, cancel)
	if err := <-readErr; err != nil && firstErr == nil && !errors.Is(err, context.Canceled) {
		firstErr = err
	}
	if bar != nil {
		bar.Finish()
	}
	if o.state != "" {
		if err := o.saveState(st); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	o.report(stderr, path, f, t, rej, time.Since(start))
	if firstErr != nil {
		return t, fmt.Errorf("%s: %w (the lines before line %d are done; run again with --state to continue)", path, firstErr, st.Files[abs]+1)
	}
	return t, nil
}

// startSenders starts o.concurrency senders of batches, whose results go
// to results, closed once they have all returned.
func (o *importOptions) startSenders(ctx context.Context, f *importFormat, rej *rejectFile, batches <-chan *importBatch, results chan<- batchResult) {
	var wg sync.WaitGroup
	for range o.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				res := o.send(ctx, f, b, rej.add)
				select {
				case results <- res:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		close(results)
	}()
}

// report prints a file's summary line, and the first rejected lines.
func (o *importOptions) report(stderr io.Writer, path string, f *importFormat, t importTotals, rej *rejectFile, el time.Duration) {
	rejNote := ""
	if rej.n > 0 {
		rejNote = fmt.Sprintf(" (%d in %s)", rej.n, rej.path)
	}
	fmt.Fprintf(stderr, "%s (%s): %d lines sent, %d stored, %d duplicates, %d rejected%s, in %s (%.0f lines/s)\n",
		path, f.name, t.lines, t.accepted, t.duplicates, t.rejected, rejNote, el.Round(time.Millisecond), float64(t.lines)/max(el.Seconds(), 1e-9))
	for _, r := range rej.reasons {
		fmt.Fprintln(stderr, "  rejected", r)
	}
	if t.rejected > rej.n {
		fmt.Fprintf(stderr, "  %d more rejected lines were not named by the server: GET /v1/export/rejected?appKey=%s has them all\n", t.rejected-rej.n, o.app)
	}
}

// skipDone reads past the done lines an earlier run sent, and returns the
// input's first non-empty line (which tells its format), the lines read
// that are not done yet, and the number of lines read.
func skipDone(src *lineSource, done int) (first []byte, pending [][]byte, lineNo int, err error) {
	for {
		line, err := src.next()
		if errors.Is(err, io.EOF) {
			return first, pending, lineNo, nil
		}
		if err != nil {
			return nil, nil, lineNo, err
		}
		lineNo++
		if first == nil && len(line) > 0 {
			first = line
		}
		if lineNo <= done {
			continue
		}
		pending = append(pending, line)
		if first != nil {
			return first, pending, lineNo, nil
		}
	}
}

// formatOf returns the format of --format, or the one first's shape says
// when it is "auto".
func (o *importOptions) formatOf(first []byte) (*importFormat, error) {
	name := o.format
	if name == "auto" {
		detect := detectFormat
		if o.kind == "profiles" {
			detect = detectProfileFormat
		}
		var err error
		if name, err = detect(first); err != nil {
			return nil, err
		}
	}
	table := formats
	if o.kind == "profiles" {
		table = profileFormats
	}
	f := table[name]
	if f == nil {
		return nil, fmt.Errorf("unknown --format %q for %s: use trove, segment, mixpanel or amplitude (profiles: trove or mixpanel)", name, o.kind)
	}
	return f, nil
}

// rejectFile keeps the lines the server rejected, in FILE.rejected.ndjson
// (created at the first), and the first few reasons for the summary.
type rejectFile struct {
	path    string
	mu      sync.Mutex
	f       *os.File
	n       int
	reasons []string
}

func (r *rejectFile) add(no int, line []byte, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		var err error
		if r.f, err = os.Create(r.path); err != nil {
			return
		}
	}
	r.f.Write(line)
	r.f.Write([]byte{'\n'})
	r.n++
	if len(r.reasons) < 5 {
		r.reasons = append(r.reasons, fmt.Sprintf("line %d: %s", no, reason))
	}
}

func (r *rejectFile) close() {
	if r.f != nil {
		r.f.Close()
	}
}

// readBatches cuts pending and the rest of src into batches of o.batch
// lines (and at most a few MiB) numbered in order; lineNo is the number of
// lines read before.
func (o *importOptions) readBatches(ctx context.Context, src *lineSource, f *importFormat, pending [][]byte, lineNo int, batches chan<- *importBatch) error {
	seq := 0
	b := &importBatch{first: lineNo - len(pending) + 1}
	size := 0
	maxBytes := 4 << 20
	if f.path == "/v1/batch" {
		maxBytes = 400 << 10 // Segment's 500 KB per batch, with room to spare
	}
	flush := func(next int) bool {
		if len(b.lines) == 0 {
			b.first = next
			return true
		}
		b.seq, b.end = seq, next-1
		seq++
		select {
		case batches <- b:
		case <-ctx.Done():
			return false
		}
		b, size = &importBatch{first: next}, 0
		return true
	}
	add := func(line []byte) bool {
		b.lines = append(b.lines, line)
		size += len(line)
		if len(b.lines) >= o.batch || size >= maxBytes {
			return flush(lineNo + 1)
		}
		return true
	}
	for _, l := range pending {
		if !add(l) {
			return ctx.Err()
		}
	}
	for {
		line, err := src.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		lineNo++
		if !add(line) {
			return ctx.Err()
		}
	}
	flush(lineNo + 1)
	return nil
}

// collect adds up the results, in any order, into t, advances the state
// of the file abs over the batches done without a gap (saving it every
// 200 ms), and returns the first error, after which it cancels the rest.
func (o *importOptions) collect(results <-chan batchResult, abs string, st *importState, t *importTotals, cancel func()) error {
	finished := map[int]int{}
	next := 0
	var firstErr error
	lastSave := time.Now()
	for res := range results {
		if res.err != nil {
			if firstErr == nil {
				firstErr = res.err
				cancel()
			}
			continue
		}
		t.lines += res.lines
		t.accepted += res.accepted
		t.duplicates += res.duplicates
		t.rejected += res.rejected
		finished[res.seq] = res.end
		for {
			end, ok := finished[next]
			if !ok {
				break
			}
			delete(finished, next)
			next++
			st.Files[abs] = end
		}
		if o.state != "" && time.Since(lastSave) > 200*time.Millisecond {
			o.saveState(st)
			lastSave = time.Now()
		}
	}
	return firstErr
}

// saveState writes the state file atomically.
func (o *importOptions) saveState(st *importState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := o.state + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("cannot write state file: %w", err)
	}
	return os.Rename(tmp, o.state)
}

// batchResult is what one batch came to.
type batchResult struct {
	seq, end, lines                int
	accepted, duplicates, rejected int
	err                            error
}

// send converts a batch's lines and sends them until the server answers
// for them: 429, 503 and network errors are retried (after Retry-After,
// else with backoff); other errors end the import.
func (o *importOptions) send(ctx context.Context, f *importFormat, b *importBatch, reject func(int, []byte, string)) batchResult {
	res := batchResult{seq: b.seq, end: b.end, lines: len(b.lines)}
	items := make([][]byte, 0, len(b.lines))
	nos := make([]int, 0, len(b.lines)) // line number of each item
	for i, line := range b.lines {
		no := b.first + i
		if len(line) == 0 {
			res.lines--
			continue
		}
		item, err := f.convert(line)
		if err == nil && f.name == "trove" && o.kind == "events" {
			item, err = withApp(item, o.app)
		}
		if err != nil {
			reject(no, line, err.Error())
			res.rejected++
			continue
		}
		items = append(items, item)
		nos = append(nos, no)
	}
	if len(items) == 0 {
		return res
	}
	body := o.body(f, items)
	path := f.path
	if path == "/engage" {
		path += "?verbose=1"
	}
	ans, err := o.post(ctx, path, f.contentType, body)
	if err != nil {
		res.err = err
		return res
	}
	if o.kind == "profiles" && ans.status == http.StatusBadRequest && len(items) > 1 && f.path == "/users/profile" {
		// The User Profiles API applies a request whole or not at all:
		// find the bad profiles one by one.
		for i, it := range items {
			one, err := o.post(ctx, path, f.contentType, o.body(f, [][]byte{it}))
			if err != nil {
				res.err = err
				return res
			}
			if one.status == http.StatusBadRequest || one.status == http.StatusConflict {
				reject(nos[i], b.lines[nos[i]-b.first], one.message())
				res.rejected++
				continue
			}
			res.accepted += one.Accepted
		}
		return res
	}
	if !ans.ok() {
		res.err = fmt.Errorf("the server answered %d: %s", ans.status, ans.message())
		return res
	}
	res.accepted += ans.Accepted
	res.duplicates += ans.Duplicates
	res.rejected += ans.Rejected
	for _, e := range ans.Errors {
		i := -1
		switch {
		case e.Line != nil:
			i = *e.Line - 1
		case e.Index != nil:
			i = *e.Index
		}
		if i >= 0 && i < len(items) {
			reject(nos[i], b.lines[nos[i]-b.first], e.Field+": "+e.Message)
		}
	}
	return res
}

// withApp returns a Trove event line whose appKey is app.
func withApp(line []byte, app string) ([]byte, error) {
	if bytes.Contains(line, appendJSONString([]byte(`"appKey":`), app)) {
		return line, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(line, &m); err != nil {
		return nil, err
	}
	m["appKey"] = json.RawMessage(appendJSONString(nil, app))
	return json.Marshal(m)
}

// body builds the request body of items.
func (o *importOptions) body(f *importFormat, items [][]byte) []byte {
	if f.body != nil {
		return f.body(nil, items)
	}
	// POST /users/profile.
	dst := appendJSONString([]byte(`{"appKey":`), o.app)
	dst = append(dst, `,"user_profiles":[`...)
	dst = joinItems(dst, items)
	return append(dst, "]}"...)
}

// importAnswer is what the endpoints answer, in the members they share
// (and Amplitude's and Mixpanel's /import for a partial batch).
type importAnswer struct {
	status     int
	raw        []byte
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
	Rejected   int `json:"rejected"`
	Errors     []struct {
		Index   *int   `json:"index"`
		Line    *int   `json:"line"`
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
	Message  string          `json:"message"`
	Ingested json.RawMessage `json:"events_ingested"`
	Imported json.RawMessage `json:"num_records_imported"`
}

// ok reports whether the answer is for the batch's lines: a 2xx, or
// Amplitude's and Mixpanel's 400 that names invalid events among stored
// ones.
func (a *importAnswer) ok() bool {
	if a.status >= 200 && a.status < 300 {
		return true
	}
	return a.status == http.StatusBadRequest && (a.Ingested != nil || a.Imported != nil)
}

func (a *importAnswer) message() string {
	if a.Message != "" {
		return a.Message
	}
	return strings.TrimSpace(string(a.raw))
}

// importClient is shared by the workers; its connections are reused.
var importClient = &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// post sends one body until it gets an answer that is not a 429, a 503 or
// a network error.
func (o *importOptions) post(ctx context.Context, path, contentType string, body []byte) (*importAnswer, error) {
	backoff := 100 * time.Millisecond
	var idem string
	if strings.HasPrefix(path, "/users/profile") {
		sum := sha256.Sum256(body)
		idem = "import-" + hex.EncodeToString(sum[:16])
	}
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, "POST", strings.TrimSuffix(o.server, "/")+path, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Authorization", "Bearer "+o.token)
		if idem != "" {
			req.Header.Set("Idempotency-Key", idem)
		}
		resp, err := importClient.Do(req)
		var wait time.Duration
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if attempt >= 10 {
				return nil, fmt.Errorf("cannot reach the server: %w", err)
			}
			wait = backoff
			backoff = min(backoff*2, 10*time.Second)
		} else {
			raw, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case rerr != nil:
				if attempt >= 10 {
					return nil, fmt.Errorf("cannot read the answer: %w", rerr)
				}
				wait = backoff
			case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
				wait = time.Second
				if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
					wait = time.Duration(s) * time.Second
				}
			case resp.StatusCode >= 500 && attempt < 10:
				wait = backoff
				backoff = min(backoff*2, 10*time.Second)
			default:
				a := &importAnswer{status: resp.StatusCode, raw: raw}
				json.Unmarshal(raw, a)
				return a, nil
			}
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
