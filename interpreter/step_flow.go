package interpreter

import (
	"context"
	"fmt"
	"sync"

	"github.com/loomwork/loom/definition"
)

// runSteps runs a list of steps in order and returns the last one's output.
func (x *exec) runSteps(ctx context.Context, sc *scope, steps []*definition.Step, prefix string) (any, error) {
	var last any
	for _, st := range steps {
		if ctx.Err() != nil {
			return nil, errCancelled
		}
		out, err := x.runStep(ctx, sc, st, join(prefix, st.Key))
		if err != nil {
			return nil, err
		}
		if st.ID != "" {
			sc.setStep(st.ID, out)
		}
		last = out
	}
	return last, nil
}

func (x *exec) runStep(ctx context.Context, sc *scope, st *definition.Step, path string) (any, error) {
	if st.If != nil {
		ok, err := x.evalBool(st.If, sc, path, "if")
		if err == nil && !ok {
			x.observe(st, path, true)
		}
		if err != nil || !ok {
			return nil, err
		}
	}
	x.observe(st, path, false)
	sctx, end := x.beginStep(ctx, st, path)
	out, err := x.runKind(sctx, sc, st, path)
	if end != nil {
		end(err)
	}
	if werr, ok := asError(err); ok && st.Fallback != nil {
		return x.runAction(ctx, sc.block(bind("err", werr.value())), st.Fallback, path+"/#fallback")
	}
	if err == nil && st.Compensate != nil {
		if st.ID != "" {
			sc.setStep(st.ID, out)
		}
		cpath := path + "/#compensate"
		in, err := x.evalValue(st.Compensate.With, sc, cpath, "compensate.with")
		if err != nil {
			return nil, err
		}
		x.mu.Lock()
		x.comps = append(x.comps, compensation{path: cpath, action: st.Compensate, input: in})
		x.mu.Unlock()
	}
	return out, err
}

func (x *exec) observe(st *definition.Step, path string, skipped bool) {
	if fn := x.d.eng.onStep; fn != nil {
		fn(StepEvent{ExecutionID: x.rec.ID, Workflow: x.rec.Workflow, Path: path, Kind: st.Kind, Skipped: skipped})
	}
}

func (x *exec) runKind(ctx context.Context, sc *scope, st *definition.Step, path string) (any, error) {
	switch st.Kind {
	case definition.KindTask:
		in, err := x.evalValue(st.With, sc, path, "with")
		if err != nil {
			return nil, err
		}
		return x.task(ctx, st.Task, in, st.Retry, st.Timeout, path)
	case definition.KindCall:
		in, err := x.evalValue(st.With, sc, path, "with")
		if err != nil {
			return nil, err
		}
		return x.call(ctx, st.Call, in, st.Retry, st.Timeout, path)
	case definition.KindSet:
		out := make(map[string]any, len(st.Set))
		for _, f := range st.Set {
			v, err := x.evalValue(f.Value, sc, path, "set."+f.Name)
			if err != nil {
				return nil, err
			}
			sc.setVar(f.Name, v)
			out[f.Name] = v
		}
		return out, nil
	case definition.KindPause:
		return x.pause(st, path)
	case definition.KindSleep:
		return x.sleep(ctx, sc, st, path)
	case definition.KindMap:
		return x.runMap(ctx, sc, st, path)
	case definition.KindFor:
		return x.runFor(ctx, sc, st, path)
	case definition.KindParallel:
		return x.runParallel(ctx, sc, st, path)
	case definition.KindSwitch:
		for _, c := range st.Switch {
			if !c.Default {
				ok, err := x.evalBool(c.When, sc, path, c.Key)
				if err != nil {
					return nil, err
				}
				if !ok {
					continue
				}
			}
			return x.runSteps(ctx, sc.block(bindings{}), c.Steps, join(path, c.Key))
		}
		return nil, nil
	case definition.KindTry:
		return x.runTry(ctx, sc, st, path)
	case definition.KindRaise:
		msg, err := x.evalValue(st.Raise.Message, sc, path, "raise.message")
		if err != nil {
			return nil, err
		}
		data, err := x.evalValue(st.Raise.Data, sc, path, "raise.data")
		if err != nil {
			return nil, err
		}
		m, ok := msg.(string)
		if !ok && msg != nil {
			m = string(encodeJSON(msg))
		}
		return nil, &Error{Type: st.Raise.Error, Message: m, Data: data, Step: path}
	case definition.KindReturn:
		v, err := x.evalValue(st.Return, sc, path, "return")
		if err != nil {
			return nil, err
		}
		return nil, &returnSignal{v}
	}
	return nil, fatal(fmt.Errorf("step %s: unknown kind %q", path, st.Kind))
}

func (x *exec) runAction(ctx context.Context, sc *scope, a *definition.Action, path string) (any, error) {
	in, err := x.evalValue(a.With, sc, path, "with")
	if err != nil {
		return nil, err
	}
	if a.Task != "" {
		return x.task(ctx, a.Task, in, nil, 0, path)
	}
	return x.call(ctx, a.Call, in, nil, 0, path)
}

// itemResult is one concurrent item's or branch's outcome.
type itemResult struct {
	out any
	err error
}

