package ingest

import "trove/obs"

// countStored adds a stored batch to the per-app event counters: accepted,
// duplicate and rejected, as the answer reports them. Rejections under no
// known app count under app="". It returns how many of b's events were
// duplicates (not stored again).
func countStored(b *Batch) (duplicates int) {
	// Requests mostly carry one app: sum each run of one app's events and
	// add once, rather than one shared atomic add per event.
	var run struct {
		app                                       string
		accepted, duplicate, rejected, suppressed int
	}
	flush := func() {
		if run.accepted+run.duplicate+run.rejected+run.suppressed == 0 {
			return
		}
		c := obs.App(run.app)
		c.EventsAccepted.Add(run.accepted)
		c.EventsDuplicate.Add(run.duplicate)
		c.EventsRejected.Add(run.rejected)
		c.EventsSuppressed.Add(run.suppressed)
		run.accepted, run.duplicate, run.rejected, run.suppressed = 0, 0, 0, 0
	}
	for i := range b.Events {
		e := &b.Events[i]
		if e.AppKey != run.app {
			flush()
			run.app = e.AppKey
		}
		if e.Duplicate {
			run.duplicate++
			duplicates++
		} else {
			run.accepted++
		}
	}
	for i := range b.Rejected {
		if k := b.Rejected[i].AppKey; k != run.app {
			flush()
			run.app = k
		}
		if b.Rejected[i].Code == codeSuppressed {
			run.suppressed++
		} else {
			run.rejected++
		}
	}
	flush()
	return duplicates
}
