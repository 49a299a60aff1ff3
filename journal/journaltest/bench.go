package journaltest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/loomwork/loom/journal"
)

// Counts reads a backend's counters: acknowledged appends and commits.
type Counts func() (appends, commits int64)

// BenchmarkAppend compares a backend's grouped commits with one durable
// commit per append. One op is one 10-step workflow per execution: each step
// one Append, as the interpreter writes them, the last also finishing the
// execution. "serial" drives executions one at a time from one goroutine,
// so every append is its own commit; "grouped" drives 1,000 executions at
// once and reports its throughput as a ratio to serial's. open returns a
// fresh, empty journal and its counters; the benchmark closes it.
func BenchmarkAppend(b *testing.B, open func(b *testing.B) (journal.Journal, Counts)) {
	var serial float64
	b.Run("serial-commit-per-append", func(b *testing.B) {
		serial = benchAppends(b, open, 50, 1)
	})
	b.Run("grouped-1000-goroutines", func(b *testing.B) {
		rate := benchAppends(b, open, 1000, 1000)
		if serial > 0 {
			b.ReportMetric(rate/serial, "x-serial")
		}
	})
}

const benchSteps = 10

// benchAppends runs execs executions of benchSteps appends per op, with
// workers goroutines each driving execs/workers executions in turn, and
// returns appends per second.
func benchAppends(b *testing.B, open func(b *testing.B) (journal.Journal, Counts), execs, workers int) float64 {
	j, counts := open(b)
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
		a0, c0 := counts()
		b.StartTimer()
		t0 := time.Now()
		for w := range workers {
			wg.Go(func() {
				for e := w; e < execs; e += workers {
					runBenchWorkflow(b, ctx, j, fmt.Sprintf("r%d-%d", i, e), leases[e].Token)
				}
			})
		}
		wg.Wait()
		elapsed += time.Since(t0)
		b.StopTimer()
		a1, c1 := counts()
		appends += a1 - a0
		commits += c1 - c0
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

func runBenchWorkflow(b *testing.B, ctx context.Context, j journal.Journal, id string, token int64) {
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
