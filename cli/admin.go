package cli

// The client side of the admin API (SPEC.md section 2), shared by
// `trove apps` (apps.go) and `trove tokens` (tokens.go): flags that may
// come before or after the arguments, the admin token from --token or
// TROVE_ADMIN_TOKEN, one JSON request, the server's error message on
// failure, and tables on stdout.

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/goccy/go-json"
)

// adminClient calls the admin API of a running server.
type adminClient struct {
	server string
	token  string
	json   bool // print the server's JSON instead of a table
}

// adminCommand is one `trove apps|tokens SUB` command line.
type adminCommand struct {
	name  string // "trove apps create"
	usage string
	fs    *flag.FlagSet
	c     adminClient
}

func newAdminCommand(name, usage string, stderr io.Writer) *adminCommand {
	cmd := &adminCommand{name: name, usage: usage}
	fs := newFlagSet(name, usage, stderr)
	fs.StringVar(&cmd.c.server, "server", DefaultServer, "base `URL` of the running trove server")
	fs.StringVar(&cmd.c.token, "token", "", "admin token (default $TROVE_ADMIN_TOKEN)")
	fs.BoolVar(&cmd.c.json, "json", false, "print the server's JSON answer")
	cmd.fs = fs
	return cmd
}

// splitSubcommand takes the subcommand, one of subs, off the front of the
// arguments of the command group name (`trove apps`). For none, an unknown
// one or -h it prints what to do (help on stdout, with the flags that
// helpFlags, if not nil, adds; else a complaint on stderr) and returns
// false and the exit status.
func splitSubcommand(name, usage string, subs []string, helpFlags func(*adminCommand), args []string, stdout, stderr io.Writer) (sub string, rest []string, ok bool, code int) {
	if len(args) > 0 {
		sub, rest = args[0], args[1:]
	}
	switch {
	case slices.Contains(subs, sub):
		return sub, rest, true, 0
	case sub == "-h" || sub == "-help" || sub == "--help" || sub == "help":
		cmd := newAdminCommand(name, usage, stdout)
		if helpFlags != nil {
			helpFlags(cmd)
		}
		cmd.fs.Usage()
		return "", nil, false, 0
	case sub == "":
		fmt.Fprintf(stderr, "%s: say what to do: %s\n\n%s", name, orList(subs), usage)
	default:
		fmt.Fprintf(stderr, "%s: unknown command %q: use %s\n\n%s", name, sub, orList(subs), usage)
	}
	return "", nil, false, 2
}

// orList is "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// parse parses flags wherever they stand among the arguments and checks
// that there are nargs arguments, named in what. It returns the arguments
// and true, or false and the exit status.
func (cmd *adminCommand) parse(args []string, nargs int, what string, stderr io.Writer) ([]string, bool, int) {
	pos, ok, code := parseInterspersed(cmd.fs, args)
	if !ok {
		return nil, false, code
	}
	if len(pos) != nargs {
		if len(pos) < nargs {
			fmt.Fprintf(stderr, "%s: missing %s\n\n", cmd.name, what)
		} else {
			fmt.Fprintf(stderr, "%s: unexpected argument %q\n\n", cmd.name, pos[nargs])
		}
		cmd.fs.Usage()
		return nil, false, 2
	}
	if cmd.c.token == "" {
		// Read only now, so that -h never shows it as a default.
		cmd.c.token = os.Getenv("TROVE_ADMIN_TOKEN")
	}
	if cmd.c.token == "" {
		fmt.Fprintf(stderr, "%s: this needs the admin token: pass --token T or set TROVE_ADMIN_TOKEN\n  (a token generated on first start is in <data>/admin.token)\n", cmd.name)
		return nil, false, 2
	}
	return pos, true, 0
}

// fail prints err and returns the exit status 1.
func (cmd *adminCommand) fail(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "%s: %v\n", cmd.name, err)
	return 1
}

// serverURL is path on the server named by --server.
func serverURL(server, path string) (string, error) {
	base := server
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("--server %q is not an http(s) URL like %s", server, DefaultServer)
	}
	// path is escaped already (segments with url.PathEscape), and may
	// carry a query.
	path, query, _ := strings.Cut(path, "?")
	raw := strings.TrimSuffix(u.EscapedPath(), "/") + path
	if u.Path, err = url.PathUnescape(raw); err != nil {
		return "", fmt.Errorf("path %q is not validly escaped", raw)
	}
	u.RawPath, u.RawQuery = raw, query
	return u.String(), nil
}

// do sends one request with a JSON body (when body is not nil), and
// decodes a 2xx answer into out; raw is the answer as it came. Any other
// status is an error carrying the server's message.
func (c *adminClient) do(ctx context.Context, method, path string, body, out any) (raw []byte, err error) {
	var rd io.Reader
	contentType := ""
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd, contentType = bytes.NewReader(b), "application/json"
	}
	return c.doBody(ctx, method, path, contentType, rd, out)
}

// doBody is do with a body of any type (nil for none).
func (c *adminClient) doBody(ctx context.Context, method, path, contentType string, body io.Reader, out any) (raw []byte, err error) {
	resp, err := c.send(ctx, method, path, contentType, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err = io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("cannot read the server's answer: %v", err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, fmt.Errorf("the server's answer is not what this client expects (%v): is --server a trove server of the same version?", err)
		}
	}
	return raw, nil
}

// send sends one request and returns a 2xx response, whose body the caller
// closes; any other status is an error carrying the server's message.
func (c *adminClient) send(ctx context.Context, method, path, contentType string, body io.Reader) (*http.Response, error) {
	target, err := serverURL(c.server, path)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("User-Agent", "trove-cli")
	client := &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			Proxy:       http.ProxyFromEnvironment,
			DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		},
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("interrupted before the server answered")
		}
		return nil, unreachable(c.server, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, responseError(resp)
	}
	return resp, nil
}

// unreachable is the error of a request to server that got no answer, err.
func unreachable(server string, err error) error {
	return fmt.Errorf("cannot reach the server at %s: %v\n  Is `trove serve` running there? Point --server at it (default %s)", server, unwrapURLError(err), DefaultServer)
}

// adminApp and adminToken are the API's JSON objects (package admin).
type adminApp struct {
	Name         string `json:"name"`
	AppKey       string `json:"appKey"`
	Source       string `json:"source"`
	RequireToken bool   `json:"requireToken"`
	CreatedAt    string `json:"createdAt"`
}

type adminToken struct {
	ID        string   `json:"id"`
	Token     string   `json:"token"`
	Name      string   `json:"name"`
	Scopes    []string `json:"scopes"`
	Apps      []string `json:"apps"`
	Source    string   `json:"source"`
	CreatedAt string   `json:"createdAt"`
	RevokedAt string   `json:"revokedAt"`
}

// table writes rows under a header, in aligned columns.
func table(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		for i := range r {
			if r[i] == "" {
				r[i] = "-"
			}
		}
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// listFlag is a comma-separated list flag that may be repeated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for p := range strings.SplitSeq(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}
