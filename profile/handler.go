package profile

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"

	"trove/apierr"
	"trove/auth"
	"trove/httpbody"
	"trove/logentry"
	"trove/obs"
	"trove/storage"
)

// Config holds the User Profiles API's limits.
type Config struct {
	MaxProfiles     int // per request
	MaxFields       int // attribute fields per profile object
	MaxRequestBytes int
}

// DefaultConfig returns the limits of SPEC section 4.
func DefaultConfig() Config {
	return Config{MaxProfiles: 1000, MaxFields: 50, MaxRequestBytes: 5 << 20}
}

// Handler serves the User Profiles API.
type Handler struct {
	cfg Config
	reg *auth.Registry
	db  *storage.DB
	now func() time.Time
	// limiter, when set, charges updates to their app's rate (limit.go).
	limiter Limiter
	// log, when set, is the replicated log that writes go through
	// (replicate.go).
	log logentry.Log
}

// NewHandler returns a Handler storing profiles in db.
func NewHandler(cfg Config, reg *auth.Registry, db *storage.DB) *Handler {
	return &Handler{cfg: cfg, reg: reg, db: db, now: time.Now}
}

// Result is the answer to a profile update.
type Result struct {
	Accepted int           `json:"accepted"`
	Profiles []ResultEntry `json:"profiles"`
}

// ResultEntry says what happened to one profile of the request.
type ResultEntry struct {
	PyzeID  string `json:"pyze_id"`
	UserID  string `json:"userId,omitempty"`
	Created bool   `json:"created"`
}

// Update handles POST /users/profile and /v1/users/profile.
func (h *Handler) Update(ctx *fasthttp.RequestCtx) error {
	body, err := h.readBody(ctx)
	if err != nil {
		return err
	}
	appKey, ups, err := decodeRequest(body, h.cfg.MaxProfiles, h.cfg.MaxFields)
	if err != nil {
		return err
	}
	tok := auth.TokenOf(ctx)
	if appKey == "" {
		appKey = string(ctx.Request.Header.Peek("X-App-Key"))
	}
	if appKey == "" && tok != nil {
		appKey, _ = tok.OnlyApp()
	}
	if appKey == "" {
		return invalid(-1, "appKey", "appKey is required: in the body, the X-App-Key header, or implied by a token for one app")
	}
	if err := h.reg.Authorize(tok, appKey, auth.ScopeIngest); err != nil {
		return err
	}
	if tok == nil {
		return fmt.Errorf("%w: the User Profiles API needs a token with ingest scope", auth.ErrUnauthenticated)
	}
	if err := h.takeTokens(appKey, len(ups)); err != nil {
		return err
	}
	idemKey := ctx.Request.Header.Peek("Idempotency-Key")
	if len(idemKey) > 255 {
		return invalid(-1, "Idempotency-Key", "the Idempotency-Key header must be at most 255 bytes")
	}
	r, err := h.write(func() []byte { return h.requestEntry(appKey, idemKey, body) },
		func() requestResult { return h.applyRequest(appKey, idemKey, ups, h.now(), 0) })
	if err != nil {
		return err
	}
	if r.replayed {
		ctx.Response.Header.Set("Idempotent-Replayed", "true")
	}
	writeJSON(ctx, fasthttp.StatusAccepted, r.answer)
	return nil
}

// requestResult is what applying a request gave: its answer, whether that
// is the stored answer of an Idempotency-Key, or the request's refusal.
type requestResult struct {
	answer   []byte
	replayed bool
	err      error
}

// write applies a write here (local), or in cluster mode appends its log
// entry and returns how applying it went; a refusal is the error.
func (h *Handler) write(entry func() []byte, local func() requestResult) (requestResult, error) {
	var (
		r   requestResult
		err error
	)
	if h.log != nil {
		r, err = h.appendForResult(entry())
	} else {
		r = local()
	}
	if err == nil {
		err = r.err
	}
	return r, err
}

// applyRequest applies the updates of one POST /users/profile in one
// transaction at now; in a replicated store as log entry logSeq (else 0).
func (h *Handler) applyRequest(appKey string, idemKey []byte, ups []update, now time.Time, logSeq uint64) requestResult {
	txn, err := h.beginAt(appKey, now, logSeq)
	if err != nil {
		return requestResult{err: err}
	}
	defer txn.Close()
	if len(idemKey) > 0 {
		answer, ok, err := txn.Idempotent(idemKey)
		if err != nil {
			return requestResult{err: err}
		}
		if ok {
			return requestResult{answer: answer, replayed: true}
		}
	}
	ids := newIDs(logSeq)
	res := Result{Profiles: make([]ResultEntry, 0, len(ups))}
	for i := range ups {
		entry, err := h.applyOne(txn, &ups[i], now, ids)
		if err != nil {
			return requestResult{err: err}
		}
		res.Profiles = append(res.Profiles, entry)
	}
	res.Accepted = len(ups)
	out, err := json.Marshal(res)
	if err != nil {
		return requestResult{err: fmt.Errorf("cannot encode answer: %w", err)}
	}
	if len(idemKey) > 0 {
		txn.PutIdempotent(idemKey, out)
	}
	if err := txn.Commit(); err != nil {
		return requestResult{err: err}
	}
	obs.App(appKey).ProfileUpdates.Add(len(ups))
	return requestResult{answer: out}
}

