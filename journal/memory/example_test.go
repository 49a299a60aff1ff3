package memory_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/memory"
)

func ExampleNew() {
	j := memory.New()
	ctx := context.Background()
	_ = j.Create(ctx, &journal.Execution{ID: "ex-1", Workflow: "hello", State: journal.Running})

	a, _ := j.Acquire(ctx, "ex-1", journal.Holder{ID: "runner-a", Host: "h1", PID: 10}, time.Minute, 0)
	_, err := j.Acquire(ctx, "ex-1", journal.Holder{ID: "runner-b", Host: "h2", PID: 20}, time.Minute, 0)
	var busy *journal.BusyError
	fmt.Println(errors.As(err, &busy), busy.Lease.Holder.Host)

	// runner-b has established that runner-a is dead and takes over by token:
	// runner-a's writes are fenced from then on.
	b, _ := j.Acquire(ctx, "ex-1", journal.Holder{ID: "runner-b", Host: "h2", PID: 20}, time.Minute, a.Token)
	_, err = j.Append(ctx, journal.Append{ExecutionID: "ex-1", Token: a.Token, Events: []journal.Event{{Path: "x", Kind: journal.Builtin, Name: "now"}}})
	fmt.Println(errors.Is(err, journal.ErrFenced), b.Token > a.Token)
	// Output:
	// true h1
	// true true
}
