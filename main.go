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

	"trove/bench"
	"trove/cli"
	"trove/server"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

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
  import        send files of events or profiles (Trove, Segment, Mixpanel, Amplitude exports) to a running server ("import events FILE... --app KEY")
  backup        save a consistent snapshot of a running server to a .tar.zst (admin token)
  restore       restore a backup into a new data directory ("restore FILE -data DIR")
  healthcheck   exit 0 if the server answers GET /healthz with 200 (the Docker HEALTHCHECK)
  apps          create or list apps on a running server ("apps create NAME", "apps list"; admin token)
  tokens        create, list or revoke tokens ("tokens create --app KEY --scope ingest,export",
                "tokens list", "tokens revoke ID"; admin token)
  schemas       put, list or delete an app's schema contracts ("schemas put EVENT FILE --app KEY",
                "schemas list --app KEY", "schemas delete EVENT --app KEY"; admin token)
  quarantine    list or replay an app's quarantine ("quarantine list --app KEY",
                "quarantine replay --app KEY [--reason PREFIX]"; admin token)
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
		return server.Serve(ctx, args, stdout, stderr, server.Options{Version: version})
	case "check-config":
		return server.CheckConfig(args, stdout, stderr)
	case "bench":
		return bench.Main(ctx, args, stdout, stderr)
	case "export":
		return cli.Export(ctx, args, stdout, stderr)
	case "import":
		return cli.Import(ctx, args, stdout, stderr)
	case "backup":
		return cli.Backup(ctx, args, stdout, stderr)
	case "restore":
		return cli.Restore(ctx, args, stdout, stderr)
	case "healthcheck":
		return cli.Healthcheck(ctx, args, stdout, stderr)
	case "apps":
		return cli.Apps(ctx, args, stdout, stderr)
	case "schemas":
		return cli.Schemas(ctx, args, os.Stdin, stdout, stderr)
	case "quarantine":
		return cli.Quarantine(ctx, args, stdout, stderr)
	case "tokens":
		return cli.Tokens(ctx, args, stdout, stderr)
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
