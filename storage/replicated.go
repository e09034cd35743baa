package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// A replicated store (Options.Replicated, cluster mode of SPEC section 9)
// is written only by applying the entries of a replicated log, one at a
// time and in the log's order, so that every node that applies the same
// log holds the same events under the same sequences:
//
//   - the events and quarantine entries of log entry n have the sequences
//     n<<LogSeqShift + i (AllocLog), never a lease (seq.go), so a sequence
//     names the same event on every node and survives restarts unchanged;
//   - the commit of an entry records n and the entry's time in meta
//     "log_applied", atomically with what the entry wrote, and is not
//     synced: the log is what makes an entry durable, and a node that loses
//     its unsynced tail in a crash applies it again from the log;
//   - once entry n is applied, every sequence below (n+1)<<LogSeqShift is
//     final, so that is the watermark, whatever the entry's kind, on every
//     node and after a restart alike;
//   - the dedup window is measured on the clock of the entries applied
//     (the time of the last one), not the wall clock, so that a node
//     replaying an old part of the log expires ids when the others did;
//   - retention is an entry of its own (ExpireEntry), a pass as of the
//     time it carries, not a loop of each node's.

// LogSeqShift is where a log entry's number sits in the sequences of its
// events: an entry holds at most MaxEntryEvents events and rejections.
const LogSeqShift = 20

// MaxEntryEvents is how many sequences one log entry may allocate.
const MaxEntryEvents = 1<<LogSeqShift - 1

// metaApplied is the meta value of a replicated store: the number of the
// last log entry applied (8B) and its time in Unix ns (8B).
const metaApplied = "log_applied"

// ErrNotReplicated is returned when a data directory written by a single
// node is opened as a replicated one.
var ErrNotReplicated = errors.New("this data directory holds events written by a single node, " +
	"and cluster mode cannot renumber them: start the node on an empty data directory " +
	"(or on a `trove restore` of another cluster node's backup), and bring the history in with `trove import`")

// appliedState is what a replicated store has applied, read lock-free.
type appliedState struct {
	seq atomic.Uint64 // the last log entry applied; 0 for none
	at  atomic.Int64  // its time, Unix ns
}

// Applied returns the number of the last log entry applied to a replicated
// store and that entry's time (zero when none has been).
func (db *DB) Applied() (uint64, time.Time) {
	n, at := db.applied.seq.Load(), db.applied.at.Load()
	if n == 0 {
		return 0, time.Time{}
	}
	return n, time.Unix(0, at)
}

// loadApplied reads meta log_applied of a replicated store and hands out
// sequences after it. It refuses a store that single-node writes numbered.
func (db *DB) loadApplied() error {
	v, closer, err := db.pdb.Get(appendMetaKey(nil, metaApplied))
	switch {
	case err == nil:
		ok := len(v) == 17 && v[0] == valueV1
		if ok {
			db.applied.seq.Store(binary.BigEndian.Uint64(v[1:]))
			db.applied.at.Store(int64(binary.BigEndian.Uint64(v[9:])))
		}
		closer.Close()
		if !ok {
			return fmt.Errorf("cannot load the applied log position: %w: %x", errCorrupt, v)
		}
	case errors.Is(err, pebble.ErrNotFound):
		if db.seq.allocated() > 0 {
			return ErrNotReplicated
		}
	default:
		return err
	}
	next := (db.applied.seq.Load() + 1) << LogSeqShift
	db.seq.init(next, func(uint64) error {
		return errors.New("BUG: a replicated store allocates by log entry (Writer.AllocLog)")
	})
	return nil
}

// appliedClock is a replicated store's clock: the time of the last entry
// applied, or the wall clock before the first.
func (db *DB) appliedClock() time.Time {
	if at := db.applied.at.Load(); at != 0 {
		return time.Unix(0, at)
	}
	return time.Now()
}

// AllocLog reserves the n sequences of log entry logSeq, which must come
// after every entry applied so far, and makes the Writer's Commit record
// the entry as applied (see the top of this file). It is Alloc for a
// replicated store, which takes no other; the Writer's time must be the
// entry's.
func (w *Writer) AllocLog(logSeq uint64, n int) (uint64, error) {
	if !w.db.opts.Replicated {
		panic("BUG: Writer.AllocLog on a store that is not replicated")
	}
	if w.logSeq != 0 || w.n != 0 {
		panic("BUG: Writer.AllocLog called twice")
	}
	if err := w.db.checkEntry(logSeq); err != nil {
		return 0, err
	}
	first, err := w.db.allocEntry(logSeq, n)
	if err != nil {
		return 0, err
	}
	w.logSeq = logSeq
	w.first, w.n = first, n
	return first, nil
}

