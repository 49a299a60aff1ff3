package interpreter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loomwork/loom/builtins"
	"github.com/loomwork/loom/clock"
	"github.com/loomwork/loom/journal"
)

// history is what one walk of one execution knows of its journal, and the
// only way a step reaches the journal or the clock. A step asks it for the
// recorded outcome at a path, records completions and failures through it,
// draws builtin values and waits for timers through it, and never asks
// whether it is replaying:
//
//   - a live history runs what is not recorded, writes what happens and
//     reads the engine's clock;
//   - a replay-only history writes nothing and reads no clock: where the
//     journal ends it answers errFrontier (the point where a live walk
//     would act), and its timers never fire.
//
// Replay and the checks of an upgrade walk replay-only histories; Cancel
// and a workflow timeout found at the start of a drive walk a replay-only
// history to find what was recorded, then act through a live one.
//
// The events (an execution's journal, and what this drive wrote since) are
// shared by the walks of one execution in a drive; the builtin call
// counters belong to one walk, so a second walk of the same execution (a
// replayed child that is then replayed as the target) draws the same
// recorded values again.
type history struct {
	id   string // the execution's id, for messages
	live bool
	clk  clock.Clock
	rnd  builtins.Random
	app  *appender // nil for a replay-only history
	ev   *events

	// Timer policy: whether a live walk waits out a sleep in process, and
	// up to how long.
	waitTimers bool
	maxWait    time.Duration

	mu    sync.Mutex
	calls map[string]int // builtin calls so far in this walk, per path

	// holdPath is the path of the workflow's last top-level step when it
	// is a task: its result may wait for the commit that finishes the
	// execution (hold), as nothing runs after it but the output
	// expression, which has no effect. held says a result is waiting.
	holdPath string
	held     bool

	// With telemetry (track), known is how many paths had step events
	// when the walk began, and hit the paths among them the walk found
	// (both guarded by ev.mu); acted says the walk began to act (begin).
	// Until it acts or has found them all, the walk is replaying.
	track bool
	known int
	hit   map[string]struct{}
	acted atomic.Bool
}

// events is an execution's journal indexed by path, then kind, each kind's
// events in Ordinal order, with whether some walk matched the path's step
// events. A step looks at its path once per event kind it asks about:
// indexing by path first makes that one hash of the path, not one per kind.
type events struct {
	mu     sync.Mutex
	byPath map[string]*pathEvents
	last   int64 // Seq of the last event loaded
}

// pathEvents are the events at one path; a path has few kinds.
type pathEvents struct {
	kinds    []kindEvents
	one      [1]kindEvents // kinds' first, in the same allocation
	consumed bool
}

type kindEvents struct {
	kind journal.EventKind
	evs  []journal.Event
}

// of returns the events of kind at the path (p may be nil: none).
func (p *pathEvents) of(kind journal.EventKind) []journal.Event {
	if p == nil {
		return nil
	}
	for i := range p.kinds {
		if p.kinds[i].kind == kind {
			return p.kinds[i].evs
		}
	}
	return nil
}

// add indexes ev after the events of its path and kind; the caller holds mu.
func (e *events) add(ev journal.Event) *pathEvents {
	return e.addIn([]journal.Event{ev}, 0)
}

// addIn indexes evs[i]. A kind's first event is a slice of evs itself
// (capped, so an append copies): loading a journal allocates one
// pathEvents per path and nothing per event.
func (e *events) addIn(evs []journal.Event, i int) *pathEvents {
	ev := &evs[i]
	p := e.byPath[ev.Path]
	if p == nil {
		p = &pathEvents{}
		p.kinds = p.one[:0]
		e.byPath[ev.Path] = p
	}
	for k := range p.kinds {
		if p.kinds[k].kind == ev.Kind {
			p.kinds[k].evs = append(p.kinds[k].evs, *ev)
			return p
		}
	}
	p.kinds = append(p.kinds, kindEvents{kind: ev.Kind, evs: evs[i : i+1 : i+1]})
	return p
}

