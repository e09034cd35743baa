package segment

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/valyala/fasthttp"

	"trove/apierr"
	"trove/auth"
	"trove/ingest"
	"trove/profile"
)

// Segment's limits (https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/#max-request-size).
const (
	// MaxMessageBytes is the most one message may take, and so the body of
	// /v1/track and the other single-message endpoints.
	MaxMessageBytes = 32 << 10
	// MaxBatchBytes is the most a /v1/batch body may take, after
	// decompression.
	MaxBatchBytes = 500 << 10
	// translationSlack is what a message may grow by as a Trove event
	// (the appKey, "segment" around what does not map, a batch's context).
	translationSlack = 4 << 10
	// maxDepth bounds the nesting of a body: a batch, a message, and the
	// 32 levels Trove takes inside attributes.
	maxDepth = 36
)

// Limiter charges messages to their app's rate limit (web.RateLimiter).
type Limiter interface {
	// Take charges counts[i] to app appKeys[i], for every i, or, returning
	// an error, to none of them. It does not retain the slices.
	Take(appKeys []string, counts []int) error
}

// Handler serves the Segment HTTP Tracking API.
type Handler struct {
	reg      *auth.Registry
	events   *ingest.Handler
	profiles *profile.Handler
	limiter  Limiter
}

// NewHandler returns a Handler that stores events through events and
// profile updates through profiles.
func NewHandler(reg *auth.Registry, events *ingest.Handler, profiles *profile.Handler) *Handler {
	return &Handler{reg: reg, events: events, profiles: profiles}
}

// SetLimiter makes h charge every message of a request (stored,
// quarantined or a profile update) to its app's rate before storing
// anything; a refused request stores nothing. Call it before serving.
func (h *Handler) SetLimiter(l Limiter) { h.limiter = l }

// Result is the answer to a Segment request: Segment's {"success":true}
// plus what POST /v1/events answers.
type Result struct {
	Success    bool               `json:"success"`
	Accepted   int                `json:"accepted"`
	Duplicates int                `json:"duplicates"`
	Rejected   int                `json:"rejected"`
	Errors     []ingest.ItemError `json:"errors"`
	// ProfilesUnchanged counts the identify and alias messages that were
	// stored as events but changed no profile, since the request carried
	// the appKey alone (public_profile_writes); Warnings names them.
	ProfilesUnchanged int                `json:"profilesUnchanged,omitempty"`
	Warnings          []ingest.ItemError `json:"warnings,omitempty"`
}

// publicProfileWarning is the warning of a message whose profile change
// was not applied.
const publicProfileWarning = "stored as an event; no profile changed: with the public appKey as write key, " +
	"identify and alias change profiles only if the app has public_profile_writes = true; " +
	"send a token with ingest scope for the app as write key to change them"

// maxWarnings caps the warnings listed in one answer, as ingest caps the
// errors; ProfilesUnchanged counts them all.
const maxWarnings = 100

// pathKind returns the message type a single-message path implies, and
// whether the path is /v1/batch.
func pathKind(path []byte) (kind, bool) {
	p := string(path)
	if p == "/v1/batch" {
		return kindUnknown, true
	}
	return kindOf([]byte(strings.TrimPrefix(p, "/v1/"))), false
}

