package interpreter

import (
	"context"
	"strings"
	"time"

	"github.com/loomwork/loom/definition"
)

// Telemetry watches what drives run — steps, and each attempt of a task
// or call step — for a service's metrics and traces. Steps a drive replays
// from the journal are not shown to it: only those it runs.
type Telemetry interface {
	// Begin is called as a step or an attempt starts to run. The context
	// it returns is the one the step runs under (it may carry a trace
	// span, which the http task then sends on); end is called once, as
	// the step or attempt returns. Both are called from the goroutines
	// that run steps and must be quick and safe for concurrent use.
	Begin(ctx context.Context, s Span) (_ context.Context, end func(End))
}

// Span is a step, or one attempt of a task or call step, that a drive runs.
type Span struct {
	ExecutionID string
	RootID      string
	Workflow    string // the execution's workflow
	Path        string // the step's journal path (an attempt's: path@N after the first)
	Kind        definition.Kind
	// Name is what the step runs: its task, the workflow it calls, its
	// pause's name; for the other kinds its key (id) in its list.
	Name string
	// Attempt numbers the attempts of a task or call step from 1; it is 0
	// for a whole step.
	Attempt int
}

// The outcomes of an End.
const (
	OutcomeOK        = "ok"
	OutcomeError     = "error"
	OutcomeCancelled = "cancelled"
)

// End is how a step or attempt ended.
type End struct {
	// Outcome is OutcomeOK, OutcomeError or OutcomeCancelled; "" when it
	// did not end in this drive (it paused, waits on a timer or a child,
	// or the drive stopped at the frontier).
	Outcome string
	// ErrorType is the workflow error's type when Outcome is
	// OutcomeError ("" for an internal failure such as a journal outage).
	ErrorType string
	// Duration is from Begin to the end, on the engine's clock.
	Duration time.Duration
}

// WithTelemetry shows the engine's steps and attempts to t.
func WithTelemetry(t Telemetry) Option { return func(e *Engine) { e.tele = t } }

// beginStep shows a step that runs in this walk to the telemetry; it
// returns ctx unchanged and a nil end when there is none, or the walk is
// still replaying what the journal recorded.
func (x *exec) beginStep(ctx context.Context, st *definition.Step, path string) (context.Context, func(error)) {
	if x.d.eng.tele == nil || x.h.replaying() {
		return ctx, nil
	}
	name := st.Key
	switch st.Kind {
	case definition.KindTask:
		name = st.Task
	case definition.KindCall:
		name = st.Call
	case definition.KindPause:
		name = st.Pause
	}
	return x.begin(ctx, Span{Path: path, Kind: st.Kind, Name: name})
}

// beginAttempt shows an attempt of a task or call (named "task:NAME" or
// "call:NAME" as the journal names it) to the telemetry; the attempts of
// a map item's inline steps are not shown (their steps are).
func (x *exec) beginAttempt(ctx context.Context, name, ap string, n int) (context.Context, func(error)) {
	kind, what, ok := strings.Cut(name, ":")
	if x.d.eng.tele == nil || !ok {
		return ctx, nil
	}
	return x.begin(ctx, Span{Path: ap, Kind: definition.Kind(kind), Name: what, Attempt: n})
}

func (x *exec) begin(ctx context.Context, s Span) (context.Context, func(error)) {
	s.ExecutionID, s.RootID, s.Workflow = x.rec.ID, x.rec.RootID, x.rec.Workflow
	clk := x.d.eng.clock
	start := clk.Now()
	ctx, end := x.d.eng.tele.Begin(ctx, s)
	return ctx, func(err error) {
		e := End{Duration: clk.Now().Sub(start)}
		switch err := err.(type) {
		case nil, *returnSignal:
			e.Outcome = OutcomeOK
		case *Error:
			e.Outcome, e.ErrorType = OutcomeError, err.Type
		default:
			switch {
			case err == errCancelled:
				e.Outcome = OutcomeCancelled
			case !incomplete(err):
				e.Outcome = OutcomeError
			}
		}
		end(e)
	}
}
