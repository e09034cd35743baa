// Package mixpanel speaks Mixpanel's ingestion API (what the mixpanel node
// library, mixpanel-browser and the HTTP API's clients send): /track and
// /engage, GET and POST, with data= as JSON or base64, and POST /import.
// Each event becomes a Trove event through package compat; each /engage
// update becomes an event "$engage" and, under the public_profile_writes
// rule, a change of the profile of its $distinct_id. The README's
// "Amplitude, Mixpanel and PostHog SDKs" section has the mapping table.
package mixpanel

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"

	"trove/compat"
	"trove/ingest"
	"trove/segment"
)

// maxDepth bounds the nesting of a body: an array, an event, properties,
// and the 32 levels Trove takes inside attributes.
const maxDepth = 37

// Handler serves the Mixpanel endpoints.
type Handler struct{ c *compat.Core }

// NewHandler returns a Handler storing through c.
func NewHandler(c *compat.Core) *Handler { return &Handler{c: c} }

// errorBody gives error bodies Mixpanel's verbose members: "status":0 (the
// libraries report a failure for anything but status 1, or the text "1").
func errorBody(status int, body map[string]any) {
	body["status"] = 0
	body["code"] = status
}

// reserved maps Mixpanel's reserved profile properties to the trait names
// of Segment's mapping, which set the built-in fields.
var reserved = map[string]string{
	"$email":        "email",
	"$first_name":   "firstName",
	"$last_name":    "lastName",
	"$phone":        "phone",
	"$city":         "address.city",
	"$country_code": "address.country",
	"$created":      "createdAt",
}

func renameReserved(name string) string {
	if r, ok := reserved[name]; ok {
		return r
	}
	return name
}

// Serve handles /track, /engage and /import.
func (h *Handler) Serve(ctx *fasthttp.RequestCtx) error {
	ctx.SetUserValue(compat.ErrorBodyKey, compat.ErrorBodyFunc(errorBody))
	path := string(ctx.Path())
	engage := path == "/engage"
	// A body of JSON (not data=) is the HTTP API's /import form, answered
	// in its own shape; data= is what the libraries send to every path.
	isJSONBody := string(ctx.Method()) == fasthttp.MethodPost && len(ctx.QueryArgs().Peek("data")) == 0 &&
		ingest.MediaType(ctx) != "application/x-www-form-urlencoded"
	p, err := h.c.ReadPayload(ctx)
	if err != nil {
		return err
	}
	defer p.Release()
	raw := p.Bytes()
	if ok, why := ingest.ValidJSON(raw, maxDepth); !ok {
		return ingest.Invalid("data", "%s", why)
	}
	var msgs [][]byte
	if raw[0] == '[' {
		ingest.ForEachElement(raw, func(_ int, e []byte) error {
			msgs = append(msgs, e)
			return nil
		})
	} else {
		msgs = [][]byte{raw}
	}
	key, field, err := projectToken(msgs, engage)
	if err != nil {
		return err
	}
	appKey, byToken, err := h.c.Resolve(ctx, key, field)
	if err != nil {
		return err
	}
	r := h.c.Begin(ctx, appKey, h.c.ProfileWrites(appKey, byToken))
	defer r.Release()
	now := compat.AppendTimeOf(nil, r.Now)
	for i, m := range msgs {
		if engage {
			h.addEngage(r, i, m, now)
		} else {
			h.addEvent(r, i, m, now)
		}
	}
	out, err := r.Finish()
	if err != nil {
		return err
	}
	ctx.SetContentType("application/json")
	if isJSONBody && path == "/import" {
		return answerImport(ctx, out, msgs)
	}
	if string(ctx.QueryArgs().Peek("verbose")) != "1" {
		// The libraries' default: the text "1" means the request was taken
		// (its invalid events are quarantined, named by the export of
		// rejected events), anything else is a failure.
		ctx.SetContentType("text/plain")
		ctx.SetStatusCode(fasthttp.StatusOK)
		ctx.SetBodyString("1")
		return nil
	}
	return ingest.Answer(ctx, fasthttp.StatusOK, struct {
		Status     int                `json:"status"`
		Error      *string            `json:"error"`
		Accepted   int                `json:"accepted"`
		Duplicates int                `json:"duplicates"`
		Rejected   int                `json:"rejected"`
		Errors     []ingest.ItemError `json:"errors"`
		Warnings   []ingest.ItemError `json:"warnings,omitempty"`
	}{1, nil, out.Accepted, out.Duplicates, out.Rejected, out.Errors, out.Warnings})
}

