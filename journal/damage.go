package journal

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// ErrDamaged is matched (errors.Is) by every error that says the journal
// holds something it cannot have written: a missing event, a row that does
// not parse, a database page that is corrupt. Such a journal is never
// served silently: `loom doctor` checks it and says what can be recovered.
var ErrDamaged = errors.New("the journal is damaged")

// DamagedError is damage found in the journal of one execution (ID), or in
// the database itself (ID "").
type DamagedError struct {
	ID      string
	Problem string
	Err     error // the backend's error, if any
}

func (e *DamagedError) Error() string {
	if e.ID == "" {
		return "the journal is damaged: " + e.Problem
	}
	return fmt.Sprintf("the journal of %s is damaged: %s", e.ID, e.Problem)
}

// Is makes a DamagedError match ErrDamaged.
func (e *DamagedError) Is(target error) bool { return target == ErrDamaged }

func (e *DamagedError) Unwrap() error { return e.Err }

// Damaged returns the DamagedError of execution id ("" for the database)
// caused by err.
func Damaged(id string, err error) *DamagedError {
	return &DamagedError{ID: id, Problem: err.Error(), Err: err}
}

// CheckEvents checks the events of execution id read after sequence after
// against the record's last sequence: they must be after+1, after+2, … up
// to at least lastSeq, none missing. Backends call it in Events, so a
// damaged file can never make a replay "match" on part of a journal.
func CheckEvents(id string, lastSeq, after int64, evs []Event) error {
	want := after + 1
	for _, ev := range evs {
		if ev.Seq != want {
			if ev.Seq < want {
				return &DamagedError{ID: id, Problem: fmt.Sprintf("event %d appears twice or out of order", ev.Seq)}
			}
			return &DamagedError{ID: id, Problem: missing(want, ev.Seq-1, lastSeq)}
		}
		want++
	}
	if want <= lastSeq {
		return &DamagedError{ID: id, Problem: missing(want, lastSeq, lastSeq)}
	}
	return nil
}

func missing(from, to, last int64) string {
	if from == to {
		return fmt.Sprintf("event %d of %d is missing", from, last)
	}
	return fmt.Sprintf("events %d to %d of %d are missing", from, to, last)
}

// DamagedRowsError is a List that read every execution it could and skipped
// the rows it could not: List returns the readable ones together with it.
type DamagedRowsError struct {
	Rows []*DamagedError // one per damaged row; ID is "" when not even the id could be read
}

func (e *DamagedRowsError) Error() string {
	parts := make([]string, len(e.Rows))
	for i, r := range e.Rows {
		id := r.ID
		if id == "" {
			id = "(unreadable id)"
		}
		parts[i] = id + " (" + r.Problem + ")"
	}
	n := "1 execution"
	if len(e.Rows) != 1 {
		n = fmt.Sprintf("%d executions", len(e.Rows))
	}
	return fmt.Sprintf("the journal is damaged: %s could not be read: %s", n, strings.Join(parts, "; "))
}

// Is makes a DamagedRowsError match ErrDamaged.
func (e *DamagedRowsError) Is(target error) bool { return target == ErrDamaged }

// ErrUnavailable is matched (errors.Is) by every error that says the
// journal cannot be read or written now — the disk is full, the file went
// read-only, the database server is down or unreachable — as opposed to a
// refusal or damage. Nothing half-written stays behind (a failed commit
// writes nothing), so the execution is intact and a resume continues it once
// the journal is back.
var ErrUnavailable = errors.New("the journal is unavailable")

// UnavailableError wraps a backend's error as ErrUnavailable.
type UnavailableError struct{ Err error }

func (e *UnavailableError) Error() string { return "the journal is unavailable: " + e.Err.Error() }

// Is makes an UnavailableError match ErrUnavailable.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

func (e *UnavailableError) Unwrap() error { return e.Err }

// IntegrityChecker is implemented by backends that can check their own
// storage (SQLite's integrity check): `loom doctor` runs it before it
// checks every execution's events.
type IntegrityChecker interface {
	// CheckIntegrity returns the problems found, none when sound.
	CheckIntegrity(ctx context.Context) ([]string, error)
}
