package interpreter_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal"
)

// simple runs a one-workflow definition and checks its output or error, and
// that a replay that touches nothing derives the same outcome.
func TestStepKinds(t *testing.T) {
	cases := []struct {
		name, src string
		input     any
		out       string // expected output JSON, when it completes
		errType   string // expected error type, when it fails
		errStep   string
		// tick: the case waits on timers (a timeout, a retry delay, a
		// sleep), which fire as the fake clock ticks.
		tick bool
	}{
		{name: "task and output", src: `
name: w
steps:
  - id: sum
    task: add
    with: {a: 2, b: "${ input.n }"}
output: "${ steps.sum.output * 10 }"
`, input: map[string]any{"n": 3}, out: `50`},
		{name: "default output is the last step's", src: `
name: w
steps:
  - task: add
    with: {a: 1, b: 1}
  - task: echo
    with: {x: "v${ 1 + 1 }"}
`, out: `{"x":"v2"}`},
		{name: "set assigns vars in order", src: `
name: w
steps:
  - set: {a: 1, b: "${ vars.a + 1 }"}
  - id: s
    set: {c: "${ vars.b * 2 }"}
output: {vars: "${ vars }", s: "${ steps.s.output }"}
`, out: `{"s":{"c":4},"vars":{"a":1,"b":2,"c":4}}`},
		{name: "if skips with null output", src: `
name: w
steps:
  - id: a
    if: ${ input.go }
    task: echo
    with: 1
output: '${ steps.a.output ?? "skipped" }'
`, input: map[string]any{"go": false}, out: `"skipped"`},
		{name: "switch picks the first match", src: `
name: w
steps:
  - id: route
    switch:
      - when: ${ input.n > 10 }
        steps: [{return: big}]
      - when: ${ input.n > 1 }
        steps: [{set: {size: medium}}]
      - default: [{set: {size: small}}]
output: '${ vars.size }'
`, input: map[string]any{"n": 5}, out: `"medium"`},
		{name: "switch with no match continues", src: `
name: w
steps:
  - switch:
      - when: ${ false }
        steps: [{set: {x: 1}}]
  - task: echo
    with: done
`, out: `"done"`},
		{name: "for over items", src: `
name: w
steps:
  - id: loop
    for:
      items: ${ [1, 2, 3] }
      as: n
      steps:
        - id: sq
          task: add
          with: {a: "${ n * n }", b: "${ index }"}
output: '${ steps.loop.output }'
`, out: `[1,5,11]`},
		{name: "for while reads what the body set", src: `
name: w
steps:
  - set: {i: 0}
  - id: loop
    for:
      while: ${ vars.i < 4 }
      steps:
        - set: {i: "${ vars.i + 1 }"}
output: '${ {i: vars.i, n: len(steps.loop.output)} }'
`, out: `{"i":4,"n":4}`},
		{name: "for while past max_iterations", src: `
name: w
steps:
  - id: loop
    for:
      while: ${ true }
      max_iterations: 3
      steps:
        - set: {x: 1}
`, errType: "LimitExceeded", errStep: "loop"},
		{name: "parallel branches", src: `
name: w
steps:
  - id: both
    parallel:
      a:
        - set: {x: 1}
        - task: add
          with: {a: "${ vars.x }", b: 1}
      b:
        - task: echo
          with: bee
output: '${ steps.both.output }'
`, out: `{"a":2,"b":"bee"}`},
		{name: "parallel vars stay in the branch", src: `
name: w
steps:
  - set: {x: 0}
  - parallel:
      a: [{set: {x: 1}}]
      b: [{set: {x: 2}}]
output: '${ vars.x }'
`, out: `0`},
		{name: "try catch finally", src: `
name: w
steps:
  - id: guard
    try:
      - task: fail
        with: {type: Boom, message: bad}
    catch:
      errors: [Boom]
      as: e
      steps:
        - task: echo
          with: 'caught ${ e.type }: ${ e.message } at ${ e.step }'
    finally:
      - task: record
        with: finally
output: '${ steps.guard.output }'
`, out: `"caught Boom: bad at guard/try/#0"`},
		{name: "catch does not match other types", src: `
name: w
steps:
  - try:
      - raise: {error: Other, message: nope}
    catch:
      errors: [Boom]
      steps: [{return: caught}]
`, errType: "Other", errStep: "#0/try/#0"},
		{name: "raise with data", src: `
name: w
steps:
  - id: check
    raise: {error: Rejected, message: "order ${ input.id } rejected", data: {id: "${ input.id }"}}
`, input: map[string]any{"id": "A1"}, errType: "Rejected", errStep: "check"},
		{name: "return ends the workflow", src: `
name: w
steps:
  - return: {early: true}
  - raise: {error: Never, message: unreachable}
`, out: `{"early":true}`},
		{name: "map with task keeps item order", src: `
name: w
steps:
  - id: m
    map:
      items: ${ [3, 1, 2] }
      concurrency: 2
      task: add
      with: {a: "${ item }", b: "${ index * 100 }"}
`, out: `[3,101,202]`},
		{name: "map with steps and local scope", src: `
name: w
steps:
  - id: m
    map:
      items: ${ ["a", "b"] }
      as: letter
      steps:
        - id: up
          task: echo
          with: '${ upper(letter) }'
        - set: {v: "${ steps.up.output + letter }"}
        - return: '${ vars.v }'
`, out: `["Aa","Bb"]`},
		{name: "map tolerates failures", src: `
name: w
steps:
  - map:
      items: ${ [1, 2, 3, 4] }
      tolerate: 1
      steps:
        - if: ${ item == 2 }
          raise: {error: Bad, message: "two"}
        - return: ${ item }
`, out: `[1,{"error":{"data":null,"message":"two","step":"#0[1]/#0","type":"Bad"}},3,4]`},
		{name: "map past its tolerance fails", src: `
name: w
steps:
  - id: m
    map:
      items: ${ [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] }
      tolerate: "10%"
      concurrency: 0
      steps:
        - if: ${ item % 5 == 0 }
          raise: {error: Bad, message: "five"}
`, errType: "MapFailed", errStep: "m"},
		{name: "map over an empty list", src: `
name: w
steps:
  - map: {items: "${ [] }", task: echo}
`, out: `[]`},
		{name: "call a subworkflow", src: `
name: w
steps:
  - id: sub
    call: double
    with: {n: "${ input.n }"}
output: '${ steps.sub.output + 1 }'
---
name: double
input: {type: object, required: [n]}
steps:
  - task: add
    with: {a: "${ input.n }", b: "${ input.n }"}
`, input: map[string]any{"n": 20}, out: `41`},
		{name: "map with call", src: `
name: w
steps:
  - map: {items: "${ [1, 2] }", call: double, with: {n: "${ item }"}}
---
name: double
steps:
  - task: add
    with: {a: "${ input.n }", b: "${ input.n }"}
`, out: `[2,4]`},
		{name: "failing child fails the call step", src: `
name: w
steps:
  - id: sub
    call: bad
---
name: bad
steps:
  - raise: {error: ChildBroke, message: inner}
`, errType: "ChildBroke", errStep: "sub"},
		{name: "retry until success", src: `
name: w
steps:
  - id: f
    task: flaky
    retry: {max_attempts: 3, delay: 1ms}
`, out: `"ok"`, tick: true},
		{name: "retry only listed errors", src: `
name: w
steps:
  - id: f
    task: fail
    with: {type: Fatal, message: no}
    retry: {max_attempts: 3, delay: 1ms, errors: [Flaky]}
`, errType: "Fatal", errStep: "f"},
		{name: "fallback", src: `
name: w
steps:
  - id: f
    task: fail
    with: {type: Down, message: down}
    fallback: {task: echo, with: cached}
output: '${ steps.f.output }'
`, out: `"cached"`},
		{name: "task timeout", src: `
name: w
steps:
  - id: s
    task: slow
    with: {ms: 5000}
    timeout: 20ms
`, errType: "Timeout", errStep: "s", tick: true},
		{name: "workflow timeout", src: `
name: w
timeout: 30ms
steps:
  - task: slow
    with: {ms: 5000}
`, errType: "Timeout", errStep: "", tick: true},
		{name: "expression error is a step error", src: `
name: w
steps:
  - id: bad
    task: echo
    with: '${ input.missing.deeper }'
`, input: map[string]any{}, errType: "ExpressionError", errStep: "bad"},
		{name: "a panicking task fails its step", src: `
name: w
steps:
  - id: p
    task: boom
`, errType: "TaskPanicked", errStep: "p"},
		{name: "a panicking task under a timeout", src: `
name: w
steps:
  - id: p
    task: boom
    timeout: 1s
`, errType: "TaskPanicked", errStep: "p"},
		{name: "sleep waits in process", src: `
name: w
steps:
  - sleep: 10ms
  - task: echo
    with: woke
`, out: `"woke"`, tick: true},
		{name: "values are normalised", src: `
name: w
steps:
  - set: {r: "${ 7 / 7 }", f: "${ 1.5 * 2 }", h: "${ 1 / 4 }"}
output: '${ vars }'
`, out: `{"f":3,"h":0.25,"r":1}`},
		{name: "execution in scope", src: `
name: w
version: 3
steps:
  - return: '${ [execution.workflow, execution.version, execution.parent_id] }'
`, out: `["w",3,null]`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Timers (timeouts, retry delays, sleeps) fire as the fake
			// clock ticks: nothing sleeps.
			w := newFakeWorld(t, c.src)
			w.flaky.Store(2)
			stop := func() {}
			if c.tick {
				stop = w.ticking(2, 5*time.Millisecond)
			}
			ex := w.run("w", c.input)
			stop()
			if c.errType != "" {
				wantState(t, ex, journal.Failed)
				if ex.Error.Type != c.errType || ex.Error.Step != c.errStep {
					t.Fatalf("error = %+v, want %s at %q", ex.Error, c.errType, c.errStep)
				}
			} else {
				wantOutput(t, ex, c.out)
			}
			w.wantReplay(ex.ID)
			again := w.resume(ex.ID, nil)
			if js(again) != js(ex) {
				t.Fatalf("resuming a finished execution changed it:\n%s\n%s", js(again), js(ex))
			}
		})
	}
}

