package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestRun checks main's own answers: the version, the usage and an unknown
// command. The commands it dispatches to are tested where they live
// (e2e/, server/, cli/, bench/).
func TestRun(t *testing.T) {
	tests := []struct {
		args        []string
		code        int
		out, errOut string
	}{
		{[]string{"version"}, 0, "trove " + version + "\n", ""},
		{[]string{"help"}, 0, "  tokens ", ""},
		{[]string{"-h"}, 0, "", "Usage of trove serve"}, // flags first: serve's
		{[]string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{[]string{"serve", "-h"}, 0, "", "-listen"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tc.args, &stdout, &stderr)
			if code != tc.code || !strings.Contains(stdout.String(), tc.out) || !strings.Contains(stderr.String(), tc.errOut) {
				t.Errorf("got %d, stdout %q, stderr %q; want %d, stdout with %q, stderr with %q",
					code, stdout.String(), stderr.String(), tc.code, tc.out, tc.errOut)
			}
		})
	}
}
