package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal"
)

// Exit statuses of every loom command (SPEC §5). This file is the one place
// that maps what went wrong to a status and to the hint a person reads.
const (
	// ExitOK: completed; read what was asked; replay matches.
	ExitOK = 0
	// ExitFailed: the execution failed or was cancelled; replay does not
	// match; an unexpected error (journal I/O).
	ExitFailed = 1
	// ExitRefused: refused with nothing done: usage, definition, input,
	// payload, not paused, unknown id, finished (cancel).
	ExitRefused = 2
	// ExitSuspended: paused, waiting on a timer, or interrupted: a resume
	// continues it.
	ExitSuspended = 3
	// ExitBusy: another runner holds the execution, or this runner lost
	// its lease to another.
	ExitBusy = 4
	// ExitUnavailable: the journal is unavailable (disk full, database
	// down): the execution is intact, and a resume continues it once the
	// journal is back.
	ExitUnavailable = 5
)

// kind classifies a CLI-made error.
type kind int

const (
	kindUsage kind = iota + 1
	kindRefused
	kindFailed
)

// cliError is an error the CLI itself raises, with its kind and an optional
// hint saying what to do.
type cliError struct {
	kind kind
	msg  string
	hint string
}

func (e *cliError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &cliError{kind: kindUsage, msg: fmt.Sprintf(format, args...)}
}

func refusef(format string, args ...any) error {
	return &cliError{kind: kindRefused, msg: fmt.Sprintf(format, args...)}
}

// problemsError is a definition that did not load: its problems were
// printed already, one per line.
type problemsError struct {
	n    int
	path string
}

func (e *problemsError) Error() string {
	if e.n == 1 {
		return e.path + " has a problem (above)"
	}
	return fmt.Sprintf("%s has %d problems (above)", e.path, e.n)
}

// mismatchError is a replay whose derived outcome differs from the record.
type mismatchError struct{ msg string }

func (e *mismatchError) Error() string { return e.msg }

// interruptedError: the process was interrupted (Ctrl-C, SIGTERM) while
// it drove an execution; the execution stays RUNNING for a resume.
type interruptedError struct{ id, resume string }

func (e *interruptedError) Error() string {
	return fmt.Sprintf("interrupted; execution %s is still RUNNING and %s continues it", e.id, e.resume)
}

// outageError is a run or resume stopped by a journal outage: nothing it
// could not write is lost, and resume continues the execution.
type outageError struct {
	err    error // an ErrUnavailable
	resume string
}

func (e *outageError) Error() string {
	var ue *journal.UnavailableError
	msg := e.err.Error()
	if errors.As(e.err, &ue) {
		msg = ue.Error()
	}
	return msg + "; the execution is intact, resume it when the journal is back: " + e.resume
}

func (e *outageError) Unwrap() error { return e.err }

// leaseLostError is a run or resume whose lease another runner took over
// (it froze past its lease, say): that runner continues the execution, so
// this one stops with exit 4, not as if the workflow had failed.
type leaseLostError struct {
	err            error // an ErrFenced
	holder, status string
}

func (e *leaseLostError) Error() string {
	return fmt.Sprintf("lease lost to %s, which continues the execution; this runner stopped and wrote nothing more; %s shows where it is", e.holder, e.status)
}

func (e *leaseLostError) Unwrap() error { return e.err }

// exitCode maps an error to the exit status of SPEC §5.
func exitCode(err error) int {
	var ce *cliError
	var pe *problemsError
	var me *mismatchError
	var ie *interruptedError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, journal.ErrUnavailable):
		return ExitUnavailable
	case errors.As(err, &ce):
		if ce.kind == kindFailed {
			return ExitFailed
		}
		return ExitRefused
	case errors.As(err, &pe):
		return ExitRefused
	case errors.As(err, &me):
		return ExitFailed
	case errors.As(err, &ie):
		return ExitSuspended
	case errors.Is(err, journal.ErrBusy), errors.Is(err, journal.ErrFenced):
		return ExitBusy
	case errors.Is(err, interpreter.ErrInvalidInput),
		errors.Is(err, interpreter.ErrNotFound),
		errors.Is(err, interpreter.ErrNotPaused),
		errors.Is(err, interpreter.ErrNonDeterminism),
		errors.Is(err, interpreter.ErrFinished),
		errors.Is(err, interpreter.ErrNotRerunnable),
		errors.Is(err, interpreter.ErrMissingTask),
		errors.Is(err, journal.ErrNotFound),
		errors.Is(err, journal.ErrExists),
		errors.Is(err, journal.ErrInvalidID):
		return ExitRefused
	}
	return ExitFailed
}

// stateCode maps the state a run or resume left an execution in to its exit
// status.
func stateCode(s journal.State) int {
	switch s {
	case journal.Completed:
		return ExitOK
	case journal.Failed, journal.Cancelled:
		return ExitFailed
	}
	// PAUSED, WAITING, or RUNNING after an interruption: resume continues it.
	return ExitSuspended
}

// hint says what to do about err, or "" when its message already does.
// prog is the program's name, for the commands it names.
func hint(prog, cmd string, err error) string {
	h := hintFor(cmd, err)
	if prog != "loom" {
		h = strings.ReplaceAll(h, "`loom ", "`"+prog+" ")
	}
	return h
}

func hintFor(cmd string, err error) string {
	var ce *cliError
	switch {
	case errors.As(err, &ce):
		if ce.hint != "" {
			return ce.hint
		}
		if ce.kind == kindUsage {
			if cmd == "" {
				return "`loom help` lists the commands"
			}
			return "`loom help " + cmd + "` shows its usage"
		}
	case errors.As(err, new(*problemsError)):
		if cmd == "resume" {
			return "nothing was written"
		}
		return "nothing was started"
	case errors.As(err, new(*leaseLostError)):
		return ""
	case errors.Is(err, journal.ErrFenced):
		return "another runner took the execution over; `loom status` shows where it is"
	case errors.Is(err, journal.ErrBusy):
		return "nothing was run; wait for that runner to finish (a dead runner's lease on this host is taken over at once, elsewhere when it expires)"
	case errors.Is(err, interpreter.ErrInvalidInput):
		if cmd == "resume" {
			if strings.Contains(err.Error(), "--pause") {
				return "nothing was written" // the message says to name the pause
			}
			return "nothing was written; fix the payload and resume again"
		}
		return "nothing was started; fix the input and run again"
	case errors.Is(err, interpreter.ErrNotFound), errors.Is(err, journal.ErrNotFound):
		return "`loom list` shows the executions of this journal"
	case errors.Is(err, interpreter.ErrNotPaused):
		return "`loom status` shows its state"
	case errors.Is(err, interpreter.ErrNonDeterminism):
		if cmd == "replay" {
			return ""
		}
		return "nothing was written; the journal does not fit that definition"
	case errors.Is(err, interpreter.ErrFinished), errors.Is(err, interpreter.ErrNotRerunnable):
		return "nothing was done"
	case errors.Is(err, journal.ErrUnavailable):
		if errors.As(err, new(*outageError)) {
			return ""
		}
		return "nothing was changed; try again when it is back"
	case errors.Is(err, journal.ErrDamaged):
		return "`loom doctor` checks the whole journal and says what can be recovered"
	case errors.Is(err, interpreter.ErrMissingTask):
		return "nothing was written"
	case errors.Is(err, journal.ErrInvalidID):
		if cmd == "run" {
			return "nothing was started"
		}
		return "no execution has such an id"
	}
	return ""
}
