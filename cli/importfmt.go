package cli

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/goccy/go-json"
)

// An import format turns one line of an input file into what the server's
// endpoint for that format takes, so that the mapping of fields is the
// server's own (README, "trove import"): Trove events go to /v1/events,
// Segment archive lines to /v1/batch, Mixpanel raw export lines to
// /import, Amplitude export lines to /2/httpapi, and profiles to
// /users/profile or Mixpanel's /engage. Each line gets a deterministic
// id: the source's own, else "imp-" and a hash of the line, so that
// importing a file twice stores it once.

// importFormat is one input format.
type importFormat struct {
	name string
	// path is the endpoint its batches go to.
	path string
	// convert returns the line as the endpoint's item, with its id. It
	// may return line itself; the result is not retained by the caller
	// beyond the batch.
	convert func(line []byte) ([]byte, error)
	// body wraps items (each a JSON value) into a request body.
	body func(dst []byte, items [][]byte) []byte
	// contentType of the body.
	contentType string
}

// lineID is the deterministic id of a line without one of its own.
func lineID(line []byte) string {
	sum := sha256.Sum256(line)
	return "imp-" + hex.EncodeToString(sum[:16])
}

// hasTopMember reports whether the JSON object obj has a member key with a
// non-empty value, by a scan of its top level.
func hasTopMember(obj []byte, key string) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(obj, &m) != nil {
		return false
	}
	v, ok := m[key]
	return ok && string(v) != "null" && string(v) != `""`
}

// appendJSONString appends s as a JSON string (strconv's quoting is Go's,
// whose \x escapes JSON does not have).
func appendJSONString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s)
	return append(dst, b...)
}

// hasID reports whether m has a member key holding a non-empty string.
func hasID(m map[string]json.RawMessage, key string) bool {
	var s string
	return json.Unmarshal(m[key], &s) == nil && s != ""
}

// withTopMember returns obj with `"key":val` added first, when it has no
// such member (obj must be a JSON object).
func withTopMember(obj []byte, key, val string) []byte {
	out := make([]byte, 0, len(obj)+len(key)+len(val)+8)
	out = append(out, '{')
	out = strconv.AppendQuote(out, key)
	out = append(out, ':')
	out = strconv.AppendQuote(out, val)
	rest := bytes.TrimSpace(obj[1:])
	if len(rest) > 0 && rest[0] != '}' {
		out = append(out, ',')
	}
	return append(out, rest...)
}

// needObject fails unless line is a JSON object.
func needObject(line []byte) error {
	if len(line) == 0 || line[0] != '{' {
		return fmt.Errorf("line is not a JSON object")
	}
	if !json.Valid(line) {
		return fmt.Errorf("line is not valid JSON")
	}
	return nil
}

// fastMessageID reports whether a Trove event line has a messageId without
// decoding it: the common case of an export, so that an import of one
// passes lines through as they are.
func fastMessageID(line []byte) bool {
	return bytes.Contains(line, []byte(`"messageId":"`))
}

