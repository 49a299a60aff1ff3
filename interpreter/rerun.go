package interpreter

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/loomwork/loom/builtins"
	"github.com/loomwork/loom/definition"
	"github.com/loomwork/loom/journal"
)

// ErrNotRerunnable: a rerun was asked of an execution that is not a
// FAILED or CANCELLED root, or from a path its journal never reached.
var ErrNotRerunnable = errors.New("not rerunnable")

// RerunOption configures one Rerun.
type RerunOption func(*rerunConfig)

type rerunConfig struct {
	from     string
	cat      *definition.Catalog
	input    any
	hasInput bool
	id       string
	by       string
}

// RerunFrom runs live from the step at path: every outcome the old journal
// recorded before that step first ran is reused. The default is the step
// that failed (for a CANCELLED execution: everything it recorded).
func RerunFrom(path string) RerunOption { return func(c *rerunConfig) { c.from = path } }

// RerunDefinition reruns on a new definition instead of the old one's
// pinned definition; the reused outcomes must replay on it.
func RerunDefinition(cat *definition.Catalog) RerunOption {
	return func(c *rerunConfig) { c.cat = cat }
}

// RerunInput gives the rerun a new input instead of the old one's.
func RerunInput(input any) RerunOption {
	return func(c *rerunConfig) { c.input, c.hasInput = input, true }
}

// RerunID names the new execution (default: a new random id).
func RerunID(id string) RerunOption { return func(c *rerunConfig) { c.id = id } }

// RerunStartedBy records who asked for the rerun (the API's caller).
func RerunStartedBy(who string) RerunOption { return func(c *rerunConfig) { c.by = who } }

// RerunPathError is Rerun's refusal of a path: the step at the rerun path
// never ran in the old execution. It is ErrNotRerunnable too; a service
// answers it as a bad request rather than a conflict.
type RerunPathError struct{ err error }

func (e *RerunPathError) Error() string { return e.err.Error() }
func (e *RerunPathError) Unwrap() error { return e.err }

// Rerun starts a new execution of a FAILED or CANCELLED root execution's
// workflow whose journal begins with a rerun.of event naming the old one,
// then a copy of the old journal's events up to (not including) the first
// event at the rerun path or under it; it is then driven like Run: those
// outcomes replay, and everything from the path on runs live. Children
// the old execution started before the path are reused by id, as a resume
// would.
func (e *Engine) Rerun(ctx context.Context, oldID string, opts ...RerunOption) (*Execution, error) {
	l, cat, err := e.createRerun(ctx, oldID, opts)
	if err != nil {
		return nil, err
	}
	return e.withHeldLease(ctx, l, func(ctx context.Context, d *drive) (*Execution, error) {
		d.cat = cat
		return e.driveRoot(ctx, d, l.RootID)
	})
}

// CreateRerun writes what Rerun would drive — the new execution's record
// and its first events — and returns the lease it holds on it, undriven:
// a service hands the lease to its dispatcher (or releases it for any
// process to claim). It refuses as Rerun does.
func (e *Engine) CreateRerun(ctx context.Context, oldID string, opts ...RerunOption) (journal.Lease, error) {
	l, _, err := e.createRerun(ctx, oldID, opts)
	return l, err
}

