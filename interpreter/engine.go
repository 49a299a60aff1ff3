package interpreter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/loomwork/loom/builtins"
	"github.com/loomwork/loom/clock"
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
	clock    clock.Clock
	rnd      builtins.Random
	holder   journal.Holder
	leaseTTL time.Duration

	waitTimers bool
	maxWait    time.Duration
	onProgress func(Progress)
	onStep     func(StepEvent)
	tele       Telemetry
	taskGate   TaskGate
	sec        secretState
	limits     Limits

	pinned sync.Map // definition hash → *definition.Catalog
	pins   sync.Map // workflow name → pin, of e.cat
	renew  renewer  // the leases of the live drives
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

// WithClock sets the engine's only clock (default clock.System{}): now(),
// the time of records and events, sleep timers, pause deadlines, workflow
// and step timeouts, retry waits and lease renewal all read it. Tests
// inject a clock.Fake to move time without sleeping, or one that fails
// when read to prove a replay reads the journal instead.
func WithClock(c clock.Clock) Option { return func(e *Engine) { e.clock = c } }

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

// TaskGate is asked before a task runs live (never for one replayed from
// the journal). It returns done, called once the attempt ends, or an error
// to start no task: the step then stops as if its context were cancelled,
// nothing is journaled for it, and it runs when the execution is driven
// again. A gate refuses only once ctx is done: it may hold the step back
// until then (the service's drain starts no new task so, while the tasks
// in flight finish).
type TaskGate func(ctx context.Context) (done func(), err error)

// WithTaskGate makes g the engine's TaskGate.
func WithTaskGate(g TaskGate) Option { return func(e *Engine) { e.taskGate = g } }