func TestRetryJournalsEachAttempt(t *testing.T) {
	w := newFakeWorld(t, `
name: w
steps:
  - id: f
    task: flaky
    retry: {max_attempts: 4, delay: 1ms, backoff: 2, jitter: true}
`)
	w.flaky.Store(2)
	defer w.ticking(2, time.Millisecond)()
	ex := w.run("w", nil)
	wantOutput(t, ex, `"ok"`)
	if n := w.count("flaky"); n != 3 {
		t.Fatalf("flaky ran %d times, want 3", n)
	}
	evs, _ := w.eng.Events(context.Background(), ex.ID)
	var paths []string
	for _, ev := range evs {
		if ev.Kind == journal.StepCompleted || ev.Kind == journal.StepFailed {
			paths = append(paths, string(ev.Kind)+" "+ev.Path)
		}
	}
	want := "step.failed f,step.failed f@2,step.completed f@3"
	if got := strings.Join(paths, ","); got != want {
		t.Fatalf("attempts journaled as %s, want %s", got, want)
	}
	w.wantReplay(ex.ID)
}

func TestMapFailFastCancelsTheRest(t *testing.T) {
	w := newWorld(t, `
name: w
steps:
  - id: m
    map:
      items: ${ [1, 2, 3, 4, 5, 6] }
      concurrency: 2
      steps:
        - if: ${ item == 1 }
          raise: {error: Bad, message: one}
        - task: slow
          with: {ms: 200}
`)
	ex := w.run("w", nil)
	wantError(t, ex, "MapFailed", "m", "1 of 6 items failed")
	if n := w.count("slow"); n > 2 {
		t.Fatalf("%d items ran after the failure, want at most the one already running", n)
	}
	w.wantReplay(ex.ID)
}