// Serve handles POST /v1/batch and the single-message endpoints.
func (h *Handler) Serve(ctx *fasthttp.RequestCtx) error {
	pathType, isBatch := pathKind(ctx.Path())
	body, env, err := readEnvelope(ctx, isBatch)
	if body != nil {
		defer body.Release()
	}
	if err != nil {
		return err
	}
	appKey, byToken, err := h.resolveApp(ctx, env.writeKey)
	if err != nil {
		return err
	}
	// The appKey is public (it ships in every browser and app build): it
	// may add events, but changing profiles takes what the User Profiles
	// API takes, a token, unless the app opts out.
	profileWrites := byToken
	if app, ok := h.reg.App(appKey); ok && app.PublicProfileWrites {
		profileWrites = true
	}

	b := h.events.NewBatch(ingest.ClientIP(ctx), translationSlack)
	defer ingest.ReleaseBatch(b)
	receivedAt := b.Now.UTC().AppendFormat([]byte{'"'}, "2006-01-02T15:04:05.000Z07:00")
	tr := batchTranslation{h: h, b: b, env: &env, appKey: appKey, pathType: pathType, isBatch: isBatch, profileWrites: profileWrites,
		receivedAt: append(receivedAt, '"')}
	for i, raw := range env.msgs {
		tr.add(i, raw)
	}

	if h.limiter != nil && len(env.msgs) > 0 {
		if err := h.limiter.Take([]string{appKey}, []int{len(env.msgs)}); err != nil {
			return err
		}
	}
	// Profiles first: a failure between the two writes leaves the batch
	// unanswered, and the SDK's retry applies the same traits again
	// (setting is idempotent) and then stores the events.
	if err := h.applyProfiles(b, appKey, tr.profs, env.msgs); err != nil {
		return err
	}
	res, err := h.events.Store(b)
	if err != nil {
		return err
	}
	answer := Result{Success: true, Accepted: res.Accepted, Duplicates: res.Duplicates, Rejected: res.Rejected, Errors: res.Errors,
		ProfilesUnchanged: len(tr.unchanged)}
	// Schema contract warnings (schema_mode "warn") join the profile ones.
	if w := append(tr.unchanged, res.Warnings...); len(w) > 0 {
		answer.Warnings = w[:min(len(w), maxWarnings)]
	}
	return ingest.Answer(ctx, fasthttp.StatusOK, answer)
}

// envelope is what a request's body holds around its messages.
type envelope struct {
	d        defaults // the batch's sentAt, context and integrations
	writeKey []byte   // unquoted; nil when absent
	msgs     [][]byte // the raw messages, aliasing the body
}

// readEnvelope reads the request's body (which the caller releases, also
// on an error) and splits it into its messages: the elements of a batch's
// "batch" array, or the one message of a single-message endpoint.
func readEnvelope(ctx *fasthttp.RequestCtx, isBatch bool) (*ingest.Body, envelope, error) {
	var env envelope
	limit, what := MaxMessageBytes, "Segment's limit of 32 KB per message"
	if isBatch {
		limit, what = MaxBatchBytes, "Segment's limit of 500 KB per batch"
	}
	switch ingest.MediaType(ctx) {
	// RudderStack's node SDK posts its gzip'd JSON through axios, which
	// labels a Buffer application/x-www-form-urlencoded (issue 18): the
	// body is JSON all the same, and checked as such below.
	case "", "application/json", "text/plain", "application/x-www-form-urlencoded":
	default:
		return nil, env, ingest.UnsupportedType(ctx, "application/json")
	}
	body, err := ingest.ReadBodyAnyType(ctx, limit, what)
	if err != nil {
		return nil, env, err
	}
	raw := bytes.TrimSpace(body.Bytes())
	if len(raw) == 0 {
		return body, env, ingest.Invalid("", "the request body is empty")
	}
	if ok, why := ingest.ValidJSON(raw, maxDepth); !ok {
		return body, env, ingest.Invalid("", "%s", why)
	}
	if raw[0] != '{' {
		return body, env, ingest.Invalid("", "the body must be a JSON object, got %s", ingest.KindOf(raw))
	}
	if isBatch {
		var batch []byte
		ingest.ForEachMember(raw, func(key, val []byte) error {
			switch string(key) {
			case "batch":
				batch = val
			case "sentAt":
				env.d.sentAt = val
			case "context":
				env.d.context = val
			case "integrations":
				env.d.integrations = val
			case "writeKey":
				env.writeKey = val
			}
			return nil
		})
		if batch == nil || batch[0] != '[' {
			return body, env, ingest.Invalid("batch", "batch is required: an array of messages")
		}
		env.msgs = make([][]byte, 0, 64)
		ingest.ForEachElement(batch, func(_ int, elem []byte) error {
			env.msgs = append(env.msgs, elem)
			return nil
		})
	} else {
		ingest.ForEachMember(raw, func(key, val []byte) error {
			if string(key) == "writeKey" {
				env.writeKey = val
			}
			return nil
		})
		env.msgs = [][]byte{raw}
	}
	if env.writeKey != nil {
		s, ok := ingest.JSONString(env.writeKey)
		if !ok {
			return body, env, ingest.Invalid("writeKey", "writeKey must be a string, got %s", ingest.KindOf(env.writeKey))
		}
		env.writeKey = s
	}
	return body, env, nil
}

