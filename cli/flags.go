package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"
)

// newFlagSet is the flag set of the command name: errors and -h go to w,
// and -h prints usage above the flags.
func newFlagSet(name, usage string, w io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	return fs
}

// parseExit is the exit status of a command whose flags failed to parse
// with err: 0 for -h, which printed the usage, else 2.
func parseExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}

// parseInterspersed parses flags wherever they stand among args, as
// flag.Parse alone stops at the first argument, and returns the arguments
// in order; or, when the flags do not parse, false and the exit status.
func parseInterspersed(fs *flag.FlagSet, args []string) (pos []string, ok bool, code int) {
	for {
		if err := fs.Parse(args); err != nil {
			return nil, false, parseExit(err)
		}
		if fs.NArg() == 0 {
			return pos, true, 0
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// isTerminal says whether w is a terminal, where a progress bar may draw.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
