// Package compat is the plumbing that the SDK-compatible protocols other
// than Segment's (packages amplitude, mixpanel and posthog) share: the
// resolution of an API key to an app, and a Request that takes each
// message translated into a Trove event (and, for the messages that change
// a profile, a profile object as POST /users/profile takes it) and stores
// them exactly as package segment does: the same validation, quarantine,
// messageId dedup, rate limit and public_profile_writes rule.
package compat

import (
	"fmt"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"trove/apierr"
	"trove/auth"
	"trove/ingest"
	"trove/profile"
	"trove/segment"
)

// TranslationSlack is what a message may grow by as a Trove event (the
// appKey, the members kept under the protocol's own name).
const TranslationSlack = 4 << 10

// Limiter charges messages to their app's rate limit (web.RateLimiter).
type Limiter interface {
	// Take charges counts[i] to app appKeys[i], for every i, or, returning
	// an error, to none of them. It does not retain the slices.
	Take(appKeys []string, counts []int) error
}

// Core holds what every protocol's handler needs.
type Core struct {
	reg      *auth.Registry
	events   *ingest.Handler
	profiles *profile.Handler
	limiter  Limiter
	cfg      Config
}

// Config configures the protocols.
type Config struct {
	// Aliases maps the API keys of the config's [[apps]] api_keys to their
	// appKeys; it is never modified once serving.
	Aliases map[string]string
	// MaxRequestBytes bounds a body before and after decompression
	// (ingest.max_request_bytes).
	MaxRequestBytes int
}

// New returns a Core that stores events through events and profile
// updates through profiles.
func New(cfg Config, reg *auth.Registry, events *ingest.Handler, profiles *profile.Handler) *Core {
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = 5 << 20
	}
	return &Core{reg: reg, events: events, profiles: profiles, cfg: cfg}
}

// SetLimiter makes c charge every message of a request to its app's rate
// before storing anything. Call it before serving.
func (c *Core) SetLimiter(l Limiter) { c.limiter = l }

// Resolve returns the app an API key names, and whether the key is a token:
// an appKey, one of an app's api_keys, or a token with ingest scope for
// exactly one app. A credential in the Authorization header (HTTP Basic
// user name or Bearer) takes precedence over key. field names the key in
// errors (e.g. "api_key").
func (c *Core) Resolve(ctx *fasthttp.RequestCtx, key []byte, field string) (appKey string, byToken bool, err error) {
	secret, present, err := auth.Credential(ctx.Request.Header.Peek("Authorization"))
	if err != nil {
		return "", false, err
	}
	if present && len(secret) > 0 {
		key = secret
	}
	if len(key) == 0 {
		return "", false, &KeyError{Field: field, Err: fmt.Errorf("%w: %s is required: the app's appKey (or one of its api_keys), or a token with ingest scope for the app", auth.ErrUnauthenticated, field)}
	}
	k := string(key)
	if a, ok := c.cfg.Aliases[k]; ok {
		k = a
	}
	if app, ok := c.reg.App(k); ok {
		if app.RequireToken {
			return "", false, &KeyError{Field: field, Err: fmt.Errorf("%w: app %q requires a token: send a token with ingest scope for this app as %s", auth.ErrUnauthenticated, app.AppKey, field)}
		}
		return app.AppKey, false, nil
	}
	tok, err := c.reg.Authenticate(key)
	if err != nil {
		return "", false, &KeyError{Field: field, Err: fmt.Errorf("%w: %s is neither a known appKey nor a valid token", auth.ErrUnauthenticated, field)}
	}
	if tok.Scopes&auth.ScopeIngest == 0 {
		return "", false, &KeyError{Field: field, Err: fmt.Errorf("%w: token %q does not have ingest scope", auth.ErrForbidden, tok.Name)}
	}
	app, ok := tok.OnlyApp()
	if !ok {
		return "", false, &KeyError{Field: field, Err: fmt.Errorf("%w: token %q covers more than one app: a token used as %s must cover exactly one", auth.ErrForbidden, tok.Name, field)}
	}
	return app, true, nil
}

