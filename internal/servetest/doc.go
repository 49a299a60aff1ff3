// Package servetest runs real `loom serve` processes for the tests and
// benchmarks that need them (the scale-out trial, the service benchmarks):
// it builds cmd/loom once per test binary, starts a serve on a loopback
// port and waits until it answers /readyz, and reads a process's RSS.
package servetest
