package interpreter_test

import (
	"context"
	"errors"
	"testing"

	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal"
)

// A binary that does not register every task an execution's definition
// uses refuses to drive it — Resume, Cancel — writing nothing, and
// the binary that has the task finishes it (#8, defect 4).
func TestABinaryLackingATaskRefusesToDrive(t *testing.T) {
	w := newWorld(t, `
name: w
steps:
  - pause: go
  - call: child
---
name: child
steps:
  - task: echo
    with: done
`)
	ctx := context.Background()
	lacking := interpreter.New(w.cat, interpreter.NewRegistry(), w.j)
	want := "this binary has no task echo; run it with the binary that registers it"
	ex := w.run("w", nil)
	wantState(t, ex, journal.Paused)
	before, _ := w.j.Events(ctx, ex.ID, 0)
	for name, drive := range map[string]func() error{
		"Resume":       func() error { _, err := lacking.Resume(ctx, ex.ID, "x"); return err },
		"Resume --due": func() error { _, err := lacking.Resume(ctx, ex.ID, nil, interpreter.OnlyDue()); return err },
		"Cancel":       func() error { _, err := lacking.Cancel(ctx, ex.ID); return err },
		"ResumePause":  func() error { _, err := lacking.ResumePause(ctx, ex.ID, "go", "x"); return err },
	} {
		if err := drive(); !errors.Is(err, interpreter.ErrMissingTask) || err.Error() != want {
			t.Errorf("%s: %v, want %q", name, err, want)
		}
	}
	after, _ := w.j.Events(ctx, ex.ID, 0)
	if len(after) != len(before) {
		t.Fatalf("the refusals wrote %d events", len(after)-len(before))
	}
	if l, _ := w.j.LeaseOf(ctx, ex.ID); l.Token != 0 {
		t.Fatalf("a refusal left a lease: %+v", l)
	}
	wantOutput(t, w.resume(ex.ID, "x"), `"done"`)
}
