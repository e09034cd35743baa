package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// checkS1Flags returns what is wrong with -data-dir and -settle; set holds
// the names of the flags given.
func checkS1Flags(o options, set map[string]bool) []string {
	var problems []string
	if set["settle"] && o.dataDir == "" {
		problems = append(problems, "-settle needs -data-dir")
	}
	if o.settle < 0 {
		problems = append(problems, "-settle must be >= 0")
	}
	if o.dataDir != "" {
		// Found now, not after a load of a million events.
		if fi, err := os.Stat(o.dataDir); err != nil {
			problems = append(problems, fmt.Sprintf("-data-dir: %v", err))
		} else if !fi.IsDir() {
			problems = append(problems, fmt.Sprintf("-data-dir: %s is not a directory", o.dataDir))
		}
	}
	return problems
}

// measureS1 waits o.settle after the load, printing progress on stderr,
// then prints S1 of PERF.md on stdout: the bytes of o.dataDir per event
// the server accepted in res. before is the directory's size before the
// load. It returns the exit code.
func measureS1(ctx context.Context, o options, res *result, before int64, stdout, stderr io.Writer) int {
	events := res.accepted
	if !res.counted {
		events = res.events
	}
	switch {
	case res.failed():
		fmt.Fprintln(stderr, "trove bench: S1 not measured: requests of the load failed")
		return 1
	case events <= 0:
		fmt.Fprintln(stderr, "trove bench: S1 not measured: the server accepted no events")
		return 1
	}
	if err := settle(ctx, o, events, stderr); err != nil {
		fmt.Fprintf(stderr, "trove bench: S1 not measured: %v\n", err)
		return 1
	}
	size, err := dirBytes(o.dataDir)
	if err != nil {
		fmt.Fprintf(stderr, "trove bench: S1 not measured: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "S1: %.1f bytes/event (du of %s: %d bytes, %d events)\n", float64(size)/float64(events), o.dataDir, size, events)
	fmt.Fprintf(stdout, "S1 baseline: du of %s before the load: %d bytes; measured %v after the load (PERF.md: 3m0s)\n", o.dataDir, before, o.settle)
	return 0
}

// settle waits o.settle while the server merges and compacts, printing
// the directory's size every o.settleEvery so that a person can see the
// run is alive. It fails only when ctx ends first.
func settle(ctx context.Context, o options, events int64, stderr io.Writer) error {
	if o.settle <= 0 {
		return nil
	}
	start := time.Now()
	deadline := time.NewTimer(o.settle)
	defer deadline.Stop()
	tick := time.NewTicker(max(o.settleEvery, time.Millisecond))
	defer tick.Stop()
	fmt.Fprintf(stderr, "trove bench: waiting %v before measuring S1 of %s\n", o.settle, o.dataDir)
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("interrupted after %v of %v settling: %w", time.Since(start).Round(time.Second), o.settle, ctx.Err())
		case <-deadline.C:
			return nil
		case <-tick.C:
			line := fmt.Sprintf("trove bench: settling, %v of %v", time.Since(start).Round(time.Second), o.settle)
			if size, err := dirBytes(o.dataDir); err == nil {
				line += fmt.Sprintf(": du %d bytes, %.1f bytes/event", size, float64(size)/float64(events))
			}
			fmt.Fprintln(stderr, line)
		}
	}
}

// dirBytes returns what `du -sb dir` prints: the apparent sizes of dir and
// of everything under it, directories and symbolic links included, each
// file counted once however many hard links it has. Files that vanish
// during the walk, as a server deletes obsolete sstables and WAL files,
// are skipped.
func dirBytes(dir string) (int64, error) {
	var total int64
	seen := map[[2]uint64]bool{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && path != dir {
				return nil
			}
			return err
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if key, linked := fileKey(fi); linked {
			if seen[key] {
				return nil
			}
			seen[key] = true
		}
		total += fi.Size()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("cannot measure %s: %w", dir, err)
	}
	return total, nil
}
