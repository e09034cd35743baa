package ingest

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

// This file runs golden tests in the file format of
// github.com/cockroachdb/datadriven: a directive line with arguments, the
// input, a "----" line, and the expected output up to a blank line (or,
// when the output holds blank lines, between "----" "----" pairs). The
// package itself is in the module graph through pebble but not required by
// go.mod, so this small reader stands in for datadriven.RunTest; the files
// stay readable by it. Run with -rewrite to regenerate the expected output.

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of testdata files")

// ddCase is one test case of a datadriven file.
type ddCase struct {
	Pos      string // file:line of the directive
	Cmd      string
	Args     []string // "key=value" or bare "key"
	Input    string   // trimmed
	Expected string
}

// HasArg reports whether the bare argument key is present.
func (d *ddCase) HasArg(key string) bool {
	for _, a := range d.Args {
		if a == key {
			return true
		}
	}
	return false
}

// Arg returns the value of the argument key=value.
func (d *ddCase) Arg(key string) (string, bool) {
	for _, a := range d.Args {
		if k, v, ok := strings.Cut(a, "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// runDataDriven runs f on every case of the file at path and compares its
// output with the expected one, or rewrites the file with -rewrite.
func runDataDriven(t *testing.T, path string, f func(t *testing.T, d *ddCase) string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	emit := func(s string) {
		out.WriteString(s)
		out.WriteByte('\n')
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	line := 0
	scan := func() (string, bool) {
		if !sc.Scan() {
			return "", false
		}
		line++
		return sc.Text(), true
	}
	for {
		l, ok := scan()
		if !ok {
			break
		}
		emit(l)
		trimmed := strings.TrimSpace(l)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		fields := strings.Fields(trimmed)
		d := &ddCase{Pos: fmt.Sprintf("%s:%d", path, line), Cmd: fields[0], Args: fields[1:]}
		var input strings.Builder
		separator := false
		for {
			l, ok := scan()
			if !ok {
				break
			}
			if l == "----" {
				separator = true
				break
			}
			emit(l)
			input.WriteString(l)
			input.WriteByte('\n')
		}
		d.Input = strings.TrimSpace(input.String())
		if separator {
			d.Expected = readExpected(t, scan)
		}

		var actual string
		t.Run(fmt.Sprintf("%s/%d", d.Cmd, line), func(t *testing.T) {
			actual = f(t, d)
			if actual != "" && !strings.HasSuffix(actual, "\n") {
				actual += "\n"
			}
			if !*rewrite && actual != d.Expected {
				t.Errorf("%s: %s\ngot:\n%swant:\n%s", d.Pos, strings.Join(fields, " "), actual, d.Expected)
			}
		})
		emit("----")
		if strings.Contains(actual, "\n\n") {
			emit("----")
			out.WriteString(actual)
			emit("----")
			emit("----")
		} else {
			out.WriteString(actual)
		}
		emit("")
	}
	if *rewrite {
		res := bytes.TrimRight(out.Bytes(), "\n")
		if err := os.WriteFile(path, append(res, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// readExpected reads the expected output after a "----" line, and the blank
// line that ends it.
func readExpected(t *testing.T, scan func() (string, bool)) string {
	var buf strings.Builder
	l, ok := scan()
	if !ok {
		return ""
	}
	if l == "----" {
		// Blank lines allowed: read up to two successive "----" lines.
		for {
			l, ok := scan()
			if !ok {
				t.Fatal("missing closing ---- ---- pair")
			}
			if l == "----" {
				l2, ok := scan()
				if ok && l2 == "----" {
					if l3, ok := scan(); ok && l3 != "" {
						t.Fatalf("non-blank line %q after the closing ---- ---- pair", l3)
					}
					return buf.String()
				}
				buf.WriteString(l + "\n" + l2 + "\n")
				continue
			}
			buf.WriteString(l + "\n")
		}
	}
	for ok && strings.TrimSpace(l) != "" {
		buf.WriteString(l + "\n")
		l, ok = scan()
	}
	return buf.String()
}
