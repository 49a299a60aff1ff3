package interpreter

import (
	"errors"
	"time"

	"github.com/loomwork/loom/definition"
	"github.com/loomwork/loom/journal"
)

// Refusals: the error return of Run, Resume and friends wraps one of these
// (or a journal error). A workflow that fails is not an error: it is an
// Execution in state FAILED.
var (
	// ErrInvalidInput: the input or resume payload fails its schema, or is
	// not JSON-encodable.
	ErrInvalidInput = errors.New("invalid input")
	// ErrNotFound: no execution or workflow has that id or name.
	ErrNotFound = errors.New("not found")
	// ErrNotPaused: a payload or pause was given for an execution or pause
	// that is not waiting for one.
	ErrNotPaused = errors.New("not paused")
	// ErrBusy: another runner holds the execution (journal.ErrBusy).
	ErrBusy = journal.ErrBusy
	// ErrNonDeterminism: the journal does not match the definition.
	ErrNonDeterminism = errors.New("non-determinism")
	// ErrFinished: the execution is finished and cannot be cancelled.
	ErrFinished = errors.New("execution is finished")
	// ErrMissingTask: this binary does not register a task the execution's
	// definition uses (a *MissingTaskError); nothing was done, and the
	// execution is left for a binary that has it.
	ErrMissingTask = errors.New("missing task")
	// ErrPauseTimedOut: the pause a payload was for passed its deadline
	// first; a refusal that wraps it also wraps ErrNotPaused.
	ErrPauseTimedOut = errPauseLate
)

// Execution is the state of one execution as a user sees it.
type Execution struct {
	ID        string
	Workflow  string
	Version   int
	State     journal.State
	Input     any
	Output    any
	Error     *Error
	Pauses    []Pause
	ParentID  string
	CreatedAt time.Time
	UpdatedAt time.Time
	// WakeAt is when a WAITING execution's timer is due.
	WakeAt time.Time
}

// Error is a workflow error: its type (matched by retry.errors and
// catch.errors), a message, optional data, and the path of the step that
// raised it.
type Error struct {
	Type    string `json:"type"`
	Message string `json:"message"`
	Data    any    `json:"data"`
	Step    string `json:"step"`
}

func (e *Error) Error() string {
	if e.Step != "" {
		return e.Type + " at " + e.Step + ": " + e.Message
	}
	return e.Type + ": " + e.Message
}

// ErrorType returns the error's type.
func (e *Error) ErrorType() string { return e.Type }

// Pause is an open pause point of a PAUSED execution.
type Pause struct {
	Name   string `json:"name"`
	Path   string `json:"path"`
	Schema any    `json:"schema"`
	// ExecutionID is the execution that holds the pause (a child's, for a
	// pause inside a called workflow); empty means the execution itself.
	ExecutionID string `json:"execution_id,omitempty"`
	// Deadline is when the pause fails with PauseTimeout, if it has a timeout.
	Deadline *time.Time `json:"deadline,omitempty"`
}

// ReplayResult is what Replay derived, next to what the journal recorded.
type ReplayResult struct {
	Recorded *Execution
	Derived  *Execution
	// Match is true when state, output and error are the same.
	Match bool
	// Diff says what differs, one line per difference.
	Diff []string
}

var _ = definition.KindTask

// MissingTaskError refuses to drive an execution whose definition uses a
// task this binary does not register: running it would fail the execution
// for good with UnknownTask, when the binary that registers the task could
// finish it.
type MissingTaskError struct {
	Task string
}

func (e *MissingTaskError) Error() string {
	return "this binary has no task " + e.Task + "; run it with the binary that registers it"
}

// Unwrap makes errors.Is(err, ErrMissingTask) true.
func (e *MissingTaskError) Unwrap() error { return ErrMissingTask }