// projectToken returns the project token the first of msgs carries (in
// $token for /engage, else in properties.token), unquoted, or nil, and the
// field that holds it, which errors name.
func projectToken(msgs [][]byte, engage bool) (key []byte, field string, err error) {
	field = "properties.token"
	if engage {
		field = "$token"
	}
	for _, m := range msgs {
		if engage {
			key = compat.Lookup(m, "$token")
		} else {
			key = compat.Lookup(compat.Lookup(m, "properties"), "token")
		}
		if key != nil {
			break
		}
	}
	if key == nil {
		return nil, field, nil
	}
	s, ok := ingest.JSONString(key)
	if !ok {
		return nil, field, ingest.Invalid(field, "%s must be a string, got %s", field, ingest.KindOf(key))
	}
	return s, field, nil
}

// failedRecord is one entry of /import's failed_records.
type failedRecord struct {
	Index    int    `json:"index"`
	InsertID string `json:"$insert_id,omitempty"`
	Field    string `json:"field"`
	Message  string `json:"message"`
}

// answerImport answers /import as Mixpanel does: 200 with
// num_records_imported, or 400 with failed_records naming the events
// quarantined (the others are stored: a resend counts them as duplicates).
func answerImport(ctx *fasthttp.RequestCtx, out *compat.Outcome, msgs [][]byte) error {
	res := struct {
		Code               int                `json:"code"`
		NumRecordsImported int                `json:"num_records_imported"`
		Status             string             `json:"status"`
		Error              string             `json:"error,omitempty"`
		FailedRecords      []failedRecord     `json:"failed_records,omitempty"`
		Accepted           int                `json:"accepted"`
		Duplicates         int                `json:"duplicates"`
		Rejected           int                `json:"rejected"`
		Errors             []ingest.ItemError `json:"errors"`
	}{Code: 200, NumRecordsImported: out.Accepted + out.Duplicates, Status: "OK",
		Accepted: out.Accepted, Duplicates: out.Duplicates, Rejected: out.Rejected, Errors: out.Errors}
	for _, e := range out.Errors {
		if e.Index != nil {
			res.FailedRecords = append(res.FailedRecords, failedRecord{Index: *e.Index, InsertID: e.MessageID, Field: e.Field, Message: e.Message})
		}
	}
	if out.Rejected > 0 {
		res.Code, res.Status = fasthttp.StatusBadRequest, "Bad Request"
		res.Error = "some data points in the request failed validation; the others are stored"
	}
	b, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("cannot encode answer: %w", err)
	}
	ctx.SetStatusCode(res.Code)
	ctx.SetBody(b)
	return nil
}

// renameEvent maps the fields ingest names in the event to Mixpanel's.
func renameEvent(f string) string {
	switch f {
	case "userId":
		return "properties.distinct_id"
	case "eventTime":
		return "properties.time"
	case "attributes":
		return "properties"
	case "messageId":
		return "properties.$insert_id"
	case "appKey":
		return "properties.token"
	}
	return f
}

// addEvent translates one /track or /import event and adds it to r.
func (h *Handler) addEvent(r *compat.Request, i int, m, now []byte) {
	if !r.Admit(i, m, "event") {
		return
	}
	e := compat.Event{Vendor: "mixpanel"}
	var props []byte
	ingest.ForEachMember(m, func(k, v []byte) error {
		switch string(k) {
		case "event":
			e.Name = v
		case "properties":
			props = v
		default:
			e.Kept = append(e.Kept, compat.Member{Key: k, Val: v})
		}
		return nil
	})
	if !segment.IsAbsent(props) && props[0] != '{' {
		r.Reject(i, "", "properties", "properties must be an object, got "+ingest.KindOf(props), m)
		return
	}
	insertID := compat.Lookup(props, "$insert_id")
	id, _ := ingest.JSONString(insertID)
	if k := compat.Twice(m, "event", "properties"); k != "" {
		r.Reject(i, string(id), k, k+" appears twice", m)
		return
	}
	if k := compat.Twice(props, "distinct_id", "$user_id", "$device_id", "time", "$insert_id"); k != "" {
		r.Reject(i, string(id), "properties."+k, "properties."+k+" appears twice", m)
		return
	}
	if segment.IsAbsent(e.Name) {
		r.Reject(i, string(id), "event", "event is required: the event's name", m)
		return
	}
	for _, k := range []string{"distinct_id", "$user_id", "$device_id"} {
		if e.UserID = segment.Identity(compat.Lookup(props, k)); e.UserID != nil {
			break
		}
	}
	if e.UserID == nil {
		r.Reject(i, string(id), "properties.distinct_id", "properties.distinct_id is required: a non-empty string", m)
		return
	}
	if tm := compat.Lookup(props, "time"); segment.IsAbsent(tm) {
		e.Time = now
	} else if ms, ok := compat.EpochMillis(tm); ok {
		e.Time = compat.AppendTime(nil, ms)
	} else {
		r.Reject(i, string(id), "properties.time", "properties.time must be seconds or milliseconds since the epoch, got "+string(tm), m)
		return
	}
	e.MessageID = insertID
	e.Attributes = compat.Without(props, "token")
	r.Add(i, e.Append(nil, r.AppKey()), m, nil, renameEvent)
}