// allocEntry reserves the n sequences of log entry logSeq (Writer.AllocLog,
// ProfileTxn.InLog). The caller ends them with endEntry.
func (db *DB) allocEntry(logSeq uint64, n int) (uint64, error) {
	if n > MaxEntryEvents {
		return 0, fmt.Errorf("a log entry holds %d events, more than the %d it may", n, MaxEntryEvents)
	}
	first := logSeq << LogSeqShift
	return first, db.seq.allocAt(first, n)
}

// endEntry finishes the sequences allocEntry reserved when their entry
// committed, and gives them back when it did not: the entry is applied
// again under the same sequences, so the watermark must not pass them.
func (db *DB) endEntry(first uint64, n int, committed bool) {
	if committed {
		db.seq.finish(first, n)
	} else {
		db.seq.unalloc(first, n)
	}
}

// checkEntry refuses log entry logSeq unless it comes after every entry
// applied.
func (db *DB) checkEntry(logSeq uint64) error {
	if applied := db.applied.seq.Load(); logSeq <= applied {
		return fmt.Errorf("log entry %d is already applied (the store is at %d)", logSeq, applied)
	}
	return nil
}

// setApplied adds meta log_applied for entry logSeq, applied at now, to b
// and returns the time it records: the entry's, or the last one's when
// that is later (a quarantine replay writes at the events' arrival), so
// that the store's clock never goes back. Once b is committed,
// markApplied records it in memory.
func (db *DB) setApplied(b *pebble.Batch, logSeq uint64, now time.Time) int64 {
	at := max(db.applied.at.Load(), now.UnixNano())
	v := make([]byte, 17)
	v[0] = valueV1
	binary.BigEndian.PutUint64(v[1:], logSeq)
	binary.BigEndian.PutUint64(v[9:], uint64(at))
	b.Set(appendMetaKey(nil, metaApplied), v, nil)
	return at
}

// Every sequence of the entries up to logSeq is final then, so the
// watermark passes them all, whatever the entry's kind: it is (n+1)<<
// LogSeqShift - 1 once entry n is applied, on every node, as it is when a
// store opens (loadApplied), and a since= from one node is never ahead of
// another node that has applied as far.
func (db *DB) markApplied(logSeq uint64, at int64) {
	db.applied.at.Store(at)
	db.applied.seq.Store(logSeq)
	db.seq.passTo((logSeq+1)<<LogSeqShift - 1)
}

// commit commits b: when logSeq is 0 as a write of this node (synced when
// sync is set), else as what applies log entry logSeq at now, with meta
// log_applied in the same batch and unsynced (see the top of this file).
func (db *DB) commit(b *pebble.Batch, logSeq uint64, now time.Time, sync bool) error {
	if logSeq == 0 {
		if sync {
			return b.Commit(pebble.Sync)
		}
		return b.Commit(pebble.NoSync)
	}
	at := db.setApplied(b, logSeq, now)
	if err := b.Commit(pebble.NoSync); err != nil {
		return err
	}
	db.markApplied(logSeq, at)
	return nil
}

// InLog makes the transaction apply log entry logSeq of a replicated
// store: its profiles' change sequences are the entry's (as
// Writer.AllocLog's), and Commit records the entry as applied, unsynced.
func (t *ProfileTxn) InLog(logSeq uint64) error {
	if !t.db.opts.Replicated {
		panic("BUG: ProfileTxn.InLog on a store that is not replicated")
	}
	if err := t.db.checkEntry(logSeq); err != nil {
		return err
	}
	t.logSeq = logSeq
	return nil
}

// ExpireEntry applies log entry logSeq of a replicated store, a pass of
// retention as of at: every app that keep gives a retention loses its days
// wholly before at minus that retention (Expire), and the entry is recorded
// as applied. Every node applies it at the same place in the log, so every
// node cuts the same days after the same events; applied again after a
// crash it removes nothing more.
func (db *DB) ExpireEntry(logSeq uint64, at time.Time, keep func(appKey string) time.Duration) error {
	if !db.opts.Replicated {
		panic("BUG: DB.ExpireEntry on a store that is not replicated")
	}
	if err := db.checkEntry(logSeq); err != nil {
		return err
	}
	if err := db.expireApps(at, keep, "log_entry", logSeq); err != nil {
		return fmt.Errorf("cannot apply the retention of log entry %d: %w", logSeq, err)
	}
	b := db.pdb.NewBatch()
	defer b.Close()
	if err := db.commit(b, logSeq, at, false); err != nil {
		return fmt.Errorf("cannot record log entry %d as applied: %w", logSeq, err)
	}
	return nil
}

// Replicated reports whether the store is a replicated one.
func (db *DB) Replicated() bool { return db.opts.Replicated }

// WaitWatermark waits until the watermark reaches seq, for at most d, and
// reports whether it did. A replicated node behind another waits for the
// log to bring it where a client's watermark from the other node points.
func (db *DB) WaitWatermark(seq uint64, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		wm, moved := db.Watermark()
		if wm >= seq {
			return true
		}
		select {
		case <-moved:
		case <-timer.C:
			return false
		}
	}
}
