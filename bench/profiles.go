package bench

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

const (
	// eventsPath and profilesPath are the endpoints of SPEC.md sections 3 and 4.
	eventsPath   = "/v1/events"
	profilesPath = "/v1/users/profile"

	// knownSlots is how many recently acknowledged users reads choose from.
	knownSlots = 1 << 14
)

// parseProfileFlags parses the arguments of `trove bench profiles` into
// options, reporting problems and usage on stderr.
func parseProfileFlags(args []string, stderr io.Writer) (options, error) {
	o := options{profiles: true}
	fs := flag.NewFlagSet("trove bench profiles", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: trove bench profiles [flags]\n\n"+
			"Sends generated profile updates to POST "+profilesPath+" (about 20%% new users,\n"+
			"70%% updates of existing ones, 10%% known by an alias only) and reports throughput\n"+
			"and latency; with -reads, also reads profiles back by userId at a steady rate.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&o.server, "server", "http://127.0.0.1:8080", "base `URL` of the Trove server")
	fs.StringVar(&o.appKey, "app", DefaultAppKey, "appKey of the profiles")
	fs.StringVar(&o.token, "token", "", "token with ingest scope (and export scope for -reads), sent as Authorization: Bearer; required (default $TROVE_TOKEN)")
	fs.IntVar(&o.batch, "batch", 100, "profiles per request (the server takes at most 1000 by default)")
	fs.IntVar(&o.conns, "conns", 8, "concurrent connections for updates, one worker each")
	fs.Int64Var(&o.n, "n", 200_000, "total profile updates to send")
	fs.DurationVar(&o.duration, "duration", 0, "stop after this long even if -n is not reached (0: no cap)")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "timeout of one request")
	fs.Int64Var(&o.seed, "seed", 1, "seed of the profile generator")
	fs.Float64Var(&o.reads, "reads", 0, "also read profiles back (GET by userId of users already updated) at this `rate` per second in total, on connections of their own (0: none)")
	fs.BoolVar(&o.calibrate, "calibrate", false, "first measure an in-process server that discards requests, then report the ratio")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	tokenFromEnv(fs, &o.token)
	problems := checkCommon(fs, o)
	if !(o.reads >= 0) || math.IsInf(o.reads, 1) {
		problems = append(problems, "-reads must be a rate >= 0")
	}
	if o.token == "" {
		problems = append(problems, "a token is required: -token or $TROVE_TOKEN (the Profiles API needs ingest scope, and export scope for -reads)")
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintf(stderr, "trove bench profiles: %s\n", p)
		}
		fs.Usage()
		return o, errors.New(strings.Join(problems, "; "))
	}
	return o, nil
}

// profiles returns t with the Profiles API as the endpoint in place of the
// Events API.
func (t target) profiles() target {
	t.uri = strings.TrimSuffix(t.uri, eventsPath) + profilesPath
	return t
}

// ceilingProfiles is the ceiling server's handler in profiles mode: it
// discards updates with a 202 and answers reads with a small profile.
func ceilingProfiles(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("application/json")
	if ctx.IsGet() {
		ctx.SetStatusCode(fasthttp.StatusOK)
		ctx.SetBodyString(`{"pyze_id":"00000000-0000-4000-8000-000000000000","userId":"puser-0","first_name":"Olivia"}`)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusAccepted)
	ctx.SetBodyString(`{"accepted":0,"profiles":[]}`)
}

// knownUsers holds the numbers of users named by userId in acknowledged
// update requests, for reads to choose from: a ring of the most recent
// knownSlots, so popular users come up as often as they are updated.
type knownUsers struct {
	slots [knownSlots]atomic.Uint64 // user number + 1; 0 while not yet written
	n     atomic.Uint64             // slots claimed so far
	first atomic.Uint64             // a user that is always there once ready is closed
	once  sync.Once
	ready chan struct{} // closed when the first user is known
	start time.Time     // when ready was closed; read only after ready
}

func newKnownUsers() *knownUsers {
	return &knownUsers{ready: make(chan struct{})}
}

// add records users, whose update the server has acknowledged.
func (k *knownUsers) add(users []uint64) {
	if len(users) == 0 {
		return
	}
	end := k.n.Add(uint64(len(users)))
	for i, u := range users {
		k.slots[(end-uint64(len(users))+uint64(i))%knownSlots].Store(u + 1)
	}
	k.once.Do(func() {
		k.first.Store(users[0])
		k.start = time.Now()
		close(k.ready)
	})
}

// pick returns a known user chosen with the random word r. It must be called
// only after ready is closed.
func (k *knownUsers) pick(r uint64) uint64 {
	n := min(k.n.Load(), knownSlots)
	if v := k.slots[r%n].Load(); v != 0 {
		return v - 1
	}
	// Claimed by a worker that has not stored it yet.
	return k.first.Load()
}

// readResult is the outcome of the profile reads of one run.
type readResult struct {
	elapsed   time.Duration // from the first acknowledged update to the end of the run
	reads     int64         // reads completed, whatever their outcome
	errors    int64
	latencies []time.Duration // sorted
	firstErr  string
}

