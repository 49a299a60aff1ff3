package interpreter

import (
	"errors"
	"fmt"

	"github.com/loomwork/loom/journal"
)

// Control flow inside the interpreter travels as errors. A *Error is a
// workflow error: catchable by try/catch, retried by retry, journaled. The
// others unwind without being journaled or caught.
var (
	// errSuspended: a pause or a timer was reached; the execution waits.
	errSuspended = errors.New("suspended")
	// errFrontier: a replay-only pass reached something the journal does
	// not have (the point where a real run would act).
	errFrontier = errors.New("replay frontier")
	// errCancelled: the step's context was cancelled (a failing map or
	// parallel cancels its siblings; the process is stopping). Nothing is
	// journaled for the interrupted step, so it runs again if ever needed.
	errCancelled = errors.New("cancelled")
)

// returnSignal carries a `return` step's value up to the workflow (or to the
// map item or parallel branch that contains it).
type returnSignal struct{ value any }

func (r *returnSignal) Error() string { return "return" }

// fatalError is an error no workflow construct may catch: a journal
// failure, a lost lease, non-determinism.
type fatalError struct{ err error }

func (f *fatalError) Error() string { return f.err.Error() }
func (f *fatalError) Unwrap() error { return f.err }

func fatal(err error) error {
	var f *fatalError
	if errors.As(err, &f) {
		return err
	}
	return &fatalError{err}
}

// asError returns the workflow error in err, if err is one.
func asError(err error) (*Error, bool) {
	e, ok := err.(*Error)
	return e, ok
}

// incomplete reports whether err means "not done yet" rather than a result.
func incomplete(err error) bool {
	return err == errSuspended || err == errFrontier || err == errCancelled
}

// matches reports whether an error type is in a retry or catch list (an
// empty list matches every type).
func matches(list []string, typ string) bool {
	if len(list) == 0 {
		return true
	}
	for _, t := range list {
		if t == typ {
			return true
		}
	}
	return false
}

// value is the error as expressions see it (`err`, a tolerated map item).
func (e *Error) value() map[string]any {
	return map[string]any{"type": e.Type, "message": e.Message, "data": e.Data, "step": e.Step}
}

// taskError turns what a task returned into a workflow error at path.
func taskError(err error, path string) *Error {
	var we *Error
	if errors.As(err, &we) {
		c := *we
		if c.Step == "" {
			c.Step = path
		}
		return &c
	}
	e := &Error{Type: "TaskFailed", Message: err.Error(), Step: path}
	var typed interface{ ErrorType() string }
	if errors.As(err, &typed) {
		if t := typed.ErrorType(); t != "" {
			e.Type = t
		}
	}
	var data interface{ ErrorData() any }
	if errors.As(err, &data) {
		if d, nerr := Normalize(data.ErrorData()); nerr == nil {
			e.Data = d
		}
	}
	return e
}

func exprError(err error, path string, what string) *Error {
	if le, ok := limitError(err, path, what); ok {
		return le
	}
	return &Error{Type: "ExpressionError", Message: fmt.Sprintf("%s: %v", what, err), Step: path}
}

// record is the error as the journal records it.
func (e *Error) record() *journal.ErrorData {
	return &journal.ErrorData{Type: e.Type, Message: e.Message, Data: encodeJSON(e.Data), Step: e.Step}
}

// fromErrorData reads an error the journal recorded.
func fromErrorData(d *journal.ErrorData) *Error {
	e := &Error{Type: d.Type, Message: d.Message, Step: d.Step}
	if len(d.Data) > 0 {
		e.Data, _ = decodeJSON(d.Data)
	}
	return e
}
