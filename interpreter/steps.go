package interpreter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loomwork/loom/builtins"
	"github.com/loomwork/loom/definition"
	"github.com/loomwork/loom/journal"
)

func join(prefix, seg string) string {
	if prefix == "" {
		return seg
	}
	return prefix + "/" + seg
}

// evalState catches what a builtin call signalled during one evaluation:
// expr-lang wraps errors returned by functions, so the interpreter's own
// signals (not recorded, non-determinism) travel beside the evaluation.
type evalState struct {
	mu  sync.Mutex
	err error
}

type signalRecorder struct {
	recorder
	st *evalState
}

func (r signalRecorder) Record(name string, fresh func() (any, error)) (any, error) {
	v, err := r.recorder.Record(name, fresh)
	var nd *NonDeterminismError
	if err == errNotRecorded || errors.As(err, &nd) {
		r.st.mu.Lock()
		if r.st.err == nil {
			r.st.err = err
		}
		r.st.mu.Unlock()
	}
	return v, err
}

// eval runs fn (an evaluation) with the environment of path and sorts its
// failure into a signal or an ExpressionError.
func (x *exec) eval(sc *scope, path, what string, fn func(env map[string]any) (any, error)) (any, error) {
	env := x.env(sc)
	st := &evalState{}
	for k, f := range builtins.Funcs(signalRecorder{recorder{x, path}, st}, x.d.eng.clock, x.d.eng.rnd) {
		env[k] = f
	}
	v, err := fn(env)
	if st.err != nil {
		if st.err == errNotRecorded {
			return nil, errFrontier
		}
		return nil, fatal(st.err)
	}
	if err != nil {
		return nil, exprError(err, path, what)
	}
	n, err := Normalize(v)
	if err != nil {
		return nil, exprError(err, path, what)
	}
	return n, nil
}

func (x *exec) evalValue(v *definition.Value, sc *scope, path, what string) (any, error) {
	if v == nil {
		return nil, nil
	}
	if v.Form == definition.FormLit {
		return Normalize(v.Lit)
	}
	return x.eval(sc, path, what, v.Eval)
}

func (x *exec) evalExpr(e *definition.Expr, sc *scope, path, what string) (any, error) {
	return x.eval(sc, path, what, e.Eval)
}

func (x *exec) evalBool(e *definition.Expr, sc *scope, path, what string) (bool, error) {
	v, err := x.evalExpr(e, sc, path, what)
	if err != nil {
		return false, err
	}
	switch b := v.(type) {
	case bool:
		return b, nil
	case nil:
		return false, nil
	}
	return false, &Error{Type: "ExpressionError", Message: fmt.Sprintf("%s: expected true or false, got %s", what, short(v, 60)), Step: path}
}

func (x *exec) evalList(e *definition.Expr, sc *scope, path, what string) ([]any, error) {
	v, err := x.evalExpr(e, sc, path, what)
	if err != nil {
		return nil, err
	}
	switch l := v.(type) {
	case []any:
		return l, nil
	case nil:
		return nil, nil
	}
	return nil, &Error{Type: "ExpressionError", Message: fmt.Sprintf("%s: expected a list, got %s", what, short(v, 60)), Step: path}
}

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
	out, err := x.runKind(ctx, sc, st, path)
	if werr, ok := asError(err); ok && st.Fallback != nil {
		return x.runAction(ctx, sc.block(map[string]any{"err": werr.value()}), st.Fallback, path+"/#fallback")
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
			return x.runSteps(ctx, sc.block(nil), c.Steps, join(path, c.Key))
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

func (x *exec) task(ctx context.Context, name string, in any, r *definition.Retry, timeout time.Duration, path string) (any, error) {
	return x.attempts(ctx, r, path, "task:"+name, func(ctx context.Context, ap string) (any, error) {
		return x.callTask(ctx, name, in, timeout, ap)
	})
}

func (x *exec) call(ctx context.Context, wf string, in any, r *definition.Retry, timeout time.Duration, path string) (any, error) {
	return x.attempts(ctx, r, path, "call:"+wf, func(ctx context.Context, ap string) (any, error) {
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
			out, err := x.callChild(ctx, wf, in, ap)
			if err == errCancelled && ctx.Err() == context.DeadlineExceeded {
				return nil, &Error{Type: "Timeout", Message: fmt.Sprintf("call of %s timed out after %s", wf, timeout), Step: ap}
			}
			return out, err
		}
		return x.callChild(ctx, wf, in, ap)
	})
}

