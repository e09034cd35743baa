package ingest

import "time"

// Config holds the Events API's limits and rules.
type Config struct {
	Sync            bool
	DedupWindow     time.Duration
	SkewThreshold   time.Duration
	MaxFuture       time.Duration
	MaxEventBytes   int
	MaxRequestBytes int
	MaxAttributes   int
	// Retention gives how long an app's events are kept (zero: forever);
	// an event older than that is refused, since it would be removed at
	// once. Nil keeps every event.
	Retention func(appKey string) time.Duration
}

// DefaultConfig returns the defaults of SPEC section 3.
func DefaultConfig() Config {
	return Config{
		Sync:            true,
		DedupWindow:     720 * time.Hour,
		SkewThreshold:   60 * time.Second,
		MaxFuture:       24 * time.Hour,
		MaxEventBytes:   32 << 10,
		MaxRequestBytes: 5 << 20,
		MaxAttributes:   255,
	}
}

// maxDepth is the deepest nesting an event may have: the event object,
// attributes, and 32 levels inside them.
const maxDepth = 34
