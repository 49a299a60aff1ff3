package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/loomwork/loom/journal"
)

// Heartbeat implements journal.Journal: one op of the writer, stamped by
// the server's clock, which every process shares.
func (j *Journal) Heartbeat(ctx context.Context, wk journal.Worker) error {
	tasks, err := json.Marshal(journal.WorkerTasks(wk.Tasks))
	if err != nil {
		return err
	}
	return j.submit(ctx, &op{run: func(ctx context.Context, w *writer) error {
		now, err := w.leaseClock(ctx)
		if err != nil {
			return fmt.Errorf("journal: heartbeat of %s: %w", wk.ID, err)
		}
		if _, err := w.tx.Exec(ctx, `DELETE FROM workers WHERE seen_at < $1`, formatTime(now.Add(-journal.WorkerForget))); err != nil {
			return fmt.Errorf("journal: heartbeat of %s: %w", wk.ID, err)
		}
		_, err = w.tx.Exec(ctx, `INSERT INTO workers (id, host, pid, node, version, started_at, seen_at, draining, concurrency, in_use, tasks)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
			ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid, node = excluded.node, version = excluded.version,
				started_at = excluded.started_at, seen_at = excluded.seen_at, draining = excluded.draining,
				concurrency = excluded.concurrency, in_use = excluded.in_use, tasks = excluded.tasks`,
			wk.ID, wk.Host, wk.PID, wk.Node, wk.Version, formatTime(wk.StartedAt), formatTime(now), wk.Draining, wk.Concurrency, wk.InUse, string(tasks))
		if err != nil {
			return fmt.Errorf("journal: heartbeat of %s: %w", wk.ID, err)
		}
		return nil
	}})
}

// ForgetWorker implements journal.Journal.
func (j *Journal) ForgetWorker(ctx context.Context, id string) error {
	return j.submit(ctx, &op{run: func(ctx context.Context, w *writer) error {
		if _, err := w.tx.Exec(ctx, `DELETE FROM workers WHERE id = $1`, id); err != nil {
			return fmt.Errorf("journal: forget worker %s: %w", id, err)
		}
		return nil
	}})
}

// Workers implements journal.Journal, by the server's clock.
func (j *Journal) Workers(ctx context.Context, within time.Duration) ([]journal.Worker, error) {
	if err := j.readable(ctx); err != nil {
		return nil, err
	}
	var now time.Time
	if err := j.pool.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&now); err != nil {
		return nil, fmt.Errorf("journal: workers: %w", unavailable(err))
	}
	rows, err := j.pool.Query(ctx, `SELECT id, host, pid, node, version, started_at, seen_at, draining, concurrency, in_use, tasks
		FROM workers WHERE seen_at >= $1 ORDER BY id`, formatTime(now.UTC().Add(-within)))
	if err != nil {
		return nil, fmt.Errorf("journal: workers: %w", unavailable(err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (journal.Worker, error) {
		var wk journal.Worker
		var started, seen, tasks string
		if err := row.Scan(&wk.ID, &wk.Host, &wk.PID, &wk.Node, &wk.Version, &started, &seen, &wk.Draining, &wk.Concurrency, &wk.InUse, &tasks); err != nil {
			return wk, err
		}
		var err error
		if wk.StartedAt, err = parseTime(started); err == nil {
			wk.SeenAt, err = parseTime(seen)
		}
		if err == nil {
			err = json.Unmarshal([]byte(tasks), &wk.Tasks)
		}
		return wk, err
	})
	if err != nil {
		return nil, fmt.Errorf("journal: workers: %w", unavailable(err))
	}
	return out, nil
}
