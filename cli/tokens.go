package cli

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"
)

const tokensUsage = `Usage: trove tokens create --app KEY[,KEY] --scope ingest,export [--name N] [flags]
       trove tokens list [flags]
       trove tokens revoke ID [flags]

Creates a token on a running server (POST /admin/tokens) and prints its
secret, which is shown this once: the server keeps only its SHA-256. --app
'*' covers every app; scopes are ingest, export and admin. Lists tokens
(never their secrets), or revokes one by id: it is refused from then on.
Tokens declared in the config file are revoked by editing the file. Needs
the admin token.

Flags:
`

// Tokens runs `trove tokens create|list|revoke` and returns the exit status:
// 0 done, 1 failed (the server's message is printed), 2 bad usage.
func Tokens(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	sub, args, ok, code := splitSubcommand("trove tokens", tokensUsage, []string{"create", "list", "revoke"},
		func(cmd *adminCommand) { addTokenCreateFlags(cmd) }, args, stdout, stderr)
	if !ok {
		return code
	}
	switch sub {
	case "create":
		return tokensCreate(ctx, args, stdout, stderr)
	case "list":
		return tokensList(ctx, args, stdout, stderr)
	}
	return tokensRevoke(ctx, args, stdout, stderr)
}

type tokenCreateFlags struct {
	apps, scopes listFlag
	name         string
}

func addTokenCreateFlags(cmd *adminCommand) *tokenCreateFlags {
	f := &tokenCreateFlags{}
	cmd.fs.Var(&f.apps, "app", "app `KEYS` the token covers, comma-separated, or '*' for every app (required)")
	cmd.fs.Var(&f.scopes, "scope", "`SCOPES`: ingest, export, admin, comma-separated (required)")
	cmd.fs.StringVar(&f.name, "name", "", "a `NAME` to recognise the token by (default: its scopes)")
	return f
}

func tokensCreate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := newAdminCommand("trove tokens create", tokensUsage, stderr)
	f := addTokenCreateFlags(cmd)
	if _, ok, code := cmd.parse(args, 0, "", stderr); !ok {
		return code
	}
	switch {
	case len(f.apps) == 0:
		fmt.Fprintln(stderr, "trove tokens create: say which apps the token covers: --app KEY[,KEY] (or --app '*'); 'trove apps list' shows the keys")
		return 2
	case len(f.scopes) == 0:
		fmt.Fprintln(stderr, "trove tokens create: say what the token may do: --scope ingest, export or admin (comma-separated)")
		return 2
	}
	if f.name == "" {
		f.name = strings.Join(f.scopes, "-")
	}
	var tok adminToken
	raw, err := cmd.c.do(ctx, "POST", "/admin/tokens", map[string]any{"name": f.name, "scopes": f.scopes, "apps": f.apps}, &tok)
	if err != nil {
		return cmd.fail(stderr, err)
	}
	if cmd.c.json {
		stdout.Write(raw)
		return 0
	}
	// The secret alone on stdout, so that T=$(trove tokens create …)
	// works; the rest on stderr.
	fmt.Fprintf(stderr, "created token %s %q: scopes %s; apps %s\n", tok.ID, tok.Name, strings.Join(tok.Scopes, ","), strings.Join(tok.Apps, ","))
	fmt.Fprintln(stdout, tok.Token)
	fmt.Fprintf(stderr, "This secret is shown once: store it now (the server keeps only its SHA-256). Revoke it with: trove tokens revoke %s\n", tok.ID)
	return 0
}

func tokensList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := newAdminCommand("trove tokens list", tokensUsage, stderr)
	if _, ok, code := cmd.parse(args, 0, "", stderr); !ok {
		return code
	}
	var list struct {
		Tokens []adminToken `json:"tokens"`
	}
	raw, err := cmd.c.do(ctx, "GET", "/admin/tokens", nil, &list)
	if err != nil {
		return cmd.fail(stderr, err)
	}
	if cmd.c.json {
		stdout.Write(raw)
		return 0
	}
	rows := make([][]string, len(list.Tokens))
	for i, t := range list.Tokens {
		rows[i] = []string{t.ID, t.Name, strings.Join(t.Scopes, ","), strings.Join(t.Apps, ","), t.Source, t.CreatedAt}
	}
	table(stdout, []string{"ID", "NAME", "SCOPES", "APPS", "SOURCE", "CREATED"}, rows)
	return 0
}

func tokensRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := newAdminCommand("trove tokens revoke", tokensUsage, stderr)
	pos, ok, code := cmd.parse(args, 1, "the token's ID ('trove tokens list' shows them)", stderr)
	if !ok {
		return code
	}
	var tok adminToken
	raw, err := cmd.c.do(ctx, "DELETE", "/admin/tokens/"+url.PathEscape(pos[0]), nil, &tok)
	if err != nil {
		return cmd.fail(stderr, err)
	}
	if cmd.c.json {
		stdout.Write(raw)
		return 0
	}
	fmt.Fprintf(stdout, "revoked token %s %q: it is refused from now on\n", tok.ID, tok.Name)
	return 0
}
