// Package posthog speaks PostHog's capture API (what posthog-node,
// posthog-go and posthog-js send): POST /batch/, /capture/, /i/v0/e/ and
// /e/. Each event becomes a Trove event through package compat; a $set,
// $unset or $identify also changes the profile of its distinct_id, under
// the public_profile_writes rule. The README's "Amplitude, Mixpanel and
// PostHog SDKs" section has the mapping table.
package posthog

import (
	"github.com/valyala/fasthttp"

	"trove/compat"
	"trove/ingest"
	"trove/segment"
)

// maxDepth bounds the nesting of a body: a batch, an event, and the 32
// levels Trove takes inside attributes.
const maxDepth = 36

// Handler serves PostHog's capture endpoints.
type Handler struct{ c *compat.Core }

// NewHandler returns a Handler storing through c.
func NewHandler(c *compat.Core) *Handler { return &Handler{c: c} }

// Result is the answer: PostHog's {"status":1} and what POST /v1/events
// answers.
type Result struct {
	Status            int                `json:"status"`
	Accepted          int                `json:"accepted"`
	Duplicates        int                `json:"duplicates"`
	Rejected          int                `json:"rejected"`
	Errors            []ingest.ItemError `json:"errors"`
	ProfilesUnchanged int                `json:"profilesUnchanged,omitempty"`
	Warnings          []ingest.ItemError `json:"warnings,omitempty"`
}

// Serve handles every capture path. A request whose events are all
// invalid is a 200 as well (they are quarantined): the SDKs drop a batch
// answered with a 4xx, good events included, and retry 408, 429 and 5xx.
func (h *Handler) Serve(ctx *fasthttp.RequestCtx) error {
	p, err := h.c.ReadPayload(ctx)
	if err != nil {
		return err
	}
	defer p.Release()
	return h.ServeRaw(ctx, p.Bytes())
}

// ServeRaw serves a request whose payload raw was read already (POST
// /batch, shared with Amplitude's Batch API). raw is not retained.
func (h *Handler) ServeRaw(ctx *fasthttp.RequestCtx, raw []byte) error {
	if ok, why := ingest.ValidJSON(raw, maxDepth); !ok {
		return ingest.Invalid("", "%s", why)
	}
	var key, sentAt []byte
	var msgs [][]byte
	collect := func(arr []byte) {
		ingest.ForEachElement(arr, func(_ int, e []byte) error {
			msgs = append(msgs, e)
			return nil
		})
	}
	if raw[0] == '[' {
		collect(raw)
	} else {
		batch := compat.Lookup(raw, "batch")
		if batch != nil {
			if batch[0] != '[' {
				return ingest.Invalid("batch", "batch must be an array of events, got %s", ingest.KindOf(batch))
			}
			collect(batch)
		} else {
			msgs = [][]byte{raw}
		}
		key = compat.Lookup(raw, "api_key")
		sentAt = compat.Lookup(raw, "sent_at")
	}
	if key == nil {
		// posthog-js puts the key in each event (token, or properties.token).
		for _, m := range msgs {
			if key = apiKeyOf(m); key != nil {
				break
			}
		}
	}
	if key != nil {
		s, ok := ingest.JSONString(key)
		if !ok {
			return ingest.Invalid("api_key", "api_key must be a string, got %s", ingest.KindOf(key))
		}
		key = s
	}
	appKey, byToken, err := h.c.Resolve(ctx, key, "api_key")
	if err != nil {
		return err
	}
	r := h.c.Begin(ctx, appKey, h.c.ProfileWrites(appKey, byToken))
	defer r.Release()
	now := compat.AppendTimeOf(nil, r.Now)
	for i, m := range msgs {
		h.add(r, i, m, sentAt, now)
	}
	out, err := r.Finish()
	if err != nil {
		return err
	}
	res := Result{Status: 1, Accepted: out.Accepted, Duplicates: out.Duplicates, Rejected: out.Rejected, Errors: out.Errors,
		ProfilesUnchanged: out.ProfilesUnchanged, Warnings: out.Warnings}
	return ingest.Answer(ctx, fasthttp.StatusOK, res)
}

// apiKeyOf returns the key an event carries itself, or nil.
func apiKeyOf(m []byte) []byte {
	if len(m) == 0 || m[0] != '{' {
		return nil
	}
	for _, k := range []string{"api_key", "token"} {
		if v := compat.Lookup(m, k); v != nil {
			return v
		}
	}
	return compat.Lookup(compat.Lookup(m, "properties"), "token")
}

// rename maps the fields ingest names in the event to PostHog's.
func rename(f string) string {
	switch f {
	case "userId":
		return "distinct_id"
	case "eventTime":
		return "timestamp"
	case "attributes":
		return "properties"
	case "messageId":
		return "uuid"
	case "appKey":
		return "api_key"
	}
	if len(f) > 8 && f[:8] == "profile." {
		return "properties.$set." + f[8:]
	}
	return f
}