func TestCompensationsRunInReverse(t *testing.T) {
	w := newWorld(t, `
name: w
steps:
  - id: a
    task: record
    with: do-a
    compensate: {task: record, with: "undo-${ steps.a.output }"}
  - id: b
    task: record
    with: do-b
    compensate: {task: record, with: undo-b}
  - raise: {error: Late, message: too late}
`)
	ex := w.run("w", nil)
	wantError(t, ex, "Late", "#2", "too late")
	if got := strings.Join(w.log, ","); got != "do-a,do-b,undo-b,undo-do-a" {
		t.Fatalf("order = %s", got)
	}
	w.wantReplay(ex.ID)
}

func TestInputSchemaRefusesBeforeWriting(t *testing.T) {
	w := newWorld(t, `
name: w
input: {type: object, required: [order_id], properties: {order_id: {type: string}}}
steps: [{task: echo}]
`)
	_, err := w.eng.Run(context.Background(), "w", map[string]any{"order_id": 7})
	if !errors.Is(err, interpreter.ErrInvalidInput) {
		t.Fatalf("err = %v, want ErrInvalidInput", err)
	}
	list, _ := w.eng.List(context.Background(), journal.Filter{})
	if len(list) != 0 {
		t.Fatalf("a refused run wrote %d executions", len(list))
	}
	if _, err := w.eng.Run(context.Background(), "nope", nil); !errors.Is(err, interpreter.ErrNotFound) {
		t.Fatalf("unknown workflow: err = %v", err)
	}
}

