package bench

import "testing"

func TestParseProcStat(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want machineCPU
		ok   bool
	}{
		{"linux 6", "cpu  999305 1552 207817 1616112 15141 0 11489 778 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n",
			machineCPU{busy: 999305 + 1552 + 207817 + 11489 + 778, iowait: 15141, idle: 1616112}, true},
		{"no guest fields", "cpu 10 0 5 80 5 0 0 0\n", machineCPU{busy: 15, iowait: 5, idle: 80}, true},
		{"too few fields", "cpu 10 0 5 80\n", machineCPU{}, false},
		{"not the cpu line", "intr 1 2 3 4 5 6 7 8 9\n", machineCPU{}, false},
		{"not a number", "cpu 10 0 x 80 5 0 0 0\n", machineCPU{}, false},
		{"empty", "", machineCPU{}, false},
	}
	for _, tt := range tests {
		got, ok := parseProcStat([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("%s: got %+v, %v; want %+v, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

func TestMachineCPUString(t *testing.T) {
	m := machineCPU{busy: 170, iowait: 18, idle: 12}.since(machineCPU{busy: 0, iowait: 0, idle: 0})
	if got, want := m.String(), "this machine's CPUs 85% busy, 9% waiting on I/O, 6% idle"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
	if got := (machineCPU{}).String(); got != "" {
		t.Errorf("no ticks: got %q; want nothing", got)
	}
}
