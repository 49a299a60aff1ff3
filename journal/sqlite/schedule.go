package sqlite

import (
	"context"
	"fmt"

	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/internal/groupcommit"
)

// ClaimSlot implements journal.Journal: one op of the writer, so the slot
// and the execution it starts are one commit.
func (j *Journal) ClaimSlot(ctx context.Context, s journal.ScheduleSlot, e *journal.Execution) (bool, error) {
	if err := s.Validate(e); err != nil {
		return false, err
	}
	var claimed bool
	err := j.submit(ctx, &op{run: func(w *writer) (err error) {
		claimed, err = w.claimSlot(s, e)
		return err
	}})
	return claimed, err
}

func (w *writer) claimSlot(s journal.ScheduleSlot, e *journal.Execution) (bool, error) {
	res, err := w.conn.ExecContext(context.Background(), `INSERT INTO schedule_slots (workflow, at, execution_id, skipped, decided_at)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (workflow) DO UPDATE SET at = excluded.at, execution_id = excluded.execution_id,
			skipped = excluded.skipped, decided_at = excluded.decided_at
		WHERE schedule_slots.at < excluded.at`,
		s.Workflow, formatTime(s.At), s.ExecutionID, string(s.Skipped), formatTime(w.clock()))
	var n int64
	if err == nil {
		n, err = res.RowsAffected()
	}
	if err != nil {
		return false, fmt.Errorf("journal: claim slot %s of %s: %w", formatTime(s.At), s.Workflow, err)
	}
	if n == 0 || e == nil {
		return n > 0, nil
	}
	if err := w.create(e); err != nil {
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
	rows, err := j.rdb.QueryContext(ctx, `SELECT workflow, at, execution_id, skipped, decided_at FROM schedule_slots ORDER BY workflow`)
	if err != nil {
		return nil, fmt.Errorf("journal: schedule slots: %w", classify("", err))
	}
	defer rows.Close()
	var out []journal.ScheduleSlot
	for rows.Next() {
		var s journal.ScheduleSlot
		var at, decided, skipped string
		if err := rows.Scan(&s.Workflow, &at, &s.ExecutionID, &skipped, &decided); err != nil {
			return nil, fmt.Errorf("journal: schedule slots: %w", classify("", err))
		}
		s.Skipped = journal.SlotSkipped(skipped)
		if s.At, err = parseTime(at); err == nil {
			s.DecidedAt, err = parseTime(decided)
		}
		if err != nil {
			return nil, fmt.Errorf("journal: schedule slot of %s: %w", s.Workflow, err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("journal: schedule slots: %w", classify("", err))
	}
	return out, nil
}
