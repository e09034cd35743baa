package main

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// modulePath is this module's path, as in go.mod.
const modulePath = "trove"

// forbiddenImports maps an import (or, ending in "/", every import under
// it) that no file may use to what to use instead. Test files included.
var forbiddenImports = map[string]string{
	"encoding/json":  "github.com/goccy/go-json (same API, faster)",
	"compress/gzip":  "github.com/klauspost/compress/gzip",
	"compress/flate": "github.com/klauspost/compress/flate",
	"compress/zlib":  "github.com/klauspost/compress/zlib",
}

// layers says which packages of ours each top-level directory may import
// (STYLE.md section 1: main → web → {ingest, profile, export, admin} → storage).
// obs (metric definitions) sits between them and storage, whose Stats it
// reads. The root package may import anything. Test files are exempt, since
// tests may wire layers together.
var layers = map[string][]string{
	"web":    {"auth", "ingest", "export", "profile", "admin", "segment", "compat", "storage", "obs", "apierr"},
	"ingest": {"auth", "schema", "storage", "obs", "httpbody", "apierr", "logentry"},
	// Schema contracts: compiled JSON Schemas over their stored versions.
	"schema":  {"storage", "obs"},
	"export":  {"auth", "storage", "obs", "apierr", "httpbody"},
	"profile": {"auth", "storage", "obs", "httpbody", "apierr", "logentry"},
	"segment": {"auth", "ingest", "profile", "storage", "obs", "apierr"},
	// The SDK-compatible protocols beside Segment's: compat is their
	// shared plumbing, over ingest and profile as segment is.
	"compat":    {"auth", "ingest", "profile", "segment", "apierr"},
	"amplitude": {"auth", "compat", "ingest", "segment"},
	"mixpanel":  {"auth", "compat", "ingest", "segment"},
	"posthog":   {"auth", "compat", "ingest", "segment"},
	// The continuous export to object storage reads committed events
	// through export, as a download does.
	"sinks":   {"config", "export", "storage"},
	"obs":     {"storage"},
	"admin":   {"auth", "schema", "storage", "apierr", "httpbody", "logentry"},
	"backup":  {"storage", "httpbody"},
	"storage": {},
	// Request bodies (limits and Content-Encodings, for every API), and
	// the reading side of streamed response bodies.
	"httpbody": {"apierr"},
	// The APIs' one error type, which every layer returns.
	"apierr": {},
	"auth":   {"apierr"},
	"config": {},
	"bench":  {},
	"cli":    {"backup"},
	// Test support that only tests import (internal/compattest wires the
	// SDK-compatible protocols' handlers over a store).
	"internal": {"auth", "compat", "ingest", "profile", "storage", "apierr"},
	// Serving wires every layer together, as main did before it.
	"server": {"admin", "amplitude", "apierr", "auth", "backup", "cluster", "compat", "config", "export", "ingest", "mixpanel", "obs", "posthog",
		"profile", "schema", "segment", "sinks", "storage", "web"},
	// Cluster mode's side of the NATS stream: it moves opaque entries and
	// knows nothing of what they hold (server wires it to ingest).
	"cluster": {"apierr"},
	// logentry encodes the fields of cluster mode's log entries.
	"logentry": {},
}

// fasthttpDirs are the top-level directories that may import fasthttp: the
// HTTP edge, the packages whose handlers it routes to, the reader of their
// request bodies (httpbody), the load generator, and the end-to-end tests
// (an in-memory listener). ("" is the root package.)
var fasthttpDirs = []string{"", "web", "ingest", "export", "profile", "admin", "backup", "segment", "compat", "amplitude", "mixpanel", "posthog", "httpbody", "bench", "e2e", "internal"}