func itemPath(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// stepRecord is the data of step.completed and step.failed events. Output
// stays raw so it is decoded once, straight into the value model.
type stepRecord struct {
	Output    json.RawMessage `json:"output"`
	Error     *Error          `json:"error,omitempty"`
	StartedAt time.Time       `json:"started_at"`
}

// attempts runs one attempt after another at path, path@2, … as the retry
// policy allows, each journaled as step.completed or step.failed, and takes
// recorded attempts from the journal instead of running them.
func (x *exec) attempts(ctx context.Context, r *definition.Retry, path, name string, run func(ctx context.Context, ap string) (any, error)) (any, error) {
	max := 1
	if r != nil && r.MaxAttempts > 1 {
		max = r.MaxAttempts
	}
	var last *Error
	var failedAt time.Time
	for n := 1; n <= max; n++ {
		ap := path
		if n > 1 {
			if !matches(r.Errors, last.Type) {
				break
			}
			ap = fmt.Sprintf("%s@%d", path, n)
		}
		ev, ok, err := x.recorded(ap, journal.StepCompleted, name)
		if err != nil {
			return nil, fatal(err)
		}
		if ok {
			if x.d.replay && isCall(name) {
				x.replayChild(ctx, ap, ev)
			}
			out, err := recordedOutput(ev)
			if err != nil {
				return nil, fatal(fmt.Errorf("journal: %s at %s: %w", name, ap, err))
			}
			return out, nil
		}
		if ev, ok, _ := x.recorded(ap, journal.StepFailed, name); ok {
			if x.d.replay && isCall(name) {
				x.replayChild(ctx, ap, ev)
			}
			var rec stepRecord
			if err := json.Unmarshal(ev.Data, &rec); err != nil || rec.Error == nil {
				return nil, fatal(fmt.Errorf("journal: %s at %s: bad failure record", name, ap))
			}
			last, failedAt = rec.Error, ev.Time
			continue
		}
		if x.d.replay && !isCall(name) {
			return nil, errFrontier // a call's child replays itself
		}
		if n > 1 {
			if err := x.retryWait(ctx, r, n, ap, failedAt); err != nil {
				return nil, err
			}
		}
		started := time.Now().UTC()
		out, err := run(ctx, ap)
		if err == nil {
			if err := x.write(journal.Event{Path: ap, Kind: journal.StepCompleted, Name: name,
				Data: encodeJSON(map[string]any{"output": out, "started_at": started})}); err != nil {
				return nil, err
			}
			return out, nil
		}
		werr, ok := asError(err)
		if !ok {
			return nil, err // a signal: nothing to journal
		}
		if werr.Step == "" {
			werr.Step = ap
		}
		ev2 := journal.Event{Path: ap, Kind: journal.StepFailed, Name: name,
			Data: encodeJSON(map[string]any{"error": werr.value(), "started_at": started})}
		if err := x.write(ev2); err != nil {
			return nil, err
		}
		last, failedAt = werr, time.Now().UTC()
	}
	return nil, last
}

func isCall(name string) bool { return len(name) > 5 && name[:5] == "call:" }

// retryWait waits before attempt n: min(max_delay, delay·backoff^(n-2)),
// times a journaled jitter sample when asked, counted from the failure of
// the previous attempt (so a runner that resumes after a crash waits only
// what is left).
func (x *exec) retryWait(ctx context.Context, r *definition.Retry, n int, ap string, failedAt time.Time) error {
	d := float64(r.Delay) * math.Pow(r.Backoff, float64(n-2))
	if r.MaxDelay > 0 && d > float64(r.MaxDelay) {
		d = float64(r.MaxDelay)
	}
	if r.Jitter {
		v, err := recorder{x, ap}.Record("jitter", func() (any, error) {
			return float64(x.d.eng.rnd.Uint64()>>11) / (1 << 53), nil
		})
		if err == errNotRecorded {
			return errFrontier
		}
		if err != nil {
			return fatal(err)
		}
		f, _ := v.(float64)
		d *= f
	}
	if x.d.replay {
		return nil
	}
	wait := time.Until(failedAt.Add(time.Duration(d)))
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return errCancelled
	}
}