// batchTranslation translates a request's messages into the events of b,
// and collects the profile changes they carry.
type batchTranslation struct {
	h             *Handler
	b             *ingest.Batch
	env           *envelope
	appKey        string
	pathType      kind
	isBatch       bool
	profileWrites bool

	receivedAt []byte // the server's time, quoted, for messages without one
	m          message
	t          translation
	// arena holds the translated events: b keeps slices of them (the
	// messageIds) until it is stored, so it only grows.
	arena []byte
	profs []profileUpdate
	// unchanged are the identify and alias messages stored whose
	// profile change is not applied (!profileWrites).
	unchanged []ingest.ItemError
}

// add translates message i, raw, into an event of the batch, or rejects it
// with the field and the reason.
func (tr *batchTranslation) add(i int, raw []byte) {
	b := tr.b
	m := &tr.m
	k := tr.pathType
	reject := func(field, code, msg string) {
		var id []byte
		if raw[0] == '{' {
			id, _ = ingest.JSONString(m.messageID)
		}
		b.Reject(i, tr.appKey, string(id), field, code, msg, raw)
	}
	*m = message{rest: m.rest[:0]}
	if len(raw) > MaxMessageBytes {
		decodeMessage(raw, m) // for its messageId, when it is an object
		reject("", "too_large", fmt.Sprintf("message is %d bytes, over Segment's limit of %d", len(raw), MaxMessageBytes))
		return
	}
	if err := decodeMessage(raw, m); err != nil {
		reject("", "invalid_event", "a message must be a JSON object, got "+ingest.KindOf(raw))
		return
	}
	if tr.isBatch {
		var msg string
		if k, msg = batchKind(m); k == kindUnknown {
			reject("type", "invalid_event", msg)
			return
		}
	}
	start := len(tr.arena)
	var rej *rejection
	tr.arena, rej = translate(tr.arena, k, m, &tr.env.d, tr.appKey, tr.receivedAt, &tr.t)
	ev := tr.arena[start:]
	if rej != nil {
		tr.arena = tr.arena[:start]
		reject(rej.field, "invalid_event", rej.message)
		return
	}
	prof, rej := tr.profileChange(k, m)
	if rej != nil {
		reject(rej.field, "invalid_event", rej.message)
		return
	}
	if !b.Add(i, ev) {
		r := &b.Rejected[len(b.Rejected)-1]
		seg := tr.t.segmentField(r.Field)
		r.Message = rename(r.Message, r.Field, seg)
		r.Field, r.Raw = seg, raw
		tr.arena = tr.arena[:start]
		return
	}
	if prof != nil {
		tr.profs = append(tr.profs, profileUpdate{index: i, obj: prof})
	} else if k == kindIdentify || k == kindAlias {
		index := i
		tr.unchanged = append(tr.unchanged, ingest.ItemError{Index: &index, MessageID: string(b.Events[len(b.Events)-1].MessageID),
			Field: "writeKey", Message: publicProfileWarning})
	}
}

// batchKind returns the kind that the type of m, a message of a batch,
// names, or kindUnknown and the reason it names none.
func batchKind(m *message) (kind, string) {
	typ, ok := ingest.JSONString(m.typ)
	if k := kindOf(typ); ok && k != kindUnknown {
		return k, ""
	}
	if ok {
		return kindUnknown, fmt.Sprintf("unknown message type %q: Trove takes track, page, screen, identify, group and alias", typ)
	}
	if m.typ != nil {
		return kindUnknown, "type must be a string, got " + ingest.KindOf(m.typ)
	}
	return kindUnknown, "type is required: track, page, screen, identify, group or alias"
}

// profileChange returns the profile object that m, of kind k, changes (an
// identify's traits, an alias's link), checked as POST /users/profile
// would, or nil when it changes none or profile writes are off.
func (tr *batchTranslation) profileChange(k kind, m *message) ([]byte, *rejection) {
	var prof []byte
	switch k {
	case kindIdentify:
		if !isAbsent(m.traits) && m.traits[0] != '{' {
			return nil, &rejection{"traits", "traits must be an object, got " + ingest.KindOf(m.traits)}
		}
		if !tr.profileWrites {
			return nil, nil
		}
		userID := identity(m.userID)
		if userID == nil {
			userID = identity(m.anonymousID)
		}
		prof = appendIdentify(nil, userID, m.traits)
	case kindAlias:
		if tr.profileWrites {
			prof = appendAlias(nil, identity(m.userID), identity(m.previousID))
		}
	}
	if prof != nil {
		if err := tr.h.profiles.Check(prof); err != nil {
			field, msg := profileError(err)
			return nil, &rejection{field, msg}
		}
	}
	return prof, nil
}

