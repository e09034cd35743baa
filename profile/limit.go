package profile

// Limiter charges profile updates to their app's rate limit
// (web.RateLimiter), the same limit as the app's events.
type Limiter interface {
	// Take charges counts[i] to app appKeys[i], for every i, or, returning
	// an error, to none of them. It does not retain the slices.
	Take(appKeys []string, counts []int) error
}

// SetLimiter makes h charge each profile of a request as one event of its
// app before applying any; a refused request changes nothing. Call it
// before serving.
func (h *Handler) SetLimiter(l Limiter) { h.limiter = l }

// takeTokens charges n profile updates to appKey.
func (h *Handler) takeTokens(appKey string, n int) error {
	if h.limiter == nil {
		return nil
	}
	return h.limiter.Take([]string{appKey}, []int{n})
}