// ProfileWrites reports whether a request to appKey may change profiles:
// with a token, or when the app sets public_profile_writes.
func (c *Core) ProfileWrites(appKey string, byToken bool) bool {
	if byToken {
		return true
	}
	app, ok := c.reg.App(appKey)
	return ok && app.PublicProfileWrites
}

// Request collects the messages of one request. It is not safe for
// concurrent use.
type Request struct {
	c             *Core
	b             *ingest.Batch
	appKey        string
	profileWrites bool
	// Now is the request's time of arrival.
	Now   time.Time
	n     int
	profs []profileUpdate
	raws  map[int][]byte
	warns []ingest.ItemError
	// unchanged counts the messages whose profile change was not applied.
	unchanged int
}

type profileUpdate struct {
	index int
	obj   []byte
}

// Begin starts a request to appKey.
func (c *Core) Begin(ctx *fasthttp.RequestCtx, appKey string, profileWrites bool) *Request {
	b := c.events.NewBatch(ingest.ClientIP(ctx), TranslationSlack)
	return &Request{c: c, b: b, appKey: appKey, profileWrites: profileWrites, Now: b.Now, raws: map[int][]byte{}}
}

// AppKey is the request's app.
func (r *Request) AppKey() string { return r.appKey }

// Release returns the request's buffers; nothing may refer to them after.
func (r *Request) Release() { ingest.ReleaseBatch(r.b) }

// Reject quarantines message i (raw, as sent) with the reason. r keeps raw
// until Release.
func (r *Request) Reject(i int, messageID, field, msg string, raw []byte) {
	r.n++
	r.b.Reject(i, r.appKey, messageID, field, "invalid_event", msg, raw)
}

// Admit reports whether message i, m, can be translated: a JSON object
// of at most segment.MaxMessageBytes. Otherwise it rejects m, naming it
// noun ("event", "update"), as every protocol words it.
func (r *Request) Admit(i int, m []byte, noun string) bool {
	if len(m) > segment.MaxMessageBytes {
		r.Reject(i, "", "", fmt.Sprintf("%s is %d bytes, over the limit of %d", noun, len(m), segment.MaxMessageBytes), m)
		return false
	}
	if m[0] != '{' {
		r.Reject(i, "", "", "an "+noun+" must be a JSON object, got "+ingest.KindOf(m), m)
		return false
	}
	return true
}

// Warn adds a warning about message i to the answer.
func (r *Request) Warn(i int, messageID, field, msg string) {
	if len(r.warns) < maxWarnings {
		index := i
		r.warns = append(r.warns, ingest.ItemError{Index: &index, MessageID: messageID, Field: field, Message: msg})
	}
}

// maxWarnings caps the warnings listed in one answer.
const maxWarnings = 100

// PublicProfileWarning is the warning of a message whose profile change was
// not applied because the request carried the appKey alone.
const PublicProfileWarning = "stored as an event; no profile changed: with the public appKey as API key, " +
	"profile changes apply only if the app has public_profile_writes = true; " +
	"send a token with ingest scope for the app as API key to change them"

// Add adds message i: event is its Trove event (valid JSON), raw the
// message as sent (for the quarantine), prof its profile object or nil.
// rename maps the Trove field ingest names in an error to the protocol's
// field. It reports whether the event is valid. r keeps every slice
// until Release.
func (r *Request) Add(i int, event, raw, prof []byte, rename func(string) string) bool {
	r.n++
	r.raws[i] = raw
	if prof != nil && r.profileWrites {
		if err := r.c.profiles.Check(prof); err != nil {
			field, msg := profileError(err, rename)
			r.b.Reject(i, r.appKey, "", field, "invalid_event", msg, raw)
			return false
		}
	}
	if !r.b.Add(i, event) {
		rej := &r.b.Rejected[len(r.b.Rejected)-1]
		if rename != nil {
			if f := rename(rej.Field); f != rej.Field {
				if len(rej.Message) >= len(rej.Field) && rej.Message[:len(rej.Field)] == rej.Field {
					rej.Message = f + rej.Message[len(rej.Field):]
				}
				rej.Field = f
			}
		}
		rej.Raw = raw
		return false
	}
	if prof != nil {
		if r.profileWrites {
			r.profs = append(r.profs, profileUpdate{index: i, obj: prof})
		} else {
			r.unchanged++
			r.Warn(i, string(r.b.Events[len(r.b.Events)-1].MessageID), "api_key", PublicProfileWarning)
		}
	}
	return true
}

