package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
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
// The first listSeed executions are written through the journal; the rest
// are copies of their rows made by the database (grow), so that a million
// take minutes, not the hours of two million commits.
func BenchmarkListFirstPage(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "loom.db")
		j, err := sqlite.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		benchList(b, j, path, func(tb testing.TB, seed, from, to int) { growSQLite(tb, path, seed, from, to) })
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
		db := dsn + sep + "search_path=" + schema
		benchList(b, j, db, func(tb testing.TB, seed, from, to int) { growPostgres(tb, db, seed, from, to) })
	})
}

// listSeed is how many executions benchList writes through the journal.
const listSeed = 10000

// grower adds copies of executions 0..seed-1 (and their events) as
// executions from..to-1: see grow.
type grower func(tb testing.TB, seed, from, to int)

func benchList(b *testing.B, j journal.Journal, db string, grow grower) {
	n := *listExecutions
	seed := min(n/10, listSeed)
	empty := listTime(b, db, 5)
	t0 := time.Now()
	fill(b, j, 0, seed)
	writes := time.Since(t0)
	t0 = time.Now()
	grow(b, seed, seed, n/10)
	copies := time.Since(t0)
	small := listTime(b, db, 9)
	t0 = time.Now()
	grow(b, seed, n/10, n)
	copies += time.Since(t0)
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
	b.ReportMetric(float64(seed)/writes.Seconds(), "fill-writes/s")
	b.ReportMetric(float64(n-seed)/copies.Seconds(), "fill-copies/s")
}

// benchID is the id of the benchmark's execution i.
func benchID(i int) string { return fmt.Sprintf("%08d-0000-4000-8000-%012d", i, i) }

// growChunk is how many executions grow copies in one transaction.
const growChunk = 50000

