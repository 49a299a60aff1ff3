package interpreter

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/loomwork/loom/definition"
	"github.com/loomwork/loom/journal"
)

// drive is one pass of the interpreter over a root execution and the
// children it reaches. A live drive holds the root's lease and acts; a
// replay-only drive (Replay, the check of an upgrade, the first half of a
// Cancel) writes nothing, runs nothing and reads no clock. Every execution
// it reaches is walked through a history of the drive's mode.
type drive struct {
	eng   *Engine
	cat   *definition.Catalog // the pinned (or upgraded) catalog
	live  bool
	token func() int64 // the lease's fencing token (live)
	driveMask
	execs sync.Map // id → *exec, children loaded during this drive

	// stopRenew stops the lease renewer; released says the drive's last
	// write gave the lease up.
	stopRenew func()
	released  bool

	by string // who cancels (Cancel's By), for its cancel.requested events

	mu    sync.Mutex
	diffs []string // replay-only: differences found in children
	err   error    // replay-only: an error met where it could not be returned
}

// replayDrive returns a replay-only drive on cat (nil: each root's own).
func (e *Engine) replayDrive(cat *definition.Catalog) *drive {
	return &drive{eng: e, cat: cat, token: func() int64 { return 0 }}
}

// exec is the interpreter's state for one execution during a drive.
type exec struct {
	d   *drive
	rec *journal.Execution
	wf  *definition.Workflow
	h   *history // the current walk's

	vars  map[string]any
	input any

	// What the current walk found.
	mu     sync.Mutex
	pauses []Pause        // open pauses
	timers []time.Time    // pending timers
	comps  []compensation // recorded compensations, in completion order
}

// compensation is a completed step's recorded compensation.
type compensation struct {
	path   string
	action *definition.Action
	input  any
}

// newExec prepares rec, whose journal is ev, for walks of this drive.
func (d *drive) newExec(rec *journal.Execution, ev *events) (*exec, error) {
	wf := d.cat.Workflow(rec.Workflow)
	if wf == nil {
		return nil, fmt.Errorf("%w: the definition has no workflow %q (execution %s)", ErrNonDeterminism, rec.Workflow, rec.ID)
	}
	in, err := decodeJSON(rec.Input)
	if err != nil {
		return nil, fmt.Errorf("execution %s: stored input is not JSON: %w", rec.ID, err)
	}
	e := d.eng
	h := &history{id: rec.ID, live: d.live, clk: e.clock, rnd: e.rnd, ev: ev,
		waitTimers: e.waitTimers, maxWait: e.maxWait, calls: map[string]int{}, track: e.tele != nil}
	d.maskWriteOnly(wf, in)
	if d.live {
		h.app = newAppender(e.j, rec.ID, ev.last, d.token)
		h.app.mask = d.masker()
	}
	x := &exec{d: d, rec: rec, wf: wf, h: h, vars: map[string]any{}, input: in}
	d.execs.Store(rec.ID, x)
	return x, nil
}

// adopt brings an execution a replay-only drive walked into this live
// drive, with what that walk found (its compensations).
func (d *drive) adopt(rx *exec) (*exec, error) {
	x, err := d.newExec(rx.rec, rx.h.ev)
	if err != nil {
		return nil, err
	}
	x.comps = rx.comps
	return x, nil
}

// load reads a root execution and its events and prepares it for a drive.
func (e *Engine) load(ctx context.Context, d *drive, id string) (*exec, error) {
	rec, err := e.get(ctx, id)
	if err != nil {
		return nil, err
	}
	evs, err := e.j.Events(ctx, id, 0)
	if err != nil {
		return nil, err
	}
	if d.cat == nil {
		if d.cat, err = e.catalogFor(rec, evs); err != nil {
			return nil, err
		}
	}
	return d.newExec(rec, newEvents(evs))
}

// driveRoot interprets a root execution from the top and records where it
// got to.
func (e *Engine) driveRoot(ctx context.Context, d *drive, rootID string) (*Execution, error) {
	x, err := e.load(ctx, d, rootID)
	if err != nil {
		return nil, err
	}
	return e.driveExec(ctx, x)
}

