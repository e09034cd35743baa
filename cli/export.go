package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-json"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go"
	"github.com/schollz/progressbar/v3"
)

// DefaultServer is where `trove serve` listens by default.
const DefaultServer = "http://127.0.0.1:8080"

const exportUsage = `Usage: trove export events|profiles --app KEY [flags]

Streams an export from a running server (GET /v1/export/events or
/v1/export/profiles) as NDJSON to -o FILE or stdout. The file's suffix picks
the compression: .zst (zstd) or .gz (gzip) store the server's compressed
stream as is; .parquet (events only) asks for a Parquet file (format=parquet,
zstd columns); any other name gets plain NDJSON. The file appears only when the
transfer completed. The summary gives the watermark to pass to --since on the
next pull, which then gets exactly what was stored after this export.

Flags:
`

// exportOptions are the flags of one `trove export` run.
type exportOptions struct {
	kind   string // "events" or "profiles"
	server string
	token  string
	app    string
	out    string

	from, to, event, user, since, until, limit string // events
	updatedSince                               string // profiles
}

// Export runs `trove export events|profiles [flags]` and returns the exit
// status: 0 done, 1 failed, 2 bad usage.
func Export(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, code := parseExportArgs(args, stdout, stderr)
	if o == nil {
		return code
	}
	if err := o.run(ctx, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "trove export:", err)
		return 1
	}
	return 0
}

// parseExportArgs returns the options, or nil and the exit status.
func parseExportArgs(args []string, stdout, stderr io.Writer) (*exportOptions, int) {
	if len(args) == 0 {
		fmt.Fprint(stderr, "trove export: say what to export: events or profiles\n\n"+exportUsage)
		return nil, 2
	}
	o := &exportOptions{kind: args[0]}
	switch o.kind {
	case "events", "profiles":
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, exportUsage)
		newExportFlags(&exportOptions{kind: "events"}, stdout).PrintDefaults()
		return nil, 0
	default:
		fmt.Fprintf(stderr, "trove export: unknown export %q: use events or profiles\n\n%s", o.kind, exportUsage)
		return nil, 2
	}
	fs := newExportFlags(o, stderr)
	if err := fs.Parse(args[1:]); err != nil {
		return nil, parseExit(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "trove export %s: unexpected argument %q (flags go before it? every value needs its flag)\n", o.kind, fs.Arg(0))
		return nil, 2
	}
	if o.app == "" {
		fmt.Fprintf(stderr, "trove export %s: --app KEY is required\n", o.kind)
		return nil, 2
	}
	if o.kind == "profiles" && o.parquet() {
		fmt.Fprintf(stderr, "trove export profiles: -o %s: Parquet is offered for events only; name the file .ndjson, .zst or .gz\n", o.out)
		return nil, 2
	}
	if o.token == "" {
		// Read only now, so that -h never shows it as a default.
		o.token = os.Getenv("TROVE_TOKEN")
	}
	return o, 0
}

func newExportFlags(o *exportOptions, out io.Writer) *flag.FlagSet {
	fs := newFlagSet("trove export "+o.kind, exportUsage, out)
	fs.StringVar(&o.server, "server", DefaultServer, "base `URL` of the running trove server")
	fs.StringVar(&o.token, "token", "", "export token (default $TROVE_TOKEN)")
	fs.StringVar(&o.app, "app", "", "app `KEY` to export (required)")
	fs.StringVar(&o.out, "o", "-", "output `FILE`; .zst or .gz compress, .parquet is Parquet (events), - is stdout")
	fs.StringVar(&o.since, "since", "", "only what was stored after this `WATERMARK` (from an earlier export)")
	if o.kind == "profiles" {
		fs.StringVar(&o.updatedSince, "updated-since", "", "only profiles updated at or after `TIME` (RFC 3339 or YYYY-MM-DD)")
		return fs
	}
	fs.StringVar(&o.from, "from", "", "eventTime at or after `TIME` (RFC 3339 or YYYY-MM-DD)")
	fs.StringVar(&o.to, "to", "", "eventTime before `TIME` (RFC 3339 or YYYY-MM-DD)")
	fs.StringVar(&o.event, "event", "", "only these event `NAMES` (comma-separated)")
	fs.StringVar(&o.user, "user", "", "only this `USERID`")
	fs.StringVar(&o.until, "until", "", "only what was stored up to this `WATERMARK`")
	fs.StringVar(&o.limit, "limit", "", "at most `N` lines")
	return fs
}

