//go:build unix

package export_test

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time, user and system, this process has used,
// and whether it could be read: a measure of work that, unlike elapsed
// time, other processes on the machine do not inflate.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
