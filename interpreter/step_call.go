package interpreter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/loomwork/loom/builtins"
	"github.com/loomwork/loom/clock"
	"github.com/loomwork/loom/definition"
	"github.com/loomwork/loom/journal"
)

// call runs a `call:` step: a child execution of workflow wf per attempt,
// bounded by timeout.
func (x *exec) call(ctx context.Context, wf string, in any, r *definition.Retry, timeout time.Duration, path string) (any, error) {
	return x.attempts(ctx, r, path, "call:"+wf, func(ctx context.Context, ap string) (any, error) {
		if timeout <= 0 {
			return x.callChild(ctx, wf, in, ap)
		}
		tctx, cancel := x.h.timeout(ctx, timeout)
		defer cancel()
		out, err := x.callChild(tctx, wf, in, ap)
		if err == errCancelled && ctx.Err() == nil && clock.Expired(tctx) {
			return nil, &Error{Type: "Timeout", Message: fmt.Sprintf("call of %s timed out after %s", wf, timeout), Step: ap}
		}
		return out, err
	})
}

// callChild runs (or continues) the child execution started at ap.
func (x *exec) callChild(ctx context.Context, wfName string, in any, ap string) (any, error) {
	name := "call:" + wfName
	ev, ok, err := x.h.find(ap, journal.ChildStarted, name)
	if err != nil {
		return nil, err
	}
	if !ok {
		if ev, err = x.startChild(wfName, in, ap, name); err != nil {
			return nil, err
		}
	}
	child, err := x.openChild(ctx, ev, wfName, in, ap)
	if err != nil {
		return nil, err
	}
	oc, err := child.runWorkflow(ctx)
	if err != nil {
		return nil, fatal(err)
	}
	if err := child.finish(oc); err != nil {
		return nil, fatal(err)
	}
	switch oc.state {
	case journal.Completed:
		return oc.output, nil
	case journal.Failed, journal.Cancelled:
		c := *oc.err
		c.Step = ap
		if c.Data == nil {
			c.Data = map[string]any{"execution_id": child.rec.ID, "step": oc.err.Step}
		}
		return nil, &c
	case journal.Paused, journal.Waiting:
		x.mu.Lock()
		x.pauses = append(x.pauses, oc.pauses...)
		x.mu.Unlock()
		x.suspend(nil, oc.wake)
		return nil, errSuspended
	}
	return nil, x.h.interrupted()
}

// startChild checks the child's input and journals its id, before the
// child exists: a crash between the two makes the resume create that same
// child.
func (x *exec) startChild(wfName string, in any, ap, name string) (journal.Event, error) {
	if _, err := x.h.begin(); err != nil {
		return journal.Event{}, err
	}
	wf := x.d.cat.Workflow(wfName)
	if wf == nil {
		return journal.Event{}, &Error{Type: "UnknownWorkflow", Message: fmt.Sprintf("no workflow named %q in the pinned definition", wfName), Step: ap}
	}
	if wf.InputSchema != nil {
		if err := wf.InputSchema.Validate(in); err != nil {
			return journal.Event{}, &Error{Type: "InvalidInput", Message: fmt.Sprintf("the input of %s does not match its input schema: %s", wfName, schemaMessage(err)), Step: ap}
		}
	}
	ev := journal.Event{Path: ap, Kind: journal.ChildStarted, Name: name,
		Data: journal.EncodeData(journal.ChildStartedData{ID: builtins.UUID4(builtins.CryptoRandom{}), Workflow: wfName})}
	return ev, x.h.write(ev)
}

// openChild loads the child journaled by ev, creating its record if a crash
// came between the journal entry and the creation.
func (x *exec) openChild(ctx context.Context, ev journal.Event, wfName string, in any, ap string) (*exec, error) {
	cr, err := journal.DecodeData[journal.ChildStartedData](ev)
	if err != nil || cr.ID == "" {
		return nil, fatal(fmt.Errorf("journal: bad child record at %s", ap))
	}
	if c, ok := x.d.execs.Load(cr.ID); ok {
		return c.(*exec), nil
	}
	j := x.d.eng.j
	// A failing sibling may have cancelled ctx; reading the journal is not
	// work to cancel.
	ctx = context.WithoutCancel(ctx)
	rec, err := j.Get(ctx, cr.ID)
	if errors.Is(err, journal.ErrNotFound) {
		if _, ferr := x.h.begin(); ferr != nil {
			return nil, ferr
		}
		wf := x.d.cat.Workflow(wfName)
		version := 1
		if wf != nil {
			version = wf.Version
		}
		rec = &journal.Execution{ID: cr.ID, Workflow: wfName, Version: version, State: journal.Running,
			ParentID: x.rec.ID, RootID: x.rec.RootID, ParentPath: ap, Input: x.d.eng.childInput(in),
			Definition: x.rec.Definition, DefinitionHash: x.rec.DefinitionHash}
		if err := j.Create(ctx, rec); err != nil && !errors.Is(err, journal.ErrExists) {
			return nil, fatal(err)
		}
		rec, err = j.Get(ctx, cr.ID)
	}
	if err != nil {
		return nil, fatal(err)
	}
	evs, err := j.Events(ctx, cr.ID, 0)
	if err != nil {
		return nil, fatal(err)
	}
	child, err := x.d.newExec(rec, newEvents(evs))
	if err != nil {
		return nil, fatal(err)
	}
	return child, nil
}

// verifyChild re-derives, in an exhaustive walk, the child whose outcome
// the parent recorded at ap, so Replay and upgrades check children too. A
// live walk trusts the recorded outcome.
func (x *exec) verifyChild(ctx context.Context, ap string, done journal.Event) {
	if !x.h.exhaustive() {
		return
	}
	ev, ok, _ := x.h.find(ap, journal.ChildStarted, done.Name)
	if !ok {
		return
	}
	child, err := x.openChild(ctx, ev, "", nil, ap)
	if err != nil {
		x.d.diff(fmt.Sprintf("%s: child execution: %v", ap, unfatal(err)))
		return
	}
	oc, err := child.runWorkflow(ctx)
	if err != nil {
		x.d.fail(err)
		return
	}
	var recorded any
	if done.Kind == journal.StepCompleted {
		d, _ := journal.DecodeStepCompleted(done.Data)
		recorded, _ = decodeJSON(d.Output)
	}
	switch {
	case done.Kind == journal.StepCompleted && (oc.state != journal.Completed || !equalValues(oc.output, recorded)):
		x.d.diff(fmt.Sprintf("%s: child %s derives %s %s, the parent recorded completed %s", ap, child.rec.ID, oc.state, short(oc.output, 80), short(recorded, 80)))
	case done.Kind == journal.StepFailed && oc.state != journal.Failed:
		x.d.diff(fmt.Sprintf("%s: child %s derives %s, the parent recorded a failure", ap, child.rec.ID, oc.state))
	}
}