// toStdout says whether the export goes to stdout.
func (o *exportOptions) toStdout() bool { return o.out == "" || o.out == "-" }

// parquet says whether the output file's name asks for Parquet.
func (o *exportOptions) parquet() bool {
	return !o.toStdout() && strings.HasSuffix(strings.ToLower(o.out), ".parquet")
}

// fileEncoding is the Content-Encoding the output file's name asks for.
func (o *exportOptions) fileEncoding() string {
	switch {
	case o.toStdout():
		return ""
	case strings.HasSuffix(o.out, ".zst"):
		return "zstd"
	case strings.HasSuffix(o.out, ".gz"):
		return "gzip"
	}
	return ""
}

// requestURL is the export endpoint with its query.
func (o *exportOptions) requestURL() (string, error) {
	base := o.server
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("--server %q is not an http(s) URL like %s", o.server, DefaultServer)
	}
	q := url.Values{"appKey": {o.app}}
	for _, p := range []struct{ name, v string }{
		{"from", o.from}, {"to", o.to}, {"event", o.event}, {"userId", o.user},
		{"since", o.since}, {"until", o.until}, {"limit", o.limit}, {"updatedSince", o.updatedSince},
	} {
		if p.v != "" {
			q.Set(p.name, p.v)
		}
	}
	if o.parquet() {
		q.Set("format", "parquet")
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/export/" + o.kind
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// command rebuilds the command line for another pull from since, keeping
// the filters and leaving out the token and -o.
func (o *exportOptions) command(since string) string {
	var b strings.Builder
	b.WriteString("trove export " + o.kind)
	add := func(flag, v string) {
		if v != "" {
			b.WriteString(" --" + flag + " " + shellQuote(v))
		}
	}
	if o.server != DefaultServer {
		add("server", o.server)
	}
	add("app", o.app)
	add("from", o.from)
	add("to", o.to)
	add("event", o.event)
	add("user", o.user)
	add("updated-since", o.updatedSince)
	add("since", since)
	return b.String()
}

// shellQuote quotes v for a POSIX shell when it needs it.
func shellQuote(v string) string {
	if strings.IndexFunc(v, func(r rune) bool {
		return !(r == '-' || r == '_' || r == '.' || r == ':' || r == '/' || r == ',' || r == '+' || r == '@' || r == '=' ||
			(r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z'))
	}) < 0 && v != "" {
		return v
	}
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}

// apiError is the JSON error body of the server.
type apiError struct {
	Error   string `json:"error"`
	Message string `json:"message"`
	Field   string `json:"field"`
}

// run does the export.
func (o *exportOptions) run(ctx context.Context, stdout, stderr io.Writer) error {
	enc := o.fileEncoding()
	client := streamClient()
	defer client.CloseIdleConnections()
	resp, err := o.fetch(ctx, client, enc)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	watermark := resp.Header.Get("X-Trove-Watermark")

	// Where the bytes go: stdout, or a temporary file next to the target.
	dst, outName := stdout, "stdout"
	var part *partFile
	if !o.toStdout() {
		if part, err = createPart(o.out); err != nil {
			return err
		}
		defer part.discard()
		dst, outName = part, o.out
	}
	lines := &lineCounter{}
	if isTerminal(stderr) {
		lines.bar = newBar(stderr, o.kind)
	}
	n, err := o.receive(resp, enc, dst, part, lines)
	if lines.bar != nil {
		lines.bar.Finish()
	}
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return o.incomplete(err, lines.n, n, outName)
	}
	if part != nil {
		if err := part.finish(); err != nil {
			return err
		}
		if err := os.Rename(part.Name(), o.out); err != nil {
			return fmt.Errorf("cannot put the export in place at %s: %v", o.out, err)
		}
		part.placed = true
	}

	o.report(stderr, lines.n, n, outName, watermark)
	return nil
}

// receive writes the export in resp to dst in the file's encoding enc,
// counting its lines in lines, and returns the bytes written. A Parquet
// export, which goes to a file (part), is read back from there: its
// footer proves it whole and holds the count of rows.
func (o *exportOptions) receive(resp *http.Response, enc string, dst io.Writer, part *partFile, lines *lineCounter) (int64, error) {
	bw := bufio.NewWriterSize(dst, 256<<10)
	out := &countingWriter{w: bw}
	var err error
	if o.parquet() {
		_, err = io.Copy(io.MultiWriter(out, &byteBar{lines}), resp.Body)
	} else {
		err = copyExport(resp.Body, resp.Header.Get("Content-Encoding"), enc, out, lines)
	}
	if err == nil {
		err = bw.Flush()
	}
	if err == nil && o.parquet() {
		// A transfer cut short has no footer.
		lines.n, err = parquetRows(part.File, out.n)
	}
	return out.n, err
}

// fetch sends the export request, asking for the Content-Encoding that
// suits the file's encoding enc, and returns the response of a 200; any
// other answer is an error that says what the server said.
func (o *exportOptions) fetch(ctx context.Context, client *http.Client, enc string) (*http.Response, error) {
	target, err := o.requestURL()
	if err != nil {
		return nil, err
	}
	ask := enc
	if ask == "" {
		ask = "zstd" // plain output: fetch compressed, decompress here
	}
	if o.parquet() {
		ask = "identity" // the file's columns are compressed already
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept-Encoding", ask)
	req.Header.Set("User-Agent", "trove-export")
	if o.token != "" {
		req.Header.Set("Authorization", "Bearer "+o.token)
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("interrupted before the server answered")
		}
		return nil, unreachable(o.server, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, responseError(resp)
	}
	return resp, nil
}

// report says what was exported where, and how to continue from it.
func (o *exportOptions) report(stderr io.Writer, lines, bytes int64, outName, watermark string) {
	fmt.Fprintf(stderr, "exported %d %s (%d bytes) to %s", lines, o.kind, bytes, outName)
	if watermark == "" {
		fmt.Fprintln(stderr, "; the server sent no watermark, so there is no --since to continue from")
		return
	}
	fmt.Fprintf(stderr, "; watermark %s — continue with: %s\n", watermark, o.command(o.resumeFrom(watermark)))
	if o.limit != "" {
		if n, err := strconv.ParseUint(o.limit, 10, 64); err == nil && uint64(lines) >= n {
			fmt.Fprintf(stderr, "note: --limit %s stopped this export early, so --since %s would skip what it left out; export again without --limit to get everything\n", o.limit, watermark)
		}
	}
}

// resumeFrom is the --since of the next pull: the watermark, or --until
// when that cut the range lower.
func (o *exportOptions) resumeFrom(watermark string) string {
	w, err1 := strconv.ParseUint(watermark, 10, 64)
	u, err2 := strconv.ParseUint(o.until, 10, 64)
	if err1 == nil && err2 == nil && u < w {
		return o.until
	}
	return watermark
}

// incomplete explains a transfer that did not end properly.
func (o *exportOptions) incomplete(cause error, lines, n int64, outName string) error {
	what := "nothing was written to " + outName
	if o.toStdout() {
		what = "stdout got a partial export: discard it"
	}
	if errors.Is(cause, context.Canceled) {
		return fmt.Errorf("interrupted after %d %s (%d bytes); %s", lines, o.kind, n, what)
	}
	hint := "resume from the watermark of your last complete export with --since W"
	if o.since != "" {
		hint = "this resumes from the same --since " + o.since
	}
	return fmt.Errorf("the export was incomplete: the transfer broke after %d %s (%d bytes): %v; %s.\n  Nothing is lost: run it again (%s):\n  %s%s",
		lines, o.kind, n, cause, what, hint, o.command(o.since), o.outFlag())
}

// outFlag is the -o part of a command line.
func (o *exportOptions) outFlag() string {
	if o.toStdout() {
		return ""
	}
	return " -o " + shellQuote(o.out)
}

// copyExport streams body, encoded as got, to out in the encoding want,
// counting the NDJSON lines in lines. When got == want the bytes pass
// through as they came; the decoded copy only feeds the line count and
// proves the stream complete.
func copyExport(body io.Reader, got, want string, out io.Writer, lines *lineCounter) error {
	got = strings.ToLower(strings.TrimSpace(got))
	if got == "identity" {
		got = ""
	}
	if got == want && want != "" {
		tee := io.TeeReader(body, out)
		plain, closeDec, err := decoder(got, tee)
		if err != nil {
			return err
		}
		_, err = io.Copy(lines, plain)
		closeDec()
		if err != nil {
			return err
		}
		// Whatever follows the last frame is still the server's to send.
		_, err = io.Copy(io.Discard, tee)
		return err
	}
	plain, closeDec, err := decoder(got, body)
	if err != nil {
		return err
	}
	defer closeDec()
	w, closeEnc := encoder(want, out)
	if _, err := io.Copy(io.MultiWriter(w, lines), plain); err != nil {
		return err
	}
	return closeEnc()
}

// decoder returns a reader of the plain stream encoded as enc in r.
func decoder(enc string, r io.Reader) (io.Reader, func(), error) {
	switch enc {
	case "":
		return r, func() {}, nil
	case "zstd":
		d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, nil, err
		}
		return d, d.Close, nil
	case "gzip", "x-gzip":
		g, err := gzip.NewReader(r)
		if err != nil {
			return nil, nil, fmt.Errorf("reading the gzip stream: %w", err)
		}
		return g, func() { g.Close() }, nil
	}
	return nil, nil, fmt.Errorf("the server sent Content-Encoding %q, which this client does not read", enc)
}

// encoder returns a writer that encodes into w as enc, and its closer.
func encoder(enc string, w io.Writer) (io.Writer, func() error) {
	switch enc {
	case "zstd":
		e, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
		if err != nil {
			panic("BUG: " + err.Error())
		}
		return e, e.Close
	case "gzip":
		g, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
		return g, g.Close
	}
	return w, func() error { return nil }
}

// responseError turns a non-200 answer into an error.
func responseError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e apiError
	if json.Unmarshal(body, &e) == nil && e.Message != "" {
		if e.Field != "" {
			return fmt.Errorf("%s (field %s)", e.Message, e.Field)
		}
		return errors.New(e.Message)
	}
	msg := strings.TrimSpace(string(bytes.ToValidUTF8(body, nil)))
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return fmt.Errorf("the server answered %s: %s", resp.Status, msg)
}

// unwrapURLError drops the "Get URL:" prefix that repeats the request.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// lineCounter counts newlines of the plain stream and drives the progress
// bar, if any.
type lineCounter struct {
	n    int64
	bar  *progressbar.ProgressBar
	t0   time.Time
	last time.Time
}

func (l *lineCounter) Write(p []byte) (int, error) {
	l.n += int64(bytes.Count(p, []byte{'\n'}))
	if l.bar != nil {
		now := time.Now()
		if l.t0.IsZero() {
			l.t0 = now
		}
		if now.Sub(l.last) >= 200*time.Millisecond {
			l.last = now
			rate := float64(l.n) / max(now.Sub(l.t0).Seconds(), 1e-3)
			l.bar.Describe(fmt.Sprintf("%d lines, %.0f lines/s", l.n, rate))
		}
		l.bar.Add(len(p))
	}
	return len(p), nil
}

// byteBar drives the progress bar of a Parquet download, which has no
// lines to count until its footer has come.
type byteBar struct{ l *lineCounter }

func (b *byteBar) Write(p []byte) (int, error) {
	if b.l.bar != nil {
		b.l.bar.Add(len(p))
	}
	return len(p), nil
}

// parquetRows reads the footer of the Parquet file f of size bytes and
// returns its number of rows.
func parquetRows(f *os.File, size int64) (int64, error) {
	pf, err := parquet.OpenFile(f, size, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return 0, fmt.Errorf("the Parquet file is not whole: %w", err)
	}
	return pf.NumRows(), nil
}

// newBar is a spinner-style progress bar of bytes with no known total.
func newBar(w io.Writer, kind string) *progressbar.ProgressBar {
	return progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("exporting "+kind),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetWidth(20),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionClearOnFinish(),
	)
}

// streamClient is the HTTP client of long downloads (exports, backups): no
// overall timeout, a bounded dial, and the bytes kept as they come (no
// transparent decompression).
func streamClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:              http.ProxyFromEnvironment,
		DialContext:        (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		DisableCompression: true,
		ForceAttemptHTTP2:  true,
	}}
}
