package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/valyala/fasthttp"
)

// benchUsage opens the help of `trove bench`.
const benchUsage = `Usage: trove bench [flags]

Sends generated events to POST /v1/events and reports throughput and latency
(W1, W1n and W2 of PERF.md), and with -data-dir the bytes on disk per event
(S1). ` + "`trove bench profiles -h`" + ` describes the User Profiles workload.

Every event carries a UUID messageId, as every SDK sends, so the server pays
for exact deduplication; -no-message-ids sends none (W1n). The events depend
only on -seed and the request number, whatever -conns. Without -seed the
messageIds get a random salt per run, so a run never repeats the ids of an
earlier one against the same server; with -seed they are repeatable too, and
a second run with the same -seed sends only duplicates.

The summary gives the server's own counts of accepted, duplicate and
rejected events. Duplicates where none can be (fresh ids, or no ids), and
rejected generated events, are bugs: they are reported and the exit code is 1.

Flags:
`

// DefaultAppKey is the appKey that Main sends when -app is not given; it is
// the demo app of SPEC.md section 2.
const DefaultAppKey = "yz1Jn-0pSnekg58etEQO4A"

// maxErrorBody bounds how much of the first error response is kept and printed.
const maxErrorBody = 1024

// options are Main's parsed flags.
type options struct {
	server     string
	appKey     string
	token      string
	batch      int
	conns      int
	n          int64
	duration   time.Duration
	timeout    time.Duration
	seed       int64
	seedSet    bool   // -seed was given, so the messageIds follow it too
	idSalt     uint64 // mixed into the messageIds (Generator.WithMessageIDSalt); 0 when seedSet
	gzip       bool
	ndjson     bool
	messageIDs bool
	calibrate  bool
	segment    bool // post Segment batches to /v1/batch (segment.go)

	// S1 after the load (s1.go).
	dataDir     string        // the server's data directory; "" for no S1
	settle      time.Duration // wait this long after the load before measuring
	settleEvery time.Duration // progress interval while settling; not a flag

	// Set by `trove bench profiles` only (profiles.go).
	profiles bool    // post profile updates to /v1/users/profile instead of events
	reads    float64 // profile reads per second alongside the updates; 0 for none
}

// target is where and how a run sends its requests.
type target struct {
	addr     string // host:port for fasthttp.HostClient
	isTLS    bool
	uri      string // full request URI of the events endpoint
	discards bool   // the ceiling server, whose answers count nothing
}

// Main runs `trove bench` with args (the arguments after "bench") and returns
// the process exit code: 0 when every request was answered 202, 1 when any
// request failed or the run could not start, 2 for bad flags. The summary goes
// to stdout; progress, when stderr is a terminal, and errors go to stderr. The
// run stops by itself after -n events or -duration, whichever comes first, or
// when ctx is done.
//
// `trove bench profiles [flags]` runs the User Profiles workload instead
// (W3 of PERF.md); see profiles.go.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var opts options
	var err error
	if len(args) > 0 && args[0] == "profiles" {
		opts, err = parseProfileFlags(args[1:], stderr)
	} else {
		opts, err = parseFlags(args, stderr)
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	return execute(ctx, opts, stdout, stderr)
}

