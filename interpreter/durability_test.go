package interpreter_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal"
)

// The seed's determinism flow: now, uuid4, randint, randrange, now.
const seedFlow = `
name: deterministic
steps:
  - set: {start: "${ now() }"}
  - set: {id: "${ uuid4() }", dice: "${ randint(1, 5) }", pick: "${ randrange(1, 10) }"}
  - id: pause
    pause: look
  - set: {end: "${ now() }"}
output: '${ {start: vars.start, id: vars.id, dice: vars.dice, pick: vars.pick, end: vars["end"], span: date(vars["end"]) - date(vars.start) >= duration("0s")} }'
`

func TestSeedDeterminism(t *testing.T) {
	w := newWorld(t, seedFlow)
	ex := w.run("deterministic", nil)
	wantState(t, ex, journal.Paused)
	done := w.resume(ex.ID, nil)
	wantState(t, done, journal.Completed)
	out := done.Output.(map[string]any)
	if d := out["dice"].(int); d < 1 || d > 5 {
		t.Fatalf("randint(1, 5) = %d", d)
	}
	if p := out["pick"].(int); p < 1 || p > 9 {
		t.Fatalf("randrange(1, 10) = %d", p)
	}
	// Running the finished execution again: the same output, nothing run.
	again, err := w.replayEngine().Resume(context.Background(), ex.ID, nil)
	if err != nil || js(again.Output) != js(done.Output) {
		t.Fatalf("second run = %v, %v; want %s", again, err, js(done.Output))
	}
	w.wantReplay(ex.ID)
}

func TestPauseResumeWithPayload(t *testing.T) {
	w := newWorld(t, `
name: approval
steps:
  - id: order
    task: echo
    with: {id: "${ input.id }"}
  - id: approval
    pause: wait_for_approval
    schema: {type: object, required: [approved], properties: {approved: {type: boolean}}}
  - if: ${ !steps.approval.output.approved }
    raise: {error: Rejected, message: "order ${ input.id } was rejected"}
  - id: ship
    task: echo
    with: 'shipped ${ steps.order.output.id }'
`)
	ex := w.run("approval", map[string]any{"id": "A7"})
	wantState(t, ex, journal.Paused)
	if len(ex.Pauses) != 1 || ex.Pauses[0].Name != "wait_for_approval" || ex.Pauses[0].Path != "approval" {
		t.Fatalf("pauses = %+v", ex.Pauses)
	}
	// A payload that fails the schema is refused and nothing is journaled.
	before, _ := w.eng.Events(context.Background(), ex.ID)
	if _, err := w.eng.Resume(context.Background(), ex.ID, map[string]any{"approved": "yes"}); !errors.Is(err, interpreter.ErrInvalidInput) {
		t.Fatalf("bad payload: err = %v", err)
	}
	after, _ := w.eng.Events(context.Background(), ex.ID)
	if len(after) != len(before) {
		t.Fatalf("a refused payload wrote %d events", len(after)-len(before))
	}
	if st, _ := w.eng.Get(context.Background(), ex.ID); st.State != journal.Paused {
		t.Fatalf("after a refused payload the state is %s", st.State)
	}
	done := w.resume(ex.ID, map[string]any{"approved": true})
	wantOutput(t, done, `"shipped A7"`)
	if n := w.count("echo"); n != 2 {
		t.Fatalf("echo ran %d times, want 2 (the first is replayed)", n)
	}
	// The first valid resume won; a second is refused.
	if _, err := w.eng.Resume(context.Background(), ex.ID, map[string]any{"approved": false}); !errors.Is(err, interpreter.ErrNotPaused) {
		t.Fatalf("double resume: err = %v", err)
	}
	w.wantReplay(ex.ID)
}

