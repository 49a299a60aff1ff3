package sqlite

import (
	"context"
	"fmt"
)

// classify sorts a read's error: SQLite's corruption codes are damage, its
// full, I/O and lock codes unavailability, anything else as it is.
func classify(id string, err error) error { return unavailable(corrupt(id, err)) }

// CheckIntegrity implements journal.IntegrityChecker with SQLite's
// integrity check (every page, index and constraint) and a check that
// every event belongs to an execution.
func (j *Journal) CheckIntegrity(ctx context.Context) ([]string, error) {
	if err := j.readable(ctx); err != nil {
		return nil, err
	}
	var probs []string
	rows, err := j.rdb.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return nil, classify("", err)
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return probs, classify("", err)
		}
		if s != "ok" {
			probs = append(probs, s)
		}
	}
	if err := rows.Err(); err != nil {
		return probs, classify("", err)
	}
	var orphans int
	if err := j.rdb.QueryRowContext(ctx, `SELECT count(*) FROM events v WHERE NOT EXISTS (SELECT 1 FROM executions e WHERE e.ek = v.ek)`).Scan(&orphans); err != nil {
		return probs, classify("", err)
	}
	if orphans > 0 {
		probs = append(probs, fmt.Sprintf("%d events belong to no execution", orphans))
	}
	return probs, nil
}
