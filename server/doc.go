// Package server is Loom's long-running service (SPEC §6): an HTTP API
// over the engine and a dispatcher that claims executions from the journal
// and drives them, so timers fire and starts, resumes and cancels proceed
// with nobody at a terminal. `loom serve` runs it; a Go program embeds it
// with its own task registry through New, Handler and Run.
package server
