package interpreter

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loomwork/loom/clock"
	"github.com/loomwork/loom/definition"
)

func itemPath(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

func (x *exec) runMap(ctx context.Context, sc *scope, st *definition.Step, path string) (any, error) {
	m := st.Map
	recorded, err := x.recordedFailure(path, "map")
	if err != nil || (recorded != nil && !x.h.exhaustive()) {
		return nil, orErr(err, recorded)
	}
	items, err := x.evalList(m.Items, sc, path, "map.items")
	if err != nil {
		return nil, err
	}
	n := len(items)
	if limit, source := x.d.eng.mapItemLimit(m.MaxItems); n > limit {
		return nil, &Error{Type: "LimitExceeded", Step: path,
			Message: fmt.Sprintf("map.items: %d items, more than %s of %d; no item was started", n, source, limit),
			Data:    map[string]any{"limit": "map-items", "max": limit, "items": n}}
	}
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
				// Fail fast; an exhaustive walk visits every item instead, so each
				// one's journal is checked against the definition.
				if failed.Add(1) > int64(allowed) && !x.h.exhaustive() {
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
	werr, _, _, err := x.h.failed(path, name)
	return werr, err
}

// failContainer journals a map or parallel failure (once) and returns the
// error to raise: the recorded one when there is one.
func (x *exec) failContainer(path, name string, recorded, werr *Error) error {
	if recorded != nil {
		return recorded
	}
	if err := x.h.fail(path, name, werr, time.Time{}); err != nil && err != errFrontier {
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

// recordedItem returns the journaled output of a task (or, in a live walk,
// call) item whose first attempt completed.
func (x *exec) recordedItem(st *definition.Step, path string, i int) (any, bool, error) {
	var name string
	switch {
	case st.Map.Task != "":
		name = "task:" + st.Map.Task
	case st.Map.Call != "" && !x.h.exhaustive():
		name = "call:" + st.Map.Call
	default:
		return nil, false, nil
	}
	return x.h.completed(itemPath(path, i), name)
}

func (x *exec) mapItem(ctx context.Context, sc *scope, st *definition.Step, path string, i int, item any) (any, error) {
	m := st.Map
	ipath := itemPath(path, i)
	isc := sc.child(true, bind(m.As, item).and("index", i))
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
	if st.Retry == nil && st.Timeout <= 0 {
		return x.itemSteps(ctx, isc, m.Steps, ipath)
	}
	return x.attempts(ctx, st.Retry, ipath, itemStepsName, func(ctx context.Context, ap string) (any, error) {
		if st.Timeout <= 0 {
			return x.itemSteps(ctx, isc, m.Steps, ap)
		}
		tctx, cancel := x.h.timeout(ctx, st.Timeout)
		defer cancel()
		out, err := x.itemSteps(tctx, isc, m.Steps, ap)
		if err == errCancelled && ctx.Err() == nil && clock.Expired(tctx) {
			return nil, &Error{Type: "Timeout", Message: fmt.Sprintf("map item %s timed out after %s", ap, st.Timeout), Step: ap}
		}
		return out, err
	})
}

// itemStepsName names the journaled attempts of a map item with inline
// steps (only when the map has retry or timeout: an attempt is what they
// apply to). Attempt n ≥ 2 runs the steps again under ITEM@n.
const itemStepsName = "steps"

// itemSteps runs one attempt of a map item's inline steps at path; a
// `return` among them ends the item with its value.
func (x *exec) itemSteps(ctx context.Context, sc *scope, steps []*definition.Step, path string) (any, error) {
	out, err := x.runSteps(ctx, sc, steps, path)
	if rs, ok := err.(*returnSignal); ok {
		return rs.value, nil
	}
	return out, err
}