// applyOne finds or creates the profile of u and applies u to it.
func (h *Handler) applyOne(txn *storage.ProfileTxn, u *update, now time.Time, ids *idGen) (ResultEntry, error) {
	conflict := func(field, format string, args ...any) error {
		return refuse(apierr.Conflict, u.index, field, fmt.Sprintf(format, args...))
	}
	var id storage.ProfileID
	var body []byte
	found, byUser := false, false
	var err error
	switch {
	case u.pyzeID != "":
		id = parseUUID(u.pyzeID)
		body, found, err = txn.Profile(id)
	case u.userID != "":
		id, found, err = txn.ByUser([]byte(u.userID))
		byUser = found
	}
	// Then the aliases, in turn: a profile first known by an alias alone
	// is found again when its userId arrives with that alias.
	byAlias := -1
	for i := 0; err == nil && !found && u.pyzeID == "" && i < len(u.aliases); i++ {
		id, found, err = txn.ByAlias([]byte(u.aliases[i].Label), []byte(u.aliases[i].ID))
		if found {
			byAlias = i
		}
	}
	if err != nil {
		return ResultEntry{}, err
	}
	var p Profile
	if found {
		if body == nil {
			if body, _, err = txn.Profile(id); err != nil {
				return ResultEntry{}, err
			}
		}
		if err := json.Unmarshal(body, &p); err != nil {
			return ResultEntry{}, fmt.Errorf("%w: profile %s: %v", storage.ErrCorrupt, formatUUID(id), err)
		}
	} else {
		if u.pyzeID == "" {
			id = ids.next()
		}
		p = Profile{PyzeID: formatUUID(id), CreatedAt: formatTime(now)}
	}
	if u.userID != "" && p.UserID != u.userID {
		// Found by userId, the index already says it is this profile's.
		other, ok := id, byUser
		if !byUser {
			if other, ok, err = txn.ByUser([]byte(u.userID)); err != nil {
				return ResultEntry{}, err
			}
		}
		switch {
		case ok && other != id:
			return ResultEntry{}, conflict("userId", "userId %q belongs to another profile (pyze_id %s)", u.userID, formatUUID(other))
		case p.UserID != "" && byAlias >= 0:
			a := u.aliases[byAlias]
			return ResultEntry{}, conflict("user_alias", "alias %s:%s belongs to another profile (pyze_id %s, userId %q)", a.Label, a.ID, p.PyzeID, p.UserID)
		case p.UserID != "":
			return ResultEntry{}, conflict("userId", "profile %s has userId %q, not %q", p.PyzeID, p.UserID, u.userID)
		}
		p.UserID = u.userID
		if !ok {
			txn.SetUser([]byte(u.userID), id)
		}
	}
	if err := linkAliases(txn, u, id, &p); err != nil {
		return ResultEntry{}, err
	}
	if err := apply(&p, u); err != nil {
		return ResultEntry{}, err
	}
	p.UpdatedAt = formatTime(now)
	body, err = json.Marshal(&p)
	if err != nil {
		return ResultEntry{}, fmt.Errorf("cannot encode profile: %w", err)
	}
	txn.PutProfile(id, body)
	return ResultEntry{PyzeID: p.PyzeID, UserID: p.UserID, Created: !found}, nil
}

// linkAliases adds u's aliases to p, the profile id, and indexes those not
// indexed yet; an alias of another profile is a conflict.
func linkAliases(txn *storage.ProfileTxn, u *update, id storage.ProfileID, p *Profile) error {
	// A set, not a scan of p.Aliases per alias: a request of many
	// aliases would cost the square of its size.
	have := make(map[Alias]struct{}, len(p.Aliases)+len(u.aliases))
	for _, a := range p.Aliases {
		have[a] = struct{}{}
	}
	for _, a := range u.aliases {
		other, ok, err := txn.ByAlias([]byte(a.Label), []byte(a.ID))
		if err != nil {
			return err
		}
		if ok && other != id {
			return refuse(apierr.Conflict, u.index, "user_alias",
				fmt.Sprintf("alias %s:%s belongs to another profile (pyze_id %s)", a.Label, a.ID, formatUUID(other)))
		}
		if _, dup := have[a]; !dup {
			have[a] = struct{}{}
			p.Aliases = append(p.Aliases, a)
		}
		if !ok {
			txn.SetAlias([]byte(a.Label), []byte(a.ID), id)
		}
	}
	return nil
}

