package interpreter_test

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/memory"
)

// writeCounter counts the journal writes (each one commit on a durable
// backend) made through it.
type writeCounter struct {
	journal.Journal
	writes atomic.Int64
}

func (c *writeCounter) CreateHeld(ctx context.Context, e *journal.Execution, h journal.Holder, ttl time.Duration) (journal.Lease, error) {
	c.writes.Add(1)
	return c.Journal.CreateHeld(ctx, e, h, ttl)
}

func (c *writeCounter) Append(ctx context.Context, a journal.Append) (int64, error) {
	c.writes.Add(1)
	return c.Journal.Append(ctx, a)
}

func (c *writeCounter) Release(ctx context.Context, l journal.Lease) error {
	c.writes.Add(1)
	return c.Journal.Release(ctx, l)
}

// TestLoneExecutionCommits: a lone execution of n tasks writes n+1 times
// (the start with its lease; each task's result; the last result shares
// the write that finishes the execution and gives the lease up), and
// every result is in the journal at the end.
func TestLoneExecutionCommits(t *testing.T) {
	var sb strings.Builder
	sb.WriteString("name: ten\nsteps:\n")
	for i := range 10 {
		fmt.Fprintf(&sb, "  - id: s%d\n    task: echo\n    with: %d\n", i, i)
	}
	sb.WriteString("output: '${ steps.s9.output + now().Year() * 0 }'\n")
	w := newWorld(t, sb.String())
	c := &writeCounter{Journal: memory.New()}
	eng := interpreter.New(w.cat, w.reg, c)
	ex, err := eng.Run(context.Background(), "ten", nil)
	if err != nil {
		t.Fatal(err)
	}
	wantState(t, ex, journal.Completed)
	if got := c.writes.Load(); got != 11 {
		t.Errorf("%d journal writes for a lone 10-task execution, want 11", got)
	}
	evs, err := c.Events(context.Background(), ex.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, ev := range evs {
		kinds = append(kinds, string(ev.Kind)+"@"+ev.Path)
	}
	if n := len(evs); n < 12 || evs[n-1].Kind != journal.ExecutionFinished || evs[n-3].Path != "s9" || evs[n-2].Kind != journal.Builtin {
		t.Errorf("events: %v; want s0…s9 completed, the output's builtin, then execution.finished", kinds)
	}
	res, err := eng.Replay(context.Background(), ex.ID)
	if err != nil || !res.Match {
		t.Errorf("replay: %+v, %v", res, err)
	}
}

// getCounter counts the record reads made through it.
type getCounter struct {
	journal.Journal
	gets atomic.Int64
}

func (c *getCounter) Get(ctx context.Context, id string) (*journal.Execution, error) {
	c.gets.Add(1)
	return c.Journal.Get(ctx, id)
}

// TestRunReturnsTheRecord: what Run and Resume return is the record as the
// journal then holds it (a Get after says the same), for each way a drive
// ends; where the journal reports the time it wrote the record
// (journal.Append.Stamp: memory, SQLite), without reading it back.
func TestRunReturnsTheRecord(t *testing.T) {
	w := newWorld(t, `
name: done
input: {type: object}
steps:
  - {id: a, task: echo, with: '${ input }'}
output: '${ {"got": steps.a.output, "at": now()} }'
---
name: raises
steps:
  - {id: a, task: echo, with: 1}
  - {raise: {error: Nope, message: no, data: '${ steps.a.output }'}}
---
name: pauses
steps:
  - {id: a, task: echo, with: 1}
  - {id: p, pause: approve, schema: {type: object}}
  - {task: echo, with: '${ steps.p.output }'}
---
name: sleeps
steps:
  - {sleep: 1h}
`)
	c := &getCounter{Journal: w.j}
	eng := interpreter.New(w.cat, w.reg, c, interpreter.WithTimerWait(false, 0))
	ctx := context.Background()
	// check compares what a drive returned with the journal's record;
	// ran: it was a Run, which reads nothing (a Resume reads the record
	// to begin).
	check := func(ex *interpreter.Execution, err error, st journal.State, ran bool) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		wantState(t, ex, st)
		if reads := c.gets.Load(); ran && reads > 0 && os.Getenv(backendEnv) != "postgres" {
			t.Errorf("%s: Run read the record %d times", ex.Workflow, reads)
		}
		got, err := eng.Get(ctx, ex.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(ex, got) {
			t.Errorf("%s: returned %+v\nthe journal's %+v", ex.Workflow, ex, got)
		}
		c.gets.Store(0)
	}
	ex, err := eng.Run(ctx, "done", map[string]any{"n": 1})
	check(ex, err, journal.Completed, true)
	ex, err = eng.Run(ctx, "raises", nil)
	check(ex, err, journal.Failed, true)
	ex, err = eng.Run(ctx, "pauses", nil)
	check(ex, err, journal.Paused, true)
	ex, err = eng.Resume(ctx, ex.ID, map[string]any{"ok": true})
	check(ex, err, journal.Completed, false)
	ex, err = eng.Run(ctx, "sleeps", nil)
	check(ex, err, journal.Waiting, true)
}