// execute runs the load that o describes, with the ceiling first when
// o.calibrate, prints the report and returns the exit code.
func execute(ctx context.Context, o options, stdout, stderr io.Writer) int {
	name, unit := "trove bench", "events"
	if o.profiles {
		name, unit = "trove bench profiles", "updates"
	}
	tgt, err := parseServer(o.server)
	if err != nil {
		fmt.Fprintf(stderr, "%s: -server: %v\n", name, err)
		return 2
	}
	if o.profiles {
		tgt = tgt.profiles()
	}
	if o.segment {
		tgt = tgt.segment()
	}
	progress := isTerminal(stderr)
	var s1Before int64
	if o.dataDir != "" {
		if s1Before, err = dirBytes(o.dataDir); err != nil {
			fmt.Fprintf(stderr, "%s: -data-dir: %v\n", name, err)
			return 1
		}
	}

	var ceiling *result
	if o.calibrate {
		ceiling, err = runCeiling(ctx, o, stderr, progress)
		if err != nil {
			fmt.Fprintf(stderr, "%s: calibrate: %v\n", name, err)
			return 1
		}
		fmt.Fprintln(stdout, ceiling.summary("ceiling (in-process fasthttp, discards bodies)", o))
		if ceiling.reads != nil {
			fmt.Fprintln(stdout, "ceiling "+ceiling.reads.summary(o.reads))
		}
		if ceiling.failed() {
			fmt.Fprintf(stderr, "%s: calibrate: %s\n", name, ceiling.firstErr)
			return 1
		}
	}

	res := run(ctx, o, tgt, stderr, progress)
	fmt.Fprintln(stdout, res.summary(workloadLabel(o), o))
	if res.reads != nil {
		fmt.Fprintln(stdout, res.reads.summary(o.reads))
	}
	fmt.Fprintln(stdout, res.clientLine(o))
	if ceiling != nil {
		printRatio(stdout, res, ceiling, unit)
	}
	code := 0
	if res.failed() {
		fmt.Fprintf(stderr, "%s: %d of %d requests failed; first: %s\n", name, res.errors, res.requests, res.firstErr)
		code = 1
	}
	for _, p := range res.countProblems(o) {
		fmt.Fprintf(stderr, "%s: %s\n", name, p)
		code = 1
	}
	if res.reads != nil && res.reads.errors > 0 {
		fmt.Fprintf(stderr, "%s: %d of %d reads failed; first: %s\n", name, res.reads.errors, res.reads.reads, res.reads.firstErr)
		code = 1
	}
	if o.dataDir != "" {
		code = max(code, measureS1(ctx, o, res, s1Before, stdout, stderr))
	}
	return code
}

// parseFlags parses args into options, reporting problems and usage on stderr.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	var noMessageIDs bool
	fs := flag.NewFlagSet("trove bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), benchUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.server, "server", "http://127.0.0.1:8080", "base `URL` of the Trove server")
	fs.StringVar(&o.appKey, "app", DefaultAppKey, "appKey the events carry")
	fs.StringVar(&o.token, "token", "", "token sent as Authorization: Bearer (default $TROVE_TOKEN)")
	fs.IntVar(&o.batch, "batch", 500, "events per request (1 sends a single JSON object, more a JSON array)")
	fs.IntVar(&o.conns, "conns", 8, "concurrent connections, one worker each")
	fs.Int64Var(&o.n, "n", 1_000_000, "total events to send")
	fs.DurationVar(&o.duration, "duration", 0, "stop after this long even if -n is not reached (0: no cap)")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "timeout of one request")
	fs.Int64Var(&o.seed, "seed", 1, "seed of the events; given explicitly, it fixes the messageIds too, so that a second run\nwith the same -seed against the same server sends duplicates")
	fs.BoolVar(&o.gzip, "gzip", false, "gzip request bodies (Content-Encoding: gzip)")
	fs.BoolVar(&o.ndjson, "ndjson", false, "send application/x-ndjson, one event per line")
	fs.BoolVar(&o.messageIDs, "message-ids", true, "give every event a UUID messageId, as SDKs do (-no-message-ids turns it off)")
	fs.BoolVar(&noMessageIDs, "no-message-ids", false, "send events without messageIds, so that the server generates them (W1n)")
	fs.BoolVar(&o.segment, "segment", false, "send Segment-format batches of track messages to POST /v1/batch, the -app key as write key")
	fs.BoolVar(&o.calibrate, "calibrate", false, "first measure an in-process server that discards requests, then report the ratio")
	fs.StringVar(&o.dataDir, "data-dir", "", "after the load, print S1: du -sb of `DIR` (walked by this process) per event the server accepted;\nDIR is the data directory of the server under load, started empty so that it holds this run's events only")
	fs.DurationVar(&o.settle, "settle", 3*time.Minute, "with -data-dir, wait this long after the load before measuring S1, printing progress every 10s")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	tokenFromEnv(fs, &o.token)
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	problems := checkCommon(fs, o)
	if noMessageIDs {
		if set["message-ids"] && o.messageIDs {
			problems = append(problems, "-message-ids and -no-message-ids contradict each other")
		}
		o.messageIDs = false
	}
	o.seedSet = set["seed"]
	for !o.seedSet && o.idSalt == 0 {
		o.idSalt = rand.Uint64()
	}
	o.settleEvery = 10 * time.Second
	problems = append(problems, checkS1Flags(o, set)...)
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintf(stderr, "trove bench: %s\n", p)
		}
		fs.Usage()
		return o, errors.New(strings.Join(problems, "; "))
	}
	return o, nil
}