// driveExec interprets a loaded root execution and returns its record as
// the drive left it.
func (e *Engine) driveExec(ctx context.Context, x *exec) (*Execution, error) {
	oc, err := x.runWorkflow(ctx)
	if err != nil {
		return nil, err
	}
	if oc.state.Finished() {
		if err := x.d.cancelOrphans(ctx, x); err != nil {
			return nil, err
		}
	}
	if err := x.finish(oc); err != nil {
		return nil, err
	}
	if x.h.live && x.h.app != nil && oc.state != journal.Running {
		// The record in hand is the journal's once it says when it wrote
		// it last (the journal owns the timestamps): no read back.
		if st := x.h.app.lastStamp(); !st.IsZero() {
			x.rec.UpdatedAt = st
			return e.toExecution(ctx, x.rec)
		}
	}
	return e.Get(ctx, x.rec.ID)
}

// outcome is where a walk of one execution got to.
type outcome struct {
	state  journal.State // Completed, Failed, Paused, Waiting, or Running when interrupted
	output any
	err    *Error
	pauses []Pause
	wake   time.Time
}

// runWorkflow walks the execution's workflow from the top with a fresh
// history and says where it got to.
func (x *exec) runWorkflow(ctx context.Context) (outcome, error) {
	x.startWalk()
	if x.h.live && x.rec.State.Finished() {
		return recordedOutcome(x.rec)
	}
	deadline := x.deadline()
	if x.h.live && (x.h.has(journal.CancelRequested) || x.h.past(deadline)) {
		// Decided before this walk (a cancel cut short, a timeout passed
		// while nobody drove it): find the recorded compensations with a
		// replay-only walk, then conclude for real.
		return x.concludeRecorded(ctx)
	}
	wctx := ctx
	if x.wf.Timeout > 0 {
		var stop context.CancelFunc
		wctx, stop = x.h.deadline(ctx, deadline)
		defer stop()
	}
	out, err := x.walkSteps(wctx)
	switch {
	case x.h.has(journal.CancelRequested):
		return x.cancelled(ctx)
	case stillGoing(err) && (x.h.has(journal.TimedOut) || ctx.Err() == nil && (wctx.Err() != nil || x.h.past(deadline))):
		return x.timeOut(ctx)
	}
	return x.conclude(ctx, out, err)
}

// startWalk gives the execution a fresh history and forgets what a former
// walk found.
func (x *exec) startWalk() {
	x.h = x.h.rewalk()
	x.mu.Lock()
	x.pauses, x.timers, x.comps = nil, nil, nil
	x.mu.Unlock()
}

// never is a deadline that does not come.
var never = time.Unix(1<<62, 0)

// deadline is when the workflow's timeout passes (never without one).
func (x *exec) deadline() time.Time {
	if x.wf.Timeout <= 0 {
		return never
	}
	return x.rec.CreatedAt.Add(x.wf.Timeout)
}

// walkSteps runs the workflow's steps and evaluates its output.
func (x *exec) walkSteps(ctx context.Context) (any, error) {
	sc := &scope{steps: map[string]any{}, vars: x.vars}
	if n := len(x.wf.Steps); n > 0 {
		if last := x.wf.Steps[n-1]; last.Kind == definition.KindTask && last.Compensate == nil {
			x.h.holdPath = join("", last.Key)
		}
	}
	out, err := x.runSteps(ctx, sc, x.wf.Steps, "")
	if rs, ok := err.(*returnSignal); ok {
		// `return` gives the workflow's output; `output` is not evaluated.
		return rs.value, nil
	}
	if err == nil && x.wf.Output != nil {
		return x.evalValue(x.wf.Output, sc, "#output", "output")
	}
	return out, err
}

// stillGoing reports whether a walk's result leaves room for a timeout:
// it finished, failed as a workflow, or stopped short.
func stillGoing(err error) bool {
	_, isErr := asError(err)
	return err == nil || isErr || incomplete(err)
}

