package interpreter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loomwork/loom/builtins"
	"github.com/loomwork/loom/definition"
	"github.com/loomwork/loom/journal"
	"github.com/santhosh-tekuri/jsonschema/v5"
)

// Engine runs workflows of a catalog against a journal. It is safe for
// concurrent use: many executions may run at once.
type Engine struct {
	cat      *definition.Catalog
	tasks    Tasks
	j        journal.Journal
	clock    builtins.Clock
	rnd      builtins.Random
	holder   journal.Holder
	leaseTTL time.Duration

	waitTimers bool
	maxWait    time.Duration
	onProgress func(Progress)
	onStep     func(StepEvent)

	pinned sync.Map // definition hash → *definition.Catalog
	pins   sync.Map // workflow name → pin, of e.cat
}

type pin struct {
	src  []byte
	hash string
}

// pin returns the pinned form of a workflow of the engine's catalog,
// computed once: the catalog is immutable.
func (e *Engine) pin(workflow string) ([]byte, string, error) {
	if p, ok := e.pins.Load(workflow); ok {
		return p.(pin).src, p.(pin).hash, nil
	}
	src, hash, err := e.cat.Pin(workflow)
	if err != nil {
		return nil, "", err
	}
	e.pins.Store(workflow, pin{src, hash})
	e.pinned.LoadOrStore(hash, e.cat)
	return src, hash, nil
}

// Option configures an Engine.
type Option func(*Engine)

// WithClock sets the clock behind now() (tests inject one that fails when
// called to prove a replay reads the journal).
func WithClock(c builtins.Clock) Option { return func(e *Engine) { e.clock = c } }

// WithRandom sets the random source behind uuid4(), randint() and the rest.
func WithRandom(r builtins.Random) Option { return func(e *Engine) { e.rnd = r } }

// WithLeaseTTL sets how long a lease lasts unless renewed (default 30 s).
func WithLeaseTTL(d time.Duration) Option { return func(e *Engine) { e.leaseTTL = d } }

// WithHolder names this runner in leases (default: a random id, the host
// name and the process id).
func WithHolder(h journal.Holder) Option { return func(e *Engine) { e.holder = h } }

// WithTimerWait sets whether the engine waits out `sleep` timers itself (the
// default) or, when false, journals the timer and returns the execution
// WAITING. Timers further away than max are never waited out in process
// (max ≤ 0: no limit).
func WithTimerWait(wait bool, max time.Duration) Option {
	return func(e *Engine) {
		e.waitTimers = wait
		if max > 0 {
			e.maxWait = max
		}
	}
}

// Progress reports the advance of a map or for step.
type Progress struct {
	ExecutionID string
	Path        string
	Done        int
	Failed      int
	Total       int // 0 for a while loop
}

// WithProgress calls fn as map items and for iterations finish. fn is called
// from the goroutines that run the items and must be quick and safe for
// concurrent use.
func WithProgress(fn func(Progress)) Option { return func(e *Engine) { e.onProgress = fn } }

// New returns an engine over a checked catalog, a task registry and a journal.
func New(cat *definition.Catalog, tasks Tasks, j journal.Journal, opts ...Option) *Engine {
	host, _ := os.Hostname()
	e := &Engine{
		cat: cat, tasks: tasks, j: j,
		clock:      builtins.SystemClock{},
		rnd:        builtins.CryptoRandom{},
		leaseTTL:   journal.DefaultLeaseTTL,
		waitTimers: true,
		maxWait:    time.Duration(math.MaxInt64),
	}
	e.holder = journal.Holder{ID: builtins.UUID4(builtins.CryptoRandom{}), Host: host, PID: os.Getpid()}
	if tasks == nil {
		e.tasks = NewRegistry()
	}
	for _, o := range opts {
		o(e)
	}
	return e
}

// StepEvent reports that a drive reached a step: it ran (or replayed from
// the journal), or its `if` was false and it was skipped.
type StepEvent struct {
	ExecutionID string
	Workflow    string
	Path        string
	Kind        definition.Kind
	Skipped     bool
}

// WithStepObserver calls fn each time a drive reaches a step, replays
// included (every drive walks from the top). It is how `loom test` learns
// which paths ran and which were skipped, including steps the journal does
// not record (set, switch, if). fn is called from the goroutines that run
// the steps and must be quick and safe for concurrent use.
func WithStepObserver(fn func(StepEvent)) Option { return func(e *Engine) { e.onStep = fn } }

