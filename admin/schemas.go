package admin

import (
	"bytes"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"

	"trove/apierr"
	"trove/auth"
	"trove/schema"
)

// maxSchemaBytes bounds a schema's body: contracts of hundreds of
// properties fit many times over.
const maxSchemaBytes = 1 << 20

// SetSchemas gives the handler the contracts it serves (the schema routes
// answer 404 without). Call it before serving.
func (h *Handler) SetSchemas(r *schema.Registry) { h.schemas = r }

// Schema is a contract as the API shows it.
type Schema struct {
	AppKey    string          `json:"appKey"`
	Event     string          `json:"event"`
	Version   uint64          `json:"version"`
	UpdatedAt string          `json:"updatedAt"`
	Schema    json.RawMessage `json:"schema,omitempty"`
	Deleted   bool            `json:"deleted,omitempty"`
}

func schemaJSON(c *schema.Contract) Schema {
	return Schema{AppKey: c.AppKey, Event: c.Event, Version: c.Version, UpdatedAt: c.Updated.UTC().Format(time.RFC3339Nano), Schema: c.Source}
}

// schemaPath reads /admin/apps/{appKey}/schemas[/{event}] from the path as
// sent (so that an escaped "/" stays in the event name), checks that the
// credentials cover the app, and that it exists.
func (h *Handler) schemaPath(ctx *fasthttp.RequestCtx, withEvent bool) (appKey, event string, err error) {
	if h.schemas == nil {
		return "", "", &apierr.Error{Kind: apierr.NotFound, Message: "schema contracts are not served here"}
	}
	segs := strings.Split(strings.TrimPrefix(string(ctx.Request.URI().PathOriginal()), "/"), "/")
	if len(segs) < 4 {
		return "", "", &apierr.Error{Kind: apierr.NotFound, Message: "no such path"}
	}
	if appKey, err = url.PathUnescape(segs[2]); err != nil {
		return "", "", invalid("appKey", "the appKey in the path is not validly escaped")
	}
	if withEvent {
		if event, err = url.PathUnescape(segs[4]); err != nil {
			return "", "", invalid("event", "the event name in the path is not validly escaped")
		}
		if n := utf8.RuneCountInString(event); !utf8.ValidString(event) || n < 1 || n > 255 {
			return "", "", invalid("event", "the event name must be 1 to 255 characters of UTF-8, as events carry it")
		}
	}
	if _, ok := h.reg.App(appKey); !ok {
		return "", "", &apierr.Error{Kind: apierr.NotFound, Field: "appKey", Message: "no app has appKey " + strconv.Quote(appKey)}
	}
	if err := h.reg.Authorize(auth.TokenOf(ctx), appKey, auth.ScopeAdmin); err != nil {
		return "", "", err
	}
	return appKey, event, nil
}

// ListSchemas serves GET /admin/apps/{appKey}/schemas: the app's contracts
// and its schema_mode and schema_unknown.
func (h *Handler) ListSchemas(ctx *fasthttp.RequestCtx) error {
	appKey, _, err := h.schemaPath(ctx, false)
	if err != nil {
		return err
	}
	pol := h.schemas.Policy(appKey)
	cs := h.schemas.List(appKey)
	out := make([]Schema, len(cs))
	for i, c := range cs {
		out[i] = schemaJSON(c)
	}
	return writeJSON(ctx, fasthttp.StatusOK, map[string]any{"appKey": appKey,
		"schemaMode": schema.ModeName(pol.Mode), "schemaUnknown": schema.UnknownName(pol.Unknown), "schemas": out})
}

// GetSchema serves GET /admin/apps/{appKey}/schemas/{event}.
func (h *Handler) GetSchema(ctx *fasthttp.RequestCtx) error {
	appKey, event, err := h.schemaPath(ctx, true)
	if err != nil {
		return err
	}
	c := h.schemas.Lookup(appKey, []byte(event))
	if c == nil {
		return &apierr.Error{Kind: apierr.NotFound, Field: "event", Message: "app " + appKey + " has no contract for event " + strconv.Quote(event)}
	}
	return writeJSON(ctx, fasthttp.StatusOK, schemaJSON(c))
}

// PutSchema serves PUT /admin/apps/{appKey}/schemas/{event}: the body is
// the JSON Schema; the answer is the contract with its new version.
func (h *Handler) PutSchema(ctx *fasthttp.RequestCtx) error {
	appKey, event, err := h.schemaPath(ctx, true)
	if err != nil {
		return err
	}
	body, err := readBody(ctx, maxSchemaBytes, "a schema is limited to "+strconv.Itoa(maxSchemaBytes)+" bytes")
	if err != nil {
		return err
	}
	src := bytes.TrimSpace(body)
	if _, err := schema.Compile(src); err != nil {
		return schemaError(err)
	}
	v, err := h.change(change{Op: opSchema, Schema: &schemaChange{AppKey: appKey, Event: event, Schema: src}, At: h.now()})
	if err != nil {
		return err
	}
	out := v.(Schema)
	h.log.Info("put schema", "appKey", appKey, "event", event, "version", out.Version, "by", actor(ctx))
	return writeJSON(ctx, fasthttp.StatusOK, out)
}

// schemaChange is a contract put or deleted, as a change holds it.
type schemaChange struct {
	AppKey string          `json:"appKey"`
	Event  string          `json:"event"`
	Schema json.RawMessage `json:"schema,omitempty"`
	Delete bool            `json:"delete,omitempty"`
}

// schemaError maps the registry's refusals to the API's.
func schemaError(err error) error {
	switch {
	case errors.Is(err, schema.ErrInvalidSchema):
		return invalid("schema", strings.TrimPrefix(err.Error(), schema.ErrInvalidSchema.Error()+": "))
	case errors.Is(err, schema.ErrNotFound):
		return &apierr.Error{Kind: apierr.NotFound, Field: "event", Message: err.Error()[len(schema.ErrNotFound.Error())+2:]}
	}
	return err
}

// applySchema puts or deletes a contract at time at, as log entry logSeq
// of a replicated store when it is not 0.
func (h *Handler) applySchema(sc schemaChange, at time.Time, logSeq uint64) (any, error) {
	if sc.Delete {
		c, err := h.schemas.DeleteInLog(sc.AppKey, sc.Event, at, logSeq)
		if err != nil {
			return nil, schemaError(err)
		}
		out := schemaJSON(c)
		out.Deleted = true
		return out, nil
	}
	c, err := h.schemas.PutInLog(sc.AppKey, sc.Event, sc.Schema, at, logSeq)
	if err != nil {
		return nil, schemaError(err)
	}
	return schemaJSON(c), nil
}

// DeleteSchema serves DELETE /admin/apps/{appKey}/schemas/{event}. Events
// of that name are then events without a contract (schema_unknown).
func (h *Handler) DeleteSchema(ctx *fasthttp.RequestCtx) error {
	appKey, event, err := h.schemaPath(ctx, true)
	if err != nil {
		return err
	}
	v, err := h.change(change{Op: opSchema, Schema: &schemaChange{AppKey: appKey, Event: event, Delete: true}, At: h.now()})
	if err != nil {
		return err
	}
	out := v.(Schema)
	h.log.Info("deleted schema", "appKey", appKey, "event", event, "version", out.Version, "by", actor(ctx))
	return writeJSON(ctx, fasthttp.StatusOK, out)
}