type taskResult struct {
	out any
	err error
}

// runTask calls a task, turning a panic into a TaskPanicked error: no
// stack trace reaches the user.
func runTask(fn TaskFunc, ctx context.Context, name string, input json.RawMessage) (res taskResult) {
	defer func() {
		if p := recover(); p != nil {
			res = taskResult{err: &Error{Type: "TaskPanicked", Message: fmt.Sprintf("task %s panicked: %v", name, p)}}
		}
	}()
	out, err := fn(ctx, input)
	return taskResult{out, err}
}

// callTask runs one attempt of a Go task, bounded by timeout.
func (x *exec) callTask(ctx context.Context, name string, in any, timeout time.Duration, ap string) (any, error) {
	fn, ok := x.d.eng.tasks.LookupTask(name)
	if !ok {
		return nil, &Error{Type: "UnknownTask", Message: fmt.Sprintf("no task named %q is registered in this binary", name), Step: ap}
	}
	// Builtin values the input was computed from must be durable before
	// the task acts on them.
	if err := x.app.append(nil, nil); err != nil {
		return nil, fatal(err)
	}
	key := x.rec.ID + "/" + ap
	tctx := context.WithValue(ctx, idemKey{}, key)
	tctx = builtins.WithIdempotencyKey(tctx, key)
	cancel := func() {}
	if timeout > 0 {
		tctx, cancel = context.WithTimeout(tctx, timeout)
	}
	defer cancel()
	input := encodeJSON(in)
	var res taskResult
	if timeout > 0 {
		// On its own goroutine, so a task that ignores its context still
		// cannot hold the step past its timeout.
		ch := make(chan taskResult, 1)
		go func() { ch <- runTask(fn, tctx, name, input) }()
		select {
		case res = <-ch:
		case <-tctx.Done():
		}
	} else {
		res = runTask(fn, tctx, name, input)
	}
	if ctx.Err() != nil {
		return nil, errCancelled
	}
	if tctx.Err() == context.DeadlineExceeded {
		return nil, &Error{Type: "Timeout", Message: fmt.Sprintf("task %s timed out after %s", name, timeout), Step: ap}
	}
	if res.err != nil {
		return nil, taskError(res.err, ap)
	}
	out, err := Normalize(res.out)
	if err != nil {
		return nil, &Error{Type: "InvalidOutput", Message: fmt.Sprintf("task %s returned a value that is not JSON: %v", name, err), Step: ap}
	}
	return out, nil
}

type pauseRecord struct {
	Schema   any        `json:"schema"`
	Deadline *time.Time `json:"deadline,omitempty"`
}