func (e *Engine) createRerun(ctx context.Context, oldID string, opts []RerunOption) (journal.Lease, *definition.Catalog, error) {
	var cfg rerunConfig
	for _, o := range opts {
		o(&cfg)
	}
	old, err := e.get(ctx, oldID)
	if err != nil {
		return journal.Lease{}, nil, err
	}
	if old.RootID != old.ID {
		return journal.Lease{}, nil, fmt.Errorf("%w: execution %s is a child of %s; rerun its root", ErrNotRerunnable, old.ID, old.RootID)
	}
	if old.State != journal.Failed && old.State != journal.Cancelled {
		return journal.Lease{}, nil, fmt.Errorf("%w: execution %s is %s; only FAILED and CANCELLED executions are rerun", ErrNotRerunnable, old.ID, old.State)
	}
	evs, err := e.j.Events(ctx, oldID, 0)
	if err != nil {
		return journal.Lease{}, nil, err
	}
	src, hash, err := pinnedOf(old, evs)
	if err != nil {
		return journal.Lease{}, nil, err
	}
	cat := cfg.cat
	if cat == nil {
		if cat, err = e.catalogFor(old, evs); err != nil {
			return journal.Lease{}, nil, err
		}
	} else {
		if src, hash, err = cat.Pin(old.Workflow); err != nil {
			return journal.Lease{}, nil, fmt.Errorf("%w: the new definition has no workflow %q", ErrNotRerunnable, old.Workflow)
		}
		e.pinned.Store(hash, cat)
	}
	wf := cat.Workflow(old.Workflow)
	if wf == nil {
		return journal.Lease{}, nil, fmt.Errorf("%w: the definition has no workflow %q", ErrNotRerunnable, old.Workflow)
	}
	in := cfg.input
	if !cfg.hasInput {
		if in, err = decodeJSON(old.Input); err != nil {
			return journal.Lease{}, nil, err
		}
	}
	if in, err = CheckInput(wf, in); err != nil {
		return journal.Lease{}, nil, err
	}
	from := cfg.from
	if from == "" && old.State == journal.Failed {
		x, err := toExecution(old)
		if err != nil {
			return journal.Lease{}, nil, err
		}
		if x.Error != nil {
			from = stepOf(x.Error.Step)
		}
	}
	reused, err := reusable(evs, from)
	if err != nil && cfg.from == "" {
		// The failed step journals nothing of its own (a raise, an
		// expression error): all that was recorded came before it.
		from = ""
		reused, err = reusable(evs, "")
	}
	if err != nil {
		return journal.Lease{}, nil, &RerunPathError{fmt.Errorf("%w: %v", ErrNotRerunnable, err)}
	}
	id := cfg.id
	if id == "" {
		id = builtins.UUID4(builtins.CryptoRandom{})
	}
	now := e.now()
	rec := &journal.Execution{
		ID: id, RootID: id, Workflow: old.Workflow, Version: wf.Version, State: journal.Running,
		Input: encodeJSON(in), Definition: src, DefinitionHash: hash, CreatedAt: now, UpdatedAt: now,
		Labels: old.Labels, StartedBy: cfg.by,
	}
	link := journal.Event{Kind: journal.RerunOf, Name: "rerun", Time: now,
		Data: journal.EncodeData(journal.RerunOfData{ExecutionID: old.ID, From: from, Reused: len(reused)})}
	first := append([]journal.Event{link}, reused...)
	if cfg.cat != nil {
		// On a new definition the reused outcomes must replay: walk the
		// new execution's journal-to-be on it before anything is written,
		// so a divergence leaves no execution behind.
		if err := e.replayPending(ctx, rec, first, cat); err != nil {
			return journal.Lease{}, nil, err
		}
	}
	l, err := e.j.CreateHeld(ctx, rec, e.holder, e.leaseTTL)
	if err != nil {
		return journal.Lease{}, nil, err
	}
	if _, err := e.j.Append(ctx, journal.Append{ExecutionID: id, Token: l.Token, Events: first}); err != nil {
		_ = e.j.Release(context.Background(), l)
		return journal.Lease{}, nil, err
	}
	return l, cat, nil
}

// replayPending walks, replay-only on cat, an execution that is not
// written yet: rec with the events evs it is about to get (numbered here
// as Append will number them).
func (e *Engine) replayPending(ctx context.Context, rec *journal.Execution, evs []journal.Event, cat *definition.Catalog) error {
	numbered := make([]journal.Event, len(evs))
	for i, ev := range evs {
		ev.Seq = int64(i + 1)
		numbered[i] = ev
	}
	rd := e.replayDrive(cat)
	x, err := rd.newExec(rec, newEvents(numbered))
	if err != nil {
		return err
	}
	return rd.replayAll(ctx, x)
}

// stepOf is the step path of an error's attempt path: "charge@3" and
// "stars[2]/fetch@2" are reruns of "charge" and "stars[2]/fetch".
func stepOf(path string) string {
	if i := strings.LastIndexByte(path, '@'); i > strings.LastIndexByte(path, '/') {
		return path[:i]
	}
	return path
}

// under reports whether an event path belongs to the step at path: the
// step itself, one of its attempts (P@2), items (P[3]) or nested steps.
func under(evPath, path string) bool {
	if evPath == path {
		return true
	}
	if !strings.HasPrefix(evPath, path) {
		return false
	}
	switch evPath[len(path)] {
	case '/', '@', '[':
		return true
	}
	return false
}

// reusable returns the events to copy: those recorded before the first
// event at or under from (all of them when from is ""), leaving out what
// ended or decided the old execution as a whole.
func reusable(evs []journal.Event, from string) ([]journal.Event, error) {
	cut := len(evs)
	if from != "" {
		cut = -1
		for i, ev := range evs {
			if ev.Path != "" && under(ev.Path, from) {
				cut = i
				break
			}
		}
		if cut < 0 {
			return nil, fmt.Errorf("the journal has nothing at %q: that step never ran", from)
		}
	}
	var out []journal.Event
	for _, ev := range evs[:cut] {
		switch ev.Kind {
		case journal.ExecutionFinished, journal.CancelRequested, journal.TimedOut, journal.DefinitionUpgraded, journal.RerunOf:
			continue
		}
		if strings.HasSuffix(ev.Path, "/#compensate") || ev.Path == "#compensate" {
			continue // a saga that undid the old run is not part of the new one
		}
		ev.Seq = 0
		out = append(out, ev)
	}
	return out, nil
}