// profileUpdate is the profile object of the message at index.
type profileUpdate struct {
	index int
	obj   []byte
}

// applyProfiles applies the profile updates of the batch's valid identify
// and alias messages; a message whose update conflicts with a stored
// identity is quarantined instead of stored, with the reason.
func (h *Handler) applyProfiles(b *ingest.Batch, appKey string, profs []profileUpdate, msgs [][]byte) error {
	if len(profs) == 0 {
		return nil
	}
	objs := make([][]byte, len(profs))
	for i, p := range profs {
		objs[i] = p.obj
	}
	errs, err := h.profiles.ApplyEach(appKey, objs)
	if err != nil {
		return err
	}
	for i, e := range errs {
		if e == nil {
			continue
		}
		idx := profs[i].index
		for j := range b.Events {
			if b.Events[j].Index == idx {
				field, msg := profileError(e)
				b.Drop(j, field, msg, msgs[idx])
				break
			}
		}
	}
	return nil
}

// profileError returns the message's field and the reason for a profile
// error.
func profileError(err error) (field, msg string) {
	field = "traits"
	if pe, ok := err.(*apierr.Error); ok {
		switch pe.Field {
		case "":
		case "userId":
			field = "userId"
		case "user_alias":
			field = "previousId"
		default:
			field = "traits." + pe.Field
		}
	}
	msg = strings.ReplaceAll(err.Error(), "user_profiles[0]", "traits")
	return field, msg
}

// resolveApp returns the app a request's write key names: the HTTP Basic
// user name (or a Bearer token), else writeKey from the body, and whether
// the key is a token. A write key is an appKey, or a token with ingest
// scope for exactly one app (the way to send to an app with require_token,
// and to change profiles).
func (h *Handler) resolveApp(ctx *fasthttp.RequestCtx, bodyKey []byte) (appKey string, byToken bool, err error) {
	secret, present, err := auth.Credential(ctx.Request.Header.Peek("Authorization"))
	if err != nil {
		return "", false, err
	}
	key := secret
	if !present {
		key = bodyKey
	}
	if len(key) == 0 {
		return "", false, fmt.Errorf("%w: no write key: send the app's appKey as the HTTP Basic user name (empty password), or as writeKey in the body", auth.ErrUnauthenticated)
	}
	if app, ok := h.reg.App(string(key)); ok {
		if app.RequireToken {
			return "", false, fmt.Errorf("%w: app %q requires a token: use a token with ingest scope for this app as the write key", auth.ErrUnauthenticated, app.AppKey)
		}
		return app.AppKey, false, nil
	}
	tok := auth.TokenOf(ctx)
	if tok == nil || !present {
		if tok, err = h.reg.Authenticate(key); err != nil {
			return "", false, fmt.Errorf("%w: the write key is neither a known appKey nor a valid token", auth.ErrUnauthenticated)
		}
	}
	if tok.Scopes&auth.ScopeIngest == 0 {
		return "", false, fmt.Errorf("%w: token %q does not have ingest scope", auth.ErrForbidden, tok.Name)
	}
	app, ok := tok.OnlyApp()
	if !ok {
		return "", false, fmt.Errorf("%w: token %q covers more than one app: a token used as write key must cover exactly one", auth.ErrForbidden, tok.Name)
	}
	return app, true, nil
}

// ClusterInfo handles GET /cluster-info, which RudderStack's SDKs ask to
// spread batches over a cluster's nodes: Trove is one node.
func (h *Handler) ClusterInfo(ctx *fasthttp.RequestCtx) error {
	if _, _, err := h.resolveApp(ctx, nil); err != nil {
		return err
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType("application/json")
	ctx.SetBodyString(`{"nodeCount":1}`)
	return nil
}