// tokenFromEnv sets *token from TROVE_TOKEN unless -token was given. The
// environment is read after parsing rather than used as the flag's default,
// so that -h never prints a secret.
func tokenFromEnv(fs *flag.FlagSet, token *string) {
	tokenSet := false
	fs.Visit(func(f *flag.Flag) { tokenSet = tokenSet || f.Name == "token" })
	if !tokenSet {
		*token = os.Getenv("TROVE_TOKEN")
	}
}

// checkCommon returns what is wrong with the flags that every mode has.
func checkCommon(fs *flag.FlagSet, o options) []string {
	var problems []string
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Sprintf("unexpected arguments: %q", fs.Args()))
	}
	if o.batch < 1 {
		problems = append(problems, "-batch must be >= 1")
	}
	if o.conns < 1 {
		problems = append(problems, "-conns must be >= 1")
	}
	if o.n < 1 {
		problems = append(problems, "-n must be >= 1")
	}
	if o.duration < 0 {
		problems = append(problems, "-duration must be >= 0")
	}
	if o.timeout <= 0 {
		problems = append(problems, "-timeout must be > 0")
	}
	if o.appKey == "" {
		problems = append(problems, "-app must not be empty")
	}
	return problems
}

// parseServer turns the -server value into a target for POST /v1/events.
// A missing scheme means http.
func parseServer(s string) (target, error) {
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return target{}, err
	}
	var t target
	switch u.Scheme {
	case "http":
	case "https":
		t.isTLS = true
	default:
		return target{}, fmt.Errorf("unsupported scheme %q in %q", u.Scheme, s)
	}
	if u.Hostname() == "" {
		return target{}, fmt.Errorf("no host in %q", s)
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if t.isTLS {
			port = "443"
		}
	}
	t.addr = net.JoinHostPort(u.Hostname(), port)
	t.uri = u.Scheme + "://" + t.addr + strings.TrimSuffix(u.Path, "/") + eventsPath
	return t, nil
}

// workloadLabel names the run after its PERF.md workload when the flags
// match one, and says for events whether they carried messageIds.
func workloadLabel(o options) string {
	switch {
	case o.profiles && o.batch == 100 && o.conns == 8:
		return "W3 profiles"
	case o.profiles:
		return "profiles"
	}
	label := "ingest"
	switch {
	case o.segment:
		label = "segment"
	case o.batch == 500 && o.conns == 8 && o.messageIDs:
		label = "W1 ingest"
	case o.batch == 500 && o.conns == 8:
		label = "W1n ingest"
	case o.batch == 1 && o.conns == 64 && o.messageIDs:
		// PERF.md defines W2 with messageIds only.
		label = "W2 ingest"
	}
	if o.messageIDs {
		return label + " with messageIds"
	}
	return label + " without messageIds"
}

// idsFresh reports whether no event of the run can be a duplicate of an
// earlier one: its messageIds are salted for this run, or it sends none.
func (o options) idsFresh() bool { return !o.messageIDs || !o.seedSet }

