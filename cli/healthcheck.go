package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

const healthcheckUsage = `Usage: trove healthcheck [--server URL]

Asks a trove server for GET /healthz and exits 0 when it answers 200, else
says why and exits 1: the container image's HEALTHCHECK. The server is the
one this environment's TROVE_LISTEN (default :8080) points at, on 127.0.0.1
when the address names no host.

Flags:
`

// healthTimeout bounds the whole check.
const healthTimeout = 3 * time.Second

// Healthcheck runs `trove healthcheck` and returns the exit status: 0
// healthy, 1 not, 2 bad usage.
func Healthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("trove healthcheck", healthcheckUsage, stderr)
	server := fs.String("server", "", "base `URL` of the server (default from $TROVE_LISTEN, else http://127.0.0.1:8080)")
	if err := fs.Parse(args); err != nil {
		return parseExit(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "trove healthcheck: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *server == "" {
		*server = listenURL(os.Getenv("TROVE_LISTEN"))
	}
	target, err := serverURL(*server, "/healthz")
	if err != nil {
		fmt.Fprintln(stderr, "trove healthcheck:", err)
		return 2
	}
	if err := checkHealth(ctx, target); err != nil {
		fmt.Fprintf(stderr, "trove healthcheck: unhealthy: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, "healthy:", target)
	return 0
}

// listenURL is the URL a client uses to reach a server listening on addr
// (":8080", "0.0.0.0:8080", "[::]:8080", "10.0.0.5:9000"): loopback when
// addr names no particular host.
func listenURL(addr string) string {
	if addr == "" {
		addr = ":8080"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return DefaultServer
	}
	switch host {
	case "", "0.0.0.0", "::", "[::]":
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

func checkHealth(ctx context.Context, target string) error {
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "trove-healthcheck")
	// No proxy: the server is local.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s did not answer within %s", target, healthTimeout)
		}
		return fmt.Errorf("cannot reach %s: %v", target, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s answered %s: %s", target, resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
}
