package sqlite

import (
	"context"
	"fmt"

	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/internal/listsql"
)

// Gauges implements journal.Journal.
func (j *Journal) Gauges(ctx context.Context) (journal.Gauges, error) {
	var g journal.Gauges
	if err := j.readable(ctx); err != nil {
		return g, err
	}
	// One query at a time: the read pool may hold one connection.
	var since storedTime // min(updated_at): Unix nanoseconds, not listsql.ScanBacklog's text
	err := j.rdb.QueryRowContext(ctx, listsql.BacklogQuery("?"), timeValue(j.opts.now())).Scan(&g.Backlog, &since)
	if err == nil {
		g.BacklogSince, err = since.time()
	}
	if err != nil {
		return g, fmt.Errorf("journal: gauges: %w", err)
	}
	rows, err := j.rdb.QueryContext(ctx, listsql.PausesQuery("json_array_length(e.pauses)"))
	if err == nil {
		defer rows.Close()
		err = listsql.ScanPauses(rows, &g)
	}
	if err != nil {
		return g, fmt.Errorf("journal: gauges: %w", err)
	}
	return g, nil
}

// WatchCommits implements journal.Journal.
func (j *Journal) WatchCommits(fn func(journal.Commit)) { j.queue.Watch(fn) }
