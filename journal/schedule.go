package journal

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// SlotSkipped says why a schedule's slot started no execution.
type SlotSkipped string

// The reasons a slot starts nothing.
const (
	// SlotStarted: the slot started its execution (not skipped).
	SlotStarted SlotSkipped = ""
	// SlotOverlap: the execution the schedule started before was still
	// open (overlap: skip).
	SlotOverlap SlotSkipped = "overlap"
	// SlotMissed: no process fired it in time (catch_up: none or latest).
	SlotMissed SlotSkipped = "missed"
	// SlotIDTaken: its execution id was taken by an execution that did not
	// come from the schedule.
	SlotIDTaken SlotSkipped = "id_taken"
)

// ScheduleSlot is one fire time of a workflow's schedule, decided once
// for every process on the journal.
type ScheduleSlot struct {
	Workflow string
	At       time.Time // the slot's time by the schedule
	// ExecutionID is the execution the slot started or, for a skipped
	// slot, the last one the schedule started before it ("" if none), so
	// the latest slot always names the execution an overlap policy looks
	// at.
	ExecutionID string
	Skipped     SlotSkipped
	// DecidedAt is when the slot was journaled (the journal's clock);
	// backends set it.
	DecidedAt time.Time
}

// Schedules is the part of a journal that fires schedules: every backend
// implements it, as part of Journal.
type Schedules interface {
	// ClaimSlot journals s as the latest slot of s.Workflow's schedule if
	// no slot at or after s.At is journaled for it, and reports whether it
	// did: false means another process (or an earlier pass) decided that
	// slot or a later one, and nothing was written. When e is not nil the
	// same commit creates it (as Create): a slot is never journaled
	// without the execution it started, nor the execution without its
	// slot. If e's id is taken, nothing is written and the error wraps
	// ErrExists.
	ClaimSlot(ctx context.Context, s ScheduleSlot, e *Execution) (bool, error)
	// ScheduleSlots returns the latest journaled slot of every workflow
	// that has one, by workflow name.
	ScheduleSlots(ctx context.Context) ([]ScheduleSlot, error)
}

// Validate checks what every backend refuses before writing: a slot names
// its workflow and time, and a started slot its execution, which must be
// the root e.
func (s ScheduleSlot) Validate(e *Execution) error {
	switch {
	case s.Workflow == "":
		return errors.New("journal: a schedule slot needs a workflow")
	case s.At.IsZero():
		return errors.New("journal: a schedule slot needs its time")
	case e != nil && (s.Skipped != SlotStarted || s.ExecutionID != e.ID || (e.RootID != "" && e.RootID != e.ID)):
		return fmt.Errorf("journal: a started slot creates its own root execution %q, not %q", s.ExecutionID, e.ID)
	case e == nil && s.Skipped == SlotStarted:
		return errors.New("journal: a slot that starts nothing must say why (Skipped)")
	}
	if e != nil {
		return e.Validate()
	}
	return nil
}
