package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loomwork/loom/definition"
	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/memory"
	"github.com/loomwork/loom/journal/postgres"
	"github.com/loomwork/loom/journal/sqlite"
)

func tasks() *interpreter.Registry {
	reg := interpreter.NewRegistry()
	reg.Add("echo", func(ctx context.Context, in json.RawMessage) (any, error) { return in, nil })
	return reg
}

// chain is a workflow of n echo tasks, each reading the previous output.
func chain(b *testing.B, n int) *definition.Catalog {
	cat, err := definition.Parse("chain.yaml", []byte(chainYAML(n)))
	if err != nil {
		b.Fatal(err)
	}
	return cat
}

// chainYAML is chain's definition.
func chainYAML(n int) string {
	var sb strings.Builder
	sb.WriteString("name: chain\nsteps:\n  - id: s0\n    task: echo\n    with: 0\n")
	for i := 1; i < n; i++ {
		fmt.Fprintf(&sb, "  - id: s%d\n    task: echo\n    with: \"${ steps.s%d.output + 1 }\"\n", i, i-1)
	}
	return sb.String()
}

func openSQLite(b *testing.B) journal.Journal {
	j, err := sqlite.Open(filepath.Join(b.TempDir(), "loom.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { j.Close() })
	return j
}

// BenchmarkStepOverhead: what the interpreter adds per step on an in-memory
// journal, against calling the task function directly (the baseline).
func BenchmarkStepOverhead(b *testing.B) {
	const steps = 100
	cat := chain(b, steps)
	eng := interpreter.New(cat, tasks(), memory.New())
	fn, _ := tasks().LookupTask("echo")
	ctx := context.Background()

	start := time.Now()
	for i := 0; i < b.N*steps; i++ {
		_, _ = fn(ctx, json.RawMessage(`1`))
	}
	base := time.Since(start)

	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ex, err := eng.Run(ctx, "chain", nil)
		if err != nil || ex.State != journal.Completed {
			b.Fatalf("%v %v", err, ex)
		}
	}
	b.StopTimer()
	per := float64(b.Elapsed().Nanoseconds()) / float64(b.N*steps)
	b.ReportMetric(per, "ns/step")
	b.ReportMetric(per/(float64(base.Nanoseconds())/float64(b.N*steps)), "x-direct-call")
}

// BenchmarkThroughput: 1,000 concurrent executions of a 10-task workflow on
// the durable SQLite journal (WAL, synchronous=FULL). The baseline is the
// same executions run one after the other, where no commit can be shared.
func BenchmarkThroughput(b *testing.B) {
	const execs, steps = 1000, 10
	cat := chain(b, steps)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		j := openSQLite(b)
		eng := interpreter.New(cat, tasks(), j)

		serialN := 100
		start := time.Now()
		for k := 0; k < serialN; k++ {
			if _, err := eng.Run(ctx, "chain", nil); err != nil {
				b.Fatal(err)
			}
		}
		serial := float64(serialN*steps) / time.Since(start).Seconds()

		before := stats(j)
		cpu0 := cpuTime()
		start = time.Now()
		runConcurrently(b, eng, execs)
		el := time.Since(start)
		cpu := cpuTime() - cpu0
		after := stats(j)
		rate := float64(execs*steps) / el.Seconds()
		b.ReportMetric(rate, "tasks/s")
		b.ReportMetric(serial, "serial-tasks/s")
		b.ReportMetric(rate/serial, "x-serial")
		// CPU per task, and the rate it allows on this machine's cores
		// when nothing else runs: the figure that holds on a shared box.
		if cpu > 0 {
			perTask := float64(cpu.Nanoseconds()) / float64(execs*steps)
			b.ReportMetric(perTask/1000, "cpu-µs/task")
			b.ReportMetric(float64(runtime.NumCPU())*1e9/perTask, "cpu-bound-tasks/s")
		}
		if after.Commits > before.Commits {
			b.ReportMetric(float64(after.Appends-before.Appends)/float64(after.Commits-before.Commits), "appends/commit")
		}
	}
}

type counters struct{ Appends, Commits int64 }

func stats(j journal.Journal) counters {
	if s, ok := j.(interface{ Stats() sqlite.Stats }); ok {
		st := s.Stats()
		return counters{st.Appends, st.Commits}
	}
	return counters{}
}

