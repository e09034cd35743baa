package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"
)

const appsUsage = `Usage: trove apps create NAME [--require-token] [flags]
       trove apps list [flags]

Creates an app on a running server (POST /admin/apps) and prints its appKey,
the key its events carry; or lists the apps the server knows, those of the
config file ("config") and those created here ("api"). Needs the admin token.
Events for a new app may be sent with its appKey alone unless --require-token.

Flags:
`

// Apps runs `trove apps create|list` and returns the exit status: 0 done, 1
// failed (the server's message is printed), 2 bad usage.
func Apps(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	sub, args, ok, code := splitSubcommand("trove apps", appsUsage, []string{"create", "list"}, nil, args, stdout, stderr)
	if !ok {
		return code
	}
	if sub == "create" {
		return appsCreate(ctx, args, stdout, stderr)
	}
	return appsList(ctx, args, stdout, stderr)
}

func appsCreate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := newAdminCommand("trove apps create", appsUsage, stderr)
	requireToken := cmd.fs.Bool("require-token", false, "refuse events that carry the appKey without a token")
	pos, ok, code := cmd.parse(args, 1, "the app's NAME", stderr)
	if !ok {
		return code
	}
	var app adminApp
	raw, err := cmd.c.do(ctx, "POST", "/admin/apps", map[string]any{"name": pos[0], "requireToken": *requireToken}, &app)
	if err != nil {
		return cmd.fail(stderr, err)
	}
	if cmd.c.json {
		stdout.Write(raw)
		return 0
	}
	// The appKey alone on stdout, so that KEY=$(trove apps create NAME)
	// works; the rest on stderr.
	fmt.Fprintf(stderr, "created app %q with appKey %s (events carry it as \"appKey\")\n", app.Name, app.AppKey)
	fmt.Fprintln(stdout, app.AppKey)
	return 0
}

func appsList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := newAdminCommand("trove apps list", appsUsage, stderr)
	if _, ok, code := cmd.parse(args, 0, "", stderr); !ok {
		return code
	}
	var list struct {
		Apps []adminApp `json:"apps"`
	}
	raw, err := cmd.c.do(ctx, "GET", "/admin/apps", nil, &list)
	if err != nil {
		return cmd.fail(stderr, err)
	}
	if cmd.c.json {
		stdout.Write(raw)
		return 0
	}
	rows := make([][]string, len(list.Apps))
	for i, a := range list.Apps {
		rows[i] = []string{a.Name, a.AppKey, a.Source, strconv.FormatBool(a.RequireToken), a.CreatedAt}
	}
	table(stdout, []string{"NAME", "APP KEY", "SOURCE", "REQUIRE TOKEN", "CREATED"}, rows)
	return 0
}