func (x *exec) pause(st *definition.Step, path string) (any, error) {
	name := "pause:" + st.Pause
	if ev, ok, err := x.recorded(path, journal.StepCompleted, name); err != nil {
		return nil, fatal(err)
	} else if ok {
		out, err := recordedOutput(ev)
		if err != nil {
			return nil, fatal(err)
		}
		return out, nil
	}
	if ev, ok, _ := x.recorded(path, journal.StepFailed, name); ok {
		var rec stepRecord
		if err := json.Unmarshal(ev.Data, &rec); err != nil || rec.Error == nil {
			return nil, fatal(fmt.Errorf("journal: bad failure record at %s", path))
		}
		return nil, rec.Error
	}
	var pr pauseRecord
	if ev, ok, _ := x.recorded(path, journal.PauseOpened, name); ok {
		if err := json.Unmarshal(ev.Data, &pr); err != nil {
			return nil, fatal(err)
		}
	} else {
		if x.d.replay {
			return nil, errFrontier
		}
		pr.Schema = st.SchemaRaw
		if st.Timeout > 0 {
			dl := time.Now().UTC().Add(st.Timeout)
			pr.Deadline = &dl
		}
		if err := x.write(journal.Event{Path: path, Kind: journal.PauseOpened, Name: name, Data: encodeJSON(pr)}); err != nil {
			return nil, err
		}
	}
	if pr.Deadline != nil && !x.d.replay && !time.Now().Before(*pr.Deadline) {
		werr := &Error{Type: "PauseTimeout", Message: fmt.Sprintf("pause %s was not resumed within %s", st.Pause, st.Timeout), Step: path}
		if err := x.write(journal.Event{Path: path, Kind: journal.StepFailed, Name: name,
			Data: encodeJSON(map[string]any{"error": werr.value()})}); err != nil {
			return nil, err
		}
		return nil, werr
	}
	schema, _ := Normalize(pr.Schema)
	x.mu.Lock()
	x.pauses = append(x.pauses, Pause{Name: st.Pause, Path: path, Schema: schema, ExecutionID: x.rec.ID, Deadline: pr.Deadline})
	if pr.Deadline != nil {
		x.timers = append(x.timers, *pr.Deadline)
	}
	x.mu.Unlock()
	return nil, errSuspended
}

type timerRecord struct {
	WakeAt time.Time `json:"wake_at"`
}

func (x *exec) sleep(ctx context.Context, sc *scope, st *definition.Step, path string) (any, error) {
	if _, ok, err := x.recorded(path, journal.StepCompleted, "sleep"); err != nil {
		return nil, fatal(err)
	} else if ok {
		return nil, nil
	}
	var tr timerRecord
	if ev, ok, _ := x.recorded(path, journal.TimerSet, "sleep"); ok {
		if err := json.Unmarshal(ev.Data, &tr); err != nil {
			return nil, fatal(err)
		}
	} else {
		if x.d.replay {
			return nil, errFrontier
		}
		if st.Sleep.Until != nil {
			v, err := x.evalExpr(st.Sleep.Until, sc, path, "sleep.until")
			if err != nil {
				return nil, err
			}
			s, _ := v.(string)
			t, perr := time.Parse(time.RFC3339Nano, s)
			if perr != nil {
				return nil, &Error{Type: "ExpressionError", Message: fmt.Sprintf("sleep.until: expected a time, got %s", short(v, 60)), Step: path}
			}
			tr.WakeAt = t.UTC()
		} else {
			tr.WakeAt = time.Now().UTC().Add(st.Sleep.Duration)
		}
		if err := x.write(journal.Event{Path: path, Kind: journal.TimerSet, Name: "sleep", Data: encodeJSON(tr)}); err != nil {
			return nil, err
		}
	}
	if x.d.replay {
		x.addTimer(tr.WakeAt)
		return nil, errSuspended
	}
	if wait := time.Until(tr.WakeAt); wait > 0 {
		if !x.d.eng.waitTimers || wait > x.d.eng.maxWait {
			x.addTimer(tr.WakeAt)
			return nil, errSuspended
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, errCancelled
		}
	}
	if err := x.write(journal.Event{Path: path, Kind: journal.StepCompleted, Name: "sleep", Data: encodeJSON(map[string]any{"output": nil})}); err != nil {
		return nil, err
	}
	return nil, nil
}

