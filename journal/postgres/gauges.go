package postgres

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
	if err := listsql.ScanBacklog(j.pool.QueryRow(ctx, listsql.BacklogQuery("$1"), formatTime(j.w.clock())), &g); err != nil {
		return g, fmt.Errorf("journal: gauges: %w", unavailable(err))
	}
	rows, err := j.pool.Query(ctx, listsql.PausesQuery("json_array_length(e.pauses::json)"))
	if err == nil {
		defer rows.Close()
		err = listsql.ScanPauses(rows, &g)
	}
	if err != nil {
		return g, fmt.Errorf("journal: gauges: %w", unavailable(err))
	}
	return g, nil
}

// WatchCommits implements journal.Journal.
func (j *Journal) WatchCommits(fn func(journal.Commit)) { j.queue.Watch(fn) }
