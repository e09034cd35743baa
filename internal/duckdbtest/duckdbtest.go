// Package duckdbtest lets tests read files with DuckDB, a reader that no one
// here wrote: its npm package (@duckdb/node-api) run by node. Only tests
// import it; `go build .` never needs it.
//
// DuckDB is looked for in $TROVE_DUCKDB_DIR, else in
// $HOME/.cache/trove-duckdb, where .ci/run installs it with
//
//	npm install --prefix "$HOME/.cache/trove-duckdb" --no-save @duckdb/node-api@1.5.6-r.1
package duckdbtest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goccy/go-json"
)

// Version is the npm version of @duckdb/node-api that .ci/run installs.
const Version = "1.5.6-r.1"

// script runs the SQL in argv[1] and prints each row as a JSON object, one
// a line, with DuckDB's JSON forms (BIGINT and TIMESTAMP as strings).
const script = `
const { createRequire } = require('module');
const req = createRequire(process.env.TROVE_DUCKDB_DIR + '/');
const { DuckDBInstance } = req('@duckdb/node-api');
(async () => {
  const inst = await DuckDBInstance.create(':memory:');
  const conn = await inst.connect();
  const r = await conn.runAndReadAll(process.argv[1]);
  const out = [];
  for (const row of r.getRowObjectsJson()) out.push(JSON.stringify(row));
  process.stdout.write(out.join('\n'));
})().catch(e => { console.error(String(e)); process.exit(1); });
`

// Dir returns the directory DuckDB is installed in, or fails the test
// saying how to install it.
func Dir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("TROVE_DUCKDB_DIR")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".cache", "trove-duckdb")
	}
	how := "DuckDB is needed to read the Parquet files back: install node (v18 or later) and run\n" +
		"  npm install --prefix \"$HOME/.cache/trove-duckdb\" --no-save @duckdb/node-api@" + Version + "\n" +
		"(.ci/run does this), or point TROVE_DUCKDB_DIR at a directory where it is installed"
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("node is not on PATH. " + how)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@duckdb", "node-api", "package.json")); err != nil {
		t.Fatalf("@duckdb/node-api is not installed in %s. %s", dir, how)
	}
	return dir
}

// Query runs sql in an in-memory DuckDB and returns its rows.
func Query(t testing.TB, sql string) []map[string]any {
	t.Helper()
	dir := Dir(t)
	cmd := exec.Command("node", "-e", script, sql)
	cmd.Env = append(os.Environ(), "TROVE_DUCKDB_DIR="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("duckdb %q: %v\n%s", sql, err, stderr.String())
	}
	var rows []map[string]any
	for line := range strings.Lines(string(out)) {
		var row map[string]any
		if err := json.Unmarshal([]byte(line), &row); err != nil {
			t.Fatalf("duckdb printed %q: %v", line, err)
		}
		rows = append(rows, row)
	}
	return rows
}

// QueryErr runs sql and returns DuckDB's error message, or "" when it
// succeeded.
func QueryErr(t testing.TB, sql string) string {
	t.Helper()
	dir := Dir(t)
	cmd := exec.Command("node", "-e", script, sql)
	cmd.Env = append(os.Environ(), "TROVE_DUCKDB_DIR="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return strings.TrimSpace(stderr.String()) + " (" + err.Error() + ")"
	}
	return ""
}

// Literal quotes s as an SQL string literal.
func Literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