// idsLine describes the run's messageIds for the client line.
func (o options) idsLine() string {
	switch {
	case !o.messageIDs:
		return "no messageIds (the server generates them)"
	case o.seedSet:
		return fmt.Sprintf("messageIds from -seed %d (repeatable)", o.seed)
	}
	return fmt.Sprintf("messageIds fresh for this run (salt %016x)", o.idSalt)
}

// runCeiling runs the load against an in-process fasthttp server on a
// loopback port that reads each request, discards it and answers 202.
func runCeiling(ctx context.Context, o options, stderr io.Writer, progress bool) (*result, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("cannot listen: %w", err)
	}
	handler := func(ctx *fasthttp.RequestCtx) {
		ctx.SetStatusCode(fasthttp.StatusAccepted)
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"accepted":0,"duplicates":0,"rejected":0,"errors":[]}`)
	}
	if o.profiles {
		handler = ceilingProfiles
	}
	srv := &fasthttp.Server{
		Handler:            handler,
		Name:               "trove-bench-ceiling",
		MaxRequestBodySize: 1 << 30,
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	tgt, err := parseServer("http://" + ln.Addr().String())
	if err != nil {
		srv.Shutdown()
		return nil, err
	}
	tgt.discards = true
	if o.profiles {
		tgt = tgt.profiles()
	}
	res := run(ctx, o, tgt, stderr, progress)
	if err := srv.Shutdown(); err != nil {
		return res, fmt.Errorf("cannot shut down the ceiling server: %w", err)
	}
	<-done
	return res, nil
}

// result is the outcome of one run.
type result struct {
	elapsed   time.Duration
	events    int64 // events (profile updates) in requests answered 202
	requests  int64 // requests completed, whatever their outcome
	errors    int64
	rawBytes  int64 // uncompressed bodies of the requests answered 202
	wireBytes int64 // the same bodies as sent, after compression
	generated int64 // events built, including those of failed requests
	genTime   time.Duration
	zipTime   time.Duration
	cpu       time.Duration   // process CPU time over the run; 0 when unknown
	machine   machineCPU      // the machine's CPU times over the run; zero when unknown
	latencies []time.Duration // sorted
	firstErr  string
	reads     *readResult // profile reads, when the run made any

	// The server's own counts, summed over its answers (events modes
	// against a real server only; see counted).
	counted                        bool
	accepted, duplicates, rejected int64
	uncounted                      int64 // answers without the counts
}

func (r *result) failed() bool { return r.errors > 0 }

// eventsPerSec is the rate of events, or of profile updates, answered 202.
func (r *result) eventsPerSec() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.events) / r.elapsed.Seconds()
}

// summary formats the run as the one-line report of PERF.md.
func (r *result) summary(label string, o options) string {
	unit := "events"
	if o.profiles {
		unit = "updates"
	}
	var b strings.Builder
	secs := r.elapsed.Seconds()
	fmt.Fprintf(&b, "%s: %d %s in %.2fs = %s %s/s, %.1f MB/s (raw JSON)",
		label, r.events, unit, secs, groupDigits(int64(r.eventsPerSec())), unit, float64(r.rawBytes)/1e6/max(secs, 1e-9))
	if o.gzip {
		fmt.Fprintf(&b, ", %.1f MB/s gzip on the wire", float64(r.wireBytes)/1e6/max(secs, 1e-9))
	}
	fmt.Fprintf(&b, ", requests %d, %s, errors %d", r.requests, latencyStats(r.latencies), r.errors)
	if r.counted {
		fmt.Fprintf(&b, "; server: accepted %d, duplicates %d", r.accepted, r.duplicates)
		switch {
		case r.duplicates > 0 && !o.messageIDs:
			b.WriteString(" (expected 0: the events had no messageIds)")
		case r.duplicates > 0 && o.idsFresh():
			b.WriteString(" (expected 0: the messageIds were fresh)")
		case r.duplicates > 0:
			fmt.Fprintf(&b, " (the messageIds of -seed %d repeat those of any earlier run with it)", o.seed)
		}
		fmt.Fprintf(&b, ", rejected %d", r.rejected)
		if r.uncounted > 0 {
			fmt.Fprintf(&b, ", no counts in %d answers", r.uncounted)
		}
	}
	return b.String()
}

// countProblems returns what is wrong with the server's counts: answers
// without them, duplicates when no event could be one, rejected generated
// events, or totals that do not add up to the events acknowledged.
func (r *result) countProblems(o options) []string {
	if !r.counted {
		return nil
	}
	var problems []string
	if r.uncounted > 0 {
		problems = append(problems, fmt.Sprintf("%d of %d answers had no accepted, duplicates and rejected counts: is -server a Trove server?",
			r.uncounted, r.requests-r.errors))
	}
	if r.duplicates > 0 && o.idsFresh() {
		why := "every messageId was fresh"
		if !o.messageIDs {
			why = "no event had a messageId"
		}
		problems = append(problems, fmt.Sprintf("the server counted %d events as duplicates although %s: a bug, in the server or in trove bench", r.duplicates, why))
	}
	if r.rejected > 0 {
		problems = append(problems, fmt.Sprintf("the server rejected %d generated events (it keeps them in its quarantine): a bug, in the server or in the generator", r.rejected))
	}
	if sum := r.accepted + r.duplicates + r.rejected; r.uncounted == 0 && sum != r.events {
		problems = append(problems, fmt.Sprintf("the server's answers count %d events (accepted + duplicates + rejected), but the requests it acknowledged held %d", sum, r.events))
	}
	return problems
}

// latencyStats formats sorted latencies as "latency p50 … p99 … max …".
func latencyStats(sorted []time.Duration) string {
	return "latency p50 " + fmtLatency(percentile(sorted, 0.50)) + " p99 " + fmtLatency(percentile(sorted, 0.99)) +
		" max " + fmtLatency(percentile(sorted, 1))
}

// printRatio prints res's share of the ceiling's rate of unit (events, updates).
func printRatio(w io.Writer, res, ceiling *result, unit string) {
	if ceiling.eventsPerSec() <= 0 {
		return
	}
	fmt.Fprintf(w, "ratio: %.2f of the ceiling (%s of %s %s/s)\n",
		res.eventsPerSec()/ceiling.eventsPerSec(),
		groupDigits(int64(res.eventsPerSec())), groupDigits(int64(ceiling.eventsPerSec())), unit)
}

// clientLine reports the run's settings and what the client cost, so that a
// reader can tell whether it was a bottleneck: the wall time its workers spent
// building bodies (an upper bound when they compete for the CPU) and the
// process's CPU time over the run, both as a share of one core.
func (r *result) clientLine(o options) string {
	format, unit := "json", "event"
	switch {
	case o.profiles:
		format, unit = "json, profiles", "update"
	case o.ndjson:
		format = "ndjson"
	case o.batch == 1:
		format = "json object"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "client: batch %d (%s), conns %d, seed %d", o.batch, format, o.conns, o.seed)
	if !o.profiles {
		b.WriteString(", " + o.idsLine())
	}
	if sent := r.generated; sent > 0 && r.elapsed > 0 {
		fmt.Fprintf(&b, ", generation %d ns/%s (%.0f%% of one core)",
			r.genTime.Nanoseconds()/sent, unit, 100*r.genTime.Seconds()/r.elapsed.Seconds())
		if o.gzip {
			fmt.Fprintf(&b, ", gzip %d ns/event (%.0f%% of one core), ratio %.1fx",
				r.zipTime.Nanoseconds()/sent, 100*r.zipTime.Seconds()/r.elapsed.Seconds(),
				float64(r.rawBytes)/float64(max(r.wireBytes, 1)))
		}
	}
	if r.cpu > 0 && r.elapsed > 0 {
		fmt.Fprintf(&b, ", process CPU %.2fs (%.0f%% of one core)", r.cpu.Seconds(), 100*r.cpu.Seconds()/r.elapsed.Seconds())
	}
	if m := r.machine.String(); m != "" {
		b.WriteString("; " + m)
	}
	return b.String()
}

// run sends o.n events (or as many as fit in o.duration) to tgt with o.conns
// workers and returns what happened. A request that gets no HTTP answer at all
// ends the run, since the figures would mean nothing; other failures are
// counted and the run goes on.
func run(ctx context.Context, o options, tgt target, stderr io.Writer, progress bool) *result {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if o.duration > 0 {
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	hc := &fasthttp.HostClient{
		Addr:                      tgt.addr,
		IsTLS:                     tgt.isTLS,
		Name:                      "trove-bench",
		MaxConns:                  o.conns,
		MaxIdemponentCallAttempts: 1, // never resend: a retried batch would count twice
		ReadTimeout:               o.timeout,
		WriteTimeout:              o.timeout,
		MaxConnWaitTimeout:        o.timeout,
	}
	defer hc.CloseIdleConnections()

	sh := &shared{
		o:        o,
		tgt:      tgt,
		hc:       hc,
		requests: (o.n + int64(o.batch) - 1) / int64(o.batch),
		cancel:   cancel,
		counted:  !o.profiles && !tgt.discards,
	}
	stopProgress := func() {}
	if progress {
		unit := "events"
		if o.profiles {
			unit = "updates"
		}
		stopProgress = startProgress(stderr, &sh.sent, unit)
	}
	stopReads := func() *readResult { return nil }
	if o.profiles && o.reads > 0 {
		sh.known = newKnownUsers()
		stopReads = startReads(ctx, o, tgt, sh.known)
	}
	cpu0, cpuOK := processCPU()
	m0, machineOK := readMachineCPU()
	start := time.Now()
	workers := make([]*worker, o.conns)
	var wg sync.WaitGroup
	for i := range workers {
		w := newWorker(sh)
		workers[i] = w
		wg.Go(func() { w.loop(ctx) })
	}
	wg.Wait()
	res := &result{elapsed: time.Since(start), counted: sh.counted}
	if cpu1, ok := processCPU(); ok && cpuOK {
		res.cpu = cpu1 - cpu0
	}
	if m1, ok := readMachineCPU(); ok && machineOK {
		res.machine = m1.since(m0)
	}
	res.reads = stopReads()
	stopProgress()

	for _, w := range workers {
		res.events += w.events
		res.requests += w.requests
		res.errors += w.errors
		res.rawBytes += w.rawBytes
		res.wireBytes += w.wireBytes
		res.generated += w.generated
		res.genTime += w.genTime
		res.zipTime += w.zipTime
		res.latencies = append(res.latencies, w.latencies...)
		res.accepted += w.accepted
		res.duplicates += w.duplicates
		res.rejected += w.rejected
		res.uncounted += w.uncounted
	}
	slices.Sort(res.latencies)
	if p := sh.firstErr.Load(); p != nil {
		res.firstErr = *p
	}
	return res
}

// shared is the state that a run's workers share.
type shared struct {
	o        options
	tgt      target
	hc       *fasthttp.HostClient
	requests int64 // total requests in the run
	counted  bool  // read the server's accepted, duplicates and rejected counts
	next     atomic.Int64
	sent     atomic.Int64 // events in completed requests, for progress
	firstErr atomic.Pointer[string]
	cancel   context.CancelFunc
	known    *knownUsers // users of acknowledged profile updates, when reads are on
}

// recordError keeps msg if it is the run's first error.
func (sh *shared) recordError(msg string) {
	sh.firstErr.CompareAndSwap(nil, &msg)
}

// worker sends requests on one connection; its counters are its own, so that
// the hot loop shares nothing but the request counter.
type worker struct {
	sh    *shared
	gen   *Generator        // events mode
	pgen  *ProfileGenerator // profiles mode
	body  []byte
	zbuf  bytes.Buffer
	zw    *gzip.Writer
	req   *fasthttp.Request
	resp  *fasthttp.Response
	ctype string

	events, requests, errors       int64
	rawBytes, wireBytes            int64
	generated                      int64
	accepted, duplicates, rejected int64
	uncounted                      int64
	genTime, zipTime               time.Duration
	latencies                      []time.Duration
}

// newWorker makes a worker with its own generator and buffers.
func newWorker(sh *shared) *worker {
	o := sh.o
	w := &worker{
		sh:    sh,
		body:  make([]byte, 0, min(o.batch*600+64, 8<<20)),
		ctype: "application/json",
	}
	if o.profiles {
		w.pgen = NewProfileGenerator(o.seed)
		w.pgen.track = sh.known != nil
	} else {
		w.gen = NewGenerator(o.seed, o.appKey).WithMessageIDs(o.messageIDs).WithMessageIDSalt(o.idSalt)
	}
	if o.ndjson {
		w.ctype = "application/x-ndjson"
	}
	if o.gzip {
		// BestSpeed keeps the client's share of the CPU small; SDKs that
		// compress use low levels for the same reason.
		w.zw, _ = gzip.NewWriterLevel(&w.zbuf, gzip.BestSpeed)
	}
	w.latencies = make([]time.Duration, 0, min(sh.requests/int64(o.conns)+1, 1<<20))
	return w
}

// loop takes request numbers until the run is over.
func (w *worker) loop(ctx context.Context) {
	w.req = fasthttp.AcquireRequest()
	w.resp = fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(w.req)
	defer fasthttp.ReleaseResponse(w.resp)
	sh := w.sh
	for ctx.Err() == nil {
		i := sh.next.Add(1) - 1
		if i >= sh.requests {
			return
		}
		n := int(min(int64(sh.o.batch), sh.o.n-i*int64(sh.o.batch)))
		body := w.build(i, n)
		if !w.send(body, n) {
			sh.cancel()
			return
		}
	}
}

// build makes the body of request number i, holding n events (or profiles).
// The events depend only on the seed and i, so a run carries the same data
// whatever the number of workers.
func (w *worker) build(i int64, n int) []byte {
	o := w.sh.o
	t0 := time.Now()
	b := w.body[:0]
	if w.pgen != nil {
		w.pgen.reseedRequest(uint64(i), o.batch)
		b = w.pgen.AppendRequest(b, o.appKey, n)
	} else {
		w.gen.reseed(uint64(i))
		switch {
		case o.segment:
			b = w.gen.AppendSegmentBatch(b, n)
		case o.ndjson:
			b = w.gen.AppendNDJSON(b, n)
		case o.batch == 1:
			b = w.gen.AppendEvent(b)
		default:
			b = w.gen.AppendJSONArray(b, n)
		}
	}
	w.body = b
	t1 := time.Now()
	w.genTime += t1.Sub(t0)
	w.generated += int64(n)
	if w.zw == nil {
		return b
	}
	w.zbuf.Reset()
	w.zw.Reset(&w.zbuf)
	w.zw.Write(b) // writes to a bytes.Buffer cannot fail
	w.zw.Close()
	w.zipTime += time.Since(t1)
	return w.zbuf.Bytes()
}

// send posts body, which holds n events, and records the outcome. It returns
// false when the request got no HTTP answer and the run should stop.
func (w *worker) send(body []byte, n int) bool {
	sh, req, resp := w.sh, w.req, w.resp
	req.Reset()
	resp.Reset()
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetRequestURI(sh.tgt.uri)
	req.Header.SetContentType(w.ctype)
	if sh.o.gzip {
		req.Header.Set(fasthttp.HeaderContentEncoding, "gzip")
	}
	if sh.o.token != "" {
		req.Header.Set(fasthttp.HeaderAuthorization, "Bearer "+sh.o.token)
	} else if sh.o.segment {
		req.Header.Set(fasthttp.HeaderAuthorization, "Basic "+base64.StdEncoding.EncodeToString([]byte(sh.o.appKey+":")))
	}
	// The body is not copied: it stays untouched until Do returns.
	req.SetBodyRaw(body)

	t0 := time.Now()
	err := sh.hc.DoTimeout(req, resp, sh.o.timeout)
	lat := time.Since(t0)

	w.requests++
	sh.sent.Add(int64(n))
	if err != nil {
		w.errors++
		sh.recordError(fmt.Sprintf("POST %s: %v", sh.tgt.uri, err))
		return false
	}
	w.latencies = append(w.latencies, lat)
	if code := resp.StatusCode(); code != fasthttp.StatusAccepted && !(sh.o.segment && code == fasthttp.StatusOK) {
		w.errors++
		b := resp.Body()
		if len(b) > maxErrorBody {
			b = b[:maxErrorBody]
		}
		sh.recordError(fmt.Sprintf("HTTP %d: %s", code, bytes.TrimSpace(b)))
		return true
	}
	w.events += int64(n)
	if sh.counted {
		w.count(resp.Body())
	}
	w.rawBytes += int64(len(w.body))
	w.wireBytes += int64(len(body))
	if sh.known != nil {
		sh.known.add(w.pgen.tracked)
	}
	return true
}

// count adds the server's counts in an answer, such as
// {"accepted":498,"duplicates":2,"rejected":0,"errors":[]}, to w's.
func (w *worker) count(body []byte) {
	a, ok1 := answerCount(body, `"accepted":`)
	d, ok2 := answerCount(body, `"duplicates":`)
	r, ok3 := answerCount(body, `"rejected":`)
	if !ok1 || !ok2 || !ok3 {
		w.uncounted++
		return
	}
	w.accepted += a
	w.duplicates += d
	w.rejected += r
}

// answerCount returns the number after the first occurrence of key (a
// quoted member name and its colon) in body. Inside a JSON string the
// quotes would be escaped, so the first occurrence is the member itself.
// A full decode per answer would cost the client more than the scan,
// which matters at W2's request rate.
func answerCount(body []byte, key string) (int64, bool) {
	i := bytes.Index(body, []byte(key))
	if i < 0 {
		return 0, false
	}
	v := bytes.TrimLeft(body[i+len(key):], " \t\r\n")
	n, j := int64(0), 0
	for ; j < len(v) && j < 18 && '0' <= v[j] && v[j] <= '9'; j++ {
		n = n*10 + int64(v[j]-'0')
	}
	return n, j > 0
}

// startProgress prints the units (events, updates) sent and the rate over the
// last second to stderr once a second, on one line, until the returned
// function is called.
func startProgress(stderr io.Writer, sent *atomic.Int64, unit string) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		var last int64
		lastT := time.Now()
		for {
			select {
			case <-done:
				fmt.Fprint(stderr, "\r\033[K")
				return
			case now := <-tick.C:
				cur := sent.Load()
				rate := float64(cur-last) / now.Sub(lastT).Seconds()
				last, lastT = cur, now
				fmt.Fprintf(stderr, "\r\033[K%s %s sent, %s %s/s", groupDigits(cur), unit, groupDigits(int64(rate)), unit)
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// isTerminal reports whether w is a character device such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// percentile returns the p-quantile (0 < p <= 1) of sorted durations, or 0
// when there are none.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// fmtLatency formats d with two or three significant digits: 850µs, 2.1ms, 14ms, 1.25s.
func fmtLatency(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%.0fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// groupDigits formats v with commas between groups of three digits: 203,600.
func groupDigits(v int64) string {
	s := fmt.Sprint(v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