func (e *Engine) progress(p Progress) {
	if e.onProgress != nil {
		e.onProgress(p)
	}
}

// RunOption configures one Run.
type RunOption func(*runConfig)

type runConfig struct{ id string }

// WithExecutionID starts the execution under a chosen id instead of a new
// random one; a second Run with the same id is refused (journal.ErrExists),
// which makes starting a workflow idempotent.
func WithExecutionID(id string) RunOption { return func(c *runConfig) { c.id = id } }

// Run starts workflow with input and drives it until it completes, fails,
// pauses or waits on a timer. The error return is only for refusals (unknown
// workflow, invalid input, journal failures); a failing workflow is an
// Execution in state FAILED.
func (e *Engine) Run(ctx context.Context, workflow string, input any, opts ...RunOption) (*Execution, error) {
	var cfg runConfig
	for _, o := range opts {
		o(&cfg)
	}
	if e.cat == nil || e.cat.Workflow(workflow) == nil {
		return nil, fmt.Errorf("%w: no workflow named %q in the catalog", ErrNotFound, workflow)
	}
	wf := e.cat.Workflow(workflow)
	in, err := CheckInput(wf, input)
	if err != nil {
		return nil, err
	}
	src, hash, err := e.pin(workflow)
	if err != nil {
		return nil, err
	}
	id := cfg.id
	if id == "" {
		id = builtins.UUID4(builtins.CryptoRandom{})
	}
	now := time.Now().UTC()
	rec := &journal.Execution{
		ID: id, RootID: id, Workflow: workflow, Version: wf.Version, State: journal.Running,
		Input: encodeJSON(in), Definition: src, DefinitionHash: hash, CreatedAt: now, UpdatedAt: now,
	}
	l, err := e.j.CreateHeld(ctx, rec, e.holder, e.leaseTTL)
	if err != nil {
		return nil, err
	}
	return e.withHeldLease(ctx, l, func(ctx context.Context, d *drive) (*Execution, error) {
		// A new execution has no events: drive it from the record in hand.
		d.cat = e.cat
		x, err := d.newExec(rec, nil)
		if err != nil {
			return nil, err
		}
		return e.driveExec(ctx, x)
	})
}

// CheckInput normalises a run input and validates it against wf's input
// schema; a refusal wraps ErrInvalidInput and says what is wrong in one
// line. Run calls it; so can a caller that must refuse before touching
// anything (the CLI, before it creates a journal file).
func CheckInput(wf *definition.Workflow, input any) (any, error) {
	in, err := Normalize(input)
	if err != nil {
		return nil, fmt.Errorf("%w: the input is not JSON: %v", ErrInvalidInput, err)
	}
	if wf.InputSchema != nil {
		if err := wf.InputSchema.Validate(in); err != nil {
			return nil, fmt.Errorf("%w: the input does not match the input schema of %s: %s", ErrInvalidInput, wf.Name, schemaMessage(err))
		}
	}
	return in, nil
}

// Resume continues an execution: it delivers payload to its only open pause
// (nil means no payload: a null one for a PAUSED execution), continues a
// WAITING or interrupted one, and reports the recorded outcome of a finished
// one without running anything.
func (e *Engine) Resume(ctx context.Context, id string, payload any, opts ...ResumeOption) (*Execution, error) {
	return e.ResumePause(ctx, id, "", payload, opts...)
}

// ResumeOption configures one Resume.
type ResumeOption func(*resumeConfig)

type resumeConfig struct {
	upgrade *definition.Catalog
	due     bool
}

// OnlyDue continues what is due and delivers nothing: timers whose time
// came, pauses past their deadline (they fail with PauseTimeout), a
// workflow past its timeout, a runner that died. A PAUSED execution with
// nothing due stays PAUSED. `loom resume --due` uses it.
func OnlyDue() ResumeOption {
	return func(c *resumeConfig) { c.due = true }
}

// WithDefinition upgrades the execution to a new catalog: the journal is
// replayed against it first, and any divergence is a NonDeterminismError
// with nothing written. Without it, the pinned definition is used.
func WithDefinition(cat *definition.Catalog) ResumeOption {
	return func(c *resumeConfig) { c.upgrade = cat }
}

