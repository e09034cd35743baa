package bench

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// machineCPU is what the machine's CPUs did, from the first line of Linux's
// /proc/stat, in clock ticks summed over the CPUs. A run that leaves them
// idle or waiting on I/O is bound by something else than the CPU (on a
// loopback run, most often the disk's fsyncs), which no profile of the
// server shows; the client line says so.
type machineCPU struct {
	busy, iowait, idle uint64
}

// readMachineCPU reads /proc/stat; false where there is none.
func readMachineCPU() (machineCPU, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineCPU{}, false
	}
	return parseProcStat(b)
}

// parseProcStat parses the aggregate "cpu" line: user nice system idle
// iowait irq softirq steal, then guest times, which user already counts.
func parseProcStat(b []byte) (machineCPU, bool) {
	line, _, _ := bytes.Cut(b, []byte{'\n'})
	f := bytes.Fields(line)
	if len(f) < 9 || string(f[0]) != "cpu" {
		return machineCPU{}, false
	}
	var v [8]uint64
	for i := range v {
		n, err := strconv.ParseUint(string(f[1+i]), 10, 64)
		if err != nil {
			return machineCPU{}, false
		}
		v[i] = n
	}
	user, nice, system, idle, iowait, irq, softirq, steal := v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]
	return machineCPU{busy: user + nice + system + irq + softirq + steal, iowait: iowait, idle: idle}, true
}

// since is what the CPUs did from m0 to m.
func (m machineCPU) since(m0 machineCPU) machineCPU {
	return machineCPU{busy: m.busy - m0.busy, iowait: m.iowait - m0.iowait, idle: m.idle - m0.idle}
}

// String says it in shares of the machine's CPU time.
func (m machineCPU) String() string {
	total := m.busy + m.iowait + m.idle
	if total == 0 {
		return ""
	}
	pct := func(x uint64) float64 { return 100 * float64(x) / float64(total) }
	return fmt.Sprintf("this machine's CPUs %.0f%% busy, %.0f%% waiting on I/O, %.0f%% idle", pct(m.busy), pct(m.iowait), pct(m.idle))
}