// Get handles GET /v1/users/profile?appKey=K&(userId=U|pyze_id=P|alias_label=L&alias_id=I).
func (h *Handler) Get(ctx *fasthttp.RequestCtx) error {
	args := ctx.QueryArgs()
	appKey := string(args.Peek("appKey"))
	if appKey == "" {
		return invalid(-1, "appKey", "appKey is required")
	}
	if err := h.reg.Authorize(auth.TokenOf(ctx), appKey, auth.ScopeExport); err != nil {
		return err
	}
	var l storage.ProfileLookup
	switch {
	case args.Has("pyze_id"):
		s := string(args.Peek("pyze_id"))
		if !uuidRE.MatchString(s) {
			return invalid(-1, "pyze_id", "pyze_id must be a UUID")
		}
		id := parseUUID(strings.ToLower(s))
		l.ID = &id
	case args.Has("userId"):
		l.UserID = bytes.Clone(args.Peek("userId"))
	case args.Has("alias_label") && args.Has("alias_id"):
		l.AliasLabel, l.AliasID = bytes.Clone(args.Peek("alias_label")), bytes.Clone(args.Peek("alias_id"))
	default:
		return invalid(-1, "userId", "name the profile with userId, pyze_id, or alias_label and alias_id")
	}
	notFound := refuse(apierr.NotFound, -1, "", "no profile of app "+strconv.Quote(appKey)+" has that identity")
	app, err := h.db.App(appKey)
	if errors.Is(err, storage.ErrUnknownApp) {
		return notFound
	} else if err != nil {
		return err
	}
	body, ok, err := h.db.ReadProfile(app, l)
	if err != nil {
		return err
	}
	if !ok {
		return notFound
	}
	writeJSON(ctx, fasthttp.StatusOK, body)
	return nil
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, body []byte) {
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(body)
}

// readBody reads the request body, decompressing it per Content-Encoding
// as the Events API does (httpbody), capped at the configured size before
// and after decompression.
func (h *Handler) readBody(ctx *fasthttp.RequestCtx) ([]byte, error) {
	ct := ctx.Request.Header.ContentType()
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	switch string(bytes.ToLower(bytes.TrimSpace(ct))) {
	case "", "application/json":
	default:
		return nil, refuse(apierr.Unsupported, -1, "Content-Type", "Content-Type "+strconv.Quote(string(ct))+" is not supported: use application/json")
	}
	body, err := httpbody.Read(ctx, &httpbody.Buffers{}, h.cfg.MaxRequestBytes, httpbody.LimitKey)
	if err != nil {
		return nil, bodyError(err)
	}
	return body, nil
}

// idGen makes the pyze_ids of new profiles: random ones, or, applying log
// entry logSeq of a replicated store, ones derived from the entry and the
// order of creation, so that every node gives a profile the same id.
type idGen struct {
	logSeq uint64
	n      uint64
}

// newIDs returns the ids of log entry logSeq, or random ones for 0.
func newIDs(logSeq uint64) *idGen { return &idGen{logSeq: logSeq} }

// next returns a new version 4 UUID.
func (g *idGen) next() storage.ProfileID {
	var id storage.ProfileID
	if g == nil || g.logSeq == 0 {
		rand.Read(id[:])
	} else {
		var in [16]byte
		binary.BigEndian.PutUint64(in[:], g.logSeq)
		binary.BigEndian.PutUint64(in[8:], g.n)
		g.n++
		sum := sha256.Sum256(in[:])
		copy(id[:], sum[:])
	}
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return id
}

// parseUUID parses a UUID already checked by uuidRE.
func parseUUID(s string) storage.ProfileID {
	var id storage.ProfileID
	j := 0
	for i := 0; i < len(s) && j < 16; i++ {
		if s[i] == '-' {
			continue
		}
		hi, lo := unhex(s[i]), unhex(s[i+1])
		id[j] = hi<<4 | lo
		j++
		i++
	}
	return id
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10
	}
	return 0
}

// formatUUID formats a UUID in its canonical lowercase form.
func formatUUID(id storage.ProfileID) string {
	const hex = "0123456789abcdef"
	var b [36]byte
	j := 0
	for i, x := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b[j] = '-'
			j++
		}
		b[j], b[j+1] = hex[x>>4], hex[x&0xf]
		j += 2
	}
	return string(b[:])
}

// begin opens a profile transaction of appKey's app (registered in the
// store if it is not yet) at the handler's clock, and returns that time.
func (h *Handler) begin(appKey string) (*storage.ProfileTxn, time.Time, error) {
	now := h.now()
	txn, err := h.beginAt(appKey, now, 0)
	return txn, now, err
}

// beginAt opens a profile transaction of appKey's app at now, applying log
// entry logSeq of a replicated store when it is not 0.
func (h *Handler) beginAt(appKey string, now time.Time, logSeq uint64) (*storage.ProfileTxn, error) {
	app, err := h.db.EnsureApp(appKey)
	if err != nil {
		return nil, err
	}
	txn, err := h.db.BeginProfiles(app, now)
	if err != nil || logSeq == 0 {
		return txn, err
	}
	if err := txn.InLog(logSeq); err != nil {
		txn.Close()
		return nil, err
	}
	return txn, nil
}
