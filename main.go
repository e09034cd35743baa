// Command trove is a self-hosted store for analytics events and user
// profiles: the Pyze Enterprise Events API over an embedded Pebble store.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// onReady, when set (by tests), is called with the bound address once the
// server accepts connections.
var onReady func(addr string)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `Usage: trove [command] [flags]

Commands:
  serve         run the server (the default)
  check-config  validate a config file and exit 0 (valid) or 1
  bench         load a running server with generated events (or "bench profiles") and report speed
  export        pull events or profiles from a running server into a file ("export events|profiles")
  version       print the version

Run 'trove COMMAND -h' for a command's flags.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, stdout, stderr)
	case "check-config":
		return checkConfig(args, stdout, stderr)
	case "bench":
		return runBench(ctx, args, stdout, stderr)
	case "export":
		return runExport(ctx, args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "trove", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "trove: unknown command %q\n\n%s", cmd, usage)
	return 2
}
