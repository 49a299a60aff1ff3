package sqlite_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/sqlite"
)

func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "loom")
	defer os.RemoveAll(dir)
	j, err := sqlite.Open(filepath.Join(dir, "loom.db"), sqlite.WithBusyTimeout(10*time.Second))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer j.Close()
	ctx := context.Background()

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
		Update: &journal.Update{State: &done, Output: json.RawMessage(`"hi"`)},
	})
	fmt.Println(seq, err)

	// A second append that still believes the journal is empty is refused.
	_, err = j.Append(ctx, journal.Append{ExecutionID: "ex-1", Token: lease.Token, ExpectedSeq: 0})
	fmt.Println(err)

	e, _ := j.Get(ctx, "ex-1")
	fmt.Println(e.State, string(e.Output))
	// Output:
	// 1 <nil>
	// journal: append to ex-1 after seq 0, last is 1: journal sequence conflict
	// COMPLETED "hi"
}