// checkImports returns what is wrong with one file's imports. dir is the
// file's directory relative to the module root, with slashes ("" for the
// root).
func checkImports(dir, file string, imports []string) []string {
	var problems []string
	top, _, _ := strings.Cut(dir, "/")
	isTest := strings.HasSuffix(file, "_test.go")
	for _, imp := range imports {
		if use, ok := forbiddenImports[imp]; ok && !(imp == "encoding/json" && file == "json_differential_test.go") {
			problems = append(problems, "imports "+strconv.Quote(imp)+" <- please use "+use+" instead")
		}
		if (imp == "github.com/cockroachdb/pebble" || strings.HasPrefix(imp, "github.com/cockroachdb/pebble/")) && top != "storage" {
			problems = append(problems, "imports "+strconv.Quote(imp)+" <- only storage/ may use Pebble: add what you need to trove/storage and call that instead")
		}
		if (imp == "github.com/valyala/fasthttp" || strings.HasPrefix(imp, "github.com/valyala/fasthttp/")) && !slices.Contains(fasthttpDirs, top) {
			problems = append(problems, "imports "+strconv.Quote(imp)+" <- fasthttp belongs to web/ and the handler packages "+strings.Join(fasthttpDirs[1:], ", ")+
				": take plain values, an io.Reader/io.Writer, or a small interface (like auth.UserValuer) instead")
		}
		ours, ok := strings.CutPrefix(imp, modulePath+"/")
		if !ok || top == "" || isTest {
			continue
		}
		target, _, _ := strings.Cut(ours, "/")
		if target == top {
			continue
		}
		allowed, known := layers[top]
		switch {
		case !known:
			problems = append(problems, "package "+top+"/ is not in the layers table of lint_test.go <- add it there, placed in main → web → {ingest, profile, export, admin} → storage")
		case !slices.Contains(allowed, target):
			may := "no package of ours"
			if len(allowed) > 0 {
				may = "only trove/" + strings.Join(allowed, ", trove/")
			}
			problems = append(problems, "imports "+strconv.Quote(imp)+" <- "+top+"/ may import "+may+" (main → web → {ingest, profile, export, admin} → storage)")
		case top == "web" && target == "storage" && path.Base(file) != "errors.go":
			problems = append(problems, "imports "+strconv.Quote(imp)+" <- web/ uses trove/storage only in errors.go, to map its error sentinels to statuses; reach the store through a domain package instead")
		}
	}
	return problems
}

// TestImports parses every Go file of the module and checks its imports.
func TestImports(t *testing.T) {
	fset := token.NewFileSet()
	n := 0
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			// The go tool ignores these too.
			if p != "." && (name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ImportsOnly)
		if err != nil {
			t.Errorf("cannot parse %s: %v", p, err)
			return nil
		}
		n++
		var imports []string
		for _, s := range f.Imports {
			imp, err := strconv.Unquote(s.Path.Value)
			if err != nil {
				t.Errorf("%s: bad import %s", fset.Position(s.Pos()), s.Path.Value)
				continue
			}
			imports = append(imports, imp)
		}
		dir := filepath.ToSlash(filepath.Dir(p))
		if dir == "." {
			dir = ""
		}
		for _, problem := range checkImports(dir, name, imports) {
			t.Errorf("%s %s", p, problem)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Fatalf("checked only %d files; is the test running in the module root?", n)
	}
}

// testOnlyModules are the modules that only the end-to-end tests use: e2e/
// is a module of its own (e2e/go.mod) so that they are no requirement of
// the product's go.mod, and the product binary must not link them.
var testOnlyModules = []string{
	"github.com/chromedp/chromedp",
	"github.com/chromedp/cdproto",
	"github.com/google/go-containerregistry",
	"github.com/getkin/kin-openapi",
	"github.com/segmentio/analytics-go/v3",
	"github.com/rudderlabs/analytics-go/v4",
	"github.com/posthog/posthog-go",
	"github.com/johannesboyne/gofakes3",
}

// TestProductDeps checks, with go list, that the binary (the root package,
// main) depends on no test-only module, and that the product's module graph
// (go.mod, without a go.work) does not even require one: go build . never
// downloads them.
func TestProductDeps(t *testing.T) {
	deps := goListModules(t, "list", "-deps", "-f", "{{with .Module}}{{.Path}}{{end}}", modulePath)
	if !deps[modulePath] || !deps["github.com/cockroachdb/pebble/v2"] {
		t.Fatalf("go list -deps %s lists modules %v; want %s and Pebble among them", modulePath, deps, modulePath)
	}
	graph := goListModules(t, "list", "-m", "-f", "{{.Path}}", "all")
	for _, m := range testOnlyModules {
		if deps[m] {
			t.Errorf("the binary depends on %s, a module for tests only <- import it from e2e/ only", m)
		}
		if graph[m] {
			t.Errorf("go.mod's module graph holds %s, a module for tests only <- require it in e2e/go.mod, and go mod tidy here", m)
		}
	}
}

// goListModules runs go with args in this module alone (GOWORK=off) and
// returns the set of the words it prints.
func goListModules(t *testing.T, args ...string) map[string]bool {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	cmd := exec.Command(goCmd, args...)
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v", strings.Join(args, " "), err)
	}
	set := map[string]bool{}
	for _, w := range strings.Fields(string(out)) {
		set[w] = true
	}
	return set
}