// A payload is checked against the pause's schema as the definition the
// execution runs on compiled it at load, not against a schema read back
// (and compiled again, without the definition's guards) from the journal's
// copy, which is there for readers.
func TestPausePayloadIsCheckedByTheDefinitionsSchema(t *testing.T) {
	w := newWorld(t, `
name: approval
steps:
  - id: approval
    pause: wait_for_approval
    schema: {type: object, required: [approved], properties: {approved: {type: boolean}}}
`)
	ctx := context.Background()
	ex := w.run("approval", nil)
	wantState(t, ex, journal.Paused)
	// The journal's copy of the open pause says something else.
	l, err := w.j.Acquire(ctx, ex.ID, journal.Holder{ID: "test"}, time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	evs, _ := w.j.Events(ctx, ex.ID, 0)
	if _, err := w.j.Append(ctx, journal.Append{ExecutionID: ex.ID, Token: l.Token, ExpectedSeq: evs[len(evs)-1].Seq, Release: true,
		Update: &journal.Update{Pauses: json.RawMessage(`[{"name":"wait_for_approval","path":"approval","schema":{"type":"string"}}]`)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.eng.Resume(ctx, ex.ID, "yes"); !errors.Is(err, interpreter.ErrInvalidInput) {
		t.Fatalf("a payload the definition's schema refuses: err = %v", err)
	}
	wantOutput(t, w.resume(ex.ID, map[string]any{"approved": true}), `{"approved":true}`)
}

func TestSeveralPausesInSequence(t *testing.T) {
	w := newWorld(t, `
name: stages
steps:
  - id: one
    pause: verify_data
  - id: two
    pause: review_processing
  - return: '${ [steps.one.output, steps.two.output] }'
`)
	ex := w.run("stages", nil)
	wantState(t, ex, journal.Paused)
	ex = w.resume(ex.ID, "first")
	wantState(t, ex, journal.Paused)
	if ex.Pauses[0].Name != "review_processing" {
		t.Fatalf("second pause = %+v", ex.Pauses)
	}
	wantOutput(t, w.resume(ex.ID, "second"), `["first","second"]`)
	w.wantReplay(ex.ID)
}

func TestPauseInsideChild(t *testing.T) {
	w := newWorld(t, `
name: parent
steps:
  - id: sub
    call: child
  - return: '${ "parent got " + steps.sub.output }'
---
name: child
steps:
  - id: ask
    pause: child_approval
  - return: '${ "child got " + steps.ask.output }'
`)
	ex := w.run("parent", nil)
	wantState(t, ex, journal.Paused)
	if len(ex.Pauses) != 1 || ex.Pauses[0].ExecutionID == "" || ex.Pauses[0].Path != "ask" {
		t.Fatalf("pauses = %+v", ex.Pauses)
	}
	childID := ex.Pauses[0].ExecutionID
	child, err := w.eng.Get(context.Background(), childID)
	if err != nil || child.ParentID != ex.ID || child.State != journal.Paused {
		t.Fatalf("child = %+v, %v", child, err)
	}
	// Resuming the child continues both.
	if _, err := w.eng.Resume(context.Background(), childID, "yes"); err != nil {
		t.Fatal(err)
	}
	root, _ := w.eng.Get(context.Background(), ex.ID)
	wantOutput(t, root, `"parent got child got yes"`)
	w.wantReplay(ex.ID)
	w.wantReplay(childID)
}

func TestPausesInsideMapItems(t *testing.T) {
	w := newWorld(t, `
name: stars
steps:
  - id: each
    map:
      items: ${ ["a", "b", "c"] }
      steps:
        - id: approve
          pause: approve
        - return: '${ item + "=" + string(steps.approve.output) }'
`)
	ex := w.run("stars", nil)
	wantState(t, ex, journal.Paused)
	if len(ex.Pauses) != 3 {
		t.Fatalf("pauses = %+v", ex.Pauses)
	}
	if _, err := w.eng.Resume(context.Background(), ex.ID, 1); !errors.Is(err, interpreter.ErrInvalidInput) {
		t.Fatalf("ambiguous resume: err = %v", err)
	}
	ex, err := w.eng.ResumePause(context.Background(), ex.ID, "each[1]/approve", 2)
	if err != nil {
		t.Fatal(err)
	}
	wantState(t, ex, journal.Paused)
	if len(ex.Pauses) != 2 {
		t.Fatalf("after one resume pauses = %+v", ex.Pauses)
	}
	ex, _ = w.eng.ResumePause(context.Background(), ex.ID, "each[0]/approve", 1)
	ex, _ = w.eng.ResumePause(context.Background(), ex.ID, "each[2]/approve", 3)
	wantOutput(t, ex, `["a=1","b=2","c=3"]`)
	w.wantReplay(ex.ID)
}

func TestPauseTimeoutIsCatchable(t *testing.T) {
	w := newFakeWorld(t, `
name: w
steps:
  - id: guard
    try:
      - pause: quick
        timeout: 30ms
    catch:
      errors: [PauseTimeout]
      steps: [{return: timed out}]
`)
	ex := w.run("w", nil)
	wantState(t, ex, journal.Paused)
	w.clk.Advance(30 * time.Millisecond)
	wantOutput(t, w.resume(ex.ID, nil), `"timed out"`)
}

const v1 = `
name: flow
steps:
  - id: a
    task: echo
    with: one
  - id: gate
    pause: gate
  - id: b
    task: echo
    with: two
`

func TestUpgradeIncompatibleIsRefused(t *testing.T) {
	w := newWorld(t, v1)
	ex := w.run("flow", nil)
	wantState(t, ex, journal.Paused)
	before, _ := w.eng.Events(context.Background(), ex.ID)
	v2 := mustParse(t, `
name: flow
steps:
  - id: a
    task: add
    with: {a: 1, b: 2}
  - id: gate
    pause: gate
`)
	_, err := w.eng.Resume(context.Background(), ex.ID, "go", interpreter.WithDefinition(v2))
	var nd *interpreter.NonDeterminismError
	if !errors.As(err, &nd) || nd.Path != "a" || nd.Recorded != "task:echo" || nd.Now != "task:add" {
		t.Fatalf("err = %v, want non-determinism at a (task:echo vs task:add)", err)
	}
	after, _ := w.eng.Events(context.Background(), ex.ID)
	if len(after) != len(before) {
		t.Fatal("a refused upgrade wrote to the journal")
	}
	// A removed step the journal recorded is divergence too.
	v3 := mustParse(t, `
name: flow
steps:
  - id: gate
    pause: gate
`)
	if _, err := w.eng.Resume(context.Background(), ex.ID, "go", interpreter.WithDefinition(v3)); !errors.Is(err, interpreter.ErrNonDeterminism) {
		t.Fatalf("removed step: err = %v", err)
	}
}

func TestUpgradeCompatibleContinues(t *testing.T) {
	w := newWorld(t, v1)
	ex := w.run("flow", nil)
	v2 := mustParse(t, `
name: flow
steps:
  - id: a
    task: echo
    with: one
  - id: gate
    pause: gate
  - id: c
    task: add
    with: {a: 40, b: 2}
`)
	done, err := w.eng.Resume(context.Background(), ex.ID, "go", interpreter.WithDefinition(v2))
	if err != nil {
		t.Fatal(err)
	}
	wantOutput(t, done, `42`)
}

func TestWithoutUpgradeThePinnedDefinitionRuns(t *testing.T) {
	w := newWorld(t, v1)
	ex := w.run("flow", nil)
	// A new engine whose catalog says something else still runs the pinned one.
	other := interpreter.New(mustParse(t, `
name: flow
steps: [{raise: {error: New, message: changed}}]
`), w.reg, w.j)
	done, err := other.Resume(context.Background(), ex.ID, "go")
	if err != nil {
		t.Fatal(err)
	}
	wantOutput(t, done, `"two"`)
}

func TestCancelRunsCompensations(t *testing.T) {
	w := newWorld(t, `
name: w
steps:
  - id: charge
    task: record
    with: charge
    compensate: {task: record, with: refund}
  - pause: wait
`)
	ex := w.run("w", nil)
	wantState(t, ex, journal.Paused)
	c, err := w.eng.Cancel(context.Background(), ex.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantState(t, c, journal.Cancelled)
	if js(w.log) != `["charge","refund"]` {
		t.Fatalf("log = %v", w.log)
	}
	if _, err := w.eng.Cancel(context.Background(), ex.ID); !errors.Is(err, interpreter.ErrFinished) {
		t.Fatalf("second cancel: err = %v", err)
	}
}

func TestSecondRunnerIsRefused(t *testing.T) {
	w := newWorld(t, `
name: w
steps:
  - pause: p
  - task: echo
    with: done
`)
	ex := w.run("w", nil)
	// Someone else holds the lease (a live holder on another host).
	l, err := w.j.Acquire(context.Background(), ex.ID, journal.Holder{ID: "other", Host: "elsewhere", PID: 1}, time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.eng.Resume(context.Background(), ex.ID, "x"); !errors.Is(err, interpreter.ErrBusy) {
		t.Fatalf("err = %v, want busy", err)
	}
	if n := w.count("echo"); n != 0 {
		t.Fatal("a refused runner ran a task")
	}
	_ = w.j.Release(context.Background(), l)
	wantOutput(t, w.resume(ex.ID, "x"), `"done"`)
}

func TestFencedRunnerWritesNothing(t *testing.T) {
	w := newWorld(t, `
name: w
steps:
  - task: slow
    with: {ms: 200}
  - task: echo
    with: after
`)
	go func() {
		// Another runner takes the lease over while the task runs.
		<-w.started
		l, err := w.j.LeaseOf(context.Background(), "fenced")
		if err != nil {
			t.Error(err)
			return
		}
		if _, err := w.j.Acquire(context.Background(), "fenced", journal.Holder{ID: "thief", Host: "h", PID: 1}, time.Minute, l.Token); err != nil {
			t.Error(err)
		}
		close(w.gate) // the slow task ends now
	}()
	_, err := w.eng.Run(context.Background(), "w", nil, interpreter.WithExecutionID("fenced"))
	if !errors.Is(err, journal.ErrFenced) {
		t.Fatalf("err = %v, want fenced", err)
	}
	evs, _ := w.j.Events(context.Background(), "fenced", 0)
	if len(evs) != 0 || w.count("echo") != 0 {
		t.Fatalf("a fenced runner wrote %d events and ran echo %d times", len(evs), w.count("echo"))
	}
}

func TestOnlyDueDeliversNothing(t *testing.T) {
	w := newFakeWorld(t, `
name: w
timeout: 300ms
steps:
  - pause: forever
`)
	ex := w.run("w", nil)
	wantState(t, ex, journal.Paused)
	if ex.WakeAt.IsZero() {
		t.Fatal("a paused execution with a workflow timeout has no wake-up time")
	}
	still, err := w.eng.Resume(context.Background(), ex.ID, nil, interpreter.OnlyDue())
	if err != nil {
		t.Fatal(err)
	}
	wantState(t, still, journal.Paused)
	if _, err := w.eng.Resume(context.Background(), ex.ID, "x", interpreter.OnlyDue()); !errors.Is(err, interpreter.ErrInvalidInput) {
		t.Fatalf("payload with OnlyDue: err = %v", err)
	}
	w.clk.Set(ex.WakeAt)
	done, err := w.eng.Resume(context.Background(), ex.ID, nil, interpreter.OnlyDue())
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, done, "Timeout", "", "did not finish within its timeout")
	w.wantReplay(ex.ID)
}

func TestWorkflowTimeoutCompensatesAfterARestart(t *testing.T) {
	w := newFakeWorld(t, `
name: w
timeout: 200ms
steps:
  - id: book
    task: record
    with: book
    compensate: {task: record, with: unbook}
  - pause: approve
`)
	ex := w.run("w", nil)
	wantState(t, ex, journal.Paused)
	w.clk.Set(ex.WakeAt)
	// A new engine (another process) finds the timeout already passed.
	other := interpreter.New(w.cat, w.reg, w.j, interpreter.WithClock(w.clk))
	done, err := other.Resume(context.Background(), ex.ID, nil, interpreter.OnlyDue())
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, done, "Timeout", "", "timeout")
	if js(w.log) != `["book","unbook"]` {
		t.Fatalf("log = %v", w.log)
	}
	w.wantReplay(ex.ID)
}

func TestCancelTreeWithPausedChild(t *testing.T) {
	w := newWorld(t, `
name: parent
steps:
  - id: pay
    task: record
    with: pay
    compensate: {task: record, with: refund}
  - id: sub
    call: child
---
name: child
steps:
  - id: hold
    task: record
    with: hold
    compensate: {task: record, with: release}
  - pause: confirm
`)
	ex := w.run("parent", nil)
	wantState(t, ex, journal.Paused)
	childID := ex.Pauses[0].ExecutionID
	// Cancelling the child cancels the whole tree: the child's saga first.
	if _, err := w.eng.Cancel(context.Background(), childID); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{ex.ID, childID} {
		got, _ := w.eng.Get(context.Background(), id)
		wantState(t, got, journal.Cancelled)
	}
	if js(w.log) != `["pay","hold","release","refund"]` {
		t.Fatalf("log = %v", w.log)
	}
	w.wantReplay(ex.ID)
}

func TestCallTimeout(t *testing.T) {
	w := newFakeWorld(t, `
name: w
steps:
  - id: sub
    call: slowchild
    timeout: 30ms
---
name: slowchild
steps:
  - task: slow
    with: {ms: 5000}
`)
	stop := w.ticking(2, 10*time.Millisecond)
	ex := w.run("w", nil)
	stop()
	wantError(t, ex, "Timeout", "sub", "timed out")
}

func TestProgressReportsItems(t *testing.T) {
	var mu sync.Mutex
	var seen []interpreter.Progress
	w := newWorld(t, `
name: w
steps:
  - id: m
    map: {items: "${ [1, 2, 3] }", task: echo}
  - id: f
    for: {items: "${ [1, 2] }", steps: [{task: echo}]}
`, interpreter.WithProgress(func(p interpreter.Progress) {
		mu.Lock()
		seen = append(seen, p)
		mu.Unlock()
	}))
	wantOutput(t, w.run("w", nil), `[null,null]`)
	mu.Lock()
	defer mu.Unlock()
	var mapDone, forDone int
	for _, p := range seen {
		switch p.Path {
		case "m":
			if p.Total != 3 {
				t.Errorf("map progress %+v", p)
			}
			mapDone = max(mapDone, p.Done)
		case "f":
			forDone = max(forDone, p.Done)
		}
	}
	if mapDone != 3 || forDone != 2 {
		t.Fatalf("progress: map done %d, for done %d (%+v)", mapDone, forDone, seen)
	}
}
