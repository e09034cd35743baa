package server

import (
	"trove/config"
	"trove/web"
)

// newRateLimiter returns the limiter of the apps' rate_limit and rate_burst.
func newRateLimiter(cfg config.Config) *web.RateLimiter {
	rates := map[string]web.Rate{}
	for _, a := range cfg.Apps {
		if a.RateLimit > 0 {
			rates[a.AppKey] = web.Rate{Limit: a.RateLimit, Burst: a.RateBurst}
		}
	}
	return web.NewRateLimiter(rates)
}
