package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/loomwork/loom/definition"
	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal"
)

// memoryFlow runs four echo tasks, then a fifth that blocks (the in-flight
// case) or a pause (the paused case), so each execution has a journal and
// step outputs behind it when it is weighed.
const memoryFlow = `
name: inflight
steps:
  - {id: a, task: echo, with: {n: 1}}
  - {id: b, task: echo, with: "${ steps.a.output }"}
  - {id: c, task: echo, with: "${ steps.b.output }"}
  - {id: d, task: echo, with: "${ steps.c.output }"}
  - {id: e, task: block, with: "${ steps.d.output }"}
---
name: paused
steps:
  - {id: a, task: echo, with: {n: 1}}
  - {id: b, task: echo, with: "${ steps.a.output }"}
  - {id: c, task: echo, with: "${ steps.b.output }"}
  - {id: d, task: echo, with: "${ steps.c.output }"}
  - pause: approve
`

// BenchmarkMemoryPerExecution: the memory (heap and goroutine stacks in
// use, after a GC) that 1,000 executions blocked in a task hold, per
// execution, and the growth 1,000 paused executions leave behind (a paused
// execution is in the journal only: the target is zero). The baseline is
// the same process just before each batch, after a warm-up batch of each
// kind (so the SQLite page cache and the engine's caches are already
// grown).
func BenchmarkMemoryPerExecution(b *testing.B) {
	const n = 1000
	cat, err := definition.Parse("memory.yaml", []byte(memoryFlow))
	if err != nil {
		b.Fatal(err)
	}
	reg := tasks()
	var started sync.WaitGroup
	release := make(chan struct{})
	reg.Add("block", func(ctx context.Context, in json.RawMessage) (any, error) {
		started.Done()
		<-release
		return in, nil
	})
	eng := interpreter.New(cat, reg, openSQLite(b))
	ctx := context.Background()

	// inFlight starts n executions, waits until each is blocked in its
	// task, weighs the process, then lets them finish.
	inFlight := func() mem {
		release = make(chan struct{})
		started.Add(n)
		var done sync.WaitGroup
		errs := make(chan error, n)
		for k := 0; k < n; k++ {
			done.Add(1)
			go func() {
				defer done.Done()
				ex, err := eng.Run(ctx, "inflight", nil)
				if err == nil && ex.State != journal.Completed {
					err = fmt.Errorf("state %s", ex.State)
				}
				if err != nil {
					errs <- err
				}
			}()
		}
		started.Wait()
		m := inUse()
		close(release)
		done.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		return m
	}
	paused := func() {
		sem := make(chan struct{}, 100)
		var done sync.WaitGroup
		for k := 0; k < n; k++ {
			sem <- struct{}{}
			done.Add(1)
			go func() {
				defer func() { <-sem; done.Done() }()
				ex, err := eng.Run(ctx, "paused", nil)
				if err == nil && ex.State != journal.Paused {
					err = fmt.Errorf("state %s", ex.State)
				}
				if err != nil {
					b.Error(err)
				}
			}()
		}
		done.Wait()
	}

	inFlight()
	paused()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		base := inUse()
		peak := inFlight()
		mid := inUse()
		paused()
		after := inUse()
		b.ReportMetric(float64(peak.total()-base.total())/n, "B/in-flight")
		b.ReportMetric(float64(peak.heap-base.heap)/n, "heap-B/in-flight")
		b.ReportMetric(float64(peak.stack-base.stack)/n, "stack-B/in-flight")
		b.ReportMetric(float64(after.total()-mid.total())/n, "B/paused")
	}
}

// mem is the heap and the goroutine stacks in use.
type mem struct{ heap, stack int64 }

func (m mem) total() int64 { return m.heap + m.stack }

// inUse is the memory in use after a full GC.
func inUse() mem {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return mem{int64(m.HeapInuse), int64(m.StackInuse)}
}
