package main

import (
	"trove/config"
	"trove/web"
)

// freeSpaceHook, when set (by tests), reports the free bytes of the data
// directory's file system in place of the file system itself.
var freeSpaceHook func(dir string) (uint64, error)

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