// BenchmarkOneExecution: one 10-task execution end to end on SQLite, against
// a baseline of 11 bare journal appends (11 durable commits, what such an
// execution must make), measured alternately with it: each round times 11
// appends, then one execution, and the figures are the medians of the
// rounds, so a load that drifts during the run weighs on both alike.
func BenchmarkOneExecution(b *testing.B) {
	cat := chain(b, 10)
	j := openSQLite(b)
	eng := interpreter.New(cat, tasks(), j)
	ctx := context.Background()

	if err := j.Create(ctx, &journal.Execution{ID: "base", Workflow: "chain", State: journal.Running}); err != nil {
		b.Fatal(err)
	}
	l, err := j.Acquire(ctx, "base", journal.Holder{ID: "bench"}, time.Hour, 0)
	if err != nil {
		b.Fatal(err)
	}
	seq := 0
	commits11 := func() time.Duration {
		start := time.Now()
		for i := 0; i < 11; i++ {
			if _, err := j.Append(ctx, journal.Append{ExecutionID: "base", Token: l.Token, ExpectedSeq: int64(seq),
				Events: []journal.Event{{Path: "x", Kind: journal.StepCompleted, Name: "task:echo", Ordinal: seq, Data: json.RawMessage(`{}`)}}}); err != nil {
				b.Fatal(err)
			}
			seq++
		}
		return time.Since(start)
	}

	var base, runs []time.Duration
	var commits int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		base = append(base, commits11())
		before := stats(j)
		b.StartTimer()
		start := time.Now()
		if _, err := eng.Run(ctx, "chain", nil); err != nil {
			b.Fatal(err)
		}
		runs = append(runs, time.Since(start))
		b.StopTimer()
		commits += stats(j).Commits - before.Commits
		b.StartTimer()
	}
	b.StopTimer()
	per, commit11 := median(runs), median(base)
	b.ReportMetric(float64(per.Microseconds())/1000, "ms/execution")
	b.ReportMetric(float64(commits)/float64(b.N), "commits/execution")
	// The target: 11 commits, and no more time than 1.2 x 11 commits.
	b.ReportMetric(float64(commit11.Microseconds())/1000, "ms/11-commits")
	b.ReportMetric(float64(per)/float64(commit11), "x-11-commits")
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// replayShapes are workflows whose journals hold about 10,000 events, each
// built by another construct: one map step, a for loop, nested parallel
// branches of sequential tasks, and a tree of call steps (100 leaf children
// of 100 tasks, under 10 middle children).
var replayShapes = []struct{ name, yaml string }{
	{"map", `name: shape
steps:
  - id: each
    map:
      items: ${ 0..9999 }
      concurrency: 0
      task: echo
output: '${ len(steps.each.output) }'
`},
	{"for", `name: shape
steps:
  - id: each
    for:
      items: ${ 0..9999 }
      as: n
      steps:
        - task: echo
          with: ${ n }
output: '${ len(steps.each.output) }'
`},
	{"parallel", func() string {
		// 10 branches of 10 branches of 100 tasks each.
		var sb strings.Builder
		sb.WriteString("name: shape\nsteps:\n  - id: outer\n    parallel:\n")
		for i := 0; i < 10; i++ {
			fmt.Fprintf(&sb, "      b%d:\n        - parallel:\n", i)
			for k := 0; k < 10; k++ {
				fmt.Fprintf(&sb, "            c%d:\n", k)
				for t := 0; t < 100; t++ {
					fmt.Fprintf(&sb, "              - task: echo\n                with: %d\n", t)
				}
			}
		}
		sb.WriteString("output: '${ len(steps.outer.output) }'\n")
		return sb.String()
	}()},
	{"call", func() string {
		var sb strings.Builder
		sb.WriteString("name: shape\nsteps:\n")
		for i := 0; i < 10; i++ {
			fmt.Fprintf(&sb, "  - call: mid\n    with: %d\n", i)
		}
		sb.WriteString("---\nname: mid\nsteps:\n")
		for i := 0; i < 10; i++ {
			fmt.Fprintf(&sb, "  - call: leaf\n    with: %d\n", i)
		}
		sb.WriteString("---\nname: leaf\nsteps:\n")
		for t := 0; t < 100; t++ {
			fmt.Fprintf(&sb, "  - task: echo\n    with: %d\n", t)
		}
		return sb.String()
	}()},
}