func newEvents(evs []journal.Event) *events {
	e := &events{byPath: make(map[string]*pathEvents, len(evs))}
	for i, ev := range evs {
		e.addIn(evs, i)
		e.last = ev.Seq
	}
	for _, p := range e.byPath {
		for _, k := range p.kinds {
			l := k.evs
			if !sort.SliceIsSorted(l, func(i, j int) bool { return l[i].Ordinal < l[j].Ordinal }) {
				sort.Slice(l, func(i, j int) bool { return l[i].Ordinal < l[j].Ordinal })
			}
		}
	}
	return e
}

// rewalk returns a history for the next walk of the same execution: the
// same events, mode and clock, fresh counters.
func (h *history) rewalk() *history {
	n := &history{id: h.id, live: h.live, clk: h.clk, rnd: h.rnd, app: h.app, ev: h.ev,
		waitTimers: h.waitTimers, maxWait: h.maxWait, calls: map[string]int{}, track: h.track}
	if n.track {
		n.hit = map[string]struct{}{}
		h.ev.mu.Lock()
		for _, p := range h.ev.byPath {
			for _, k := range p.kinds {
				if slices.Contains(stepKinds, k.kind) {
					n.known++
					break
				}
			}
		}
		h.ev.mu.Unlock()
	}
	return n
}

// replaying reports whether this walk is still going over what the
// journal recorded before it began: it has not acted yet, and found fewer
// recorded paths than there were. A replay-only walk always is.
// Telemetry skips the steps met meanwhile: they did not run.
func (h *history) replaying() bool {
	if !h.live {
		return true
	}
	if h.acted.Load() {
		return false
	}
	h.ev.mu.Lock()
	defer h.ev.mu.Unlock()
	return len(h.hit) < h.known
}

// stepKinds are the event kinds that say what stood at a path; their Name
// is compared with the definition to detect non-determinism.
var stepKinds = []journal.EventKind{journal.StepCompleted, journal.StepFailed, journal.PauseOpened, journal.ChildStarted, journal.TimerSet}

// find returns the latest event of kind at path, after checking that
// whatever the journal recorded at path was name. A mismatch is
// non-determinism (fatal).
func (h *history) find(path string, kind journal.EventKind, name string) (journal.Event, bool, error) {
	h.ev.mu.Lock()
	defer h.ev.mu.Unlock()
	p := h.ev.byPath[path]
	if p == nil {
		return journal.Event{}, false, nil
	}
	for _, k := range stepKinds {
		for _, ev := range p.of(k) {
			if ev.Name != name {
				return journal.Event{}, false, fatal(&NonDeterminismError{ExecutionID: h.id, Path: path, Recorded: ev.Name, Now: name})
			}
		}
	}
	evs := p.of(kind)
	if len(evs) == 0 {
		return journal.Event{}, false, nil
	}
	p.consumed = true
	if h.hit != nil {
		h.hit[path] = struct{}{}
	}
	return evs[len(evs)-1], true, nil
}

// has reports whether the execution-level marker kind (cancel.requested,
// timed_out) is recorded.
func (h *history) has(kind journal.EventKind) bool {
	h.ev.mu.Lock()
	defer h.ev.mu.Unlock()
	return len(h.ev.byPath[""].of(kind)) > 0
}

// completed returns the recorded output of the step named name at path.
func (h *history) completed(path, name string) (any, bool, error) {
	ev, ok, err := h.find(path, journal.StepCompleted, name)
	if err != nil || !ok {
		return nil, false, err
	}
	d, err := journal.DecodeStepCompleted(ev.Data)
	if err != nil {
		return nil, false, fatal(fmt.Errorf("%s at %s: %w", name, path, err))
	}
	out, err := decodeJSON(d.Output)
	if err != nil {
		return nil, false, fatal(fmt.Errorf("journal: %s at %s: %w", name, path, err))
	}
	return out, true, nil
}

// failed returns the recorded failure of the step named name at path, and
// when it was recorded.
func (h *history) failed(path, name string) (*Error, time.Time, bool, error) {
	ev, ok, err := h.find(path, journal.StepFailed, name)
	if err != nil || !ok {
		return nil, time.Time{}, false, err
	}
	d, err := journal.DecodeData[journal.StepFailedData](ev)
	if err != nil || d.Error == nil {
		return nil, time.Time{}, false, fatal(fmt.Errorf("journal: %s at %s: bad failure record", name, path))
	}
	return fromErrorData(d.Error), ev.Time, true, nil
}

