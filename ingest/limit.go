package ingest

// Limiter charges events to their apps' rate limits (web.RateLimiter).
type Limiter interface {
	// Take charges counts[i] events to app appKeys[i], for every i, or,
	// returning an error, to none of them. It does not retain the slices.
	Take(appKeys []string, counts []int) error
}

// SetLimiter makes h charge every request's events, per app, to l before
// storing them; a refused request stores nothing. Call it before serving.
func (h *Handler) SetLimiter(l Limiter) { h.limiter = l }

// takeTokens charges b's events to their apps: each event that would be
// stored, valid or quarantined, counts once.
func (h *Handler) takeTokens(b *Batch) error {
	if h.limiter == nil {
		return nil
	}
	var (
		keysBuf   [4]string
		countsBuf [4]int
	)
	keys, counts := keysBuf[:0], countsBuf[:0]
	add := func(key string) {
		for i := range keys {
			if keys[i] == key {
				counts[i]++
				return
			}
		}
		keys = append(keys, key)
		counts = append(counts, 1)
	}
	for i := range b.Events {
		add(b.Events[i].AppKey)
	}
	for i := range b.Rejected {
		if k := b.Rejected[i].AppKey; k != "" {
			add(k)
		}
	}
	return h.limiter.Take(keys, counts)
}