func (x *exec) addTimer(t time.Time) {
	x.mu.Lock()
	x.timers = append(x.timers, t)
	x.mu.Unlock()
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

func (x *exec) runMap(ctx context.Context, sc *scope, st *definition.Step, path string) (any, error) {
	m := st.Map
	recorded, err := x.recordedFailure(path, "map")
	if err != nil || (recorded != nil && !x.d.replay) {
		return nil, orErr(err, recorded)
	}
	items, err := x.evalList(m.Items, sc, path, "map.items")
	if err != nil {
		return nil, err
	}
	n := len(items)
	allowed := m.TolerateCount
	if m.TolerateIsPercent {
		allowed = int(math.Floor(m.TolerateProportion*float64(n) + 1e-9))
	}
	conc := m.Concurrency
	if conc <= 0 || conc > n {
		conc = n
	}
	ictx, cancel := context.WithCancel(ctx)
	defer cancel()
	res := make([]itemResult, n)
	var failed, done atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(conc, 1))
	for i := range items {
		// An item whose first attempt is journaled complete needs no
		// goroutine: replaying a large map stays cheap.
		if out, ok, err := x.recordedItem(st, path, i); err != nil {
			res[i] = itemResult{err: err}
			continue
		} else if ok {
			res[i] = itemResult{out: out}
			x.d.eng.progress(Progress{ExecutionID: x.rec.ID, Path: path, Done: int(done.Add(1)), Failed: int(failed.Load()), Total: n})
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ictx.Done():
			res[i] = itemResult{err: errCancelled}
			continue
		}
		if ictx.Err() != nil {
			<-sem
			res[i] = itemResult{err: errCancelled}
			continue
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			out, err := x.mapItem(ictx, sc, st, path, i, items[i])
			res[i] = itemResult{out, err}
			if _, ok := asError(err); ok {
				// Fail fast; a replay walks every item instead, so each
				// one's journal is checked against the definition.
				if failed.Add(1) > int64(allowed) && !x.d.replay {
					cancel()
				}
			}
			if err == nil || !incomplete(err) {
				x.d.eng.progress(Progress{ExecutionID: x.rec.ID, Path: path, Done: int(done.Add(1)), Failed: int(failed.Load()), Total: n})
			}
		}(i)
	}
	wg.Wait()
	fatalErr, _, pending := joinConcurrent(ctx, res)
	if fatalErr != nil {
		return nil, fatalErr
	}
	var errs []map[string]any
	out := make([]any, n)
	for i, r := range res {
		if werr, ok := asError(r.err); ok {
			errs = append(errs, werr.value())
			out[i] = map[string]any{"error": werr.value()}
		} else {
			out[i] = r.out
		}
	}
	if len(errs) > allowed {
		first := errs
		if len(first) > 3 {
			first = first[:3]
		}
		msg := fmt.Sprintf("%d of %d items failed (tolerated: %d); first: %s", len(errs), n, allowed, errs[0]["message"])
		return nil, x.failContainer(path, "map", recorded, &Error{Type: "MapFailed", Message: msg, Step: path,
			Data: map[string]any{"failed": len(errs), "total": n, "errors": toAnyList(first)}})
	}
	if recorded != nil {
		return nil, recorded
	}
	if pending != nil {
		return nil, pending
	}
	return out, nil
}

// recordedFailure returns the journaled failure of a map or parallel step.
// Which items ran before a fail-fast cancellation is a race, so the
// failure itself is journaled and a later drive takes it from there
// instead of starting the cancelled items again.
func (x *exec) recordedFailure(path, name string) (*Error, error) {
	ev, ok, err := x.recorded(path, journal.StepFailed, name)
	if err != nil {
		return nil, fatal(err)
	}
	if !ok {
		return nil, nil
	}
	var rec stepRecord
	if err := json.Unmarshal(ev.Data, &rec); err != nil || rec.Error == nil {
		return nil, fatal(fmt.Errorf("journal: bad failure record at %s", path))
	}
	return rec.Error, nil
}

// failContainer journals a map or parallel failure (once) and returns the
// error to raise: the recorded one when there is one.
func (x *exec) failContainer(path, name string, recorded, werr *Error) error {
	if recorded != nil {
		return recorded
	}
	if x.d.replay {
		return werr
	}
	if err := x.write(journal.Event{Path: path, Kind: journal.StepFailed, Name: name,
		Data: encodeJSON(map[string]any{"error": werr.value()})}); err != nil {
		return err
	}
	return werr
}

func orErr(err error, werr *Error) error {
	if err != nil {
		return err
	}
	return werr
}

