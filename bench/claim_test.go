package bench

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/loomwork/loom/internal/pgtest"
	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/postgres"
	"github.com/loomwork/loom/journal/sqlite"
)

// claimBacklog is the backlog of queued starts BenchmarkClaimBacklog
// measures a claim behind, beside claimBase.
var claimBacklog = flag.Int("claim.backlog", 50000, "queued starts BenchmarkClaimBacklog claims behind")

const claimBase = 1000

// BenchmarkClaimBacklog: what one dispatcher claim costs (Journal.Claim of
// one root, then its Release, as a drive that ends at once) behind a
// backlog of queued starts: claimBase first, then -claim.backlog, in the
// same run, with 64 roots in flight (leased, begun) beside them. A claim
// should cost what it may take and what is in flight, not the backlog:
// x-backlog, the ratio of the two, near 1. Wall times on a loaded machine
// measure the load; the CPU times (the process's, a claim) less so.
func BenchmarkClaimBacklog(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		j, err := sqlite.Open(filepath.Join(b.TempDir(), "loom.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { j.Close() })
		benchClaim(b, j)
	})
	b.Run("postgres", func(b *testing.B) {
		_, dsn := pgtest.Schema(b, "claim")
		j, err := postgres.Open(context.Background(), dsn)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { j.Close() })
		benchClaim(b, j)
	})
}

func benchClaim(b *testing.B, j journal.Journal) {
	ctx := context.Background()
	me := journal.Holder{ID: "bench", Host: "bench", PID: 1}
	other := journal.Holder{ID: "other", Host: "elsewhere", PID: 2}
	created := 0
	create := func(n int, prefix string) {
		var wg sync.WaitGroup
		ids := make(chan int)
		for range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range ids {
					if err := j.Create(ctx, &journal.Execution{ID: fmt.Sprintf("%s%07d", prefix, i), Workflow: "w", Version: 1,
						State: journal.Running, DefinitionHash: "h"}); err != nil {
						b.Error(err)
					}
				}
			}()
		}
		for i := created; i < created+n; i++ {
			ids <- i
		}
		close(ids)
		wg.Wait()
		created += n
	}
	// In flight: leased by another process and begun.
	create(64, "f")
	for i := range 64 {
		id := fmt.Sprintf("f%07d", i)
		l, err := j.Acquire(ctx, id, other, time.Hour, 0)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := j.Append(ctx, journal.Append{ExecutionID: id, Token: l.Token,
			Events: []journal.Event{{Path: "s0", Kind: journal.StepCompleted, Name: "task:echo", Data: []byte(`{"output":1}`)}}}); err != nil {
			b.Fatal(err)
		}
	}
	created = 0
	measure := func() (wall, cpu time.Duration) {
		const rounds = 200
		cpu0 := cpuTime()
		start := time.Now()
		for range rounds {
			res, err := j.Claim(ctx, journal.ClaimRequest{Holder: me, TTL: time.Minute, Limit: 1})
			if err != nil || len(res.Claims) != 1 || res.Claims[0].Reason != journal.ClaimStart {
				b.Fatalf("claim: %+v, %v", res, err)
			}
			if err := j.Release(ctx, res.Claims[0].Lease); err != nil {
				b.Fatal(err)
			}
		}
		wall = time.Since(start) / rounds
		cpu = (cpuTime() - cpu0) / rounds
		return wall, cpu
	}
	create(claimBase, "q")
	for range b.N {
		baseWall, baseCPU := measure()
		b.StopTimer()
		if created < *claimBacklog {
			create(*claimBacklog-created, "q")
		}
		b.StartTimer()
		wall, cpu := measure()
		b.ReportMetric(float64(baseWall.Microseconds()), fmt.Sprintf("claim-µs@%d", claimBase))
		b.ReportMetric(float64(wall.Microseconds()), fmt.Sprintf("claim-µs@%d", *claimBacklog))
		b.ReportMetric(float64(baseCPU.Microseconds()), fmt.Sprintf("cpu-µs@%d", claimBase))
		b.ReportMetric(float64(cpu.Microseconds()), fmt.Sprintf("cpu-µs@%d", *claimBacklog))
		b.ReportMetric(float64(cpu)/float64(baseCPU), "x-backlog-cpu")
	}
}
