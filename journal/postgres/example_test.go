package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/postgres"
)

func ExampleOpen() {
	ctx := context.Background()
	// For example postgres://loom@db.internal:5432/loom?sslmode=verify-full.
	dsn := os.Getenv("LOOM_POSTGRES_DSN")
	j, err := postgres.Open(ctx, dsn, postgres.WithSchema("loom"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer j.Close()

	_ = j.Create(ctx, &journal.Execution{ID: "ex-1", Workflow: "hello", Version: 1, State: journal.Running})
	lease, _ := j.Acquire(ctx, "ex-1", journal.Holder{ID: "runner-1", Host: "localhost", PID: os.Getpid()}, 30*time.Second, 0)
	done := journal.Completed
	seq, err := j.Append(ctx, journal.Append{
		ExecutionID: "ex-1",
		Token:       lease.Token,
		ExpectedSeq: 0,
		Events: []journal.Event{
			{Path: "greet", Kind: journal.StepCompleted, Name: "task:echo", Data: json.RawMessage(`{"output":"hi"}`)},
		},
		Update:  &journal.Update{State: &done, Output: json.RawMessage(`"hi"`)},
		Release: true, // the last write of a run gives the lease up
	})
	fmt.Println(seq, err)

	e, _ := j.Get(ctx, "ex-1")
	fmt.Println(e.State, string(e.Output))
}