// conclude turns what the walk returned into an outcome.
func (x *exec) conclude(ctx context.Context, out any, err error) (outcome, error) {
	switch {
	case err == nil:
		return outcome{state: journal.Completed, output: out}, nil
	case err == errSuspended:
		return x.suspended(), nil
	case err == errFrontier, err == errCancelled:
		return outcome{state: journal.Running}, nil
	}
	werr, ok := asError(err)
	if !ok {
		return outcome{}, unfatal(err)
	}
	if cerr := x.runCompensations(ctx); cerr != nil {
		if cerr == errFrontier || cerr == errCancelled {
			return outcome{state: journal.Running}, nil
		}
		return outcome{}, unfatal(cerr)
	}
	return outcome{state: journal.Failed, err: werr}, nil
}

// suspended is the outcome of a walk that stopped at pauses or timers:
// PAUSED with the open pauses, else WAITING, and the earliest wake-up
// (the workflow's own deadline included).
func (x *exec) suspended() outcome {
	oc := outcome{state: journal.Waiting, pauses: x.openPauses()}
	if len(oc.pauses) > 0 {
		oc.state = journal.Paused
	}
	x.mu.Lock()
	for _, t := range x.timers {
		if oc.wake.IsZero() || t.Before(oc.wake) {
			oc.wake = t
		}
	}
	x.mu.Unlock()
	if x.wf.Timeout > 0 && (oc.wake.IsZero() || x.deadline().Before(oc.wake)) {
		oc.wake = x.deadline()
	}
	return oc
}

// concludeRecorded finishes an execution whose cancel or timeout was
// decided before this walk: a replay-only walk rebuilds its recorded
// compensations, then this live one runs them.
func (x *exec) concludeRecorded(ctx context.Context) (outcome, error) {
	rx, err := x.d.eng.replayDrive(x.d.cat).newExec(x.rec, x.h.ev)
	if err != nil {
		return outcome{}, err
	}
	if _, err := rx.runWorkflow(ctx); err != nil {
		return outcome{}, err
	}
	x.mu.Lock()
	x.comps = rx.comps
	x.mu.Unlock()
	if x.h.has(journal.CancelRequested) {
		return x.cancelled(ctx)
	}
	return x.timeOut(ctx)
}

func (x *exec) timeoutError() *Error {
	return &Error{Type: "Timeout", Message: fmt.Sprintf("workflow %s did not finish within its timeout of %s", x.wf.Name, x.wf.Timeout)}
}

// timeOut journals that x timed out (once: the clock decides it once), runs
// its compensations and fails it.
func (x *exec) timeOut(ctx context.Context) (outcome, error) {
	if !x.h.has(journal.TimedOut) {
		if err := x.h.mark(journal.TimedOut, "timeout"); err != nil {
			return outcome{}, unfatal(err)
		}
	}
	if err := x.compensate(ctx); err != nil {
		return outcome{}, err
	}
	return outcome{state: journal.Failed, err: x.timeoutError()}, nil
}

// cancelled runs the recorded compensations of a cancelled execution and
// says CANCELLED: a replay re-derives a cancel as the cancel did it.
func (x *exec) cancelled(ctx context.Context) (outcome, error) {
	if err := x.compensate(ctx); err != nil {
		return outcome{}, err
	}
	return outcome{state: journal.Cancelled, err: cancelledError()}, nil
}

// compensate runs the recorded compensations; what cannot finish now is
// left for the journal to show.
func (x *exec) compensate(ctx context.Context) error {
	if err := x.runCompensations(ctx); err != nil && !incomplete(err) {
		if _, ok := asError(err); !ok {
			return unfatal(err)
		}
	}
	return nil
}

func cancelledError() *Error {
	return &Error{Type: "Cancelled", Message: "the execution was cancelled"}
}

func unfatal(err error) error {
	var f *fatalError
	if errors.As(err, &f) {
		return f.err
	}
	return err
}

func recordedOutcome(rec *journal.Execution) (outcome, error) {
	ex, err := toExecution(rec)
	if err != nil {
		return outcome{}, err
	}
	return outcome{state: ex.State, output: ex.Output, err: ex.Error, pauses: ex.Pauses, wake: ex.WakeAt}, nil
}