// begin is asked before a step acts (runs a task, opens a pause, sets a
// timer, starts a child): it returns when the attempt starts, or
// errFrontier in a replay-only history.
func (h *history) begin() (time.Time, error) {
	if !h.live {
		return time.Time{}, errFrontier
	}
	if h.track {
		h.acted.Store(true)
	}
	return h.now(), nil
}

// now reads the clock of a live history (in UTC); a replay-only history
// reads no clock and answers the zero time.
func (h *history) now() time.Time {
	if !h.live {
		return time.Time{}
	}
	return h.clk.Now().UTC()
}

// past reports whether t has come. A replay-only history never decides it:
// what the clock decided is in the journal.
func (h *history) past(t time.Time) bool {
	return h.live && !h.clk.Now().Before(t)
}

// interrupted is what a step that cannot finish in this walk returns:
// errFrontier when replaying, errCancelled when live.
func (h *history) interrupted() error {
	if !h.live {
		return errFrontier
	}
	return errCancelled
}

// exhaustive reports whether this walk visits every item, branch and child
// the journal recorded (a replay-only walk, so each one is checked against
// the definition) rather than failing fast and trusting recorded
// outcomes (a live walk).
func (h *history) exhaustive() bool { return !h.live }

// write appends events and waits for their commit; a replay-only history
// writes nothing and answers errFrontier.
func (h *history) write(evs ...journal.Event) error {
	if !h.live {
		return errFrontier
	}
	now := h.now()
	for i := range evs {
		if evs[i].Time.IsZero() {
			evs[i].Time = now
		}
	}
	if err := h.app.append(evs, nil); err != nil {
		return fatal(err)
	}
	h.note(evs...)
	return nil
}

// complete records the completion of the step named name at path.
func (h *history) complete(path, name string, out any, started time.Time) error {
	return h.write(journal.Event{Path: path, Kind: journal.StepCompleted, Name: name,
		Data: journal.StepCompletedData{Output: encodeJSON(out), StartedAt: started}.Encode()})
}

// completeLast records the completion of the step at path like complete,
// except that the result of the workflow's last top-level task (holdPath)
// is queued to ride with the next write — the one that finishes the
// execution — instead of a commit of its own: a lone execution of n tasks
// costs n+1 commits, not n+2. A crash before that commit runs the task
// again on resume, as a crash between its effect and its commit would.
func (h *history) completeLast(path, ap, name string, out any, started time.Time) error {
	if !h.live || path != h.holdPath || h.holdPath == "" {
		return h.complete(ap, name, out, started)
	}
	ev := journal.Event{Path: ap, Kind: journal.StepCompleted, Name: name, Time: h.now(),
		Data: journal.StepCompletedData{Output: encodeJSON(out), StartedAt: started}.Encode()}
	h.app.enqueue(ev)
	h.note(ev)
	h.held = true
	return nil
}

// fail records the failure of the step named name at path.
func (h *history) fail(path, name string, werr *Error, started time.Time) error {
	return h.write(journal.Event{Path: path, Kind: journal.StepFailed, Name: name,
		Data: journal.EncodeData(journal.StepFailedData{Error: werr.record(), StartedAt: started})})
}

// mark records an execution-level marker (cancel.requested, timed_out).
func (h *history) mark(kind journal.EventKind, name string) error {
	return h.write(journal.Event{Kind: kind, Name: name, Data: journal.EncodeData(journal.MarkerData{})})
}

// flush waits until everything queued (builtin values) is durable: a task
// must not act on a value a crash could forget.
func (h *history) flush() error {
	if !h.live {
		return nil
	}
	if err := h.app.append(nil, nil); err != nil {
		return fatal(err)
	}
	return nil
}

