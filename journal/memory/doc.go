// Package memory is an in-memory journal.Journal with the full semantics of
// the durable backends (expected-sequence conflicts, leases with fencing
// tokens and expiry, List filters) and none of their durability. It serves
// interpreter tests and benchmarks that measure the engine, not the disk.
package memory