func toAnyList(l []map[string]any) []any {
	out := make([]any, len(l))
	for i, m := range l {
		out[i] = m
	}
	return out
}

// recordedItem returns the journaled output of a task (or, outside a
// replay, call) item whose first attempt completed.
func (x *exec) recordedItem(st *definition.Step, path string, i int) (any, bool, error) {
	var name string
	switch {
	case st.Map.Task != "":
		name = "task:" + st.Map.Task
	case st.Map.Call != "" && !x.d.replay:
		name = "call:" + st.Map.Call
	default:
		return nil, false, nil
	}
	ev, ok, err := x.recorded(itemPath(path, i), journal.StepCompleted, name)
	if err != nil || !ok {
		return nil, false, fatalOrNil(err)
	}
	out, err := recordedOutput(ev)
	if err != nil {
		return nil, false, fatal(err)
	}
	return out, true, nil
}

// recordedOutput decodes the output of a step.completed event. The engine
// writes that data as {"output":…,"started_at":"…"} (sorted keys), so the
// output's bytes are found without decoding the record; anything else goes
// through the JSON decoder. Replaying a large map reads one per item.
func recordedOutput(ev journal.Event) (any, error) {
	const head, tail = `{"output":`, `,"started_at":"`
	d := ev.Data
	if bytes.HasPrefix(d, []byte(head)) && bytes.HasSuffix(d, []byte(`"}`)) {
		if i := bytes.LastIndex(d, []byte(tail)); i > len(head) && bytes.IndexByte(d[i+len(tail):len(d)-2], '"') < 0 {
			if out, err := decodeJSON(d[len(head):i]); err == nil {
				return out, nil
			}
		}
	}
	var rec stepRecord
	if err := json.Unmarshal(d, &rec); err != nil {
		return nil, err
	}
	return decodeJSON(rec.Output)
}

func fatalOrNil(err error) error {
	if err == nil {
		return nil
	}
	return fatal(err)
}

func (x *exec) mapItem(ctx context.Context, sc *scope, st *definition.Step, path string, i int, item any) (any, error) {
	m := st.Map
	ipath := itemPath(path, i)
	isc := sc.child(true, map[string]any{m.As: item, "index": i})
	input := func() (any, error) {
		if m.With == nil {
			return item, nil
		}
		return x.evalValue(m.With, isc, ipath, "map.with")
	}
	switch {
	case m.Task != "":
		in, err := input()
		if err != nil {
			return nil, err
		}
		return x.task(ctx, m.Task, in, st.Retry, st.Timeout, ipath)
	case m.Call != "":
		in, err := input()
		if err != nil {
			return nil, err
		}
		return x.call(ctx, m.Call, in, st.Retry, st.Timeout, ipath)
	}
	out, err := x.runSteps(ctx, isc, m.Steps, ipath)
	if rs, ok := err.(*returnSignal); ok {
		return rs.value, nil
	}
	return out, err
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
			isc := sc.child(false, map[string]any{f.As: it, "index": i})
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
		isc := sc.child(false, map[string]any{"index": i})
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
	if err != nil || (recorded != nil && !x.d.replay) {
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
			out, err := x.runSteps(bctx, sc.child(true, nil), b.Steps, join(path, b.Name))
			if rs, ok := err.(*returnSignal); ok {
				out, err = rs.value, nil
			}
			res[i] = itemResult{out, err}
			if _, ok := asError(err); ok && !x.d.replay {
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
	out, err := x.runSteps(ctx, sc.block(nil), t.Steps, join(path, "try"))
	if werr, ok := asError(err); ok && t.Catch != nil && matches(t.Catch.Errors, werr.Type) {
		out, err = x.runSteps(ctx, sc.block(map[string]any{t.Catch.As: werr.value()}), t.Catch.Steps, join(path, "catch"))
	}
	if len(t.Finally) > 0 {
		if _, isErr := asError(err); err == nil || isErr || isReturn(err) {
			if _, ferr := x.runSteps(ctx, sc.block(nil), t.Finally, join(path, "finally")); ferr != nil {
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

// openPauses returns the pauses found in this drive, in path order.
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
