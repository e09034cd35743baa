// Package amplitude speaks Amplitude's HTTP V2 API (what
// @amplitude/analytics-node, analytics-go and the browser SDK send):
// POST /2/httpapi and /batch with {"api_key","events":[…]}, and the
// Identify API, POST /identify with api_key and identification as form
// members. Each event becomes a Trove event through package compat; the
// user_properties operations of an event ($set, $unset, $add, $append…)
// also change the profile of its user, under the public_profile_writes
// rule. The README's "Amplitude, Mixpanel and PostHog SDKs" section has the
// mapping table.
package amplitude

import (
	"net/url"

	"github.com/valyala/fasthttp"

	"trove/compat"
	"trove/ingest"
	"trove/segment"
)

// maxDepth bounds the nesting of a body: the request, the events array,
// an event, and the 32 levels Trove takes inside attributes.
const maxDepth = 37

// Handler serves the Amplitude endpoints.
type Handler struct{ c *compat.Core }

// NewHandler returns a Handler storing through c.
func NewHandler(c *compat.Core) *Handler { return &Handler{c: c} }

// errorBody gives error bodies what Amplitude's SDKs read: the status as
// "code", and missing_field for a refused key, so that they drop what a
// resend cannot fix and keep the rest (429, 413, 5xx) for a retry.
func errorBody(status int, body map[string]any) {
	body["code"] = status
	if status == fasthttp.StatusUnauthorized || status == fasthttp.StatusForbidden {
		body["missing_field"] = "api_key"
	}
	if status == fasthttp.StatusBadRequest {
		if f, ok := body["field"].(string); ok {
			body["missing_field"] = f
		} else {
			body["missing_field"] = "events"
		}
	}
}

// Success is the answer of a request whose events are all stored (or
// duplicates): Amplitude's own members plus Trove's counts.
type Success struct {
	Code             int   `json:"code"`
	EventsIngested   int   `json:"events_ingested"`
	PayloadSizeBytes int   `json:"payload_size_bytes"`
	ServerUploadTime int64 `json:"server_upload_time"`
	Accepted         int   `json:"accepted"`
	Duplicates       int   `json:"duplicates"`
	Rejected         int   `json:"rejected"`
	// Errors names the events quarantined: a request with some is a 400
	// that lists their indexes in EventsWithInvalidFields, which the SDKs
	// drop, resending the others (then counted as duplicates).
	Errors                  []ingest.ItemError `json:"errors"`
	Error                   string             `json:"error,omitempty"`
	EventsWithInvalidFields map[string][]int   `json:"events_with_invalid_fields,omitempty"`
	ProfilesUnchanged       int                `json:"profilesUnchanged,omitempty"`
	Warnings                []ingest.ItemError `json:"warnings,omitempty"`
}

// Serve handles POST /2/httpapi, /batch and /identify.
func (h *Handler) Serve(ctx *fasthttp.RequestCtx) error {
	ctx.SetUserValue(compat.ErrorBodyKey, compat.ErrorBodyFunc(errorBody))
	var key, events []byte
	identify := string(ctx.Path()) == "/identify"
	var size int
	if identify {
		k, ev, n, err := h.identifyForm(ctx)
		if err != nil {
			return err
		}
		key, events, size = k, ev, n
	} else {
		p, err := h.c.ReadPayload(ctx)
		if err != nil {
			return err
		}
		defer p.Release()
		return h.serveJSON(ctx, p.Bytes())
	}
	return h.serveEvents(ctx, key, events, size, identify)
}

// Batch returns the handler of POST /batch, a path that Amplitude's Batch
// API and PostHog's SDKs (as /batch/) share: a body with "events" is
// Amplitude's, any other goes to other, with the body read.
func (h *Handler) Batch(other func(ctx *fasthttp.RequestCtx, raw []byte) error) func(*fasthttp.RequestCtx) error {
	return func(ctx *fasthttp.RequestCtx) error {
		p, err := h.c.ReadPayload(ctx)
		if err != nil {
			return err
		}
		defer p.Release()
		raw := p.Bytes()
		if len(raw) > 0 && raw[0] == '{' && compat.Lookup(raw, "events") != nil && compat.Lookup(raw, "batch") == nil {
			return h.serveJSON(ctx, raw)
		}
		return other(ctx, raw)
	}
}