// TestCheckImports checks that the rules above catch what they should.
func TestCheckImports(t *testing.T) {
	tests := []struct {
		name, dir, file string
		imports         []string
		want            []string // substrings, one per expected problem
	}{
		{"root may import anything", "", "serve.go", []string{"trove/web", "trove/storage", "trove/config", "github.com/valyala/fasthttp"}, nil},
		{"storage may use pebble", "storage", "db.go", []string{"github.com/cockroachdb/pebble/v2", "github.com/cockroachdb/pebble/v2/vfs"}, nil},
		{"storage subpackage may use pebble", "storage/internal/x", "x.go", []string{"github.com/cockroachdb/pebble/v2", "trove/storage"}, nil},
		{"pebble in ingest", "ingest", "sink.go", []string{"github.com/cockroachdb/pebble/v2"}, []string{"only storage/ may use Pebble"}},
		{"pebble vfs in an export test", "export", "export_test.go", []string{"github.com/cockroachdb/pebble/v2/vfs"}, []string{"only storage/ may use Pebble"}},
		{"old pebble path", "web", "server.go", []string{"github.com/cockroachdb/pebble"}, []string{"only storage/ may use Pebble"}},
		{"encoding/json", "export", "export.go", []string{"encoding/json"}, []string{"github.com/goccy/go-json"}},
		{"encoding/json in a test", "storage", "db_test.go", []string{"encoding/json"}, []string{"github.com/goccy/go-json"}},
		{"compress/gzip", "", "e2e_test.go", []string{"compress/gzip"}, []string{"github.com/klauspost/compress/gzip"}},
		{"compress/flate and zlib", "ingest", "body.go", []string{"compress/flate", "compress/zlib"}, []string{"klauspost/compress/flate", "klauspost/compress/zlib"}},
		{"fasthttp in storage", "storage", "db.go", []string{"github.com/valyala/fasthttp"}, []string{"fasthttp belongs to web/"}},
		{"fasthttputil in auth", "auth", "auth_test.go", []string{"github.com/valyala/fasthttp/fasthttputil"}, []string{"fasthttp belongs to web/"}},
		{"fasthttp in the handler packages", "export", "export.go", []string{"github.com/valyala/fasthttp"}, nil},
		{"storage imports nothing of ours", "storage", "db.go", []string{"trove/auth"}, []string{"storage/ may import no package of ours"}},
		{"storage does not import obs", "storage", "db.go", []string{"trove/obs"}, []string{"storage/ may import no package of ours"}},
		{"obs reads storage only", "obs", "store.go", []string{"trove/storage", "trove/web"}, []string{"obs/ may import only trove/storage"}},
		{"the domain packages count in obs", "ingest", "metrics.go", []string{"trove/obs", "trove/storage"}, nil},
		{"auth imports only apierr", "auth", "auth.go", []string{"trove/config"}, []string{"auth/ may import only trove/apierr"}},
		{"config imports nothing of ours", "config", "config.go", []string{"trove/auth"}, []string{"config/ may import no package of ours"}},
		{"ingest does not import web", "ingest", "handler.go", []string{"trove/web"}, []string{"ingest/ may import only trove/auth, trove/schema, trove/storage"}},
		{"export does not import web", "export", "export.go", []string{"trove/web"}, []string{"export/ may import only"}},
		{"profile does not import web", "profile", "profile.go", []string{"trove/web"}, []string{"profile/ may import only"}},
		{"domain packages are siblings", "export", "export.go", []string{"trove/ingest"}, []string{"export/ may import only"}},
		{"web maps storage errors in errors.go", "web", "errors.go", []string{"trove/storage", "trove/ingest"}, nil},
		{"web reaches storage elsewhere", "web", "server.go", []string{"trove/storage"}, []string{"only in errors.go"}},
		{"web does not read config", "web", "server.go", []string{"trove/config"}, []string{"web/ may import only"}},
		{"tests may wire layers", "ingest", "e2e_test.go", []string{"trove/web", "trove/bench"}, nil},
		{"a package within its own tree", "storage/internal/x", "x.go", []string{"trove/storage"}, nil},
		{"an unknown package", "metrics", "metrics.go", []string{"trove/storage"}, []string{"not in the layers table"}},
		{"server wires the layers", "server", "apis.go", []string{"trove/web", "trove/ingest", "trove/sinks", "trove/storage"}, nil},
		{"web does not import server", "web", "server.go", []string{"trove/server"}, []string{"web/ may import only"}},
		{"server does not import the clients", "server", "serve.go", []string{"trove/cli"}, []string{"server/ may import only"}},
		{"an in-memory listener in the end-to-end tests", "e2e", "powerloss_test.go", []string{"github.com/valyala/fasthttp/fasthttputil"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := checkImports(tc.dir, tc.file, tc.imports)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d problems %q; want %d containing %q", len(got), got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("problem %d: got %q; want it to contain %q", i, got[i], w)
				}
			}
		})
	}
}
