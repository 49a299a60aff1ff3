package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/postgres"
)

// BenchmarkAppend compares the writer's grouped commits with one durable
// commit per append (synchronous_commit on: a WAL flush per commit), as
// journal/sqlite's BenchmarkAppend does. One op is one 10-step workflow per
// execution: each step one Append, the last also finishing the execution.
// "serial" drives executions one at a time from one goroutine, so every
// append is its own commit; "grouped" drives 1,000 executions at once. The
// grouped case reports its throughput as a ratio to serial's. It needs
// LOOM_POSTGRES_DSN.
func BenchmarkAppend(b *testing.B) {
	var serial float64
	b.Run("serial-commit-per-append", func(b *testing.B) {
		serial = benchAppends(b, 50, 1)
	})
	b.Run("grouped-1000-goroutines", func(b *testing.B) {
		rate := benchAppends(b, 1000, 1000)
		if serial > 0 {
			b.ReportMetric(rate/serial, "x-serial")
		}
	})
}

const benchSteps = 10

// benchAppends runs execs executions of benchSteps appends per op, with
// workers goroutines each driving execs/workers executions in turn, and
// returns appends per second.
func benchAppends(b *testing.B, execs, workers int) float64 {
	j := open(b, freshSchema(b), postgres.WithMaxConns(8))
	defer j.Close()
	ctx := context.Background()
	var (
		elapsed          time.Duration
		appends, commits int64
	)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		leases := make([]journal.Lease, execs)
		var wg sync.WaitGroup
		for e := range execs {
			wg.Go(func() {
				var err error
				leases[e], err = j.CreateHeld(ctx, &journal.Execution{ID: fmt.Sprintf("r%d-%d", i, e), Workflow: "bench", Version: 1, State: journal.Running},
					journal.Holder{ID: "bench", Host: "localhost", PID: 1}, time.Hour)
				if err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
		before := j.Stats()
		b.StartTimer()
		t0 := time.Now()
		for w := range workers {
			wg.Go(func() {
				for e := w; e < execs; e += workers {
					runWorkflow(b, ctx, j, fmt.Sprintf("r%d-%d", i, e), leases[e].Token)
				}
			})
		}
		wg.Wait()
		elapsed += time.Since(t0)
		b.StopTimer()
		after := j.Stats()
		appends += after.Appends - before.Appends
		commits += after.Commits - before.Commits
	}
	if want := int64(b.N * execs * benchSteps); appends != want {
		b.Fatalf("%d appends acknowledged, want %d", appends, want)
	}
	rate := float64(appends) / elapsed.Seconds()
	b.ReportMetric(rate, "appends/s")
	b.ReportMetric(float64(commits)/float64(b.N), "commits/op")
	b.ReportMetric(float64(appends)/float64(commits), "appends/commit")
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(appends), "ns/append")
	return rate
}

func runWorkflow(b *testing.B, ctx context.Context, j *postgres.Journal, id string, token int64) {
	var seq int64
	for k := range benchSteps {
		data, _ := json.Marshal(map[string]any{
			"output":     map[string]any{"step": k, "status": "ok", "items": []int{1, 2, 3}, "id": id},
			"started_at": "2025-06-01T12:00:00.000000000Z",
		})
		a := journal.Append{ExecutionID: id, Token: token, ExpectedSeq: seq,
			Events: []journal.Event{{Path: fmt.Sprintf("step_%d", k), Kind: journal.StepCompleted, Name: "task:work", Data: data}}}
		if k == benchSteps-1 {
			state := journal.Completed
			a.Events = append(a.Events, journal.Event{Path: "", Kind: journal.ExecutionFinished, Name: "COMPLETED", Data: json.RawMessage(`{"state":"COMPLETED","output":"done","error":null}`)})
			a.Update = &journal.Update{State: &state, Output: json.RawMessage(`"done"`)}
		}
		var err error
		if seq, err = j.Append(ctx, a); err != nil {
			b.Error(err)
			return
		}
	}
}