// ResumePause is Resume naming the pause (its name or path) to deliver
// payload to, for executions with several open pauses.
func (e *Engine) ResumePause(ctx context.Context, id, pause string, payload any, opts ...ResumeOption) (*Execution, error) {
	var cfg resumeConfig
	for _, o := range opts {
		o(&cfg)
	}
	rec, err := e.get(ctx, id)
	if err != nil {
		return nil, err
	}
	deliver := payload != nil || pause != ""
	if cfg.due && deliver {
		return nil, fmt.Errorf("%w: a resume of what is due delivers no payload", ErrInvalidInput)
	}
	if rec.State.Finished() {
		if deliver || cfg.upgrade != nil {
			return nil, fmt.Errorf("%w: execution %s is %s", ErrNotPaused, id, rec.State)
		}
		return toExecution(rec)
	}
	return e.withLease(ctx, rec.RootID, func(ctx context.Context, d *drive) (*Execution, error) {
		rec, err := e.get(ctx, id) // again, under the lease
		if err != nil {
			return nil, err
		}
		if rec.State.Finished() {
			if deliver {
				return nil, fmt.Errorf("%w: execution %s is %s", ErrNotPaused, id, rec.State)
			}
			return toExecution(rec)
		}
		if cfg.upgrade != nil {
			if err := e.upgrade(ctx, d, rec.RootID, cfg.upgrade); err != nil {
				return nil, err
			}
		}
		var late error
		if rec.State == journal.Paused && !cfg.due {
			if late = e.deliver(ctx, d, rec, pause, payload); late != nil && !errors.Is(late, errPauseLate) {
				return nil, late
			}
		} else if deliver {
			return nil, fmt.Errorf("%w: execution %s is %s, not waiting for a payload", ErrNotPaused, id, rec.State)
		}
		if _, err := e.driveRoot(ctx, d, rec.RootID); err != nil {
			return nil, err
		}
		if late != nil && deliver {
			// The pause timed out before the payload came: the drive
			// recorded PauseTimeout, and the payload is refused.
			return nil, late
		}
		return e.Get(ctx, id)
	})
}

// errPauseLate: the chosen pause's deadline has passed; nothing is
// delivered and the drive records its PauseTimeout.
var errPauseLate = errors.New("pause deadline passed")

// deliver validates payload against the chosen pause's schema and journals
// it as the pause's output. Nothing is written when it is refused.
func (e *Engine) deliver(ctx context.Context, d *drive, rec *journal.Execution, sel string, payload any) error {
	var pauses []Pause
	if len(rec.Pauses) > 0 {
		if err := json.Unmarshal(rec.Pauses, &pauses); err != nil {
			return fmt.Errorf("execution %s: stored pauses are not JSON: %w", rec.ID, err)
		}
	}
	var chosen []Pause
	for _, p := range pauses {
		if sel == "" || p.Name == sel || p.Path == sel {
			chosen = append(chosen, p)
		}
	}
	switch {
	case len(chosen) == 0 && sel != "":
		return fmt.Errorf("%w: execution %s has no open pause named %q (open: %s)", ErrNotPaused, rec.ID, sel, pauseList(pauses))
	case len(chosen) == 0:
		return fmt.Errorf("%w: execution %s has no open pause", ErrNotPaused, rec.ID)
	case len(chosen) > 1:
		return fmt.Errorf("%w: execution %s has %d open pauses (%s); name one with --pause", ErrInvalidInput, rec.ID, len(chosen), pauseList(chosen))
	}
	p := chosen[0]
	if p.Deadline != nil && !time.Now().Before(*p.Deadline) {
		return fmt.Errorf("%w: pause %s of execution %s timed out at %s (%w)", ErrNotPaused, p.Name, rec.ID, p.Deadline.UTC().Format(time.RFC3339), errPauseLate)
	}
	val, err := Normalize(payload)
	if err != nil {
		return fmt.Errorf("%w: the payload is not JSON: %v", ErrInvalidInput, err)
	}
	if p.Schema != nil {
		sch, err := compileSchema(p.Schema)
		if err != nil {
			return fmt.Errorf("pause %s: its schema does not compile: %w", p.Path, err)
		}
		if err := sch.Validate(val); err != nil {
			return fmt.Errorf("%w: the payload does not match the schema of pause %s: %s", ErrInvalidInput, p.Name, schemaMessage(err))
		}
	}
	target := p.ExecutionID
	if target == "" {
		target = rec.ID
	}
	events, err := e.j.Events(ctx, target, 0)
	if err != nil {
		return err
	}
	var last int64
	name := "pause:" + p.Name
	opened := time.Now().UTC()
	for _, ev := range events {
		last = ev.Seq
		if ev.Path != p.Path {
			continue
		}
		switch ev.Kind {
		case journal.StepCompleted, journal.StepFailed:
			return fmt.Errorf("%w: pause %s of execution %s was already resumed", ErrNotPaused, p.Path, target)
		case journal.PauseOpened:
			opened = ev.Time // the pause's duration is how long it waited
		}
	}
	running := journal.Running
	_, err = e.j.Append(ctx, journal.Append{ExecutionID: target, Token: d.token(), ExpectedSeq: last,
		Events: []journal.Event{{Path: p.Path, Kind: journal.StepCompleted, Name: name,
			Data: encodeJSON(map[string]any{"output": val, "started_at": opened})}},
		Update: &journal.Update{State: &running}})
	return err
}

