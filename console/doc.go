// Package console is the web console `loom serve` serves at /: pages to see
// executions, answer pauses and find why something failed (SPEC §7). Its
// pages are embedded static HTML, CSS and JavaScript modules that read and
// act only through the public /v1 API; the Go side serves them with a strict
// Content-Security-Policy and keeps the sign-in sessions (/console/session)
// that let a browser use /v1 with a cookie instead of a bearer token.
package console
