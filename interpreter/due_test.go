package interpreter_test

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal"
)

// Engine.Due is what `loom resume --due` continues: timers come, runners
// whose lease lapsed, and runners of this host that are gone; not a timer
// still to come, nor an execution a live runner holds.
func TestDueIsWhatAResumeOfTheDueContinues(t *testing.T) {
	w := newFakeWorld(t, `
name: nap
steps:
  - sleep: 1h
`, interpreter.WithTimerWait(false, 0))
	ctx := context.Background()
	sleeping := w.run("nap", nil)
	wantState(t, sleeping, journal.Waiting)
	running := func(id string, h journal.Holder) {
		if err := w.j.Create(ctx, &journal.Execution{ID: id, Workflow: "nap", State: journal.Running}); err != nil {
			t.Fatal(err)
		}
		if h.ID != "" {
			if _, err := w.j.Acquire(ctx, id, h, 3*time.Hour, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	running("orphan", journal.Holder{})
	dead := interpreter.LocalHolder("gone")
	dead.PID = 1 << 30 // no such process
	running("dead-runner", dead)
	running("live-runner", interpreter.LocalHolder("here"))
	remote := dead
	remote.ID, remote.Host, remote.Node = "there", remote.Host+".elsewhere", "another-boot/pid:[1]"
	running("remote-runner", remote)
	// Same hostname, another PID namespace (a container): its PIDs mean
	// nothing here.
	contained := dead
	contained.ID, contained.Node = "contained", dead.Node+"-container"
	running("contained-runner", contained)

	due := func() string {
		exs, err := w.eng.Due(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, ex := range exs {
			id := ex.ID
			if id == sleeping.ID {
				id = "sleeping"
			}
			ids = append(ids, id)
		}
		sort.Strings(ids)
		return strings.Join(ids, ",")
	}
	if got, want := due(), "dead-runner,orphan"; got != want {
		t.Errorf("Due = %s, want %s", got, want)
	}
	w.clk.Advance(time.Hour)
	if got, want := due(), "dead-runner,orphan,sleeping"; got != want {
		t.Errorf("an hour later, Due = %s, want %s", got, want)
	}
	if leasesOnTheServersClock() {
		return // the fake clock does not expire leases there
	}
	w.clk.Advance(3 * time.Hour) // the leases lapsed
	if got, want := due(), "contained-runner,dead-runner,live-runner,orphan,remote-runner,sleeping"; got != want {
		t.Errorf("two hours later, Due = %s, want %s", got, want)
	}
}
