package bench

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/postgres"
)

// BenchmarkPostgresThroughput: 1,000 concurrent executions of a 10-task
// workflow on PostgreSQL (LOOM_POSTGRES_DSN; fsync and synchronous_commit
// as the server has them), a fresh schema per run. It prints steps/s, the
// journal's commits per step and, from the server's own statistics, the
// transactions committed and WAL syncs per step (pg_stat_database,
// pg_stat_wal: the whole server's, so run it on a server of its own; the
// executions' reads count as transactions too), and the CPU time per step
// of this process (go-cpu-µs/step) and of the server's processes
// (server-cpu-µs/step, when the server runs on this machine: /proc): on a
// shared machine they measure the cost where steps/s measures the load.
// backend-cpu-µs/step is the part of the server's spent by the client
// backends alive at the end of the run (the journal's connections), read
// before they close: no autovacuum or checkpoint that happened to run.
// hot-updates/update is the share of the records' updates (whole run)
// that wrote no index entry (heap-only tuples); wal-bytes/step the
// server's WAL written a step. The baseline, measured in the same run, is
// the same executions one after the other, where no commit can be shared;
// serial-commits/exec is the commits of one such execution alone.
//
// The floor, measured in the same run after the executions, is the bare
// SQL of the same writes in as many commits (pgFloor): floor-steps/s and
// its CPU and WAL a step, and x-floor, the executions' steps/s as a
// multiple of the floor's.
func BenchmarkPostgresThroughput(b *testing.B) {
	dsn := os.Getenv("LOOM_POSTGRES_DSN")
	if dsn == "" {
		b.Skip("LOOM_POSTGRES_DSN is not set (scripts/postgres-for-tests.sh starts a server)")
	}
	const execs, steps = 1000, 10
	cat := chain(b, steps)
	ctx := context.Background()
	stat, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer stat.Close(ctx)
	for i := 0; i < b.N; i++ {
		schema := freshSchema(b, dsn)
		j, err := postgres.Open(ctx, dsn, postgres.WithSchema(schema))
		if err != nil {
			b.Fatal(err)
		}
		eng := interpreter.New(cat, tasks(), j)

		serialN := 50
		serial0 := j.Stats()
		start := time.Now()
		for k := 0; k < serialN; k++ {
			if _, err := eng.Run(ctx, "chain", nil); err != nil {
				b.Fatal(err)
			}
		}
		serial := float64(serialN*steps) / time.Since(start).Seconds()
		b.ReportMetric(float64(j.Stats().Commits-serial0.Commits)/float64(serialN), "serial-commits/exec")

		before, srv0 := j.Stats(), serverStats(b, stat)
		srvCPU0, srvCPUOK := serverCPU(stat)
		beCPU0, beCPUOK := backendCPU(stat)
		cpu0 := cpuTime()
		start = time.Now()
		runConcurrently(b, eng, execs)
		el := time.Since(start)
		cpu := cpuTime() - cpu0
		beCPU1, _ := backendCPU(stat)
		after := j.Stats()
		// A backend reports its statistics at most once a second, and
		// when it exits: close the journal's connections, then read.
		j.Close()
		time.Sleep(time.Second)
		srv1 := serverStats(b, stat)
		srvCPU1, _ := serverCPU(stat)
		var updates, hot int64
		if err := stat.QueryRow(ctx, `SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables
			WHERE schemaname = $1 AND relname = 'executions'`, schema).Scan(&updates, &hot); err != nil {
			b.Fatal(err)
		}

		n := float64(execs * steps)
		rate := n / el.Seconds()
		b.ReportMetric(rate, "steps/s")
		b.ReportMetric(serial, "serial-steps/s")
		b.ReportMetric(rate/serial, "x-serial")
		b.ReportMetric(float64(after.Commits-before.Commits)/n, "commits/step")
		b.ReportMetric(float64(srv1.xacts-srv0.xacts)/n, "server-xacts/step")
		b.ReportMetric(float64(srv1.walSyncs-srv0.walSyncs)/n, "wal-syncs/step")
		b.ReportMetric(float64(hot)/float64(max(updates, 1)), "hot-updates/update")
		if cpu > 0 {
			b.ReportMetric(float64(cpu.Microseconds())/n, "go-cpu-µs/step")
		}
		if srvCPUOK {
			b.ReportMetric(float64((srvCPU1-srvCPU0).Microseconds())/n, "server-cpu-µs/step")
		}
		if beCPUOK {
			b.ReportMetric(float64((beCPU1-beCPU0).Microseconds())/n, "backend-cpu-µs/step")
		}
		b.ReportMetric(float64(srv1.walBytes-srv0.walBytes)/n, "wal-bytes/step")

		var def []byte
		var hash string
		if err := stat.QueryRow(ctx, `SELECT definition, definition_hash FROM `+pgx.Identifier{schema, "executions"}.Sanitize()+` LIMIT 1`).Scan(&def, &hash); err != nil {
			b.Fatal(err)
		}
		floor := pgFloor{n: execs, steps: steps, commits: int(after.Commits - before.Commits), definition: def, hash: hash}
		fs := runFloor(b, dsn, stat, floor)
		b.ReportMetric(fs.rate, "floor-steps/s")
		b.ReportMetric(rate/fs.rate, "x-floor")
		b.ReportMetric(fs.goCPU, "floor-go-cpu-µs/step")
		if fs.serverCPUOK {
			b.ReportMetric(fs.serverCPU, "floor-server-cpu-µs/step")
			b.ReportMetric(fs.backendCPU, "floor-backend-cpu-µs/step")
		}
		b.ReportMetric(fs.walBytes, "floor-wal-bytes/step")
	}
}

