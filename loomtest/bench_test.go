package loomtest_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/loomwork/loom/definition"
	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal/memory"
	"github.com/loomwork/loom/loomtest"
)

// BenchmarkCase runs one test case (a task, a pause and its resume, a
// second task, assertions) per iteration; BenchmarkEngineBaseline does the
// same run with the engine alone, so the two give loomtest's overhead as a
// ratio measured in the same run.
func BenchmarkCase(b *testing.B) {
	r := &loomtest.Runner{}
	ctx := context.Background()
	for b.Loop() {
		res := r.RunFile(ctx, "testdata/bench/order.test.yaml")
		if !res.Passed() {
			b.Fatalf("the case failed: %v %v", res.Err, res.Cases)
		}
	}
}

func BenchmarkEngineBaseline(b *testing.B) {
	cat, err := definition.Load("testdata/bench/order.yaml")
	if err != nil {
		b.Fatal(err)
	}
	reg := interpreter.NewRegistry()
	reg.Add("fetch_order", func(context.Context, json.RawMessage) (any, error) { return map[string]any{"total": 500}, nil })
	reg.Add("charge", func(context.Context, json.RawMessage) (any, error) { return "ok", nil })
	ctx := context.Background()
	for b.Loop() {
		eng := interpreter.New(cat, reg, memory.New(), interpreter.WithTimerWait(false, 0))
		ex, err := eng.Run(ctx, "order", map[string]any{"id": "B"})
		if err != nil {
			b.Fatal(err)
		}
		if ex, err = eng.Resume(ctx, ex.ID, "yes"); err != nil || ex.Output != "ok" {
			b.Fatalf("%v %v", ex, err)
		}
	}
}