// summary formats the reads as one line of the report, target being the
// -reads rate asked for.
func (r *readResult) summary(target float64) string {
	rate := 0.0
	if r.elapsed > 0 {
		rate = float64(r.reads) / r.elapsed.Seconds()
	}
	return fmt.Sprintf("reads: %d at %s/s (target %s/s), %s, errors %d",
		r.reads, fmtRate(rate), fmtRate(target), latencyStats(r.latencies), r.errors)
}

// fmtRate formats a rate per second: 1,250, 48, 2, 0.5.
func fmtRate(v float64) string {
	if v >= 10 {
		return groupDigits(int64(math.Round(v)))
	}
	return strings.TrimSuffix(strconv.FormatFloat(v, 'f', 1, 64), ".0")
}

// readConns is how many connections reads at rate per second get: one per
// 100 reads/s, so that the rate holds while a read takes up to 10 ms (as it
// may on a server busy with W3), between 2 and 64.
func readConns(rate float64) int {
	return int(min(max(math.Ceil(rate/100), 2), 64))
}

// startReads starts readers that GET the profiles of known users from tgt
// (the profiles endpoint) at o.reads per second in total, on their own
// connections, from the first acknowledged update on. The returned function
// stops them and reports what they did.
func startReads(ctx context.Context, o options, tgt target, known *knownUsers) (stop func() *readResult) {
	ctx, cancel := context.WithCancel(ctx)
	conns := readConns(o.reads)
	hc := &fasthttp.HostClient{
		Addr:                      tgt.addr,
		IsTLS:                     tgt.isTLS,
		Name:                      "trove-bench",
		MaxConns:                  conns,
		MaxIdemponentCallAttempts: 1,
		ReadTimeout:               o.timeout,
		WriteTimeout:              o.timeout,
		MaxConnWaitTimeout:        o.timeout,
	}
	rs := &readShared{
		o:      o,
		hc:     hc,
		known:  known,
		prefix: tgt.uri + "?appKey=" + url.QueryEscape(o.appKey) + "&userId=puser-",
	}
	readers := make([]*reader, conns)
	var wg sync.WaitGroup
	for i := range readers {
		r := &reader{rs: rs, rnd: rand.NewPCG(uint64(o.seed), uint64(i)+1)}
		readers[i] = r
		wg.Go(func() { r.loop(ctx) })
	}
	return func() *readResult {
		cancel()
		wg.Wait()
		hc.CloseIdleConnections()
		res := &readResult{}
		select {
		case <-known.ready:
			res.elapsed = time.Since(known.start)
		default:
		}
		for _, r := range readers {
			res.reads += r.reads
			res.errors += r.errors
			res.latencies = append(res.latencies, r.latencies...)
		}
		slices.Sort(res.latencies)
		if p := rs.firstErr.Load(); p != nil {
			res.firstErr = *p
		}
		return res
	}
}

// readShared is the state that a run's readers share.
type readShared struct {
	o        options
	hc       *fasthttp.HostClient
	known    *knownUsers
	prefix   string       // the read URI up to the user number
	next     atomic.Int64 // number of the next scheduled read
	firstErr atomic.Pointer[string]
}

// reader sends reads on one connection; its counters are its own.
type reader struct {
	rs        *readShared
	rnd       *rand.PCG
	uri       []byte
	reads     int64
	errors    int64
	latencies []time.Duration
}

// loop waits for the first known user, then takes read numbers and sends
// read k at start + k/rate, until ctx is done. Reads that fall behind the
// schedule go at once, so the rate holds while the server keeps up.
func (r *reader) loop(ctx context.Context) {
	rs := r.rs
	select {
	case <-ctx.Done():
		return
	case <-rs.known.ready:
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	interval := float64(time.Second) / rs.o.reads
	for {
		k := rs.next.Add(1) - 1
		if wait := time.Until(rs.known.start.Add(time.Duration(float64(k) * interval))); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return
		}
		if !r.read(req, resp) {
			return
		}
	}
}

// read GETs the profile of a known user and records the outcome. It returns
// false when the request got no HTTP answer and this reader should stop.
func (r *reader) read(req *fasthttp.Request, resp *fasthttp.Response) bool {
	rs := r.rs
	r.uri = strconv.AppendUint(append(r.uri[:0], rs.prefix...), rs.known.pick(r.rnd.Uint64()), 10)
	req.Reset()
	resp.Reset()
	req.Header.SetMethod(fasthttp.MethodGet)
	req.SetRequestURIBytes(r.uri)
	if rs.o.token != "" {
		req.Header.Set(fasthttp.HeaderAuthorization, "Bearer "+rs.o.token)
	}
	t0 := time.Now()
	err := rs.hc.DoTimeout(req, resp, rs.o.timeout)
	lat := time.Since(t0)
	r.reads++
	if err != nil {
		r.errors++
		msg := fmt.Sprintf("GET %s: %v", r.uri, err)
		rs.firstErr.CompareAndSwap(nil, &msg)
		return false
	}
	r.latencies = append(r.latencies, lat)
	if code := resp.StatusCode(); code != fasthttp.StatusOK {
		r.errors++
		b := resp.Body()
		if len(b) > maxErrorBody {
			b = b[:maxErrorBody]
		}
		msg := fmt.Sprintf("GET %s: HTTP %d: %s", r.uri, code, bytes.TrimSpace(b))
		rs.firstErr.CompareAndSwap(nil, &msg)
	}
	return true
}
