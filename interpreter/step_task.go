package interpreter

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/loomwork/loom/builtins"
	"github.com/loomwork/loom/clock"
	"github.com/loomwork/loom/definition"
	"github.com/loomwork/loom/journal"
)

// task runs a `task:` step: the Go task name, as the retry policy allows,
// each attempt bounded by timeout.
func (x *exec) task(ctx context.Context, name string, in any, r *definition.Retry, timeout time.Duration, path string) (any, error) {
	return x.attempts(ctx, r, path, "task:"+name, func(ctx context.Context, ap string) (any, error) {
		return x.callTask(ctx, name, in, timeout, ap)
	})
}

// attempts runs one attempt after another at path, path@2, … as the retry
// policy allows, each recorded as step.completed or step.failed, and takes
// recorded attempts from the history instead of running them.
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
		if out, ok, err := x.h.completed(ap, name); err != nil {
			return nil, err
		} else if ok {
			x.verifyAttempt(ctx, ap, name, run)
			return out, nil
		}
		if werr, at, ok, err := x.h.failed(ap, name); err != nil {
			return nil, err
		} else if ok {
			x.verifyAttempt(ctx, ap, name, run)
			last, failedAt = werr, at
			continue
		}
		if n > 1 {
			if err := x.retryWait(ctx, r, n, ap, failedAt); err != nil {
				return nil, err
			}
		}
		started := x.h.now()
		actx, end := x.beginAttempt(ctx, name, ap, n)
		out, err := run(actx, ap)
		if end != nil {
			end(err)
		}
		if err == nil {
			if err := x.h.completeLast(path, ap, name, out, started); err != nil {
				return nil, err
			}
			return out, nil
		}
		werr, ok := asError(err)
		if !ok {
			return nil, err // a signal: nothing to record
		}
		if werr.Step == "" {
			werr.Step = ap
		}
		if err := x.h.fail(ap, name, werr, started); err != nil {
			return nil, err
		}
		last, failedAt = werr, x.h.now()
	}
	return nil, last
}

// verifyAttempt checks what a recorded attempt did (exhaustive walks): a
// call's child, or an inline item's steps walked again over their own
// records (each of which is checked on its own).
func (x *exec) verifyAttempt(ctx context.Context, ap, name string, run func(ctx context.Context, ap string) (any, error)) {
	if !x.h.exhaustive() {
		return
	}
	if name == itemStepsName {
		_, _ = run(ctx, ap)
		return
	}
	if !isCall(name) {
		return
	}
	for _, kind := range []journal.EventKind{journal.StepCompleted, journal.StepFailed} {
		if ev, ok, _ := x.h.find(ap, kind, name); ok {
			x.verifyChild(ctx, ap, ev)
			return
		}
	}
}

func isCall(name string) bool { return len(name) > 5 && name[:5] == "call:" }

// retryWait waits before attempt n: min(max_delay, delay·backoff^(n-2)),
// times a journaled jitter sample when asked, counted from the failure of
// the previous attempt (so a runner that resumes after a crash waits only
// what is left). A wait beyond WithTimerWait's max suspends the walk.
func (x *exec) retryWait(ctx context.Context, r *definition.Retry, n int, ap string, failedAt time.Time) error {
	d := float64(r.Delay) * math.Pow(r.Backoff, float64(n-2))
	if r.MaxDelay > 0 && d > float64(r.MaxDelay) {
		d = float64(r.MaxDelay)
	}
	if r.Jitter {
		f, err := x.h.random(ap)
		if err != nil {
			return err
		}
		d *= f
	}
	until := failedAt.Add(time.Duration(d))
	if x.h.live && x.h.waitTimers && until.Sub(x.h.clk.Now()) > x.h.maxWait {
		// Longer than the engine waits out in process (the service: 5 s):
		// a durable timer. The execution is WAITING until then and holds
		// no slot; the same wait is computed again from the journal when
		// it is driven again (the failure's time, the jitter sample).
		x.suspend(nil, until)
		return errSuspended
	}
	return x.h.waitUntil(ctx, until)
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
	if _, err := x.h.begin(); err != nil {
		return nil, err
	}
	fn, ok := x.d.eng.tasks.LookupTask(name)
	if !ok {
		return nil, &Error{Type: "UnknownTask", Message: fmt.Sprintf("no task named %q is registered in this binary", name), Step: ap}
	}
	// Builtin values the input was computed from must be durable before
	// the task acts on them.
	if err := x.h.flush(); err != nil {
		return nil, err
	}
	if gate := x.d.eng.taskGate; gate != nil {
		done, err := gate(ctx)
		if err != nil {
			return nil, errCancelled
		}
		defer done()
	}
	key := x.rec.ID + "/" + ap
	tctx := builtins.WithIdempotencyKey(ctx, key)
	tctx = builtins.WithMask(tctx, x.d.masker().String)
	cancel := func() {}
	if timeout > 0 {
		tctx, cancel = x.h.timeout(tctx, timeout)
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
	if clock.Expired(tctx) {
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