// BenchmarkReplay10000Events: Replay of an execution whose journal (with
// its children's) holds about 10,000 events, for each shape of
// replayShapes, against reading those events alone (the baseline).
func BenchmarkReplay10000Events(b *testing.B) {
	ctx := context.Background()
	parent := b
	for _, shape := range replayShapes {
		// Built once, on the first call of b.Run's function (which calls it
		// more than once: a for loop of 10,000 tasks is 10,000 commits), and
		// only for a shape -bench selects.
		var (
			j   journal.Journal
			eng *interpreter.Engine
			ex  *interpreter.Execution
			all []*journal.Execution
		)
		b.Run(shape.name, func(b *testing.B) {
			if j == nil {
				cat, err := definition.Parse(shape.name+".yaml", []byte(shape.yaml))
				if err != nil {
					b.Fatal(err)
				}
				j = openSQLite(parent) // open until the last call
				eng = interpreter.New(cat, tasks(), j)
				ex, err = eng.Run(ctx, "shape", nil)
				if err != nil || ex.State != journal.Completed {
					b.Fatalf("%v %+v", err, ex)
				}
				if all, err = j.List(ctx, journal.Filter{}); err != nil { // the tree is all the journal holds
					b.Fatal(err)
				}
			}
			readAll := func() int {
				n := 0
				for _, r := range all {
					evs, err := j.Events(ctx, r.ID, 0)
					if err != nil {
						b.Fatal(err)
					}
					n += len(evs)
				}
				return n
			}
			events := readAll()
			if events < 10000 {
				b.Fatalf("only %d events", events)
			}
			start := time.Now()
			const baseN = 5
			for i := 0; i < baseN; i++ {
				readAll()
			}
			read := time.Since(start) / baseN

			cpu0 := cpuTime()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				res, err := eng.Replay(ctx, ex.ID)
				if err != nil || !res.Match {
					b.Fatalf("%v %+v", err, res)
				}
			}
			b.StopTimer()
			per := b.Elapsed() / time.Duration(b.N)
			b.ReportMetric(float64(per.Microseconds())/1000, "ms/replay")
			// The process's CPU time (GC included) per replay: on a shared
			// machine the wall time also counts the other users' work.
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/replay")
			b.ReportMetric(float64(events), "events")
			b.ReportMetric(float64(per)/float64(read), "x-read-events")
		})
	}
}

// mapItemSizes are the list sizes BenchmarkMapItems runs: 10,000, 50,000
// and the default map item limit (100,000). BENCH_MAP_SIZES chooses others
// (a size past the limit runs with the limit raised to it).
var mapItemSizes = []int{10_000, 50_000, interpreter.DefaultMapItems}

func init() {
	if s := os.Getenv("BENCH_MAP_SIZES"); s != "" {
		mapItemSizes = nil
		for _, f := range strings.Split(s, ",") {
			if n, err := strconv.Atoi(f); err == nil {
				mapItemSizes = append(mapItemSizes, n)
			}
		}
	}
}

// BenchmarkMapItems: one map step of n echo items over a list from the
// input, on the durable SQLite journal and (with LOOM_POSTGRES_DSN)
// PostgreSQL, at each size. items/s must stay flat (linear cost): x-first
// is the rate relative to the first size on the same journal, measured in
// the same run; below 1/1.5 is superlinear. The same by this process's CPU
// time (items/cpu-s, cpu-x-first) leaves out the waits for fsync and for
// other work on a shared machine (and, on PostgreSQL, the server's work).
func BenchmarkMapItems(b *testing.B) {
	cat, err := definition.Parse("map.yaml", []byte(`name: m
steps:
  - id: m
    map:
      items: ${ input.items }
      task: echo
output: ${ len(steps.m.output) }
`))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("sqlite", func(b *testing.B) { benchMapItems(b, cat, openSQLite) })
	b.Run("postgres", func(b *testing.B) {
		dsn := os.Getenv("LOOM_POSTGRES_DSN")
		if dsn == "" {
			b.Skip("LOOM_POSTGRES_DSN is not set (scripts/postgres-for-tests.sh starts a server)")
		}
		benchMapItems(b, cat, func(b *testing.B) journal.Journal {
			j, err := postgres.Open(context.Background(), dsn, postgres.WithSchema(freshSchema(b, dsn)))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { j.Close() })
			return j
		})
	})
}

func benchMapItems(b *testing.B, cat *definition.Catalog, open func(*testing.B) journal.Journal) {
	var first, firstCPU float64
	for _, n := range mapItemSizes {
		items := make([]any, n)
		for i := range items {
			items[i] = i
		}
		in := map[string]any{"items": items}
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			eng := interpreter.New(cat, tasks(), open(b), interpreter.WithLimits(interpreter.Limits{MapItems: max(n, interpreter.DefaultMapItems)}))
			cpu0 := cpuTime()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ex, err := eng.Run(context.Background(), "m", in)
				if err != nil || ex.State != journal.Completed {
					b.Fatalf("%v %v", err, ex)
				}
			}
			b.StopTimer()
			rate := float64(n*b.N) / b.Elapsed().Seconds()
			cpuRate := float64(n*b.N) / (cpuTime() - cpu0).Seconds()
			if first == 0 {
				first, firstCPU = rate, cpuRate
			}
			b.ReportMetric(rate, "items/s")
			b.ReportMetric(rate/first, "x-first")
			b.ReportMetric(cpuRate, "items/cpu-s")
			b.ReportMetric(cpuRate/firstCPU, "cpu-x-first")
		})
	}
}
