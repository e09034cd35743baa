// Package apierr is the error vocabulary of Trove's APIs. A domain package
// (ingest, profile, admin, export, segment, compat, …) refuses a request
// by returning an *Error whose Kind is one of the sentinels of this
// package; web maps the Kind to an HTTP status and writes the body of
// SPEC.md section 2 from the Error's Code, Message, Field and Details, in
// one place (web/errors.go), as Prometheus' API maps its apiError types.
//
// Domain packages test kinds with errors.Is(err, apierr.Invalid) and
// never choose a status; KindOf is how every message names the JSON type
// of a value it refuses. apierr imports no package of Trove, so that
// every package may import it.
package apierr
