package interpreter

import (
	"cmp"
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/loomwork/loom/definition"
	"github.com/loomwork/loom/journal"
)

// diff notes a difference a replay-only pass found.
func (d *drive) diff(s string) {
	d.mu.Lock()
	d.diffs = append(d.diffs, s)
	d.mu.Unlock()
}

// fail notes an error a replay-only pass met where it could not return it.
func (d *drive) fail(err error) {
	d.mu.Lock()
	if d.err == nil {
		d.err = err
	}
	d.mu.Unlock()
}

// Replay re-derives an execution's outcome from its definition and journal
// alone, running no task and reading no clock or random source, and
// compares it with what was recorded. A journal that does not fit the
// definition is a *NonDeterminismError.
func (e *Engine) Replay(ctx context.Context, id string) (*ReplayResult, error) {
	rec, err := e.get(ctx, id)
	if err != nil {
		return nil, err
	}
	root := rec
	if rec.RootID != rec.ID {
		if root, err = e.get(ctx, rec.RootID); err != nil {
			return nil, err
		}
	}
	d := e.replayDrive(nil)
	x, err := e.load(ctx, d, root.ID)
	if err != nil {
		return nil, err
	}
	oc, err := x.runWorkflow(ctx)
	if err == nil {
		err = d.err
	}
	if err != nil {
		return nil, err
	}
	if err := d.checkConsumed(); err != nil {
		return nil, err
	}
	target := x
	if id != root.ID {
		c, ok := d.execs.Load(id)
		if !ok {
			return nil, fmt.Errorf("replay of %s did not reach child %s", root.ID, id)
		}
		target = c.(*exec)
		if oc, err = target.runWorkflow(ctx); err != nil {
			return nil, err
		}
	}
	recorded, err := toExecution(target.rec)
	if err != nil {
		return nil, err
	}
	derived := *recorded
	derived.State, derived.Output, derived.Error, derived.Pauses = oc.state, oc.output, oc.err, oc.pauses
	// What was recorded was masked; so is what a replay derives.
	derived.Output = maskValue(target.d.masker(), derived.Output)
	if derived.Error != nil {
		masked := *derived.Error
		masked.Message = target.d.masker().String(masked.Message)
		masked.Data = maskValue(target.d.masker(), masked.Data)
		derived.Error = &masked
	}
	for i := range derived.Pauses {
		if derived.Pauses[i].ExecutionID == target.rec.ID {
			derived.Pauses[i].ExecutionID = ""
		}
	}
	res := &ReplayResult{Recorded: recorded, Derived: &derived}
	res.Diff = append(res.Diff, d.diffs...)
	if recorded.State != derived.State && !(recorded.State == journal.Running && derived.State == journal.Running) {
		res.Diff = append(res.Diff, fmt.Sprintf("state: recorded %s, derived %s", recorded.State, derived.State))
	}
	if !equalValues(recorded.Output, derived.Output) {
		res.Diff = append(res.Diff, fmt.Sprintf("output: recorded %s, derived %s", short(recorded.Output, 200), short(derived.Output, 200)))
	}
	if !equalValues(errValue(recorded.Error), errValue(derived.Error)) {
		res.Diff = append(res.Diff, fmt.Sprintf("error: recorded %s, derived %s", short(errValue(recorded.Error), 200), short(errValue(derived.Error), 200)))
	}
	if recorded.State == journal.Paused && !equalValues(mustNorm(recorded.Pauses), mustNorm(derived.Pauses)) {
		res.Diff = append(res.Diff, fmt.Sprintf("pauses: recorded %s, derived %s", short(mustNorm(recorded.Pauses), 200), short(mustNorm(derived.Pauses), 200)))
	}
	res.Match = len(res.Diff) == 0
	return res, nil
}

func errValue(e *Error) any {
	if e == nil {
		return nil
	}
	return mustNorm(e.value())
}

// checkConsumed reports step events that the replay never reached: the
// definition no longer has a step the journal recorded.
func (d *drive) checkConsumed() error {
	var err error
	d.execs.Range(func(_, v any) bool {
		x := v.(*exec)
		var paths []string
		ev := x.h.ev
		ev.mu.Lock()
		defer ev.mu.Unlock()
		for path, p := range ev.byPath {
			if path == "" || p.consumed {
				continue
			}
			for _, k := range p.kinds {
				if k.kind != journal.Builtin {
					paths = append(paths, path)
					break
				}
			}
		}
		if len(paths) == 0 {
			return true
		}
		sort.Strings(paths)
		p := paths[0]
		var rec string
		for _, k := range stepKinds {
			if evs := ev.byPath[p].of(k); len(evs) > 0 {
				rec = evs[0].Name
				break
			}
		}
		err = &NonDeterminismError{ExecutionID: x.rec.ID, Path: p, Recorded: rec}
		return false
	})
	return err
}

