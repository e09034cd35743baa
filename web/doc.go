// Package web is Trove's HTTP edge: the fasthttp server, the route table,
// authentication (applied per route in the table, so no handler can forget
// it), CORS (on the ingest routes only, never with credentials), panic
// recovery, the draining of refused bodies after their answer (drain.go),
// the steps of a shutdown (shutdown.go), and the one place where errors
// become status codes and JSON error bodies. Handlers live in the domain
// packages as func(*fasthttp.RequestCtx) error.
package web