// add translates one event and adds it to r.
func (h *Handler) add(r *compat.Request, i int, m, batchSentAt, now []byte) {
	if !r.Admit(i, m, "event") {
		return
	}
	e := compat.Event{Vendor: "posthog"}
	// posthog-go sends an identify's $set beside properties, not in them.
	var props, distinct, timestamp, uuid, sentAt, topSet, topSetOnce []byte
	ingest.ForEachMember(m, func(k, v []byte) error {
		switch string(k) {
		case "event":
			e.Name = v
		case "distinct_id", "$distinct_id":
			distinct = v
		case "properties":
			props = v
		case "timestamp":
			timestamp = v
		case "uuid":
			if string(v) != `""` {
				uuid = v
			}
		case "sent_at":
			sentAt = v
		case "api_key", "token":
			// A credential: never stored.
		case "$set":
			topSet = v
			e.Kept = append(e.Kept, compat.Member{Key: k, Val: v})
		case "$set_once":
			topSetOnce = v
			e.Kept = append(e.Kept, compat.Member{Key: k, Val: v})
		default:
			e.Kept = append(e.Kept, compat.Member{Key: k, Val: v})
		}
		return nil
	})
	id, _ := ingest.JSONString(uuid)
	if field := twice(m, props); field != "" {
		r.Reject(i, string(id), field, field+" appears twice", m)
		return
	}
	if !segment.IsAbsent(props) && props[0] != '{' {
		r.Reject(i, string(id), "properties", "properties must be an object, got "+ingest.KindOf(props), m)
		return
	}
	if distinct == nil {
		distinct = compat.Lookup(props, "distinct_id")
	}
	e.UserID = segment.Identity(distinct)
	if e.UserID == nil {
		r.Reject(i, string(id), "distinct_id", "distinct_id is required: a non-empty string", m)
		return
	}
	if segment.IsAbsent(e.Name) {
		r.Reject(i, string(id), "event", "event is required: the event's name", m)
		return
	}
	e.Time = timestamp
	if segment.IsAbsent(e.Time) {
		e.Time = now
	}
	e.MessageID = uuid
	if segment.IsAbsent(sentAt) {
		sentAt = batchSentAt
	}
	e.SentAt = sentAt
	e.Attributes = compat.Without(props, "token", "distinct_id")
	ev := e.Append(nil, r.AppKey())

	obj := personUpdate(e.Name, e.UserID, topSet, props)
	if !r.Add(i, ev, m, obj, rename) {
		return
	}
	if setsOnce(props, topSetOnce) {
		r.Warn(i, string(id), "properties.$set_once", "$set_once is kept in the event but changes no profile: Trove's profiles have no set-once operation")
	}
}

// twice returns the member of event m, or of its properties props, that
// Trove reads and m writes twice (properties.-prefixed), or "".
func twice(m, props []byte) string {
	if k := compat.Twice(m, "event", "distinct_id", "$distinct_id", "properties", "timestamp", "uuid", "sent_at"); k != "" {
		return k
	}
	if k := compat.Twice(props, "distinct_id", "$distinct_id"); k != "" {
		return "properties." + k
	}
	return ""
}

// setsOnce reports whether an event sets a property once, in its
// properties' $set_once or posthog-go's top-level one, topSetOnce.
func setsOnce(props, topSetOnce []byte) bool {
	so := compat.Lookup(props, "$set_once")
	if so == nil {
		so = topSetOnce
	}
	return len(so) > 0 && so[0] == '{' && !emptyObject(so)
}

// personUpdate returns the profile object of what an event named name
// (raw JSON) of user userID changes in its person, or nil: $set (the top
// level's posthog-go sends, topSet, and the properties') and $unset on any
// event, and the anonymous id an $identify merges ($anon_distinct_id) or
// the alias of a $create_alias, attached as aliases.
func personUpdate(name, userID, topSet, props []byte) []byte {
	var prof compat.Profile
	prof.SetAll(topSet)
	prof.SetAll(compat.Lookup(props, "$set"))
	if un := compat.Lookup(props, "$unset"); len(un) > 0 && un[0] == '[' {
		ingest.ForEachElement(un, func(_ int, v []byte) error {
			if len(v) > 1 && v[0] == '"' {
				prof.Unset(string(v[1 : len(v)-1]))
			}
			return nil
		})
	}
	var aliasLabel string
	var aliasID []byte
	n, _ := ingest.JSONString(name)
	switch string(n) {
	case "$identify":
		aliasLabel, aliasID = "$anon_distinct_id", segment.Identity(compat.Lookup(props, "$anon_distinct_id"))
	case "$create_alias":
		aliasLabel, aliasID = "alias", segment.Identity(compat.Lookup(props, "alias"))
	}
	if prof.Empty() && aliasID == nil {
		return nil
	}
	return prof.Object(userID, aliasLabel, aliasID)
}

// emptyObject reports whether the raw JSON object obj has no member.
func emptyObject(obj []byte) bool {
	n := 0
	ingest.ForEachMember(obj, func(_, _ []byte) error { n++; return nil })
	return n == 0
}
