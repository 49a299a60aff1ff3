package interpreter

import "fmt"

// NonDeterminismError says the journal and the definition disagree at Path.
type NonDeterminismError struct {
	ExecutionID string
	Path        string
	Recorded    string // what the journal recorded there ("" for nothing)
	Now         string // what the definition has there now ("" for nothing)
}

func (e *NonDeterminismError) Error() string {
	rec, now := e.Recorded, e.Now
	if rec == "" {
		rec = "nothing"
	}
	if now == "" {
		now = "nothing (the step is gone or never reached)"
	}
	return fmt.Sprintf("non-determinism in execution %s at %q: the journal recorded %s, the definition now has %s", e.ExecutionID, e.Path, rec, now)
}

// Unwrap makes errors.Is(err, ErrNonDeterminism) true.
func (e *NonDeterminismError) Unwrap() error { return ErrNonDeterminism }
