package journal

import (
	"context"
	"time"
)

// Gauges are the cluster-wide counts a service exports as metrics (SPEC
// §6: loom_backlog, loom_backlog_oldest_seconds, loom_pauses_open), read
// in one short query at the journal's clock.
type Gauges struct {
	// Backlog counts the root executions that wait for a worker: RUNNING
	// with no live lease (never claimed, made runnable by a resume, or
	// left by a holder whose lease expired).
	Backlog int
	// BacklogSince is when the one that has waited longest began to wait
	// (its record's last update); zero when none waits.
	BacklogSince time.Time
	// PausesOpen counts the open pauses of PAUSED root executions by the
	// root's workflow (a child's pause is listed on its root, and counted
	// there once).
	PausesOpen map[string]int
}

// Commit describes one commit of a journal's writer: how many writes it
// carried (the SQL backends group concurrent writes into one transaction)
// and how long it took, queueing excluded.
type Commit struct {
	Writes   int
	Duration time.Duration
}

// Telemetry is the part of a journal a service reads for its metrics:
// every backend implements it, as part of Journal.
type Telemetry interface {
	// Gauges reads the cluster-wide counts.
	Gauges(ctx context.Context) (Gauges, error)
	// WatchCommits makes the writer call fn after each commit it makes
	// (nil stops it). fn runs on the writer's goroutine: it must be quick.
	WatchCommits(fn func(Commit))
}
