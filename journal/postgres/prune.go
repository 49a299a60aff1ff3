package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/loomwork/loom/journal"
)

// pruneQuery picks finished roots whose whole tree is finished; SKIP
// LOCKED leaves roots another transaction holds to a later batch.
const pruneQuery = `SELECT id FROM executions e
	WHERE root_id = id AND state = ANY($1) AND updated_at < $2
	AND NOT EXISTS (SELECT 1 FROM executions c WHERE c.root_id = e.id
		AND c.state NOT IN ('COMPLETED', 'FAILED', 'CANCELLED'))
	LIMIT $3
	FOR UPDATE OF e SKIP LOCKED`

// Prune implements journal.Journal: one op of the writer's batch, so it is
// one short transaction next to the appends of running executions.
func (j *Journal) Prune(ctx context.Context, r journal.PruneRequest) (journal.PruneResult, error) {
	var res journal.PruneResult
	err := j.submit(ctx, &op{run: func(ctx context.Context, w *writer) (err error) {
		res, err = w.prune(ctx, r)
		return err
	}})
	return res, err
}

func (w *writer) prune(ctx context.Context, r journal.PruneRequest) (journal.PruneResult, error) {
	var res journal.PruneResult // run may be called again: count from zero
	var states []string
	for _, st := range r.PruneStates() {
		states = append(states, string(st))
	}
	rows, err := w.tx.Query(ctx, pruneQuery, states, formatTime(r.FinishedBefore), r.PruneLimit())
	if err != nil {
		return res, fmt.Errorf("journal: prune: %w", err)
	}
	roots, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return res, fmt.Errorf("journal: prune: %w", err)
	}
	if len(roots) == 0 {
		return res, nil
	}
	for _, s := range []struct {
		sql string
		n   *int
	}{
		{`DELETE FROM events WHERE execution_id IN (SELECT id FROM executions WHERE root_id = ANY($1))`, &res.Events},
		{`DELETE FROM leases WHERE root_id = ANY($1)`, nil},
		{`DELETE FROM executions WHERE root_id = ANY($1)`, &res.Executions},
	} {
		tag, err := w.tx.Exec(ctx, s.sql, roots)
		if err != nil {
			return journal.PruneResult{}, fmt.Errorf("journal: prune: %w", err)
		}
		if s.n != nil {
			*s.n = int(tag.RowsAffected())
		}
	}
	res.Roots = len(roots)
	return res, nil
}
