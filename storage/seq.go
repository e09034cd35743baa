package storage

import (
	"fmt"
	"sync"
)

// seqTracker hands out ingest sequence numbers and computes the watermark:
// the highest sequence at or below which every allocated range has finished
// (committed, or failed and so empty). Commits finish out of order because
// they share Pebble's group commit; the watermark only moves over a
// contiguous prefix, which is what makes `since=<watermark>` exact.
type seqTracker struct {
	mu struct {
		sync.Mutex
		next      uint64            // next sequence to hand out
		lease     uint64            // sequences below this are covered by the persisted lease
		watermark uint64            // every sequence <= watermark has finished
		finished  map[uint64]uint64 // first -> last of finished ranges above the watermark
		changed   chan struct{}     // closed and replaced when the watermark moves
	}
	// persistLease durably records that sequences below lease may be in use,
	// so that a restart never hands out a sequence twice.
	persistLease func(lease uint64) error
}

// leaseStep is how many sequences one persisted lease covers. Restarts skip
// the unused rest of a lease, which leaves a harmless gap.
const leaseStep = 1 << 20

func (t *seqTracker) init(next uint64, persist func(uint64) error) {
	t.mu.next = next
	t.mu.lease = next
	t.mu.watermark = next - 1
	t.mu.finished = map[uint64]uint64{}
	t.mu.changed = make(chan struct{})
	t.persistLease = persist
}

// alloc reserves n consecutive sequences and returns the first. The caller
// must call finish(first, n) whether or not its write succeeds.
func (t *seqTracker) alloc(n int) (uint64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	first := t.mu.next
	end := first + uint64(n)
	if end > t.mu.lease {
		lease := end + leaseStep
		if err := t.persistLease(lease); err != nil {
			return 0, err
		}
		t.mu.lease = lease
	}
	t.mu.next = end
	return first, nil
}

// allocAt reserves the n sequences from first, which may not lie below
// any handed out so far, for a replicated store's log entry (replicated.go):
// the sequences skipped to reach first finish at once, as empty. Entries
// are applied one at a time, so nothing else allocates meanwhile.
func (t *seqTracker) allocAt(first uint64, n int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if first < t.mu.next {
		return fmt.Errorf("BUG: sequence %d allocated after %d", first, t.mu.next-1)
	}
	if first > t.mu.next {
		t.finishLocked(t.mu.next, first-1)
	}
	t.mu.next = first + uint64(n)
	t.mu.lease = max(t.mu.lease, t.mu.next)
	return nil
}

// passTo finishes, as empty, every sequence up to last not yet handed out:
// a replicated store has applied the entry whose sequences end at last, so
// no event can take one of them any more (replicated.go).
func (t *seqTracker) passTo(last uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if last < t.mu.next {
		return
	}
	t.finishLocked(t.mu.next, last)
	t.mu.next = last + 1
	t.mu.lease = max(t.mu.lease, t.mu.next)
}

// unalloc gives back the n sequences from first, the last handed out,
// unfinished: a replicated store's entry that failed to commit is applied
// again under the same sequences, so the watermark must not pass them.
func (t *seqTracker) unalloc(first uint64, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.next == first+uint64(n) {
		t.mu.next = first
	}
}

// allocated returns the last sequence handed out so far (0 when none).
func (t *seqTracker) allocated() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mu.next - 1
}

// finish marks [first, first+n) as done.
func (t *seqTracker) finish(first uint64, n int) {
	if n == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.finishLocked(first, first+uint64(n)-1)
}

// finishLocked marks [first, last] as done.
func (t *seqTracker) finishLocked(first, last uint64) {
	if first != t.mu.watermark+1 {
		t.mu.finished[first] = last
		return
	}
	t.mu.watermark = last
	for {
		l, ok := t.mu.finished[t.mu.watermark+1]
		if !ok {
			break
		}
		delete(t.mu.finished, t.mu.watermark+1)
		t.mu.watermark = l
	}
	close(t.mu.changed)
	t.mu.changed = make(chan struct{})
}

// watermark returns the current watermark and a channel that is closed when
// it next moves.
func (t *seqTracker) watermark() (uint64, <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mu.watermark, t.mu.changed
}