// profileError returns the field and the reason of a profile error.
func profileError(err error, rename func(string) string) (field, msg string) {
	field = "user_properties"
	if pe, ok := err.(*apierr.Error); ok && pe.Field != "" && rename != nil {
		field = rename("profile." + pe.Field)
	}
	return field, err.Error()
}

// Outcome is what a request stored.
type Outcome struct {
	Accepted, Duplicates, Rejected int
	Errors                         []ingest.ItemError
	// RejectedIndex holds the index of every message quarantined.
	RejectedIndex map[int]string
	// ProfilesUnchanged counts the messages stored whose profile change was
	// not applied (the appKey alone, without public_profile_writes).
	ProfilesUnchanged int
	Warnings          []ingest.ItemError
}

// Finish charges the request to the app's rate, applies the profile
// changes, then stores the events (profiles first, as package segment
// does: a failure between the two leaves the request unanswered and the
// SDK's resend sets the same values again before storing the events once).
func (r *Request) Finish() (*Outcome, error) {
	if r.c.limiter != nil && r.n > 0 {
		if err := r.c.limiter.Take([]string{r.appKey}, []int{r.n}); err != nil {
			return nil, err
		}
	}
	if len(r.profs) > 0 {
		objs := make([][]byte, len(r.profs))
		for i, p := range r.profs {
			objs[i] = p.obj
		}
		errs, err := r.c.profiles.ApplyEach(r.appKey, objs)
		if err != nil {
			return nil, err
		}
		for i, e := range errs {
			if e == nil {
				continue
			}
			idx := r.profs[i].index
			for j := range r.b.Events {
				if r.b.Events[j].Index == idx {
					field, msg := profileError(e, nil)
					r.b.Drop(j, field, msg, r.raws[idx])
					break
				}
			}
		}
	}
	res, err := r.c.events.Store(r.b)
	if err != nil {
		return nil, err
	}
	out := &Outcome{Accepted: res.Accepted, Duplicates: res.Duplicates, Rejected: res.Rejected, Errors: res.Errors,
		RejectedIndex: map[int]string{}, ProfilesUnchanged: r.unchanged, Warnings: r.warns}
	// Schema contract warnings (schema_mode "warn") join the profile ones.
	for _, w := range res.Warnings {
		if len(out.Warnings) < maxWarnings {
			out.Warnings = append(out.Warnings, w)
		}
	}
	for _, rej := range r.b.Rejected {
		out.RejectedIndex[rej.Index] = rej.Field
	}
	return out, nil
}

// AppendTime appends ms, milliseconds since the Unix epoch, as a JSON
// string in RFC 3339 (UTC, milliseconds).
func AppendTime(dst []byte, ms int64) []byte {
	dst = append(dst, '"')
	dst = time.UnixMilli(ms).UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z07:00")
	return append(dst, '"')
}

// AppendTimeOf appends t as AppendTime does.
func AppendTimeOf(dst []byte, t time.Time) []byte { return AppendTime(dst, t.UnixMilli()) }