// finish records an outcome on the execution's record (nothing in a
// replay-only drive).
func (x *exec) finish(oc outcome) error {
	st := oc.state
	upd := &journal.Update{State: &st}
	var evs []journal.Event
	switch st {
	case journal.Running:
		// Interrupted: the record stays RUNNING for whoever resumes it. A
		// last task's result held for the finish is written now, so that
		// the task does not run again.
		if x.h.held {
			return x.h.flush()
		}
		return nil
	case journal.Completed, journal.Failed, journal.Cancelled:
		if x.rec.State == st && x.rec.State.Finished() {
			return nil
		}
		zero := time.Time{}
		upd.Pauses, upd.WakeAt = nullJSON, &zero
		data := journal.ExecutionFinishedData{State: st, Output: encodeJSON(oc.output)}
		if oc.err != nil {
			upd.Error = encodeJSON(oc.err)
			data.Error = oc.err.record()
		} else {
			upd.Output = data.Output
		}
		evs = append(evs, journal.Event{Kind: journal.ExecutionFinished, Name: string(st), Data: journal.EncodeData(data), Time: x.h.now()})
	case journal.Paused, journal.Waiting:
		ps := oc.pauses
		if ps == nil {
			ps = []Pause{}
		}
		upd.Pauses = encodeJSON(ps)
		w := oc.wake
		upd.WakeAt = &w
	}
	var release func()
	if x.rec.ID == x.rec.RootID && x.d.stopRenew != nil {
		// The root's record is a drive's last write: give the lease up in
		// the same commit (the renewer stops first, so it cannot find the
		// lease gone and take that for a loss).
		release = func() { x.d.stopRenew(); x.d.released = true }
	}
	if err := x.h.settle(evs, upd, release); err != nil {
		return err
	}
	if x.h.live {
		// Keep the record in hand as the journal now has it.
		upd.ApplyTo(x.rec)
	}
	return nil
}

// cancelOrphans cancels the children a finished root leaves unfinished: the
// items a failing map cut short, a paused child of a failed branch. Each
// runs its recorded compensations and becomes CANCELLED, deepest first.
func (d *drive) cancelOrphans(ctx context.Context, root *exec) error {
	var orphans []*exec
	d.execs.Range(func(_, v any) bool {
		if c := v.(*exec); c != root && !c.rec.State.Finished() {
			orphans = append(orphans, c)
		}
		return true
	})
	return d.cancelAll(context.WithoutCancel(ctx), orphans)
}

// cancelAll cancels the unfinished executions of list, deepest first.
func (d *drive) cancelAll(ctx context.Context, list []*exec) error {
	sort.SliceStable(list, func(i, j int) bool { return d.depth(list[i]) > d.depth(list[j]) })
	for _, c := range list {
		if c.rec.State.Finished() {
			continue
		}
		if err := c.cancel(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (d *drive) depth(x *exec) int {
	n := 0
	for p := x.rec.ParentID; p != ""; n++ {
		c, ok := d.execs.Load(p)
		if !ok {
			break
		}
		p = c.(*exec).rec.ParentID
	}
	return n
}

// cancel records a cancellation of x, runs its recorded compensations and
// finishes it CANCELLED.
func (x *exec) cancel(ctx context.Context) error {
	if !x.h.has(journal.CancelRequested) {
		if err := x.h.write(journal.Event{Kind: journal.CancelRequested, Name: "cancel",
			Data: journal.EncodeData(journal.MarkerData{By: x.d.by})}); err != nil {
			return unfatal(err)
		}
	}
	if err := x.runCompensations(ctx); err != nil && !errors.Is(err, errCancelled) {
		return unfatal(err)
	}
	return x.finish(outcome{state: journal.Cancelled, err: cancelledError()})
}

// openPauses returns the pauses found in this walk, in path order.
func (x *exec) openPauses() []Pause {
	x.mu.Lock()
	defer x.mu.Unlock()
	p := append([]Pause(nil), x.pauses...)
	sort.Slice(p, func(i, j int) bool {
		if p[i].ExecutionID != p[j].ExecutionID {
			return p[i].ExecutionID < p[j].ExecutionID
		}
		return p[i].Path < p[j].Path
	})
	return p
}

// suspend notes an open pause or a pending timer the walk met.
func (x *exec) suspend(p *Pause, wake time.Time) {
	x.mu.Lock()
	if p != nil {
		x.pauses = append(x.pauses, *p)
	}
	if !wake.IsZero() {
		x.timers = append(x.timers, wake)
	}
	x.mu.Unlock()
}