// serveJSON serves a JSON body {"api_key","events":[…]}.
func (h *Handler) serveJSON(ctx *fasthttp.RequestCtx, raw []byte) error {
	ctx.SetUserValue(compat.ErrorBodyKey, compat.ErrorBodyFunc(errorBody))
	var key, events []byte
	size := len(raw)
	{
		if ok, why := ingest.ValidJSON(raw, maxDepth); !ok {
			return ingest.Invalid("", "%s", why)
		}
		if raw[0] != '{' {
			return ingest.Invalid("", "the body must be a JSON object {\"api_key\",\"events\":[…]}, got %s", ingest.KindOf(raw))
		}
		key, events = compat.Lookup(raw, "api_key"), compat.Lookup(raw, "events")
		if key != nil {
			s, ok := ingest.JSONString(key)
			if !ok {
				return ingest.Invalid("api_key", "api_key must be a string, got %s", ingest.KindOf(key))
			}
			key = s
		}
	}
	return h.serveEvents(ctx, key, events, size, false)
}

// serveEvents stores events, the raw array of a request to key.
func (h *Handler) serveEvents(ctx *fasthttp.RequestCtx, key, events []byte, size int, identify bool) error {
	if events == nil || events[0] != '[' {
		return ingest.Invalid("events", "events is required: an array of events")
	}
	appKey, byToken, err := h.c.Resolve(ctx, key, "api_key")
	if err != nil {
		return err
	}
	r := h.c.Begin(ctx, appKey, h.c.ProfileWrites(appKey, byToken))
	defer r.Release()
	now := compat.AppendTimeOf(nil, r.Now)
	ingest.ForEachElement(events, func(i int, m []byte) error {
		h.add(r, i, m, now, identify)
		return nil
	})
	out, err := r.Finish()
	if err != nil {
		return err
	}
	res := Success{Code: 200, EventsIngested: out.Accepted + out.Duplicates, PayloadSizeBytes: size, ServerUploadTime: r.Now.UnixMilli(),
		Accepted: out.Accepted, Duplicates: out.Duplicates, Rejected: out.Rejected, Errors: out.Errors,
		ProfilesUnchanged: out.ProfilesUnchanged, Warnings: out.Warnings}
	status := fasthttp.StatusOK
	if out.Rejected > 0 {
		status, res.Code = fasthttp.StatusBadRequest, fasthttp.StatusBadRequest
		res.Error = "Request missing required field or has invalid fields: the valid events are stored; resending them counts them as duplicates"
		res.EventsWithInvalidFields = map[string][]int{}
		for idx, field := range out.RejectedIndex {
			if field == "" {
				field = "event"
			}
			res.EventsWithInvalidFields[field] = append(res.EventsWithInvalidFields[field], idx)
		}
	}
	return ingest.Answer(ctx, status, res)
}

// identifyForm reads the Identify API's form (or query) members api_key
// and identification (one identification object or an array of them).
func (h *Handler) identifyForm(ctx *fasthttp.RequestCtx) (key, events []byte, size int, err error) {
	body, err := ingest.ReadBodyAnyType(ctx, 1<<20, "Amplitude's limit of 1 MB for the Identify API")
	if err != nil {
		return nil, nil, 0, err
	}
	defer body.Release()
	q, perr := url.ParseQuery(string(body.Bytes()))
	if perr != nil {
		return nil, nil, 0, ingest.Invalid("", "the body must be a form (api_key=…&identification=…): %v", perr)
	}
	get := func(name string) string {
		if v := q.Get(name); v != "" {
			return v
		}
		return string(ctx.QueryArgs().Peek(name))
	}
	id := []byte(get("identification"))
	if len(id) == 0 {
		return nil, nil, 0, ingest.Invalid("identification", "identification is required: a JSON object, or an array of them")
	}
	if ok, why := ingest.ValidJSON(id, maxDepth); !ok {
		return nil, nil, 0, ingest.Invalid("identification", "identification: %s", why)
	}
	if id[0] == '{' {
		id = append(append([]byte{'['}, id...), ']')
	}
	return []byte(get("api_key")), id, len(body.Bytes()), nil
}

// rename maps the fields ingest names in the event to Amplitude's.
func rename(f string) string {
	switch f {
	case "userId":
		return "user_id"
	case "eventTime":
		return "time"
	case "attributes":
		return "event_properties"
	case "event":
		return "event_type"
	case "messageId":
		return "insert_id"
	case "appKey":
		return "api_key"
	}
	if len(f) > 8 && f[:8] == "profile." {
		return "user_properties." + f[8:]
	}
	return f
}