// EpochMillis reads raw, a JSON number of seconds or milliseconds since
// the epoch (values below 1e11 are seconds, as Mixpanel's are), or a
// string holding one, as milliseconds.
func EpochMillis(raw []byte) (int64, bool) {
	if s, ok := ingest.JSONString(raw); ok {
		raw = s
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || f < 0 || f > 1e15 {
		return 0, false
	}
	if f < 1e11 {
		f *= 1000
	}
	return int64(f), true
}

// Member is one raw member of a JSON object: its key (without quotes,
// escapes as sent) and its raw value.
type Member struct{ Key, Val []byte }

// Event is a message's Trove event in the making: each field a raw JSON
// value, nil when absent.
type Event struct {
	Name, UserID, Time, MessageID, SentAt, Context, Attributes []byte
	// Vendor names the member that keeps, in the stored event, what Trove
	// has no field for (Kept), e.g. "amplitude".
	Vendor string
	Kept   []Member
}

// Append appends the event of app appKey as JSON to dst.
func (e *Event) Append(dst []byte, appKey string) []byte {
	dst = append(dst, `{"type":"event","event":`...)
	dst = append(dst, e.Name...)
	dst = append(dst, `,"userId":`...)
	dst = append(dst, e.UserID...)
	dst = append(dst, `,"eventTime":`...)
	dst = append(dst, e.Time...)
	dst = append(dst, `,"appKey":`...)
	dst = ingest.AppendQuoted(dst, appKey)
	add := func(key string, v []byte) {
		if v != nil && string(v) != "null" {
			dst = append(dst, `,"`...)
			dst = append(dst, key...)
			dst = append(dst, `":`...)
			dst = append(dst, v...)
		}
	}
	add("messageId", e.MessageID)
	add("sentAt", e.SentAt)
	add("context", e.Context)
	add("attributes", e.Attributes)
	if len(e.Kept) > 0 {
		dst = append(dst, `,"`...)
		dst = append(dst, e.Vendor...)
		dst = append(dst, `":{`...)
		for i, m := range e.Kept {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, '"')
			dst = append(dst, m.Key...)
			dst = append(dst, '"', ':')
			dst = append(dst, m.Val...)
		}
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

// Without returns the raw JSON object obj without the members named in
// drop (nil when nothing is left, obj itself when nothing is dropped).
func Without(obj []byte, drop ...string) []byte {
	if len(obj) == 0 || obj[0] != '{' {
		return obj
	}
	found := false
	ingest.ForEachMember(obj, func(k, _ []byte) error {
		for _, d := range drop {
			if string(k) == d {
				found = true
			}
		}
		return nil
	})
	if !found {
		return obj
	}
	out := []byte{'{'}
	ingest.ForEachMember(obj, func(k, v []byte) error {
		for _, d := range drop {
			if string(k) == d {
				return nil
			}
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(out, '"')
		out = append(out, k...)
		out = append(out, '"', ':')
		out = append(out, v...)
		return nil
	})
	if len(out) == 1 {
		return nil
	}
	return append(out, '}')
}

// Twice returns the first of keys that appears more than once among the
// members of the JSON object obj, or "". A vendor's message with a field
// Trove reads written twice is refused naming it: which one the sender
// meant is ambiguous, and a reader of the raw message could take the other.
func Twice(obj []byte, keys ...string) string {
	if len(obj) == 0 || obj[0] != '{' {
		return ""
	}
	var seen uint64 // a bit per key, so at most 64 keys
	twice := ""
	ingest.ForEachMember(obj, func(k, _ []byte) error {
		for i, key := range keys {
			if string(k) != key {
				continue
			}
			if seen&(1<<i) != 0 && twice == "" {
				twice = key
			}
			seen |= 1 << i
		}
		return nil
	})
	return twice
}

// Lookup returns the raw value of member key of the JSON object obj, or nil.
func Lookup(obj []byte, key string) []byte {
	var v []byte
	if len(obj) == 0 || obj[0] != '{' {
		return nil
	}
	ingest.ForEachMember(obj, func(k, val []byte) error {
		if string(k) == key {
			v = val
		}
		return nil
	})
	return v
}

// EachMember calls fn with each member of the raw object obj, unquoted
// name first; it does nothing when obj is not an object.
func EachMember(obj []byte, fn func(name string, val []byte)) {
	if len(obj) == 0 || obj[0] != '{' {
		return
	}
	ingest.ForEachMember(obj, func(k, v []byte) error {
		fn(string(k), v)
		return nil
	})
}