func TestIdempotencyKeyIsStable(t *testing.T) {
	w := newWorld(t, `
name: w
steps:
  - id: k
    task: key
`)
	ex := w.run("w", nil)
	wantOutput(t, ex, `"`+ex.ID+`/k"`)
}

func TestSleepWithoutWaitingIsDurable(t *testing.T) {
	w := newFakeWorld(t, `
name: w
steps:
  - id: nap
    sleep: 1s
  - task: echo
    with: woke
`, interpreter.WithTimerWait(false, 0))
	ex := w.run("w", nil)
	wantState(t, ex, journal.Waiting)
	if ex.WakeAt.IsZero() {
		t.Fatal("a waiting execution has no wake-up time")
	}
	early := w.resume(ex.ID, nil)
	wantState(t, early, journal.Waiting)
	if due, _ := w.eng.List(context.Background(), journal.Filter{Due: w.clk.Now()}); len(due) != 0 {
		t.Fatalf("due before its time: %v", due)
	}
	w.clk.Set(ex.WakeAt)
	due, _ := w.eng.List(context.Background(), journal.Filter{Due: w.clk.Now()})
	if len(due) != 1 || due[0].ID != ex.ID {
		t.Fatalf("due = %v, want the waiting execution", due)
	}
	wantOutput(t, w.resume(ex.ID, nil), `"woke"`)
	w.wantReplay(ex.ID)
}