// settle records an execution's outcome on its record (with events), and
// gives the lease up in the same commit when release is set. A replay-only
// history records nothing.
func (h *history) settle(evs []journal.Event, upd *journal.Update, release func()) error {
	if !h.live {
		return nil
	}
	if release != nil {
		release()
		return h.app.appendRelease(evs, upd)
	}
	return h.app.append(evs, upd)
}

// note adds events this drive wrote to the index, so a later look at the
// same path (a re-walk after a child finishes, say) finds them.
func (h *history) note(evs ...journal.Event) {
	h.ev.mu.Lock()
	defer h.ev.mu.Unlock()
	for _, ev := range evs {
		h.ev.add(ev).consumed = true
	}
}

// errNotRecorded stops a replay-only evaluation at a builtin call that was
// never journaled.
var errNotRecorded = errors.New("builtin value not recorded")

// builtin returns the value of the next call of the journaled function
// name at path: the recorded one, or (live) a fresh one, journaled with
// the next commit.
func (h *history) builtin(path, name string, fresh func() (any, error)) (any, error) {
	h.mu.Lock()
	ord := h.calls[path]
	h.calls[path] = ord + 1
	h.mu.Unlock()
	h.ev.mu.Lock()
	evs := h.ev.byPath[path].of(journal.Builtin)
	h.ev.mu.Unlock()
	if ord < len(evs) && evs[ord].Ordinal == ord {
		ev := evs[ord]
		if ev.Name != name {
			return nil, &NonDeterminismError{ExecutionID: h.id, Path: fmt.Sprintf("%s (builtin call %d)", path, ord+1), Recorded: ev.Name + "()", Now: name + "()"}
		}
		d, err := journal.DecodeData[journal.BuiltinData](ev)
		if err != nil {
			return nil, fmt.Errorf("builtin %s at %s: %w", name, path, err)
		}
		return decodeJSON(d.Value)
	}
	if !h.live {
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
	ev := journal.Event{Path: path, Kind: journal.Builtin, Name: name, Ordinal: ord,
		Data: journal.EncodeData(journal.BuiltinData{Value: encodeJSON(nv)}), Time: h.now()}
	h.app.enqueue(ev)
	h.note(ev)
	return nv, nil
}

// random draws a journaled sample in [0, 1) at path (retry jitter).
func (h *history) random(path string) (float64, error) {
	v, err := h.builtin(path, "jitter", func() (any, error) {
		return float64(h.rnd.Uint64()>>11) / (1 << 53), nil
	})
	if err == errNotRecorded {
		return 0, errFrontier
	}
	if err != nil {
		return 0, fatal(err)
	}
	f, _ := v.(float64)
	return f, nil
}

// waitUntil waits (live) until t on the clock; a replay-only history does
// not wait. errCancelled if ctx ends first.
func (h *history) waitUntil(ctx context.Context, t time.Time) error {
	if !h.live {
		return nil
	}
	if err := clock.Sleep(ctx, h.clk, t.Sub(h.clk.Now())); err != nil {
		return errCancelled
	}
	return nil
}

// timer waits for a durable timer due at wake: nil once it has fired,
// errSuspended when the walk should stop and leave the execution WAITING
// (a replay-only history, the engine does not wait out timers, or wake is
// further away than it waits), errCancelled if ctx ends first.
func (h *history) timer(ctx context.Context, wake time.Time) error {
	if !h.live {
		return errSuspended
	}
	wait := wake.Sub(h.clk.Now())
	if wait <= 0 {
		return nil
	}
	if !h.waitTimers || wait > h.maxWait {
		return errSuspended
	}
	if err := clock.Sleep(ctx, h.clk, wait); err != nil {
		return errCancelled
	}
	return nil
}

// deadline bounds ctx by t on the clock; a replay-only history's walk has
// no deadline (a timeout it met is in the journal).
func (h *history) deadline(ctx context.Context, t time.Time) (context.Context, context.CancelFunc) {
	if !h.live {
		return ctx, func() {}
	}
	return clock.WithDeadline(ctx, h.clk, t)
}

// timeout bounds ctx by d from now on the clock.
func (h *history) timeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if !h.live {
		return ctx, func() {}
	}
	return clock.WithTimeout(ctx, h.clk, d)
}
