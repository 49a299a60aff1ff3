package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/loomwork/loom/journal"
)

// Heartbeat implements journal.Journal: one op of the writer.
func (j *Journal) Heartbeat(ctx context.Context, wk journal.Worker) error {
	tasks, err := json.Marshal(journal.WorkerTasks(wk.Tasks))
	if err != nil {
		return err
	}
	return j.submit(ctx, &op{run: func(w *writer) error {
		now := w.clock()
		c := context.Background()
		if _, err := w.conn.ExecContext(c, `DELETE FROM workers WHERE seen_at < ?`, formatTime(now.Add(-journal.WorkerForget))); err != nil {
			return fmt.Errorf("journal: heartbeat of %s: %w", wk.ID, err)
		}
		_, err := w.conn.ExecContext(c, `INSERT INTO workers (id, host, pid, node, version, started_at, seen_at, draining, concurrency, in_use, tasks)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
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
	return j.submit(ctx, &op{run: func(w *writer) error {
		if _, err := w.conn.ExecContext(context.Background(), `DELETE FROM workers WHERE id = ?`, id); err != nil {
			return fmt.Errorf("journal: forget worker %s: %w", id, err)
		}
		return nil
	}})
}

// Workers implements journal.Journal: the journal's clock is this
// process's (SQLite has no server).
func (j *Journal) Workers(ctx context.Context, within time.Duration) ([]journal.Worker, error) {
	if err := j.readable(ctx); err != nil {
		return nil, err
	}
	since := formatTime(j.opts.now().UTC().Add(-within))
	rows, err := j.rdb.QueryContext(ctx, `SELECT id, host, pid, node, version, started_at, seen_at, draining, concurrency, in_use, tasks
		FROM workers WHERE seen_at >= ? ORDER BY id`, since)
	if err != nil {
		return nil, fmt.Errorf("journal: workers: %w", classify("", err))
	}
	defer rows.Close()
	var out []journal.Worker
	for rows.Next() {
		var wk journal.Worker
		var started, seen, tasks string
		if err := rows.Scan(&wk.ID, &wk.Host, &wk.PID, &wk.Node, &wk.Version, &started, &seen, &wk.Draining, &wk.Concurrency, &wk.InUse, &tasks); err != nil {
			return nil, fmt.Errorf("journal: workers: %w", classify("", err))
		}
		if wk.StartedAt, err = parseTime(started); err == nil {
			wk.SeenAt, err = parseTime(seen)
		}
		if err == nil {
			err = json.Unmarshal([]byte(tasks), &wk.Tasks)
		}
		if err != nil {
			return nil, fmt.Errorf("journal: worker %s: %w", wk.ID, err)
		}
		out = append(out, wk)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("journal: workers: %w", classify("", err))
	}
	return out, nil
}
