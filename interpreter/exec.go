package interpreter

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/loomwork/loom/definition"
	"github.com/loomwork/loom/journal"
)

// drive is one pass of the interpreter over a root execution and the
// children it reaches, under one lease.
type drive struct {
	eng    *Engine
	cat    *definition.Catalog // the pinned (or upgraded) catalog
	replay bool                // replay only: write nothing, run nothing
	token  func() int64
	execs  sync.Map // id → *exec, children loaded during this drive

	// stopRenew stops the lease renewer; released says the drive's last
	// write gave the lease up.
	stopRenew func()
	released  bool

	mu    sync.Mutex
	diffs []string // replay-only: differences found in children
	err   error    // replay-only: an error met where it could not be returned
}

// exec is the interpreter's state for one execution during a drive.
type exec struct {
	d   *drive
	rec *journal.Execution
	wf  *definition.Workflow
	app *appender

	mu       sync.Mutex
	index    map[evKey][]journal.Event // recorded events by (path, kind), in Ordinal order
	consumed map[string]bool           // paths whose recorded step events were matched
	calls    map[string]int            // builtin calls so far, per path
	pauses   []Pause                   // open pauses found in this drive
	timers   []time.Time               // pending timers found in this drive
	comps    []compensation            // recorded compensations, in completion order

	vars  map[string]any
	input any
}

type evKey struct {
	path string
	kind journal.EventKind
}

// compensation is a completed step's recorded compensation.
type compensation struct {
	path   string
	action *definition.Action
	input  any
}

func (d *drive) newExec(rec *journal.Execution, events []journal.Event) (*exec, error) {
	wf := d.cat.Workflow(rec.Workflow)
	if wf == nil {
		return nil, fmt.Errorf("%w: the definition has no workflow %q (execution %s)", ErrNonDeterminism, rec.Workflow, rec.ID)
	}
	x := &exec{
		d: d, rec: rec, wf: wf,
		index:    map[evKey][]journal.Event{},
		consumed: map[string]bool{},
		calls:    map[string]int{},
		vars:     map[string]any{},
	}
	var last int64
	for _, ev := range events {
		k := evKey{ev.Path, ev.Kind}
		x.index[k] = append(x.index[k], ev)
		last = ev.Seq
	}
	for _, evs := range x.index {
		sort.Slice(evs, func(i, j int) bool { return evs[i].Ordinal < evs[j].Ordinal })
	}
	in, err := decodeJSON(rec.Input)
	if err != nil {
		return nil, fmt.Errorf("execution %s: stored input is not JSON: %w", rec.ID, err)
	}
	x.input = in
	x.app = newAppender(d.eng.j, rec.ID, last, d.token)
	d.execs.Store(rec.ID, x)
	return x, nil
}

// stepKinds are the event kinds that say what stood at a path; their Name
// is compared with the definition to detect non-determinism.
var stepKinds = []journal.EventKind{journal.StepCompleted, journal.StepFailed, journal.PauseOpened, journal.ChildStarted, journal.TimerSet}

// recorded returns the event of kind at path, after checking that whatever
// the journal recorded at path was name. A mismatch is non-determinism.
func (x *exec) recorded(path string, kind journal.EventKind, name string) (journal.Event, bool, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, k := range stepKinds {
		for _, ev := range x.index[evKey{path, k}] {
			if ev.Name != name {
				return journal.Event{}, false, &NonDeterminismError{ExecutionID: x.rec.ID, Path: path, Recorded: ev.Name, Now: name}
			}
		}
	}
	evs := x.index[evKey{path, kind}]
	if len(evs) == 0 {
		return journal.Event{}, false, nil
	}
	x.consumed[path] = true
	return evs[len(evs)-1], true, nil
}

// note adds events this drive wrote to the index, so a later look at the
// same path (a re-walk after a child finishes, say) finds them.
func (x *exec) note(evs ...journal.Event) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, ev := range evs {
		k := evKey{ev.Path, ev.Kind}
		x.index[k] = append(x.index[k], ev)
		x.consumed[ev.Path] = true
	}
}

// write appends events and waits for their commit.
func (x *exec) write(evs ...journal.Event) error {
	if x.d.replay {
		return errFrontier
	}
	now := time.Now().UTC()
	for i := range evs {
		if evs[i].Time.IsZero() {
			evs[i].Time = now
		}
	}
	if err := x.app.append(evs, nil); err != nil {
		return fatal(err)
	}
	x.note(evs...)
	return nil
}

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

// recorder journals the builtin calls of one path (builtins.Recorder).
type recorder struct {
	x    *exec
	path string
}

// errNotRecorded stops a replay-only evaluation at a builtin call that was
// never journaled.
var errNotRecorded = errors.New("builtin value not recorded")

