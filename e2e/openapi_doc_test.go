package e2e

// The OpenAPI document (web/openapi.yaml) on its own: valid 3.1, the same
// operations as web's route table, served as it is embedded. These tests
// live here rather than in web/ because kin-openapi, like every module only
// tests use, is a requirement of this test module, not of the product.

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"trove/auth"
	"trove/web"
)

// loadOpenAPI loads and validates the embedded document.
func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(web.OpenAPI())
	if err != nil {
		t.Fatalf("web/openapi.yaml does not load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("web/openapi.yaml is not valid: %v", err)
	}
	return doc
}

// TestOpenAPIValid checks that the document loads, validates, and is 3.1.
func TestOpenAPIValid(t *testing.T) {
	doc := loadOpenAPI(t)
	if !doc.IsOpenAPI31OrLater() || doc.OpenAPIMajorMinor() != "3.1" {
		t.Errorf("openapi = %q; want 3.1.x", doc.OpenAPI)
	}
	for _, name := range []string{"bearerAuth", "basicAuth"} {
		if doc.Components.SecuritySchemes[name] == nil {
			t.Errorf("components.securitySchemes.%s is missing", name)
		}
	}
	// Every NDJSON body names the schema of its lines, and that schema exists.
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for code, resp := range op.Responses.Map() {
				for mt, m := range resp.Value.Content {
					if !strings.Contains(mt, "ndjson") {
						continue
					}
					name, _ := m.Extensions["x-trove-line-schema"].(string)
					if doc.Components.Schemas[name] == nil {
						t.Errorf("%s %s %s %s: x-trove-line-schema %q is not a component schema", method, path, code, mt, name)
					}
				}
			}
		}
	}
}

// docPath returns the document's path for a route: a prefix route (its
// Path ends in "/") is the prefix plus one path parameter.
func docPath(doc *openapi3.T, r web.Route) (string, bool) {
	if !strings.HasSuffix(r.Path, "/") || r.Path == "/" {
		return r.Path, doc.Paths.Value(r.Path) != nil
	}
	for p := range doc.Paths.Map() {
		rest, ok := strings.CutPrefix(p, r.Path)
		if ok && strings.HasPrefix(rest, "{") && strings.HasSuffix(rest, "}") && !strings.Contains(rest, "/") {
			return p, true
		}
	}
	return r.Path + "{id}", false
}

// TestOpenAPIMatchesRoutes checks that the route table and the document
// list the same operations, so that neither drifts from the other; and
// that each operation's security says what the route's Access does.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	// The route table does not depend on the registry's apps or tokens.
	srv := web.New(web.Config{Listen: "127.0.0.1:0"}, auth.NewRegistry(), web.Handlers{}, slog.New(slog.NewTextHandler(io.Discard, nil)))

	routed := map[string]bool{}
	var missingFromDoc []string
	for _, r := range srv.Routes() {
		p, ok := docPath(doc, r)
		key := r.Method + " " + p
		routed[key] = true
		var op *openapi3.Operation
		if ok {
			op = doc.Paths.Value(p).GetOperation(r.Method)
		}
		if op == nil {
			missingFromDoc = append(missingFromDoc, key)
			continue
		}
		if err := checkSecurity(doc, op, r.Access); err != "" {
			t.Errorf("%s: %s", key, err)
		}
		if r.Access != web.Public {
			for _, code := range []string{"401", "403"} {
				if op.Responses.Value(code) == nil {
					t.Errorf("%s: the route needs credentials, but the document has no %s answer", key, code)
				}
			}
		}
	}
	if len(missingFromDoc) > 0 {
		sort.Strings(missingFromDoc)
		t.Errorf("routes of web.Server.Routes() that web/openapi.yaml does not document:\n\t%s", strings.Join(missingFromDoc, "\n\t"))
	}

	var notRouted []string
	for p, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			// The server answers every path's preflight itself (Server.serve).
			if method == http.MethodOptions {
				continue
			}
			if !routed[method+" "+p] {
				notRouted = append(notRouted, method+" "+p)
			}
		}
	}
	if len(notRouted) > 0 {
		sort.Strings(notRouted)
		t.Errorf("operations of web/openapi.yaml that web.Server.Routes() does not route (not implemented yet, or the document is wrong):\n\t%s", strings.Join(notRouted, "\n\t"))
	}
}

// checkSecurity says what is wrong with op's security for a route with
// the given Access, or "".
func checkSecurity(doc *openapi3.T, op *openapi3.Operation, access web.Access) string {
	sec := doc.Security
	if op.Security != nil {
		sec = *op.Security
	}
	anonymous := len(sec) == 0 || slices.ContainsFunc(sec, func(r openapi3.SecurityRequirement) bool { return len(r) == 0 })
	schemes := map[string]bool{}
	for _, r := range sec {
		for name := range r {
			schemes[name] = true
		}
	}
	switch access {
	case web.Public:
		if len(sec) != 0 {
			return "the route is public, but the document's security is not []"
		}
	case web.AppKey:
		if !anonymous || !schemes["bearerAuth"] || !schemes["basicAuth"] {
			return "the route takes an optional token: security should be [{}, bearerAuth, basicAuth]"
		}
	case web.Scoped:
		if anonymous || !schemes["bearerAuth"] || !schemes["basicAuth"] {
			return "the route needs a token: security should be [bearerAuth, basicAuth]"
		}
	}
	return ""
}

// TestOpenAPIServed checks GET /openapi.yaml: public, application/yaml,
// the embedded document byte for byte.
func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	addr := startServer(t, testConfig).addr
	resp, err := httpClient.Get("http://" + addr + "/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /openapi.yaml: status %d; want 200 (body %s)", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/yaml" {
		t.Errorf("Content-Type = %q; want application/yaml", ct)
	}
	if !bytes.Equal(body, web.OpenAPI()) {
		t.Errorf("the body is not the embedded document (%d bytes; want %d)", len(body), len(web.OpenAPI()))
	}
}