// New returns an engine over a checked catalog, a task registry and a journal.
func New(cat *definition.Catalog, tasks Tasks, j journal.Journal, opts ...Option) *Engine {
	e := &Engine{
		cat: cat, tasks: tasks, j: j,
		clock:      clock.System{},
		rnd:        builtins.CryptoRandom{},
		leaseTTL:   journal.DefaultLeaseTTL,
		waitTimers: true,
		maxWait:    time.Duration(math.MaxInt64),
	}
	e.holder = LocalHolder(builtins.UUID4(builtins.CryptoRandom{}))
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

// now reads the engine's clock, in UTC.
func (e *Engine) now() time.Time { return e.clock.Now().UTC() }

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
	if err := e.RefuseWriteOnly(wf); err != nil {
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
	now := e.now()
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
		x, err := d.newExec(rec, newEvents(nil))
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
			return nil, schemaRefusal(fmt.Errorf("%w: the input does not match the input schema of %s: %s", ErrInvalidInput, wf.Name, schemaMessage(err)), err)
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
	lease   *journal.Lease
	by, key string // journaled with a resume's payload or a cancel
	// root is the execution's root, once read; driven: the drive took the
	// lease given (WithLease), and releases it.
	root   string
	driven bool
}

// releaseUnused releases the lease given with WithLease when the call
// returned before a drive took it (a finished execution, an error after
// the record was read): a lease given for the execution's root is always
// released, once, so the caller never needs to. A lease for another root
// is not this call's to release.
func (c *resumeConfig) releaseUnused(e *Engine) {
	if c.lease != nil && !c.driven && c.root != "" && c.lease.RootID == c.root {
		_ = e.j.Release(context.Background(), *c.lease) // on failure it expires
	}
}

// By names who resumes or cancels (a token's name, or "local"): it is
// journaled with the resume's payload, or with each cancel.requested
// event of the cancel.
func By(actor string) ResumeOption { return func(c *resumeConfig) { c.by = actor } }

// WithResumeKey journals a client's idempotency key with the resume's
// payload, so a repeat of the resume can be recognised (SPEC §6).
func WithResumeKey(key string) ResumeOption { return func(c *resumeConfig) { c.key = key } }

// WithLease drives under a lease the caller already holds on the
// execution's root (a dispatcher's claim), instead of acquiring one: the
// drive renews it and releases it when done, and a call that returns
// before driving (the execution finished, say) releases it too, so the
// caller never releases it. Every drive holds its own
// lease, so a second drive of the same execution, in this process or
// another, is refused with ErrBusy while this one runs.
func WithLease(l journal.Lease) ResumeOption {
	return func(c *resumeConfig) { c.lease = &l }
}

// canDrive refuses, before anything is taken or written, a root whose
// definition (the upgrade's, the last recorded upgrade's, or the pinned
// one) uses a task this binary lacks.
func (e *Engine) canDrive(ctx context.Context, rootID string, upgrade *definition.Catalog) error {
	root, err := e.get(ctx, rootID)
	if err != nil {
		return err
	}
	cat := upgrade
	if cat == nil {
		evs, err := e.j.Events(ctx, rootID, 0)
		if err != nil {
			return err
		}
		if cat, err = e.catalogFor(root, evs); err != nil {
			return err
		}
	}
	return e.hasTasks(cat, root.Workflow)
}

// hasTasks refuses with a *MissingTaskError when workflow (or one it can
// start) uses a task this binary does not register.
func (e *Engine) hasTasks(cat *definition.Catalog, workflow string) error {
	for _, t := range cat.TasksOf(workflow) {
		if !e.tasks.HasTask(t) {
			return &MissingTaskError{Task: t}
		}
	}
	return nil
}

// drive runs fn under the lease of rootID: the one the caller gave, or a
// new one.
func (c *resumeConfig) drive(ctx context.Context, e *Engine, rootID string, fn func(ctx context.Context, d *drive) (*Execution, error)) (*Execution, error) {
	if c.lease == nil {
		return e.withLease(ctx, rootID, fn)
	}
	if c.lease.RootID != rootID {
		return nil, fmt.Errorf("%w: the lease given is for execution %s, not %s, the root of this one", ErrInvalidInput, c.lease.RootID, rootID)
	}
	c.driven = true
	return e.withHeldLease(ctx, *c.lease, fn)
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
	defer cfg.releaseUnused(e)
	rec, err := e.get(ctx, id)
	if err != nil {
		return nil, err
	}
	cfg.root = rec.RootID
	deliver := payload != nil || pause != ""
	if cfg.due && deliver {
		return nil, fmt.Errorf("%w: a resume of what is due delivers no payload", ErrInvalidInput)
	}
	if rec.State.Finished() {
		if deliver || cfg.upgrade != nil {
			return nil, fmt.Errorf("%w: execution %s is %s", ErrNotPaused, id, rec.State)
		}
		return e.toExecution(ctx, rec)
	}
	if err := e.canDrive(ctx, rec.RootID, cfg.upgrade); err != nil {
		return nil, err
	}
	return cfg.drive(ctx, e, rec.RootID, func(ctx context.Context, d *drive) (*Execution, error) {
		rec, err := e.get(ctx, id) // again, under the lease
		if err != nil {
			return nil, err
		}
		if rec.State.Finished() {
			if deliver {
				return nil, fmt.Errorf("%w: execution %s is %s", ErrNotPaused, id, rec.State)
			}
			return e.toExecution(ctx, rec)
		}
		if cfg.upgrade != nil {
			if err := e.upgrade(ctx, d, rec.RootID, cfg.upgrade); err != nil {
				return nil, err
			}
		}
		var late error
		if rec.State == journal.Paused && !cfg.due {
			if late = e.deliver(ctx, d, rec, pause, payload, &cfg); late != nil && !errors.Is(late, errPauseLate) {
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
func (e *Engine) deliver(ctx context.Context, d *drive, rec *journal.Execution, sel string, payload any, cfg *resumeConfig) error {
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
	if p.Deadline != nil && !e.clock.Now().Before(*p.Deadline) {
		return fmt.Errorf("%w: pause %s of execution %s timed out at %s (%w)", ErrNotPaused, p.Name, rec.ID, p.Deadline.UTC().Format(time.RFC3339), errPauseLate)
	}
	val, err := Normalize(payload)
	if err != nil {
		return fmt.Errorf("%w: the payload is not JSON: %v", ErrInvalidInput, err)
	}
	target := p.ExecutionID
	if target == "" {
		target = rec.ID
	}
	st, err := e.pauseStep(ctx, d, rec, target, p)
	if err != nil {
		return err
	}
	if st.Schema != nil {
		if err := st.Schema.Validate(val); err != nil {
			return schemaRefusal(fmt.Errorf("%w: the payload does not match the schema of pause %s: %s", ErrInvalidInput, p.Name, schemaMessage(err)), err)
		}
	}
	events, err := e.j.Events(ctx, target, 0)
	if err != nil {
		return err
	}
	var last int64
	name := "pause:" + p.Name
	opened := e.now()
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
			Data: e.sec.masker.JSON(journal.StepCompletedData{Output: encodeJSON(val), StartedAt: opened, By: cfg.by, IdempotencyKey: cfg.key}.Encode()), Time: e.now()}},
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

// catalogFor returns the catalog an execution runs on: the pinned one, or
// the one its last upgrade recorded.
func (e *Engine) catalogFor(root *journal.Execution, events []journal.Event) (*definition.Catalog, error) {
	src, hash, err := pinnedOf(root, events)
	if err != nil {
		return nil, err
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

// pinnedOf is the definition a root runs on: the one pinned at its start,
// or the last an upgrade recorded.
func pinnedOf(root *journal.Execution, events []journal.Event) (src []byte, hash string, err error) {
	src, hash = root.Definition, root.DefinitionHash
	for _, ev := range events {
		if ev.Kind == journal.DefinitionUpgraded {
			u, err := journal.DecodeData[journal.DefinitionUpgradedData](ev)
			if err != nil {
				return nil, "", err
			}
			src, hash = []byte(u.Definition), u.Hash
		}
	}
	return src, hash, nil
}

// Get returns an execution's record.
func (e *Engine) Get(ctx context.Context, id string) (*Execution, error) {
	rec, err := e.get(ctx, id)
	if err != nil {
		return nil, err
	}
	return e.toExecution(ctx, rec)
}

func (e *Engine) get(ctx context.Context, id string) (*journal.Execution, error) {
	rec, err := e.j.Get(ctx, id)
	if errors.Is(err, journal.ErrNotFound) {
		return nil, fmt.Errorf("%w: no execution with id %q", ErrNotFound, id)
	}
	return rec, err
}

// List returns the executions that match f, newest first.
//
// A damaged row does not hide the others: List returns the executions it
// could read together with a *journal.DamagedRowsError naming the rest.
func (e *Engine) List(ctx context.Context, f journal.Filter) ([]*Execution, error) {
	recs, err := e.j.List(ctx, f)
	var bad *journal.DamagedRowsError
	if err != nil && !errors.As(err, &bad) {
		return nil, err
	}
	out := make([]*Execution, 0, len(recs))
	for _, r := range recs {
		ex, err := e.toExecution(ctx, r)
		if err != nil {
			if bad == nil {
				bad = &journal.DamagedRowsError{}
			}
			bad.Rows = append(bad.Rows, journal.Damaged(r.ID, err))
			continue
		}
		out = append(out, ex)
	}
	if bad != nil {
		return out, bad
	}
	return out, nil
}

// Due returns the root executions a resume of what is due continues now,
// by the engine's clock: those journal.Due selects (a timer, pause
// deadline or workflow timeout come; a runner whose lease lapsed), and
// RUNNING ones whose lease is live but held by a process of this host
// that is gone, which a resume takes over at once. `loom resume --due`
// continues these.
func (e *Engine) Due(ctx context.Context) ([]*Execution, error) {
	due, err := e.List(ctx, journal.Filter{Due: e.clock.Now(), RootsOnly: true})
	if err != nil {
		return nil, err
	}
	running, err := e.j.List(ctx, journal.Filter{State: journal.Running, RootsOnly: true})
	if err != nil {
		return nil, err
	}
	seen := make(map[string]bool, len(due))
	for _, ex := range due {
		seen[ex.ID] = true
	}
	for _, r := range running {
		if seen[r.ID] {
			continue
		}
		l, err := e.j.LeaseOf(ctx, r.ID)
		if err != nil {
			return nil, err
		}
		if l.Token == 0 || !holderDead(e.holder, l.Holder) {
			continue
		}
		ex, err := e.toExecution(ctx, r)
		if err != nil {
			return nil, err
		}
		due = append(due, ex)
	}
	return due, nil
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

// pauseStep returns the pause step of the definition the execution runs
// on (pinned, or upgraded to) that the open pause p is at: its payload
// schema was compiled once, when that definition was loaded, with the
// definition's guards; the copy in the journal is for readers.
func (e *Engine) pauseStep(ctx context.Context, d *drive, rec *journal.Execution, target string, p Pause) (*definition.Step, error) {
	if d.cat == nil {
		root := rec
		if rec.RootID != rec.ID {
			var err error
			if root, err = e.get(ctx, rec.RootID); err != nil {
				return nil, err
			}
		}
		evs, err := e.j.Events(ctx, root.ID, 0)
		if err != nil {
			return nil, err
		}
		if d.cat, err = e.catalogFor(root, evs); err != nil {
			return nil, err
		}
	}
	held := rec
	if target != rec.ID {
		var err error
		if held, err = e.get(ctx, target); err != nil {
			return nil, err
		}
	}
	var st *definition.Step
	if wf := d.cat.Workflow(held.Workflow); wf != nil {
		st = wf.StepAt(p.Path)
	}
	if st == nil || st.Kind != definition.KindPause || st.Pause != p.Name {
		return nil, fmt.Errorf("execution %s: its definition has no pause %s at %s", target, p.Name, p.Path)
	}
	return st, nil
}

// schemaMessage renders a jsonschema validation error as one line: its
// first failing part by location, so that the line is the same each time
// (the library meets properties in map order).
func schemaMessage(err error) string {
	var ve *jsonschema.ValidationError
	if errors.As(err, &ve) {
		leaf := firstLeaf(ve)
		loc := leaf.InstanceLocation
		if loc == "" {
			loc = "/"
		}
		return fmt.Sprintf("at %s: %s", loc, leaf.Message)
	}
	return err.Error()
}
