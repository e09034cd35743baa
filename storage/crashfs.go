package storage

import (
	"math/rand/v2"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// MemFS is a file system in memory that can lose power: CrashClone returns
// what a machine would find after a power cut, everything synced and, at
// random, some of what was not. It is for crash tests (Options.MemFS), so
// that they need not import Pebble.
type MemFS struct{ fs *vfs.MemFS }

// NewCrashableMemFS returns an empty crashable MemFS.
func NewCrashableMemFS() *MemFS { return &MemFS{fs: vfs.NewCrashableMem()} }

// CrashClone returns the state after a power cut now: what was synced, and
// each unsynced block or directory entry with probability
// unsyncedPercent/100, drawn from seed. Writes are held off while it copies.
func (m *MemFS) CrashClone(seed int64, unsyncedPercent int) *MemFS {
	cfg := vfs.CrashCloneCfg{UnsyncedDataPercent: unsyncedPercent}
	if unsyncedPercent > 0 {
		cfg.RNG = rand.New(rand.NewPCG(uint64(seed), 0))
	}
	return &MemFS{fs: m.fs.CrashClone(cfg)}
}