// add translates one event (or, for /identify, one identification) and
// adds it to r.
func (h *Handler) add(r *compat.Request, i int, m, now []byte, identify bool) {
	if !r.Admit(i, m, "event") {
		return
	}
	e := compat.Event{Vendor: "amplitude"}
	var userID, deviceID, eventType, tm, insertID, props, userProps []byte
	ingest.ForEachMember(m, func(k, v []byte) error {
		switch string(k) {
		case "user_id":
			userID = v
		case "device_id":
			deviceID = v
		case "event_type":
			eventType = v
		case "time":
			tm = v
		case "insert_id":
			insertID = v
		case "event_properties":
			props = v
		case "user_properties":
			userProps = v
			e.Kept = append(e.Kept, compat.Member{Key: k, Val: v})
		default:
			e.Kept = append(e.Kept, compat.Member{Key: k, Val: v})
		}
		return nil
	})
	id, _ := ingest.JSONString(insertID)
	if k := compat.Twice(m, "user_id", "device_id", "event_type", "time", "insert_id", "event_properties", "user_properties"); k != "" {
		r.Reject(i, string(id), k, k+" appears twice", m)
		return
	}
	e.UserID = segment.Identity(userID)
	if e.UserID == nil {
		e.UserID = segment.Identity(deviceID)
	}
	if e.UserID == nil {
		r.Reject(i, string(id), "user_id", "user_id or device_id is required", m)
		return
	}
	if identify {
		eventType = []byte(`"$identify"`)
	}
	if segment.IsAbsent(eventType) {
		r.Reject(i, string(id), "event_type", "event_type is required: the event's name", m)
		return
	}
	e.Name = eventType
	if segment.IsAbsent(tm) {
		e.Time = now
	} else if ms, ok := compat.EpochMillis(tm); ok {
		e.Time = compat.AppendTime(nil, ms)
	} else {
		r.Reject(i, string(id), "time", "time must be milliseconds since the epoch, got "+string(tm), m)
		return
	}
	e.MessageID = insertID
	if !segment.IsAbsent(props) && props[0] != '{' {
		r.Reject(i, string(id), "event_properties", "event_properties must be an object, got "+ingest.KindOf(props), m)
		return
	}
	e.Attributes = props
	ev := e.Append(nil, r.AppKey())
	if !segment.IsAbsent(userProps) {
		if userProps[0] != '{' {
			r.Reject(i, string(id), "user_properties", "user_properties must be an object, got "+ingest.KindOf(userProps), m)
			return
		}
		obj, unsupported := userPropertiesUpdate(e.UserID, userProps)
		if !r.Add(i, ev, m, obj, rename) {
			return
		}
		for _, op := range unsupported {
			r.Warn(i, string(id), "user_properties."+op, op+" is kept in the event but changes no profile: Trove's profiles have no such operation")
		}
		return
	}
	r.Add(i, ev, m, nil, rename)
}

// userPropertiesUpdate returns the profile object of what an event's
// user_properties (a raw JSON object) change in the profile of userID, or
// nil, and the operations it holds that Trove's profiles do not have.
func userPropertiesUpdate(userID, userProps []byte) (obj []byte, unsupported []string) {
	var prof compat.Profile
	ingest.ForEachMember(userProps, func(k, v []byte) error {
		switch op := string(k); op {
		case "$set":
			prof.SetAll(v)
		case "$unset":
			compat.EachMember(v, func(name string, _ []byte) { prof.Unset(name) })
		case "$add":
			compat.EachMember(v, func(name string, val []byte) { prof.Op("inc", name, val) })
		case "$append", "$postInsert", "$preInsert", "$union":
			compat.EachMember(v, func(name string, val []byte) { prof.Op("add", name, val) })
		case "$remove":
			compat.EachMember(v, func(name string, val []byte) { prof.Op("remove", name, val) })
		case "$setOnce", "$prepend", "$clearAll":
			unsupported = append(unsupported, op)
		default:
			if len(op) > 0 && op[0] == '$' {
				unsupported = append(unsupported, op)
				return nil
			}
			// A property without an operation is set, as Amplitude does.
			prof.SetAll(append(append(append(append([]byte(`{"`), k...), `":`...), v...), '}'))
		}
		return nil
	})
	if prof.Empty() {
		return nil, unsupported
	}
	return prof.Object(userID, "", nil), unsupported
}