type floorStats struct {
	rate, goCPU, serverCPU, backendCPU, walBytes float64
	serverCPUOK                                  bool
}

// runFloor runs f in a fresh schema of the journal's tables and measures
// it as the engine's run is measured.
func runFloor(b *testing.B, dsn string, stat *pgx.Conn, f pgFloor) floorStats {
	ctx := context.Background()
	schema := freshSchema(b, dsn)
	j, err := postgres.Open(ctx, dsn, postgres.WithSchema(schema))
	if err != nil {
		b.Fatal(err)
	}
	j.Close()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		b.Fatal(err)
	}
	cfg.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	cfg.RuntimeParams["synchronous_commit"] = "on"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	srv0 := serverStats(b, stat)
	srvCPU0, ok := serverCPU(stat)
	beCPU0, _ := backendCPU(stat)
	cpu0 := cpuTime()
	el, err := f.run(ctx, conn)
	if err != nil {
		b.Fatal(err)
	}
	cpu := cpuTime() - cpu0
	beCPU1, _ := backendCPU(stat)
	conn.Close(ctx)
	time.Sleep(time.Second) // as for the executions: the backend's statistics, and its CPU in the postmaster's
	srvCPU1, _ := serverCPU(stat)
	srv1 := serverStats(b, stat)
	n := float64(f.n * f.steps)
	return floorStats{rate: n / el.Seconds(), goCPU: float64(cpu.Microseconds()) / n,
		serverCPU: float64((srvCPU1 - srvCPU0).Microseconds()) / n, serverCPUOK: ok,
		backendCPU: float64((beCPU1 - beCPU0).Microseconds()) / n,
		walBytes:   float64(srv1.walBytes-srv0.walBytes) / n}
}

type pgServerStats struct{ xacts, walSyncs, walBytes int64 }

// serverStats reads the server's committed transactions (this database)
// and WAL syncs (the server's). The statistics are read with a fresh
// snapshot each time.
func serverStats(b *testing.B, c *pgx.Conn) pgServerStats {
	ctx := context.Background()
	var s pgServerStats
	if _, err := c.Exec(ctx, "SELECT pg_stat_clear_snapshot()"); err != nil {
		b.Fatal(err)
	}
	if err := c.QueryRow(ctx, `SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`).Scan(&s.xacts); err != nil {
		b.Fatal(err)
	}
	if err := c.QueryRow(ctx, `SELECT wal_sync, wal_bytes FROM pg_stat_wal`).Scan(&s.walSyncs, &s.walBytes); err != nil {
		b.Fatal(err)
	}
	return s
}

// runConcurrently runs n executions of the chain workflow at once and
// fails b unless each completes.
func runConcurrently(b *testing.B, eng *interpreter.Engine, n int) {
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for k := 0; k < n; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ex, err := eng.Run(context.Background(), "chain", nil)
			if err == nil && ex.State != journal.Completed {
				err = fmt.Errorf("state %s", ex.State)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}
