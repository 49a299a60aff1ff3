package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/loomwork/loom/cli"
	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/postgres"
	"github.com/loomwork/loom/journal/sqlite"
)

// listExecutions is the size of the journal BenchmarkListFirstPage builds;
// the figure is -list.executions=1000000 (CI runs the default).
var listExecutions = flag.Int("list.executions", 20000, "finished executions in the journal BenchmarkListFirstPage lists")

// BenchmarkListFirstPage: `loom list` (its newest 50) on a journal of
// -list.executions finished 3-step executions, on SQLite and (with
// LOOM_POSTGRES_DSN) PostgreSQL. It prints the first page's time and the
// bytes it allocates, at a tenth of the size and at the full size: flat
// memory is the two allocation figures alike. The baseline, measured in the
// same run, is `loom list` of an empty journal (opening it and printing).
// Wall times on a loaded machine measure the load; the CPU times do not.
func BenchmarkListFirstPage(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "loom.db")
		j, err := sqlite.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		benchList(b, j, path)
	})
	b.Run("postgres", func(b *testing.B) {
		dsn := os.Getenv("LOOM_POSTGRES_DSN")
		if dsn == "" {
			b.Skip("LOOM_POSTGRES_DSN is not set (scripts/postgres-for-tests.sh starts a server)")
		}
		schema := freshSchema(b, dsn)
		j, err := postgres.Open(context.Background(), dsn, postgres.WithSchema(schema), postgres.WithMaxConns(8))
		if err != nil {
			b.Fatal(err)
		}
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		benchList(b, j, dsn+sep+"search_path="+schema)
	})
}

func benchList(b *testing.B, j journal.Journal, db string) {
	n := *listExecutions
	empty := listTime(b, db, 5)
	fill(b, j, 0, n/10)
	small := listTime(b, db, 9)
	fill(b, j, n/10, n)
	big := listTime(b, db, 9)
	j.Close()
	b.ReportMetric(float64(n), "executions")
	b.ReportMetric(ms(big.median), "ms/first-page")
	b.ReportMetric(ms(small.median), "ms/first-page-at-tenth")
	b.ReportMetric(ms(empty.median), "ms/empty-journal")
	b.ReportMetric(ms(big.cpu), "cpu-ms/first-page")
	b.ReportMetric(ms(small.cpu), "cpu-ms/first-page-at-tenth")
	b.ReportMetric(ms(empty.cpu), "cpu-ms/empty-journal")
	b.ReportMetric(float64(big.alloc), "bytes/first-page")
	b.ReportMetric(float64(small.alloc), "bytes/first-page-at-tenth")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

type listFigures struct {
	median time.Duration // wall time
	cpu    time.Duration // CPU time: on a shared machine, what the run cost
	alloc  uint64        // bytes a run allocates
}

// listTime runs `loom list --db db` k times in this process and returns the
// median time and the bytes allocated by a run.
func listTime(b *testing.B, db string, k int) listFigures {
	times, cpus := make([]time.Duration, k), make([]time.Duration, k)
	var allocs []uint64
	for i := range times {
		var out, errb bytes.Buffer
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		t0, c0 := time.Now(), cpuTime()
		code := cli.Run(nil, []string{"list", "--db", db}, nil, &out, &errb, func(string) string { return "" })
		times[i], cpus[i] = time.Since(t0), cpuTime()-c0
		runtime.ReadMemStats(&m1)
		if code != 0 {
			b.Fatalf("loom list: exit %d: %s", code, errb.String())
		}
		if lines := strings.Count(out.String(), "\n"); lines > 51 {
			b.Fatalf("loom list printed %d lines", lines)
		}
		allocs = append(allocs, m1.TotalAlloc-m0.TotalAlloc)
	}
	slices.Sort(times)
	slices.Sort(cpus)
	slices.Sort(allocs)
	return listFigures{median: times[k/2], cpu: cpus[k/2], alloc: allocs[k/2]}
}

// fill adds finished executions from..to-1 to j, as a 3-step workflow
// leaves them: a record with input and output, three step events and the
// finish, through the journal's own writes (1,000 at a time).
func fill(b *testing.B, j journal.Journal, from, to int) {
	ctx := context.Background()
	def := []byte(threeSteps)
	hash := sha(def)
	next := make(chan int)
	var wg sync.WaitGroup
	var failed sync.Once
	for range 1000 {
		wg.Go(func() {
			for i := range next {
				if err := finished(ctx, j, i, def, hash); err != nil {
					failed.Do(func() { b.Error(err) })
				}
			}
		})
	}
	for i := from; i < to; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
}

func finished(ctx context.Context, j journal.Journal, i int, def []byte, hash string) error {
	id := fmt.Sprintf("%08d-0000-4000-8000-%012d", i, i)
	order := fmt.Sprintf("A-%d", i)
	in, _ := json.Marshal(map[string]any{"order": order})
	l, err := j.CreateHeld(ctx, &journal.Execution{ID: id, RootID: id, Workflow: "order", Version: 1, State: journal.Running,
		Input: in, Definition: def, DefinitionHash: hash}, journal.Holder{ID: "bench", Host: "bench", PID: 1}, time.Minute)
	if err != nil {
		return err
	}
	now := time.Now().UTC().Format(time.RFC3339Nano)
	step := func(path string, out map[string]any) journal.Event {
		data, _ := json.Marshal(map[string]any{"output": out, "started_at": now})
		return journal.Event{Path: path, Kind: journal.StepCompleted, Name: "task:echo", Data: data}
	}
	output, _ := json.Marshal(map[string]any{"order": order, "shipped": "ups"})
	fin, _ := json.Marshal(map[string]any{"state": "COMPLETED", "output": json.RawMessage(output)})
	done := journal.Completed
	_, err = j.Append(ctx, journal.Append{ExecutionID: id, Token: l.Token, Release: true,
		Events: []journal.Event{
			step("reserve", map[string]any{"order": order, "qty": 2}),
			step("charge", map[string]any{"order": order, "amount": 42.5}),
			step("ship", map[string]any{"order": order, "carrier": "ups"}),
			{Kind: journal.ExecutionFinished, Name: "COMPLETED", Data: fin},
		},
		Update: &journal.Update{State: &done, Output: output}})
	return err
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// freshSchema is a PostgreSQL schema no one uses, dropped when b ends.
func freshSchema(b *testing.B, dsn string) string {
	r := make([]byte, 6)
	_, _ = rand.Read(r)
	name := "loombench_" + hex.EncodeToString(r)
	b.Cleanup(func() {
		ctx := context.Background()
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			b.Errorf("drop schema %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
			b.Errorf("drop schema %s: %v", name, err)
		}
	})
	return name
}