func (r recorder) Record(name string, fresh func() (any, error)) (any, error) {
	x := r.x
	x.mu.Lock()
	ord := x.calls[r.path]
	x.calls[r.path] = ord + 1
	evs := x.index[evKey{r.path, journal.Builtin}]
	x.mu.Unlock()
	if ord < len(evs) && evs[ord].Ordinal == ord {
		ev := evs[ord]
		if ev.Name != name {
			return nil, &NonDeterminismError{ExecutionID: x.rec.ID, Path: fmt.Sprintf("%s (builtin call %d)", r.path, ord+1), Recorded: ev.Name + "()", Now: name + "()"}
		}
		var data struct {
			Value json.RawMessage `json:"value"`
		}
		if err := json.Unmarshal(ev.Data, &data); err != nil {
			return nil, fmt.Errorf("journal: builtin %s at %s: %w", name, r.path, err)
		}
		return decodeJSON(data.Value)
	}
	if x.d.replay {
		return nil, errNotRecorded
	}
	v, err := fresh()
	if err != nil {
		return nil, err
	}
	nv, err := Normalize(v)
	if err != nil {
		return nil, err
	}
	ev := journal.Event{Path: r.path, Kind: journal.Builtin, Name: name, Ordinal: ord,
		Data: encodeJSON(map[string]any{"value": nv}), Time: time.Now().UTC()}
	x.app.enqueue(ev)
	x.note(ev)
	return nv, nil
}

// scope is what expressions see of steps and variables at one place.
// Iterations, map items and parallel branches open a scope of their own
// for steps; map items and branches also own a copy of the variables, so
// concurrent items never race on them.
type scope struct {
	parent *scope
	mu     sync.Mutex
	steps  map[string]any // id → {"output": v}
	vars   map[string]any // nil: writes go to the parent's
	names  map[string]any // item, index, err or their `as` names
}

func (s *scope) child(ownVars bool, names map[string]any) *scope {
	c := &scope{parent: s, steps: s.visibleSteps(), names: names}
	if ownVars {
		c.vars = s.allVars()
	}
	return c
}

// block is a scope that shares its parent's steps and vars (try, switch).
func (s *scope) block(names map[string]any) *scope {
	return &scope{parent: s, names: names}
}

// stepsOwner and varsOwner are the scopes whose maps a scope reads and
// writes. A map is written only by the goroutine running that scope's
// steps, and read by it or by goroutines it started and waits for, so
// expressions can see the maps themselves, without copies.
func (s *scope) stepsOwner() *scope {
	for t := s; t != nil; t = t.parent {
		if t.steps != nil {
			return t
		}
	}
	return nil
}

func (s *scope) varsOwner() *scope {
	for t := s; t != nil; t = t.parent {
		if t.vars != nil {
			return t
		}
	}
	return nil
}

func (s *scope) setStep(id string, out any) {
	if t := s.stepsOwner(); t != nil {
		t.mu.Lock()
		t.steps[id] = map[string]any{"output": out}
		t.mu.Unlock()
	}
}

func (s *scope) setVar(name string, v any) {
	if t := s.varsOwner(); t != nil {
		t.mu.Lock()
		t.vars[name] = v
		t.mu.Unlock()
	}
}

// allVars returns a copy of the variables visible here.
func (s *scope) allVars() map[string]any {
	c := map[string]any{}
	if t := s.varsOwner(); t != nil {
		t.mu.Lock()
		for k, v := range t.vars {
			c[k] = v
		}
		t.mu.Unlock()
	}
	return c
}

// visibleSteps returns a copy of the steps visible here: an iteration, map
// item or branch starts with its enclosing steps and adds its own, which
// shadow them.
func (s *scope) visibleSteps() map[string]any {
	c := map[string]any{}
	if t := s.stepsOwner(); t != nil {
		t.mu.Lock()
		for k, v := range t.steps {
			c[k] = v
		}
		t.mu.Unlock()
	}
	return c
}

// env builds the data of the expression environment at a scope; eval adds
// the builtin functions bound to the evaluating path.
func (x *exec) env(sc *scope) map[string]any {
	env := make(map[string]any, 16)
	env["input"] = x.input
	if t := sc.stepsOwner(); t != nil {
		env["steps"] = t.steps
	}
	if t := sc.varsOwner(); t != nil {
		env["vars"] = t.vars
	}
	var parent any
	if x.rec.ParentID != "" {
		parent = x.rec.ParentID
	}
	env["execution"] = map[string]any{"id": x.rec.ID, "workflow": x.rec.Workflow, "version": x.rec.Version, "parent_id": parent}
	var chain []*scope
	for t := sc; t != nil; t = t.parent {
		chain = append(chain, t)
	}
	for i := len(chain) - 1; i >= 0; i-- {
		for k, v := range chain[i].names {
			env[k] = v
		}
	}
	return env
}