func pauseList(ps []Pause) string {
	s := ""
	for i, p := range ps {
		if i > 0 {
			s += ", "
		}
		s += p.Name + " at " + p.Path
	}
	if s == "" {
		return "none"
	}
	return s
}

// withLease takes the lease of a root execution (taking over at once a lease
// whose holder is a dead process on this host), keeps it renewed while fn
// runs, and releases it after.
func (e *Engine) withLease(ctx context.Context, rootID string, fn func(ctx context.Context, d *drive) (*Execution, error)) (*Execution, error) {
	l, err := e.j.Acquire(ctx, rootID, e.holder, e.leaseTTL, 0)
	var busy *journal.BusyError
	if errors.As(err, &busy) && holderDead(e.holder, busy.Lease.Holder) {
		l, err = e.j.Acquire(ctx, rootID, e.holder, e.leaseTTL, busy.Lease.Token)
	}
	if err != nil {
		return nil, err
	}
	return e.withHeldLease(ctx, l, fn)
}

// withHeldLease runs fn under a lease already taken.
func (e *Engine) withHeldLease(ctx context.Context, l journal.Lease, fn func(ctx context.Context, d *drive) (*Execution, error)) (*Execution, error) {
	var token atomic.Int64
	token.Store(l.Token)
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var lost atomic.Bool
	stop := make(chan struct{})
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(e.leaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				nl, err := e.j.Renew(context.Background(), l, e.leaseTTL)
				if err != nil {
					if errors.Is(err, journal.ErrFenced) {
						lost.Store(true)
						cancel()
						return
					}
					continue
				}
				l = nl
			}
		}
	}()
	var once sync.Once
	stopRenew := func() {
		once.Do(func() {
			close(stop)
			<-renewed
		})
	}
	d := &drive{eng: e, token: token.Load, stopRenew: stopRenew}
	ex, err := fn(dctx, d)
	stopRenew()
	if !d.released {
		if rerr := e.j.Release(context.Background(), l); rerr != nil && err == nil && !lost.Load() && !errors.Is(rerr, journal.ErrFenced) {
			err = rerr
		}
	}
	if lost.Load() && err == nil {
		err = journal.ErrFenced
	}
	return ex, err
}

// catalogFor returns the catalog an execution runs on: the pinned one, or
// the one its last upgrade recorded.
func (e *Engine) catalogFor(root *journal.Execution, events []journal.Event) (*definition.Catalog, error) {
	src, hash := root.Definition, root.DefinitionHash
	for _, ev := range events {
		if ev.Kind == journal.DefinitionUpgraded {
			var u upgradeRecord
			if err := json.Unmarshal(ev.Data, &u); err != nil {
				return nil, fmt.Errorf("journal: bad upgrade record: %w", err)
			}
			src, hash = []byte(u.Definition), u.Hash
		}
	}
	if c, ok := e.pinned.Load(hash); ok {
		return c.(*definition.Catalog), nil
	}
	cat, err := definition.Parse("pinned:"+root.ID, src)
	if err != nil {
		return nil, fmt.Errorf("execution %s: its pinned definition does not load: %w", root.ID, err)
	}
	e.pinned.Store(hash, cat)
	return cat, nil
}