// growSQLite: grow on the SQLite journal at path. Execution i copies the
// record of execution i % seed (every stored column, as read from the
// table itself, so a column added later is copied too) under benchID(i)
// and key ek i+1 (the seed's keys are 1..seed), and its events.
func growSQLite(b testing.TB, path string, seed, from, to int) {
	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=30000")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	const id = `printf('%08d-0000-4000-8000-%012d', k.i, k.i)`
	src := strings.NewReplacer("k.i", "(k.i % ?3)").Replace(id)
	series := `WITH RECURSIVE k(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM k WHERE i + 1 < ?2) `
	execs := copyColumns(b, db, `SELECT name FROM pragma_table_xinfo('executions') WHERE hidden = 0`, "s", map[string]string{"ek": "k.i + 1", "id": id})
	events := copyColumns(b, db, `SELECT name FROM pragma_table_xinfo('events') WHERE hidden = 0`, "v", map[string]string{"ek": "k.i + 1"})
	for lo := from; lo < to; lo += growChunk {
		hi := min(lo+growChunk, to)
		tx, err := db.Begin()
		if err != nil {
			b.Fatal(err)
		}
		for _, q := range []string{
			series + `INSERT INTO executions (` + execs.names + `) SELECT ` + execs.values + ` FROM k JOIN executions s ON s.id = ` + src,
			series + `INSERT INTO events (` + events.names + `) SELECT ` + events.values + ` FROM k JOIN executions s ON s.id = ` + src + ` JOIN events v ON v.ek = s.ek`,
		} {
			if _, err := tx.Exec(q, lo, hi, seed); err != nil {
				tx.Rollback()
				b.Fatalf("grow %d..%d: %v", lo, hi, err)
			}
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
}

// growPostgres: grow on the PostgreSQL journal at dsn (its schema on the
// search path); events name their execution by id there.
func growPostgres(b testing.TB, dsn string, seed, from, to int) {
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close(ctx)
	const id = `lpad(k.i::text, 8, '0') || '-0000-4000-8000-' || lpad(k.i::text, 12, '0')`
	// COLLATE "C", the id column's: a lookup in another collation cannot
	// use its index.
	src := "(" + strings.NewReplacer("k.i", "(k.i % $3)").Replace(id) + `) COLLATE "C"`
	cols := func(table string) string {
		return `SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = '` + table + `'
			AND is_generated = 'NEVER' ORDER BY ordinal_position`
	}
	pgNames := func(q string) []string {
		rows, err := c.Query(ctx, q)
		if err != nil {
			b.Fatal(err)
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			b.Fatal(err)
		}
		return names
	}
	execs := columnsCopy(pgNames(cols("executions")), "s", map[string]string{"id": id, "root_id": id})
	events := columnsCopy(pgNames(cols("events")), "v", map[string]string{"execution_id": id})
	series := `WITH k(i) AS (SELECT generate_series($1::bigint, $2::bigint - 1)) `
	for lo := from; lo < to; lo += growChunk {
		hi := min(lo+growChunk, to)
		tx, err := c.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		for _, q := range []string{
			series + `INSERT INTO executions (` + execs.names + `) SELECT ` + execs.values + ` FROM k JOIN executions s ON s.id = ` + src,
			series + `INSERT INTO events (` + events.names + `) SELECT ` + events.values + ` FROM k JOIN executions s ON s.id = ` + src + ` JOIN events v ON v.execution_id = s.id`,
		} {
			if _, err := tx.Exec(ctx, q, lo, hi, seed); err != nil {
				tx.Rollback(ctx)
				b.Fatalf("grow %d..%d: %v", lo, hi, err)
			}
		}
		if err := tx.Commit(ctx); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := c.Exec(ctx, "ANALYZE"); err != nil { // as autovacuum would soon
		b.Fatal(err)
	}
}

// columnList is an INSERT's column names and the SELECT's values.
type columnList struct{ names, values string }

// copyColumns reads a table's stored columns with q and makes the copy's
// lists: each column from alias, but those in set, which give its value.
func copyColumns(b testing.TB, db *sql.DB, q, alias string, set map[string]string) columnList {
	rows, err := db.Query(q)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			b.Fatal(err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	return columnsCopy(names, alias, set)
}

func columnsCopy(names []string, alias string, set map[string]string) columnList {
	values := make([]string, len(names))
	for i, n := range names {
		values[i] = alias + "." + n
		if v, ok := set[n]; ok {
			values[i] = v
		}
	}
	return columnList{strings.Join(names, ", "), strings.Join(values, ", ")}
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
	id := benchID(i)
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
func freshSchema(b testing.TB, dsn string) string {
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

// TestGrowCopies: grow's copies read back through the journal as their
// sources do, but for their ids, on SQLite and (with LOOM_POSTGRES_DSN)
// PostgreSQL.
func TestGrowCopies(t *testing.T) {
	check := func(t *testing.T, j journal.Journal, grow func(seed, from, to int)) {
		ctx := context.Background()
		const seed, n = 5, 12
		def := []byte(threeSteps)
		for i := range seed {
			if err := finished(ctx, j, i, def, sha(def)); err != nil {
				t.Fatal(err)
			}
		}
		grow(seed, seed, n)
		all, err := j.List(ctx, journal.Filter{})
		if err != nil || len(all) != n {
			t.Fatalf("list: %d records, %v; want %d", len(all), err, n)
		}
		for i := seed; i < n; i++ {
			got, err := j.Get(ctx, benchID(i))
			if err != nil {
				t.Fatal(err)
			}
			src, err := j.Get(ctx, benchID(i%seed))
			if err != nil {
				t.Fatal(err)
			}
			src.ID, src.RootID = got.ID, got.ID
			if fmt.Sprint(*got) != fmt.Sprint(*src) {
				t.Errorf("copy %d: %+v\nsource: %+v", i, *got, *src)
			}
			evs, err := j.Events(ctx, benchID(i), 0)
			srcEvs, err2 := j.Events(ctx, benchID(i%seed), 0)
			if err != nil || err2 != nil || len(evs) != 4 || fmt.Sprint(evs) != fmt.Sprint(srcEvs) {
				t.Errorf("copy %d's events: %v %v\n%+v\nsource: %+v", i, err, err2, evs, srcEvs)
			}
		}
	}
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "loom.db")
		j, err := sqlite.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		check(t, j, func(seed, from, to int) { growSQLite(t, path, seed, from, to) })
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := os.Getenv("LOOM_POSTGRES_DSN")
		if dsn == "" {
			t.Skip("LOOM_POSTGRES_DSN is not set (scripts/postgres-for-tests.sh starts a server)")
		}
		schema := freshSchema(t, dsn)
		j, err := postgres.Open(context.Background(), dsn, postgres.WithSchema(schema))
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		check(t, j, func(seed, from, to int) { growPostgres(t, dsn+sep+"search_path="+schema, seed, from, to) })
	})
}