func TestMoreStepKinds(t *testing.T) {
	cases := []struct {
		name, src, out, errType, errStep string
		tick                             bool
	}{
		{name: "sleep until a time", src: `
name: w
steps:
  - sleep: {until: '${ now() + duration("20ms") }'}
  - task: echo
    with: up
`, out: `"up"`, tick: true},
		{name: "child input schema refusal is a step error", src: `
name: w
steps:
  - id: sub
    call: strict
    with: {n: "not a number"}
---
name: strict
input: {type: object, properties: {n: {type: integer}}}
steps: [{task: echo}]
`, errType: "InvalidInput", errStep: "sub"},
		{name: "compensate with a call", src: `
name: w
steps:
  - id: a
    task: echo
    with: booked
    compensate: {call: undo, with: {what: "${ steps.a.output }"}}
  - raise: {error: Boom, message: after booking}
---
name: undo
steps:
  - task: record
    with: 'undo ${ input.what }'
`, errType: "Boom", errStep: "#1"},
		{name: "finally runs after a return", src: `
name: w
steps:
  - try:
      - return: early
    finally:
      - task: record
        with: finally ran
`, out: `"early"`},
		{name: "nested map inside for", src: `
name: w
steps:
  - id: outer
    for:
      items: ${ [1, 2] }
      as: row
      steps:
        - map:
            items: ${ [10, 20] }
            steps:
              - return: ${ row * item }
`, out: `[[10,20],[20,40]]`},
		{name: "fallback sees err", src: `
name: w
steps:
  - id: f
    task: fail
    with: {type: Down, message: down}
    fallback: {task: echo, with: '${ "fallback for " + err.type }'}
`, out: `"fallback for Down"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newFakeWorld(t, c.src)
			stop := func() {}
			if c.tick {
				stop = w.ticking(2, 5*time.Millisecond)
			}
			ex := w.run("w", nil)
			stop()
			if c.errType != "" {
				wantState(t, ex, journal.Failed)
				if ex.Error.Type != c.errType || ex.Error.Step != c.errStep {
					t.Fatalf("error = %+v, want %s at %q", ex.Error, c.errType, c.errStep)
				}
			} else {
				wantOutput(t, ex, c.out)
			}
			w.wantReplay(ex.ID)
		})
	}
}

func TestRetriedCallStartsANewChild(t *testing.T) {
	w := newFakeWorld(t, `
name: w
steps:
  - id: sub
    call: shaky
    retry: {max_attempts: 3, delay: 1ms}
---
name: shaky
steps:
  - task: flaky
`)
	w.flaky.Store(1)
	stop := w.ticking(2, time.Millisecond)
	ex := w.run("w", nil)
	stop()
	wantOutput(t, ex, `"ok"`)
	children, err := w.eng.List(context.Background(), journal.Filter{ParentID: ex.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(children) != 2 {
		t.Fatalf("%d children, want 2 (one per attempt)", len(children))
	}
	states := map[journal.State]int{}
	for _, c := range children {
		states[c.State]++
	}
	if states[journal.Failed] != 1 || states[journal.Completed] != 1 {
		t.Fatalf("child states = %v", states)
	}
	w.wantReplay(ex.ID)
}

func TestMapItemRetries(t *testing.T) {
	w := newFakeWorld(t, `
name: w
steps:
  - id: m
    map:
      items: ${ [1] }
      task: flaky
    retry: {max_attempts: 2, delay: 1ms}
`)
	w.flaky.Store(1)
	defer w.ticking(2, time.Millisecond)()
	ex := w.run("w", nil)
	wantOutput(t, ex, `["ok"]`)
	evs, _ := w.eng.Events(context.Background(), ex.ID)
	var paths []string
	for _, ev := range evs {
		paths = append(paths, ev.Path)
	}
	if strings.Join(paths, ",") != "m[0],m[0]@2," {
		t.Fatalf("paths = %v", paths)
	}
	w.wantReplay(ex.ID)
}

// A map with inline steps retries each item as a whole: attempt n of item
// i runs its steps again under m[i]@n, as for task and call items.
func TestMapInlineStepsRetryEachItem(t *testing.T) {
	w := newFakeWorld(t, `
name: w
steps:
  - id: m
    map:
      items: ${ [1, 2] }
      concurrency: 1
      steps:
        - id: a
          task: echo
          with: ${ item }
        - id: b
          task: flaky
    retry: {max_attempts: 3, delay: 1s, errors: [Flaky]}
`)
	w.flaky.Store(1)
	defer w.ticking(2, time.Second)()
	ex := w.run("w", nil)
	wantOutput(t, ex, `["ok","ok"]`)
	evs, _ := w.eng.Events(context.Background(), ex.ID)
	var steps []string
	for _, ev := range evs {
		if ev.Kind == journal.StepCompleted || ev.Kind == journal.StepFailed {
			steps = append(steps, string(ev.Kind)+" "+ev.Path)
		}
	}
	want := "step.completed m[0]/a,step.failed m[0]/b,step.failed m[0]," +
		"step.completed m[0]@2/a,step.completed m[0]@2/b,step.completed m[0]@2," +
		"step.completed m[1]/a,step.completed m[1]/b,step.completed m[1]"
	if got := strings.Join(steps, ","); got != want {
		t.Fatalf("journaled as\n%s\nwant\n%s", got, want)
	}
	w.wantReplay(ex.ID)
}

// timeout on a map with inline steps bounds each item's attempt.
func TestMapInlineStepsTimeout(t *testing.T) {
	w := newFakeWorld(t, `
name: w
steps:
  - id: m
    map:
      items: ${ [1] }
      steps:
        - task: slow
          with: {ms: 5000}
    timeout: 30ms
`)
	stop := w.ticking(2, 10*time.Millisecond)
	ex := w.run("w", nil)
	stop()
	wantError(t, ex, "MapFailed", "m", "map item m[0] timed out after 30ms")
	w.wantReplay(ex.ID)
}
