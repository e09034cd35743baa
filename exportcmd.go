package main

import (
	"context"
	"io"

	"trove/cli"
)

func runExport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return cli.Export(ctx, args, stdout, stderr)
}
