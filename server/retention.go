package server

import (
	"context"
	"time"

	"github.com/loomwork/loom/clock"
	"github.com/loomwork/loom/journal"
)

// retentionEvery is how often a process looks for executions past the
// retention: the retention is a matter of days, a minute late is nothing.
const retentionEvery = time.Minute

// retentionBatch is how many roots one Prune call of the service deletes:
// smaller than the CLI's default, because executions are running beside
// it and each batch is one transaction their appends queue behind.
const retentionBatch = 20

// runRetention deletes finished executions Retention after they finished
// (SPEC §6 --retention), until ctx is done; it returns at once when
// Retention is 0 (keep forever).
func (s *Server) runRetention(ctx context.Context) {
	if s.cfg.Retention <= 0 {
		return
	}
	for {
		at := s.clock.Now()
		res := s.retain(ctx)
		tc, stop := s.timer(retentionEvery)
		if s.testRetained != nil {
			s.testRetained(at, res) // after the timer is set: a test may move the clock now
		}
		select {
		case <-ctx.Done():
			stop()
			return
		case <-tc:
		}
	}
}

// retain prunes, batch after batch, the roots that finished before now
// less the retention. After each batch it waits as long as the batch took,
// so the writer spends at most half its time on the prune however large
// the backlog is (a first start on a journal that kept everything).
func (s *Server) retain(ctx context.Context) journal.PruneResult {
	var total journal.PruneResult
	cutoff := s.clock.Now().Add(-s.cfg.Retention)
	for ctx.Err() == nil && !s.draining.Load() {
		start := s.clock.Now()
		res, err := s.j.Prune(ctx, journal.PruneRequest{FinishedBefore: cutoff, Limit: retentionBatch})
		if err != nil {
			if ctx.Err() == nil {
				s.metrics.journalErrs.Inc()
				s.log.Error("retention: the prune failed", "error", err, "pruned_so_far", total.Executions)
			}
			break
		}
		total.Add(res)
		if res.Roots == 0 {
			break
		}
		if clock.Sleep(ctx, s.clock, s.clock.Now().Sub(start)) != nil {
			break
		}
	}
	if total.Roots > 0 {
		s.log.Info("retention: deleted finished executions", "executions", total.Executions, "roots", total.Roots,
			"events", total.Events, "definitions", total.Definitions, "finished_before", cutoff.UTC().Format(time.RFC3339))
	}
	return total
}
