package interpreter_test

import (
	"context"
	"testing"

	"github.com/loomwork/loom/journal"
)

// A child that drew journaled builtins replays to its recorded outcome when
// it is the one replayed: the walk that re-derives it for its parent and
// the walk that replays it draw the same recorded values (#8, defect 1).
func TestReplayOfAChildThatDrawsBuiltins(t *testing.T) {
	w := newWorld(t, `
name: w
steps:
  - id: sub
    call: child
---
name: child
steps:
  - set: {at: '${ now() }', id: '${ uuid4() }', n: '${ randint(1, 6) }'}
  - task: echo
    with: '${ vars }'
`)
	ex := w.run("w", nil)
	wantState(t, ex, journal.Completed)
	children, err := w.eng.List(context.Background(), journal.Filter{ParentID: ex.ID})
	if err != nil || len(children) != 1 {
		t.Fatalf("children = %v, %v", children, err)
	}
	w.wantReplay(children[0].ID)
	w.wantReplay(ex.ID)
}
