// Package web is Trove's HTTP edge: the fasthttp server, the route table,
// authentication (applied per route in the table, so no handler can forget
// it), CORS, panic recovery, and the one place where errors become status
// codes and JSON error bodies. Handlers live in the domain packages as
// func(*fasthttp.RequestCtx) error.
package web
