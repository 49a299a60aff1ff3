// Package journal defines the durable store of executions: an append-only
// list of events per execution with expected-sequence appends, leases with
// fencing tokens, and execution records. Backends live in sub-packages
// (sqlite, memory) and all pass journaltest's conformance suite.
package journal