type upgradeRecord struct {
	Definition string `json:"definition"`
	Hash       string `json:"hash"`
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
	// Read the record back: the journal owns its timestamps.
	return e.Get(ctx, x.rec.ID)
}

// load reads a root execution and its events and prepares it for a drive.
func (e *Engine) load(ctx context.Context, d *drive, id string) (*exec, error) {
	rec, err := e.get(ctx, id)
	if err != nil {
		return nil, err
	}
	events, err := e.j.Events(ctx, id, 0)
	if err != nil {
		return nil, err
	}
	if d.cat == nil {
		if d.cat, err = e.catalogFor(rec, events); err != nil {
			return nil, err
		}
	}
	return d.newExec(rec, events)
}

// outcome is where a drive of one execution got to.
type outcome struct {
	state  journal.State // Completed, Failed, Paused, Waiting, or Running when interrupted
	output any
	err    *Error
	pauses []Pause
	wake   time.Time
}

func (x *exec) timeoutError() *Error {
	return &Error{Type: "Timeout", Message: fmt.Sprintf("workflow %s did not finish within its timeout of %s", x.wf.Name, x.wf.Timeout)}
}

func (x *exec) timedOutRecorded() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.index[evKey{"", journal.TimedOut}]) > 0
}

// collectCompensations rebuilds the recorded compensations of x by a
// replay-only walk of its journal, for when x cannot be walked for real
// (its workflow timeout passed before this drive).
func (x *exec) collectCompensations(ctx context.Context) error {
	events, err := x.d.eng.j.Events(ctx, x.rec.ID, 0)
	if err != nil {
		return err
	}
	rd := &drive{eng: x.d.eng, replay: true, cat: x.d.cat, token: x.d.token}
	rx, err := rd.newExec(x.rec, events)
	if err != nil {
		return err
	}
	if _, err := rx.runWorkflow(ctx); err != nil {
		return err
	}
	x.mu.Lock()
	x.comps = rx.comps
	x.mu.Unlock()
	return nil
}

// timeOut journals that x timed out, runs its compensations and fails it.
func (x *exec) timeOut(ctx context.Context) (outcome, error) {
	if !x.timedOutRecorded() {
		if err := x.write(journal.Event{Kind: journal.TimedOut, Name: "timeout", Data: json.RawMessage("{}")}); err != nil {
			return outcome{}, unfatal(err)
		}
	}
	if err := x.runCompensations(ctx); err != nil && !incomplete(err) {
		if _, ok := asError(err); !ok {
			return outcome{}, unfatal(err)
		}
	}
	return outcome{state: journal.Failed, err: x.timeoutError()}, nil
}

func cancelledError() *Error {
	return &Error{Type: "Cancelled", Message: "the execution was cancelled"}
}

func (x *exec) cancelRequested() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.index[evKey{"", journal.CancelRequested}]) > 0
}