// joinConcurrent picks the outcome of concurrent work: a fatal error wins,
// then the first workflow error in item order, then "not done yet".
func joinConcurrent(ctx context.Context, res []itemResult) (fatalErr error, firstErr *Error, pending error) {
	for _, r := range res {
		switch {
		case r.err == nil:
		case incomplete(r.err):
			if pending == nil || r.err == errSuspended {
				pending = r.err
			}
		default:
			if _, ok := asError(r.err); ok {
				if firstErr == nil {
					firstErr, _ = asError(r.err)
				}
			} else if fatalErr == nil {
				fatalErr = r.err
			}
		}
	}
	if pending == errCancelled && ctx.Err() == nil {
		// Siblings cancelled by a failure: the failure is the outcome.
		pending = nil
	}
	return
}

func (x *exec) runFor(ctx context.Context, sc *scope, st *definition.Step, path string) (any, error) {
	f := st.For
	out := []any{}
	if f.Items != nil {
		items, err := x.evalList(f.Items, sc, path, "for.items")
		if err != nil {
			return nil, err
		}
		for i, it := range items {
			isc := sc.child(false, bind(f.As, it).and("index", i))
			o, err := x.runSteps(ctx, isc, f.Steps, itemPath(path, i))
			if err != nil {
				return nil, err
			}
			out = append(out, o)
			x.d.eng.progress(Progress{ExecutionID: x.rec.ID, Path: path, Done: i + 1, Total: len(items)})
		}
		return out, nil
	}
	for i := 0; ; i++ {
		ipath := itemPath(path, i)
		isc := sc.child(false, bind("index", i))
		ok, err := x.evalBool(f.While, isc, ipath, "for.while")
		if err != nil {
			return nil, err
		}
		if !ok {
			return out, nil
		}
		if i >= f.MaxIterations {
			return nil, &Error{Type: "LimitExceeded", Message: fmt.Sprintf("the loop ran %d iterations, its max_iterations, and its condition still holds", f.MaxIterations), Step: path,
				Data: map[string]any{"max_iterations": f.MaxIterations}}
		}
		o, err := x.runSteps(ctx, isc, f.Steps, ipath)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
		x.d.eng.progress(Progress{ExecutionID: x.rec.ID, Path: path, Done: i + 1})
	}
}

func (x *exec) runParallel(ctx context.Context, sc *scope, st *definition.Step, path string) (any, error) {
	recorded, err := x.recordedFailure(path, "parallel")
	if err != nil || (recorded != nil && !x.h.exhaustive()) {
		return nil, orErr(err, recorded)
	}
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	res := make([]itemResult, len(st.Parallel))
	var wg sync.WaitGroup
	for i, b := range st.Parallel {
		wg.Add(1)
		go func(i int, b *definition.Branch) {
			defer wg.Done()
			out, err := x.runSteps(bctx, sc.child(true, bindings{}), b.Steps, join(path, b.Name))
			if rs, ok := err.(*returnSignal); ok {
				out, err = rs.value, nil
			}
			res[i] = itemResult{out, err}
			if _, ok := asError(err); ok && !x.h.exhaustive() {
				cancel()
			}
		}(i, b)
	}
	wg.Wait()
	fatalErr, firstErr, pending := joinConcurrent(ctx, res)
	switch {
	case fatalErr != nil:
		return nil, fatalErr
	case firstErr != nil || recorded != nil:
		return nil, x.failContainer(path, "parallel", recorded, firstErr)
	case pending != nil:
		return nil, pending
	}
	out := make(map[string]any, len(res))
	for i, b := range st.Parallel {
		out[b.Name] = res[i].out
	}
	return out, nil
}

func (x *exec) runTry(ctx context.Context, sc *scope, st *definition.Step, path string) (any, error) {
	t := st.Try
	out, err := x.runSteps(ctx, sc.block(bindings{}), t.Steps, join(path, "try"))
	if werr, ok := asError(err); ok && t.Catch != nil && matches(t.Catch.Errors, werr.Type) {
		out, err = x.runSteps(ctx, sc.block(bind(t.Catch.As, werr.value())), t.Catch.Steps, join(path, "catch"))
	}
	if len(t.Finally) > 0 {
		if _, isErr := asError(err); err == nil || isErr || isReturn(err) {
			if _, ferr := x.runSteps(ctx, sc.block(bindings{}), t.Finally, join(path, "finally")); ferr != nil {
				return nil, ferr
			}
		}
	}
	return out, err
}

func isReturn(err error) bool {
	_, ok := err.(*returnSignal)
	return ok
}

// runCompensations runs the recorded compensations in reverse order of
// completion (a saga). Each is journaled like any task or call, so a crash
// in the middle resumes where it stopped; a failing compensation is
// journaled and the others still run.
func (x *exec) runCompensations(ctx context.Context) error {
	x.mu.Lock()
	comps := append([]compensation(nil), x.comps...)
	x.mu.Unlock()
	for i := len(comps) - 1; i >= 0; i-- {
		c := comps[i]
		var err error
		if c.action.Task != "" {
			_, err = x.task(ctx, c.action.Task, c.input, nil, 0, c.path)
		} else {
			_, err = x.call(ctx, c.action.Call, c.input, nil, 0, c.path)
		}
		if err != nil {
			if _, ok := asError(err); !ok {
				return err
			}
		}
	}
	return nil
}
