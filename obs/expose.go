package obs

import (
	"bytes"
	"io"
	"strings"
)

// expose appends to dst the exposition src, as github.com/VictoriaMetrics/metrics
// writes it with metadata on, made fit for a stock Prometheus and
// `promtool check metrics`:
//
//   - every `# HELP family` line gets its text from help (the library has no
//     way to say one), or, for a family help does not know, a placeholder
//     (TestEveryFamilyHasHelp keeps that from happening to Trove's own);
//   - the library's families whose names break Prometheus' conventions are
//     renamed (renames), in their metadata and their samples;
//   - the library's monotonic figures that it types as gauges are typed as
//     counters (typeFixes).
//
// src must hold whole lines. Scrapes are rare and small (tens of KiB), so
// this works on the whole text at once.
func expose(dst, src []byte) []byte {
	for len(src) > 0 {
		line := src
		if i := bytes.IndexByte(src, '\n'); i >= 0 {
			line, src = src[:i], src[i+1:]
		} else {
			src = nil
		}
		switch {
		case bytes.HasPrefix(line, []byte("# HELP ")):
			name, _, _ := strings.Cut(string(line[len("# HELP "):]), " ")
			name = renamed(name)
			dst = append(dst, "# HELP "...)
			dst = append(dst, name...)
			dst = append(dst, ' ')
			dst = appendHelp(dst, helpOf(name))
		case bytes.HasPrefix(line, []byte("# TYPE ")):
			name, typ, _ := strings.Cut(string(line[len("# TYPE "):]), " ")
			name = renamed(name)
			if t, ok := typeFixes[name]; ok {
				typ = t
			}
			dst = append(dst, "# TYPE "...)
			dst = append(dst, name...)
			dst = append(dst, ' ')
			dst = append(dst, typ...)
		default:
			n := bytes.IndexAny(line, "{ ")
			if n > 0 {
				if to, ok := renames[string(line[:n])]; ok {
					dst = append(dst, to...)
					line = line[n:]
				}
			}
			dst = append(dst, line...)
		}
		dst = append(dst, '\n')
	}
	return dst
}

func renamed(name string) string {
	if to, ok := renames[name]; ok {
		return to
	}
	return name
}

// helpOf returns the HELP text of a family.
func helpOf(family string) string {
	if h, ok := help[family]; ok {
		return h
	}
	return "Undocumented series " + family + "."
}

// appendHelp appends s escaped as the text format wants a HELP text:
// backslash and newline escaped.
func appendHelp(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			dst = append(dst, `\\`...)
		case '\n':
			dst = append(dst, `\n`...)
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// renames maps the library's names that Prometheus' conventions refuse (a
// _count suffix on a counter or a gauge, which promtool reports, and which
// collide with a histogram's _count) to conforming ones.
var renames = map[string]string{
	"go_cgo_calls_count": "go_cgo_calls_total",
	"go_gc_forced_count": "go_gc_forced_total",
	"go_cpu_count":       "go_cpus",
}

// typeFixes gives the type of the library's families that it mistypes:
// cumulative figures from /proc/self/io, typed gauge.
var typeFixes = map[string]string{
	"process_io_read_bytes_total":            "counter",
	"process_io_written_bytes_total":         "counter",
	"process_io_read_syscalls_total":         "counter",
	"process_io_write_syscalls_total":        "counter",
	"process_io_storage_read_bytes_total":    "counter",
	"process_io_storage_written_bytes_total": "counter",
}

// Expose writes the exposition text to w as /metrics serves it: HELP texts
// from help, renames and type fixes applied. text must hold whole lines,
// each family with its `# HELP name` and `# TYPE name type` lines.
func Expose(w io.Writer, text []byte) {
	w.Write(expose(make([]byte, 0, len(text)+len(text)/2), text))
}