// runWorkflow interprets the execution's workflow from the top.
func (x *exec) runWorkflow(ctx context.Context) (outcome, error) {
	if x.rec.State.Finished() && !x.d.replay {
		return recordedOutcome(x.rec)
	}
	wctx := ctx
	var deadline time.Time
	if x.wf.Timeout > 0 {
		// The clock decides a workflow timeout once, and the decision is
		// journaled (timed_out): a replay reads it, never the clock.
		deadline = x.rec.CreatedAt.Add(x.wf.Timeout)
		if !x.d.replay {
			if !time.Now().Before(deadline) {
				if err := x.collectCompensations(ctx); err != nil {
					return outcome{}, err
				}
				return x.timeOut(ctx)
			}
			var cancel context.CancelFunc
			wctx, cancel = context.WithDeadline(ctx, deadline)
			defer cancel()
		}
	}
	sc := &scope{steps: map[string]any{}, vars: x.vars}
	out, err := x.runSteps(wctx, sc, x.wf.Steps, "")
	if rs, ok := err.(*returnSignal); ok {
		// `return` gives the workflow's output; `output` is not evaluated.
		out, err = rs.value, nil
	} else if err == nil && x.wf.Output != nil {
		out, err = x.evalValue(x.wf.Output, sc, "#output", "output")
	}
	if x.d.replay && x.cancelRequested() {
		// A cancelled execution re-derives as its cancel did: wherever the
		// walk stopped, the recorded compensations, then CANCELLED.
		if cerr := x.runCompensations(ctx); cerr != nil && !incomplete(cerr) {
			if _, ok := asError(cerr); !ok {
				return outcome{}, unfatal(cerr)
			}
		}
		return outcome{state: journal.Cancelled, err: cancelledError()}, nil
	}
	if _, isErr := asError(err); err == nil || isErr || incomplete(err) {
		switch {
		case x.d.replay && x.timedOutRecorded():
			err = x.timeoutError()
		case !x.d.replay && !deadline.IsZero() && ctx.Err() == nil && (wctx.Err() != nil || !time.Now().Before(deadline)):
			// The walk collected the compensations of what completed.
			return x.timeOut(ctx)
		}
	}
	switch {
	case err == nil:
		return outcome{state: journal.Completed, output: out}, nil
	case err == errSuspended:
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
		if !deadline.IsZero() && (oc.wake.IsZero() || deadline.Before(oc.wake)) {
			oc.wake = deadline
		}
		return oc, nil
	case err == errFrontier, err == errCancelled:
		return outcome{state: journal.Running}, nil
	}
	if werr, ok := asError(err); ok {
		if cerr := x.runCompensations(ctx); cerr != nil {
			if cerr == errFrontier || cerr == errCancelled {
				return outcome{state: journal.Running}, nil
			}
			return outcome{}, unfatal(cerr)
		}
		return outcome{state: journal.Failed, err: werr}, nil
	}
	return outcome{}, unfatal(err)
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

// finish records an outcome on the execution's record.
func (x *exec) finish(oc outcome) error {
	if x.d.replay {
		return nil
	}
	st := oc.state
	upd := &journal.Update{State: &st}
	var evs []journal.Event
	switch st {
	case journal.Running:
		return nil // interrupted: the record stays RUNNING for whoever resumes it
	case journal.Completed, journal.Failed, journal.Cancelled:
		if x.rec.State == st && x.rec.State.Finished() {
			return nil
		}
		zero := time.Time{}
		upd.Pauses, upd.WakeAt = json.RawMessage("null"), &zero
		data := map[string]any{"state": string(st), "output": oc.output}
		if oc.err != nil {
			upd.Error = encodeJSON(oc.err)
			data["error"] = oc.err.value()
		} else {
			upd.Output = encodeJSON(oc.output)
		}
		evs = append(evs, journal.Event{Kind: journal.ExecutionFinished, Name: string(st), Data: encodeJSON(data), Time: time.Now().UTC()})
	case journal.Paused, journal.Waiting:
		ps := oc.pauses
		if ps == nil {
			ps = []Pause{}
		}
		upd.Pauses = encodeJSON(ps)
		w := oc.wake
		upd.WakeAt = &w
	}
	if x.rec.ID == x.rec.RootID && x.d.stopRenew != nil {
		// The root's record is a drive's last write: give the lease up in
		// the same commit (the renewer stops first, so it cannot find the
		// lease gone and take that for a loss).
		x.d.stopRenew()
		x.d.released = true
		if err := x.app.appendRelease(evs, upd); err != nil {
			return err
		}
	} else if err := x.app.append(evs, upd); err != nil {
		return err
	}
	// Keep the record in hand as the journal now has it.
	upd.ApplyTo(x.rec)
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
	sort.SliceStable(orphans, func(i, j int) bool { return depth(orphans[i], d) > depth(orphans[j], d) })
	ctx = context.WithoutCancel(ctx)
	for _, c := range orphans {
		if err := c.cancel(ctx); err != nil {
			return err
		}
	}
	return nil
}

// cancel records a cancellation of x, runs its recorded compensations and
// finishes it CANCELLED.
func (x *exec) cancel(ctx context.Context) error {
	if err := x.write(journal.Event{Kind: journal.CancelRequested, Name: "cancel", Data: json.RawMessage("{}")}); err != nil {
		return unfatal(err)
	}
	if err := x.runCompensations(ctx); err != nil && !errors.Is(err, errCancelled) {
		return unfatal(err)
	}
	return x.finish(outcome{state: journal.Cancelled, err: cancelledError()})
}

// callChild runs (or continues) the child execution started at ap.
func (x *exec) callChild(ctx context.Context, wfName string, in any, ap string) (any, error) {
	name := "call:" + wfName
	ev, ok, err := x.recorded(ap, journal.ChildStarted, name)
	if err != nil {
		return nil, fatal(err)
	}
	var child *exec
	if ok {
		child, err = x.openChild(ctx, ev, wfName, in, ap)
		if err != nil {
			return nil, err
		}
	} else {
		if x.d.replay {
			return nil, errFrontier
		}
		wf := x.d.cat.Workflow(wfName)
		if wf == nil {
			return nil, &Error{Type: "UnknownWorkflow", Message: fmt.Sprintf("no workflow named %q in the pinned definition", wfName), Step: ap}
		}
		if wf.InputSchema != nil {
			if err := wf.InputSchema.Validate(in); err != nil {
				return nil, &Error{Type: "InvalidInput", Message: fmt.Sprintf("the input of %s does not match its input schema: %s", wfName, schemaMessage(err)), Step: ap}
			}
		}
		id := builtins.UUID4(builtins.CryptoRandom{})
		ev := journal.Event{Path: ap, Kind: journal.ChildStarted, Name: name,
			Data: encodeJSON(map[string]any{"id": id, "workflow": wfName})}
		// The child's id is journaled before the child exists, so a crash
		// between the two makes the resume create that same child.
		if err := x.write(ev); err != nil {
			return nil, err
		}
		if child, err = x.openChild(ctx, ev, wfName, in, ap); err != nil {
			return nil, err
		}
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
		if !oc.wake.IsZero() {
			x.timers = append(x.timers, oc.wake)
		}
		x.mu.Unlock()
		return nil, errSuspended
	}
	if x.d.replay {
		return nil, errFrontier
	}
	return nil, errCancelled
}

type childRecord struct {
	ID string `json:"id"`
}

// openChild loads the child journaled by ev, creating its record if a crash
// came between the journal entry and the creation.
func (x *exec) openChild(ctx context.Context, ev journal.Event, wfName string, in any, ap string) (*exec, error) {
	var cr childRecord
	if err := json.Unmarshal(ev.Data, &cr); err != nil || cr.ID == "" {
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
	if errors.Is(err, journal.ErrNotFound) && !x.d.replay {
		wf := x.d.cat.Workflow(wfName)
		version := 1
		if wf != nil {
			version = wf.Version
		}
		rec = &journal.Execution{ID: cr.ID, Workflow: wfName, Version: version, State: journal.Running,
			ParentID: x.rec.ID, RootID: x.rec.RootID, ParentPath: ap, Input: encodeJSON(in),
			Definition: x.rec.Definition, DefinitionHash: x.rec.DefinitionHash}
		if err := j.Create(ctx, rec); err != nil && !errors.Is(err, journal.ErrExists) {
			return nil, fatal(err)
		}
		rec, err = j.Get(ctx, cr.ID)
	}
	if err != nil {
		if x.d.replay && errors.Is(err, journal.ErrNotFound) {
			return nil, errFrontier
		}
		return nil, fatal(err)
	}
	events, err := j.Events(ctx, cr.ID, 0)
	if err != nil {
		return nil, fatal(err)
	}
	child, err := x.d.newExec(rec, events)
	if err != nil {
		return nil, fatal(err)
	}
	return child, nil
}

// replayChild re-derives, in a replay-only pass, the child whose outcome the
// parent recorded at ap, so Replay and upgrades check children too.
func (x *exec) replayChild(ctx context.Context, ap string, done journal.Event) {
	evs := x.index[evKey{ap, journal.ChildStarted}]
	if len(evs) == 0 {
		return
	}
	child, err := x.openChild(ctx, evs[len(evs)-1], "", nil, ap)
	if err != nil {
		x.d.diff(fmt.Sprintf("%s: child execution: %v", ap, err))
		return
	}
	oc, err := child.runWorkflow(ctx)
	if err != nil {
		x.d.fail(err)
		return
	}
	var rec stepRecord
	_ = json.Unmarshal(done.Data, &rec)
	recorded, _ := decodeJSON(rec.Output)
	switch {
	case done.Kind == journal.StepCompleted && (oc.state != journal.Completed || !equalValues(oc.output, recorded)):
		x.d.diff(fmt.Sprintf("%s: child %s derives %s %s, the parent recorded completed %s", ap, child.rec.ID, oc.state, short(oc.output, 80), short(recorded, 80)))
	case done.Kind == journal.StepFailed && oc.state != journal.Failed:
		x.d.diff(fmt.Sprintf("%s: child %s derives %s, the parent recorded a failure", ap, child.rec.ID, oc.state))
	}
}

func mustNorm(v any) any {
	n, _ := Normalize(v)
	return n
}

// Get returns an execution's record.
func (e *Engine) Get(ctx context.Context, id string) (*Execution, error) {
	rec, err := e.get(ctx, id)
	if err != nil {
		return nil, err
	}
	return toExecution(rec)
}

func (e *Engine) get(ctx context.Context, id string) (*journal.Execution, error) {
	rec, err := e.j.Get(ctx, id)
	if errors.Is(err, journal.ErrNotFound) {
		return nil, fmt.Errorf("%w: no execution with id %q", ErrNotFound, id)
	}
	return rec, err
}

// List returns the executions that match f, newest first.
func (e *Engine) List(ctx context.Context, f journal.Filter) ([]*Execution, error) {
	recs, err := e.j.List(ctx, f)
	if err != nil {
		return nil, err
	}
	out := make([]*Execution, 0, len(recs))
	for _, r := range recs {
		ex, err := toExecution(r)
		if err != nil {
			return nil, err
		}
		out = append(out, ex)
	}
	return out, nil
}

// Events returns an execution's journal, in order.
func (e *Engine) Events(ctx context.Context, id string) ([]journal.Event, error) {
	if _, err := e.get(ctx, id); err != nil {
		return nil, err
	}
	return e.j.Events(ctx, id, 0)
}

func toExecution(r *journal.Execution) (*Execution, error) {
	ex := &Execution{ID: r.ID, Workflow: r.Workflow, Version: r.Version, State: r.State, ParentID: r.ParentID,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, WakeAt: r.WakeAt}
	var err error
	if ex.Input, err = decodeJSON(r.Input); err != nil {
		return nil, fmt.Errorf("execution %s: bad input record: %w", r.ID, err)
	}
	if ex.Output, err = decodeJSON(r.Output); err != nil {
		return nil, fmt.Errorf("execution %s: bad output record: %w", r.ID, err)
	}
	if len(r.Error) > 0 && string(r.Error) != "null" {
		ex.Error = &Error{}
		if err := json.Unmarshal(r.Error, ex.Error); err != nil {
			return nil, fmt.Errorf("execution %s: bad error record: %w", r.ID, err)
		}
		ex.Error.Data, _ = Normalize(ex.Error.Data)
	}
	if len(r.Pauses) > 0 && string(r.Pauses) != "null" {
		if err := json.Unmarshal(r.Pauses, &ex.Pauses); err != nil {
			return nil, fmt.Errorf("execution %s: bad pauses record: %w", r.ID, err)
		}
		for i := range ex.Pauses {
			ex.Pauses[i].Schema, _ = Normalize(ex.Pauses[i].Schema)
			if ex.Pauses[i].ExecutionID == r.ID {
				ex.Pauses[i].ExecutionID = ""
			}
		}
	}
	return ex, nil
}

func compileSchema(s any) (*jsonschema.Schema, error) {
	// The same draft definition compiles pause schemas with (2020-12).
	c := jsonschema.NewCompiler()
	if err := c.AddResource("pause.json", bytesReader(encodeJSON(s))); err != nil {
		return nil, err
	}
	return c.Compile("pause.json")
}

// schemaMessage renders a jsonschema validation error as one line.
func schemaMessage(err error) string {
	var ve *jsonschema.ValidationError
	if errors.As(err, &ve) {
		leaf := ve
		for len(leaf.Causes) > 0 {
			leaf = leaf.Causes[0]
		}
		loc := leaf.InstanceLocation
		if loc == "" {
			loc = "/"
		}
		return fmt.Sprintf("at %s: %s", loc, leaf.Message)
	}
	return err.Error()
}
