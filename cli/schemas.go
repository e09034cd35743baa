package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
)

const schemasUsage = `Usage: trove schemas put EVENT FILE --app KEY [flags]
       trove schemas list --app KEY [flags]
       trove schemas delete EVENT --app KEY [flags]

Manages an app's schema contracts on a running server (README: Schema
contracts): put stores FILE (a JSON Schema, draft 2020-12; "-" reads stdin)
as the next version of the contract for events named EVENT and prints that
version; list shows the app's contracts and its schema_mode; delete removes
one. Needs the admin token.

Flags:
`

// Schemas runs `trove schemas put|list|delete` and returns the exit status:
// 0 done, 1 failed (the server's message is printed), 2 bad usage.
func Schemas(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	sub, args, ok, code := splitSubcommand("trove schemas", schemasUsage, []string{"put", "list", "delete"}, nil, args, stdout, stderr)
	if !ok {
		return code
	}
	cmd := newAdminCommand("trove schemas "+sub, schemasUsage, stderr)
	app := cmd.fs.String("app", "", "the app's `KEY` (appKey)")
	nargs, what := 0, ""
	switch sub {
	case "put":
		nargs, what = 2, "EVENT and FILE"
	case "delete":
		nargs, what = 1, "the EVENT name"
	}
	pos, ok, code := cmd.parse(args, nargs, what, stderr)
	if !ok {
		return code
	}
	if *app == "" {
		fmt.Fprintf(stderr, "%s: missing --app KEY\n", cmd.name)
		return 2
	}
	base := "/admin/apps/" + url.PathEscape(*app) + "/schemas"
	switch sub {
	case "put":
		return schemasPut(ctx, cmd, base, pos[0], pos[1], stdin, stdout, stderr)
	case "delete":
		return schemasDelete(ctx, cmd, base, pos[0], stdout, stderr)
	}
	return schemasList(ctx, cmd, base, stdout, stderr)
}

// schemaVersion is the API's answer about one version of a contract.
type schemaVersion struct {
	Event   string `json:"event"`
	Version uint64 `json:"version"`
}

// schemasPut stores the schema in file as the next version of the contract
// for event, at base (the app's /schemas), and prints that version.
func schemasPut(ctx context.Context, cmd *adminCommand, base, event, file string, stdin io.Reader, stdout, stderr io.Writer) int {
	src, err := readSchemaFile(file, stdin)
	if err != nil {
		return cmd.fail(stderr, err)
	}
	var one schemaVersion
	raw, err := cmd.c.doBody(ctx, "PUT", base+"/"+url.PathEscape(event), "application/json", bytes.NewReader(src), &one)
	if err != nil {
		return cmd.fail(stderr, err)
	}
	if cmd.c.json {
		stdout.Write(raw)
		return 0
	}
	fmt.Fprintf(stderr, "stored version %d of the contract for %q\n", one.Version, one.Event)
	fmt.Fprintln(stdout, one.Version)
	return 0
}

// schemasDelete removes the contract for event at base.
func schemasDelete(ctx context.Context, cmd *adminCommand, base, event string, stdout, stderr io.Writer) int {
	var one schemaVersion
	raw, err := cmd.c.do(ctx, "DELETE", base+"/"+url.PathEscape(event), nil, &one)
	if err != nil {
		return cmd.fail(stderr, err)
	}
	if cmd.c.json {
		stdout.Write(raw)
		return 0
	}
	fmt.Fprintf(stdout, "deleted the contract for %q (its last version was %d)\n", one.Event, one.Version)
	return 0
}

// schemasList prints the contracts at base as a table, and the app's
// schema_mode on stderr.
func schemasList(ctx context.Context, cmd *adminCommand, base string, stdout, stderr io.Writer) int {
	var list struct {
		SchemaMode    string `json:"schemaMode"`
		SchemaUnknown string `json:"schemaUnknown"`
		Schemas       []struct {
			Event     string `json:"event"`
			Version   uint64 `json:"version"`
			UpdatedAt string `json:"updatedAt"`
		} `json:"schemas"`
	}
	raw, err := cmd.c.do(ctx, "GET", base, nil, &list)
	if err != nil {
		return cmd.fail(stderr, err)
	}
	if cmd.c.json {
		stdout.Write(raw)
		return 0
	}
	fmt.Fprintf(stderr, "schema_mode = %q, schema_unknown = %q\n", list.SchemaMode, list.SchemaUnknown)
	rows := make([][]string, len(list.Schemas))
	for i, s := range list.Schemas {
		rows[i] = []string{s.Event, strconv.FormatUint(s.Version, 10), s.UpdatedAt}
	}
	table(stdout, []string{"EVENT", "VERSION", "UPDATED"}, rows)
	return 0
}

// readSchemaFile reads a schema from name, or from stdin for "-".
func readSchemaFile(name string, stdin io.Reader) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(io.LimitReader(stdin, 1<<20+1))
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("cannot read the schema: %w", err)
	}
	return b, nil
}
