package web

import (
	"embed"
	"fmt"
	"path"
	"strings"

	"github.com/valyala/fasthttp"
)

// The web console (SPEC.md section 6): static files embedded in the binary,
// served without credentials because they hold no data. The page asks for
// the admin token, keeps it in sessionStorage and sends it as a Bearer
// token with every call to the JSON and NDJSON APIs, which check it as
// they check any client's.
//
//go:embed console
var consoleFS embed.FS

// consolePrefix is the path under which the console's files are served.
const consolePrefix = "/console/"

// consoleCSP allows the page's own files and calls to its own origin only:
// no inline script, no other origin, no framing. blob: is for the export
// download, which the page builds from a fetch.
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"

var consoleTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".txt":  "text/plain; charset=utf-8",
}

// console serves GET /: the console's page.
func (s *Server) console(ctx *fasthttp.RequestCtx) error {
	return serveConsoleFile(ctx, "index.html")
}

// consoleAsset serves GET /console/{file}.
func (s *Server) consoleAsset(ctx *fasthttp.RequestCtx) error {
	return serveConsoleFile(ctx, strings.TrimPrefix(string(ctx.Path()), consolePrefix))
}

func serveConsoleFile(ctx *fasthttp.RequestCtx, name string) error {
	typ, ok := consoleTypes[path.Ext(name)]
	if !ok || strings.Contains(name, "/") || strings.HasPrefix(name, ".") {
		return fmt.Errorf("%w: no console file %q", ErrNotFound, name)
	}
	b, err := consoleFS.ReadFile("console/" + name)
	if err != nil {
		return fmt.Errorf("%w: no console file %q", ErrNotFound, name)
	}
	h := &ctx.Response.Header
	h.Set("Content-Security-Policy", consoleCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	// Revalidated every time: a new binary serves new files at once.
	h.Set("Cache-Control", "no-cache")
	ctx.SetContentType(typ)
	ctx.SetBody(b)
	return nil
}

// isPrefixRoute reports whether a route's Path matches one segment more
// (it ends in "/"), which "/" itself, the console's page, does not.
func isPrefixRoute(routePath string) bool {
	return len(routePath) > 1 && strings.HasSuffix(routePath, "/")
}