var formats = map[string]*importFormat{
	"trove": {
		name: "trove", path: "/v1/events", contentType: "application/x-ndjson",
		convert: func(line []byte) ([]byte, error) {
			if len(line) == 0 || line[0] != '{' {
				return nil, fmt.Errorf("line is not a JSON object")
			}
			if fastMessageID(line) || hasTopMember(line, "messageId") {
				return line, nil
			}
			return withTopMember(line, "messageId", lineID(line)), nil
		},
		body: func(dst []byte, items [][]byte) []byte {
			for _, it := range items {
				dst = append(dst, it...)
				dst = append(dst, '\n')
			}
			return dst
		},
	},
	"segment": {
		name: "segment", path: "/v1/batch", contentType: "application/json",
		convert: func(line []byte) ([]byte, error) {
			if err := needObject(line); err != nil {
				return nil, err
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal(line, &m); err != nil {
				return nil, err
			}
			// An archive's timestamp is already corrected for the client's
			// clock; its sentAt is history, which the clock-skew rule (made
			// for live clients) would take as a clock months off. It is
			// kept, as archivedSentAt under "segment".
			if v, ok := m["sentAt"]; ok {
				delete(m, "sentAt")
				m["archivedSentAt"] = v
			} else if hasID(m, "messageId") {
				return line, nil
			}
			if !hasID(m, "messageId") {
				m["messageId"] = json.RawMessage(strconv.Quote(lineID(line)))
			}
			return json.Marshal(m)
		},
		body: func(dst []byte, items [][]byte) []byte {
			dst = append(dst, `{"batch":[`...)
			dst = joinItems(dst, items)
			return append(dst, "]}"...)
		},
	},
	"mixpanel": {
		name: "mixpanel", path: "/import", contentType: "application/json",
		convert: func(line []byte) ([]byte, error) {
			var ev struct {
				Event      json.RawMessage            `json:"event"`
				Properties map[string]json.RawMessage `json:"properties"`
			}
			if err := needObject(line); err != nil {
				return nil, err
			}
			if err := json.Unmarshal(line, &ev); err != nil {
				return nil, fmt.Errorf("properties: %v", err)
			}
			if v, ok := ev.Properties["$insert_id"]; ok && string(v) != `""` && string(v) != "null" {
				return line, nil
			}
			if ev.Properties == nil {
				ev.Properties = map[string]json.RawMessage{}
			}
			ev.Properties["$insert_id"] = json.RawMessage(strconv.Quote(lineID(line)))
			return json.Marshal(ev)
		},
		body: func(dst []byte, items [][]byte) []byte {
			dst = append(dst, '[')
			dst = joinItems(dst, items)
			return append(dst, ']')
		},
	},
	"amplitude": {
		name: "amplitude", path: "/2/httpapi", contentType: "application/json",
		convert: convertAmplitude,
		body: func(dst []byte, items [][]byte) []byte {
			dst = append(dst, `{"events":[`...)
			dst = joinItems(dst, items)
			return append(dst, "]}"...)
		},
	},
}

func joinItems(dst []byte, items [][]byte) []byte {
	for i, it := range items {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, it...)
	}
	return dst
}

// amplitudeTimeLayouts are the forms of event_time in Amplitude's exports
// (UTC, microseconds, a space between date and time).
var amplitudeTimeLayouts = []string{"2006-01-02 15:04:05.999999", "2006-01-02 15:04:05", time.RFC3339Nano}