// renameEngage maps the fields ingest names in the event to /engage's.
func renameEngage(f string) string {
	switch f {
	case "userId":
		return "$distinct_id"
	case "eventTime":
		return "$time"
	case "appKey":
		return "$token"
	}
	if len(f) > 8 && f[:8] == "profile." {
		return "$set." + f[8:]
	}
	return f
}

// addEngage translates one /engage update: an event "$engage" holding the
// update, and the profile change it makes.
func (h *Handler) addEngage(r *compat.Request, i int, m, now []byte) {
	if !r.Admit(i, m, "update") {
		return
	}
	// An update carries no id of its own: the hash of its text makes a
	// resend of the same update one event.
	sum := sha256.Sum256(m)
	msgID := "mp-engage-" + hex.EncodeToString(sum[:16])
	e := compat.Event{Vendor: "mixpanel", Name: []byte(`"$engage"`), MessageID: []byte(`"` + msgID + `"`)}
	prof := compat.Profile{Rename: renameReserved}
	var attrs []byte
	var unsupported []string
	ingest.ForEachMember(m, func(k, v []byte) error {
		switch op := string(k); op {
		case "$distinct_id":
			e.UserID = segment.Identity(v)
		case "$token":
		case "$time":
			if ms, ok := compat.EpochMillis(v); ok {
				e.Time = compat.AppendTime(nil, ms)
			}
		case "$set":
			prof.SetAll(v)
		case "$unset":
			if len(v) > 0 && v[0] == '[' {
				ingest.ForEachElement(v, func(_ int, n []byte) error {
					if len(n) > 1 && n[0] == '"' {
						prof.Unset(string(n[1 : len(n)-1]))
					}
					return nil
				})
			}
		case "$add":
			compat.EachMember(v, func(n string, val []byte) { prof.Op("inc", n, val) })
		case "$append", "$union":
			compat.EachMember(v, func(n string, val []byte) { prof.Op("add", n, val) })
		case "$remove":
			compat.EachMember(v, func(n string, val []byte) { prof.Op("remove", n, val) })
		case "$set_once", "$delete":
			unsupported = append(unsupported, op)
		}
		if string(k) != "$token" {
			if attrs == nil {
				attrs = []byte{'{'}
			} else {
				attrs = append(attrs, ',')
			}
			attrs = append(attrs, '"')
			attrs = append(attrs, k...)
			attrs = append(attrs, '"', ':')
			attrs = append(attrs, v...)
		}
		return nil
	})
	if e.UserID == nil {
		r.Reject(i, msgID, "$distinct_id", "$distinct_id is required: a non-empty string", m)
		return
	}
	if e.Time == nil {
		e.Time = now
	}
	if attrs != nil {
		e.Attributes = append(attrs, '}')
	}
	var obj []byte
	if !prof.Empty() {
		obj = prof.Object(e.UserID, "", nil)
	}
	if !r.Add(i, e.Append(nil, r.AppKey()), m, obj, renameEngage) {
		return
	}
	for _, op := range unsupported {
		r.Warn(i, msgID, op, op+" is kept in the event but changes no profile: Trove's profiles have no such operation here "+
			"(a profile is deleted with DELETE /v1/users/profile)")
	}
}