// CheckDefinition replays the journal of execution id's tree (its root
// and every child) against cat, the way an upgrade does first, running no
// task and writing nothing. It returns nil when the new definition fits
// what was recorded, else the error an upgrade would meet, usually a
// *NonDeterminismError naming the path, what was recorded and what cat has
// there. It is `loom check`'s test before a deploy.
func (e *Engine) CheckDefinition(ctx context.Context, id string, cat *definition.Catalog) error {
	rec, err := e.get(ctx, id)
	if err != nil {
		return err
	}
	root := rec
	if rec.RootID != rec.ID {
		if root, err = e.get(ctx, rec.RootID); err != nil {
			return err
		}
	}
	return e.replayOn(ctx, root, cat)
}

// replayOn walks a root's journal replay-only on cat; any divergence is
// the non-determinism error, and nothing is written.
func (e *Engine) replayOn(ctx context.Context, root *journal.Execution, cat *definition.Catalog) error {
	if cat.Workflow(root.Workflow) == nil {
		return fmt.Errorf("%w: the new definition has no workflow %q", ErrNonDeterminism, root.Workflow)
	}
	rd := e.replayDrive(cat)
	x, err := e.load(ctx, rd, root.ID)
	if err != nil {
		return err
	}
	return rd.replayAll(ctx, x)
}

// replayAll walks x replay-only and reports any divergence from its
// journal: an error met, an event no step consumed, a child's difference.
func (rd *drive) replayAll(ctx context.Context, x *exec) error {
	if _, err := x.runWorkflow(ctx); err != nil {
		return err
	}
	if rd.err != nil {
		return rd.err
	}
	if err := rd.checkConsumed(); err != nil {
		return err
	}
	if len(rd.diffs) > 0 {
		return fmt.Errorf("%w: %s", ErrNonDeterminism, strings.Join(rd.diffs, "; "))
	}
	return nil
}

// upgrade checks that the journal of a root replays on cat, then records the
// upgrade; on divergence it writes nothing and returns the error.
func (e *Engine) upgrade(ctx context.Context, d *drive, rootID string, cat *definition.Catalog) error {
	root, err := e.get(ctx, rootID)
	if err != nil {
		return err
	}
	if err := e.replayOn(ctx, root, cat); err != nil {
		return err
	}
	src, hash, err := cat.Pin(root.Workflow)
	if err != nil {
		return err
	}
	events, err := e.j.Events(ctx, rootID, 0)
	if err != nil {
		return err
	}
	var last int64
	upgrades := 0
	for _, ev := range events {
		last = ev.Seq
		if ev.Kind == journal.DefinitionUpgraded {
			upgrades++
		}
	}
	if _, err := e.j.Append(ctx, journal.Append{ExecutionID: rootID, Token: d.token(), ExpectedSeq: last,
		Events: []journal.Event{{Kind: journal.DefinitionUpgraded, Name: "upgrade", Ordinal: upgrades, Time: e.now(),
			Data: journal.EncodeData(journal.DefinitionUpgradedData{Definition: string(src), Hash: hash})}}}); err != nil {
		return err
	}
	e.pinned.Store(hash, cat)
	d.cat = cat
	return nil
}

// Cancel cancels an unfinished execution (the whole tree of its root): the
// compensations recorded so far run in reverse order, then the execution
// and its unfinished children are CANCELLED. A finished execution is refused
// with ErrFinished.
//
// Of the resume options only WithLease applies (a dispatcher's claim).
func (e *Engine) Cancel(ctx context.Context, id string, opts ...ResumeOption) (*Execution, error) {
	var cfg resumeConfig
	for _, o := range opts {
		o(&cfg)
	}
	defer cfg.releaseUnused(e)
	rec, err := e.get(ctx, id)
	if err != nil {
		return nil, err
	}
	cfg.root = rec.RootID
	if rec.State.Finished() {
		return nil, fmt.Errorf("%w: execution %s is already %s", ErrFinished, id, rec.State)
	}
	if err := e.canDrive(ctx, rec.RootID, nil); err != nil {
		return nil, err
	}
	return cfg.drive(ctx, e, rec.RootID, func(ctx context.Context, d *drive) (*Execution, error) {
		root, err := e.get(ctx, rec.RootID)
		if err != nil {
			return nil, err
		}
		// Who asked first is the journal's to say: the process that
		// carries the cancel out is not always the one that was asked.
		d.by = cmp.Or(root.CancelRequestedBy, cfg.by)
		if root.State.Finished() {
			return nil, fmt.Errorf("%w: execution %s is already %s", ErrFinished, root.ID, root.State)
		}
		// A replay-only walk finds the recorded compensations and the
		// children, then a live one acts on each.
		rd := e.replayDrive(nil)
		rx, err := e.load(ctx, rd, root.ID)
		if err != nil {
			return nil, err
		}
		if _, err := rx.runWorkflow(ctx); err != nil {
			return nil, err
		}
		d.cat = rd.cat
		var all []*exec
		var aerr error
		rd.execs.Range(func(_, v any) bool {
			x, err := d.adopt(v.(*exec))
			if err != nil {
				aerr = err
				return false
			}
			all = append(all, x)
			return true
		})
		if aerr != nil {
			return nil, aerr
		}
		// Children first, the root last.
		if err := d.cancelAll(ctx, all); err != nil {
			return nil, err
		}
		return e.Get(ctx, id)
	})
}

func mustNorm(v any) any {
	n, _ := Normalize(v)
	return n
}