// convertAmplitude turns an Amplitude export line into an HTTP V2 event:
// event_time becomes time (ms), and $insert_id (else insert_id, else uuid,
// else a hash of the line) becomes insert_id.
func convertAmplitude(line []byte) ([]byte, error) {
	if err := needObject(line); err != nil {
		return nil, err
	}
	// The common line (no time, no insert_id member): decode only what
	// the conversion reads and put the two members in front, instead of
	// decoding and re-encoding the whole line.
	var f struct {
		Time      *json.RawMessage `json:"time"`
		InsertID  *json.RawMessage `json:"insert_id"`
		DInsertID string           `json:"$insert_id"`
		UUID      string           `json:"uuid"`
		EventTime string           `json:"event_time"`
	}
	if err := json.Unmarshal(line, &f); err == nil && f.Time == nil && f.InsertID == nil && f.EventTime != "" {
		var t time.Time
		var perr error
		for _, layout := range amplitudeTimeLayouts {
			if t, perr = time.Parse(layout, f.EventTime); perr == nil {
				break
			}
		}
		if perr == nil {
			id := f.DInsertID
			if id == "" {
				id = f.UUID
			}
			if id == "" {
				id = lineID(line)
			}
			out := make([]byte, 0, len(line)+64)
			out = append(out, `{"time":`...)
			out = strconv.AppendInt(out, t.UnixMilli(), 10)
			out = append(out, `,"insert_id":`...)
			out = appendJSONString(out, id)
			rest := bytes.TrimSpace(line[1:])
			if len(rest) > 0 && rest[0] != '}' {
				out = append(out, ',')
			}
			return append(out, rest...), nil
		}
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(line, &m); err != nil {
		return nil, err
	}
	if _, ok := m["time"]; !ok {
		for _, k := range []string{"event_time", "client_event_time", "server_upload_time"} {
			var s string
			if json.Unmarshal(m[k], &s) != nil || s == "" {
				continue
			}
			for _, layout := range amplitudeTimeLayouts {
				if t, err := time.Parse(layout, s); err == nil {
					m["time"] = json.RawMessage(strconv.FormatInt(t.UnixMilli(), 10))
					break
				}
			}
			if _, ok := m["time"]; !ok {
				return nil, fmt.Errorf("%s: %q is not a time of Amplitude's export (YYYY-MM-DD HH:MM:SS.ffffff)", k, s)
			}
			break
		}
	}
	id := ""
	for _, k := range []string{"insert_id", "$insert_id", "uuid"} {
		var s string
		if json.Unmarshal(m[k], &s) == nil && s != "" {
			id = s
			break
		}
	}
	if id == "" {
		id = lineID(line)
	}
	m["insert_id"] = json.RawMessage(appendJSONString(nil, id))
	return json.Marshal(m)
}

// profileFormats are the formats of `trove import profiles`.
var profileFormats = map[string]*importFormat{
	"trove": {
		name: "trove", path: "/users/profile", contentType: "application/json",
		convert: convertTroveProfile,
	},
	"mixpanel": {
		name: "mixpanel", path: "/engage", contentType: "application/json",
		convert: convertMixpanelProfile,
		body: func(dst []byte, items [][]byte) []byte {
			dst = append(dst, '[')
			dst = joinItems(dst, items)
			return append(dst, ']')
		},
	},
}

// convertTroveProfile turns a line of GET /v1/export/profiles into a
// profile object of POST /users/profile: attributes beside the built-in
// fields, without the server's own members.
func convertTroveProfile(line []byte) ([]byte, error) {
	if err := needObject(line); err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(line, &m); err != nil {
		return nil, err
	}
	if attrs, ok := m["attributes"]; ok {
		var a map[string]json.RawMessage
		if err := json.Unmarshal(attrs, &a); err != nil {
			return nil, fmt.Errorf("attributes: %v", err)
		}
		delete(m, "attributes")
		for k, v := range a {
			m[k] = v
		}
	}
	for _, k := range []string{"attribute_types", "created_at", "updated_at", "appKey"} {
		delete(m, k)
	}
	return json.Marshal(m)
}

// convertMixpanelProfile turns a line of Mixpanel's profile export
// ({"$distinct_id","$properties":{…}}) into an /engage update that sets
// those properties.
func convertMixpanelProfile(line []byte) ([]byte, error) {
	if err := needObject(line); err != nil {
		return nil, err
	}
	var p struct {
		DistinctID json.RawMessage `json:"$distinct_id"`
		Properties json.RawMessage `json:"$properties"`
	}
	if err := json.Unmarshal(line, &p); err != nil {
		return nil, err
	}
	if len(p.DistinctID) == 0 {
		return nil, fmt.Errorf("$distinct_id is required")
	}
	out := append([]byte(`{"$distinct_id":`), p.DistinctID...)
	if len(p.Properties) > 0 {
		out = append(out, `,"$set":`...)
		out = append(out, p.Properties...)
	}
	return append(out, '}'), nil
}

// detectFormat guesses the format of an events file from its first line.
func detectFormat(line []byte) (string, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(line, &m); err != nil {
		return "", fmt.Errorf("cannot detect the format: the first line is not a JSON object (use --format)")
	}
	has := func(k string) bool { _, ok := m[k]; return ok }
	switch {
	case has("eventTime") && has("appKey"):
		return "trove", nil
	case has("event_type"):
		return "amplitude", nil
	case has("event") && has("properties") && !has("type"):
		return "mixpanel", nil
	case has("type") && (has("messageId") || has("userId") || has("anonymousId")):
		return "segment", nil
	}
	return "", fmt.Errorf("cannot detect the format from the first line (use --format trove|segment|mixpanel|amplitude)")
}

// detectProfileFormat guesses the format of a profiles file.
func detectProfileFormat(line []byte) (string, error) {
	if bytes.Contains(line, []byte(`"$distinct_id"`)) {
		return "mixpanel", nil
	}
	return "trove", nil
}
