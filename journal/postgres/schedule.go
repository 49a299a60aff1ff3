package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/internal/groupcommit"
)

// ClaimSlot implements journal.Journal: one op of the writer, so the slot
// and the execution it starts are one transaction.
func (j *Journal) ClaimSlot(ctx context.Context, s journal.ScheduleSlot, e *journal.Execution) (bool, error) {
	if err := s.Validate(e); err != nil {
		return false, err
	}
	var r *execRow
	if e != nil {
		row := newExecRow(e)
		r = &row
	}
	var claimed bool
	err := j.submit(ctx, &op{run: func(ctx context.Context, w *writer) (err error) {
		claimed, err = w.claimSlot(ctx, s, r)
		return err
	}})
	return claimed, err
}

func (w *writer) claimSlot(ctx context.Context, s journal.ScheduleSlot, e *execRow) (bool, error) {
	tag, err := w.tx.Exec(ctx, `INSERT INTO schedule_slots (workflow, at, execution_id, skipped, decided_at)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (workflow) DO UPDATE SET at = excluded.at, execution_id = excluded.execution_id,
			skipped = excluded.skipped, decided_at = excluded.decided_at
		WHERE schedule_slots.at < excluded.at`,
		s.Workflow, formatTime(s.At), s.ExecutionID, string(s.Skipped), formatTime(w.clock()))
	if err != nil {
		return false, fmt.Errorf("journal: claim slot %s of %s: %w", formatTime(s.At), s.Workflow, err)
	}
	if tag.RowsAffected() == 0 || e == nil {
		return tag.RowsAffected() > 0, nil
	}
	if err := w.create(ctx, e); err != nil {
		// Not a refusal: the writer rolls the transaction back, slot and
		// all, and commits the rest of the batch without this op.
		if r, ok := err.(groupcommit.Refusal); ok {
			err = r.Err
		}
		return false, err
	}
	return true, nil
}

// ScheduleSlots implements journal.Journal.
func (j *Journal) ScheduleSlots(ctx context.Context) ([]journal.ScheduleSlot, error) {
	if err := j.readable(ctx); err != nil {
		return nil, err
	}
	rows, err := j.pool.Query(ctx, `SELECT workflow, at, execution_id, skipped, decided_at FROM schedule_slots ORDER BY workflow`)
	if err != nil {
		return nil, fmt.Errorf("journal: schedule slots: %w", unavailable(err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (journal.ScheduleSlot, error) {
		var s journal.ScheduleSlot
		var at, decided, skipped string
		if err := row.Scan(&s.Workflow, &at, &s.ExecutionID, &skipped, &decided); err != nil {
			return s, err
		}
		s.Skipped = journal.SlotSkipped(skipped)
		if s.At, err = parseTime(at); err == nil {
			s.DecidedAt, err = parseTime(decided)
		}
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("journal: schedule slots: %w", unavailable(err))
	}
	return out, nil
}
