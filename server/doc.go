// Package server runs `trove serve` and `trove check-config` (SPEC.md
// section 1): the serve flags, the configuration's precedence (flag >
// environment > file > default), the logger, the store's opening, the
// auth registry (apps and tokens of the config, the admin token, generated
// on first start, and what the admin API created), the wiring of every
// API's handler into web's route table, and the shutdown plan that ends a
// SIGTERM within 10 s.
//
// Serve takes its command line and an Options value: the build's version
// and the Hooks through which tests reach into one server (its clock, its
// store's file system, its listener, …). There are no package globals, so
// servers of several tests can run in one process at once. Production
// passes no hooks.
//
// Files: serve.go (flags, config, Serve, the serving sequence), apis.go
// (the handlers and their route table), registry.go (apps, tokens, the
// admin token), shutdown.go (the plan and the store's bounded close),
// limits.go (the apps' rate limits), hooks.go (Options and Hooks),
// logbuf.go (log lines to a file or a pipe, written in batches).
package server
