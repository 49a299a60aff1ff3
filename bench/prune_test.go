package bench

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/sqlite"
)

var (
	pruneFinished = flag.Int("prune.finished", 100_000, "BenchmarkPruneWhileRunning: finished executions to prune")
	pruneRunning  = flag.Int("prune.running", 1_000, "BenchmarkPruneWhileRunning: executions running meanwhile")
	pruneBatch    = flag.Int("prune.batch", journal.DefaultPruneBatch, "BenchmarkPruneWhileRunning: roots per Prune call")
)

// BenchmarkPruneWhileRunning: 100,000 finished executions (4 events each)
// are pruned from a SQLite journal while 1,000 others run, each appending
// one step after another. It reports the running executions' step commit
// latency at p99 before the prune (the baseline) and during it, their
// ratio, and how long the prune took. -benchtime 1x runs it once.
func BenchmarkPruneWhileRunning(b *testing.B) {
	finished, running := *pruneFinished, *pruneRunning
	for b.Loop() {
		path := filepath.Join(b.TempDir(), "loom.db")
		seedFinished(b, path, finished)
		j, err := sqlite.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		runners := startRunners(b, ctx, j, running)

		before := runners.measure(2 * time.Second)

		var pruned journal.PruneResult
		pruneStart := time.Now()
		done := make(chan struct{})
		duringC := make(chan []time.Duration)
		go func() { duringC <- runners.measureUntil(done) }()
		cutoff := time.Now()
		for {
			res, err := j.Prune(ctx, journal.PruneRequest{FinishedBefore: cutoff, Limit: *pruneBatch})
			if err != nil {
				b.Fatal(err)
			}
			pruned.Add(res)
			if res.Roots == 0 {
				break
			}
		}
		pruneTook := time.Since(pruneStart)
		close(done)
		during := <-duringC
		runners.stop()
		if runners.err != nil {
			b.Fatal(runners.err)
		}
		if pruned.Roots != finished {
			b.Fatalf("pruned %d roots, want %d", pruned.Roots, finished)
		}
		p99b, p99d := p99(before), p99(during)
		b.ReportMetric(float64(p99b.Microseconds())/1000, "p99-before-ms")
		b.ReportMetric(float64(p99d.Microseconds())/1000, "p99-during-ms")
		b.ReportMetric(float64(p99d)/float64(p99b), "p99-ratio")
		b.ReportMetric(pruneTook.Seconds(), "prune-s")
		b.ReportMetric(float64(pruned.Events), "events-pruned")
		j.Close()
	}
}

// seedFinished writes n COMPLETED roots of 4 events each straight into a
// new journal file, in one transaction: what a journal holds after months.
// Through the journal API this would be 4n commits (create, lease, append,
// release) and minutes of setup; the rows are written in the SQLite
// schema's own layout instead (schema 9: events keyed by the record's ek,
// times in Unix nanoseconds, a root's root NULL, kinds as codes: 1 is
// step.completed), and TestSeedFinished reads them back through
// the API, so a schema change that breaks the layout fails a test.
func seedFinished(tb testing.TB, path string, n int) {
	j, err := sqlite.Open(path) // creates the schema
	if err != nil {
		tb.Fatal(err)
	}
	j.Close()
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		tb.Fatal(err)
	}
	defer tx.Rollback()
	old := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ek int64
	if err := tx.QueryRow(`SELECT coalesce(max(ek), 0) FROM executions`).Scan(&ek); err != nil {
		tb.Fatal(err)
	}
	insE, err := tx.Prepare(`INSERT INTO executions (id, workflow, version, state, parent_path, definition_hash, created_at, updated_at, last_seq, output, ek)
		VALUES (?, 'old', 1, 'COMPLETED', '', 'h', ?, ?, 4, '"done"', ?)`)
	if err != nil {
		tb.Fatal(err)
	}
	insV, err := tx.Prepare(`INSERT INTO events (ek, seq, path, kind, name, ordinal, data, time) VALUES (?, ?, ?, 1, 'task:echo', 0, '{"output":1}', ?)`)
	if err != nil {
		tb.Fatal(err)
	}
	for i := range n {
		id := fmt.Sprintf("old-%06d", i)
		ek++
		if _, err := insE.Exec(id, old.UnixNano(), old.UnixNano(), ek); err != nil {
			tb.Fatal(err)
		}
		for s := 1; s <= 4; s++ {
			if _, err := insV.Exec(ek, s, fmt.Sprintf("s%d", s), old.UnixNano()); err != nil {
				tb.Fatal(err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
}

// runners are executions that append one step after another, as a running
// workflow does, recording each commit's latency.
type runners struct {
	mu      sync.Mutex
	lat     []time.Duration
	quit    chan struct{}
	wg      sync.WaitGroup
	errOnce sync.Once
	err     error
}

func startRunners(b *testing.B, ctx context.Context, j journal.Journal, n int) *runners {
	r := &runners{quit: make(chan struct{})}
	h := journal.Holder{ID: "bench", Host: "bench", PID: 1}
	for i := range n {
		id := fmt.Sprintf("run-%04d", i)
		now := time.Now()
		l, err := j.CreateHeld(ctx, &journal.Execution{ID: id, Workflow: "live", Version: 1, State: journal.Running,
			DefinitionHash: "h", CreatedAt: now, UpdatedAt: now}, h, time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			var seq int64
			for step := 0; ; step++ {
				select {
				case <-r.quit:
					return
				default:
				}
				data, _ := json.Marshal(map[string]any{"output": step})
				start := time.Now()
				s, err := j.Append(ctx, journal.Append{ExecutionID: id, Token: l.Token, ExpectedSeq: seq,
					Events: []journal.Event{{Path: fmt.Sprintf("s%d", step), Kind: journal.StepCompleted, Name: "task:echo", Data: data}}})
				if err != nil {
					r.errOnce.Do(func() { r.err = err })
					return
				}
				seq = s
				r.mu.Lock()
				r.lat = append(r.lat, time.Since(start))
				r.mu.Unlock()
			}
		}()
	}
	return r
}

// take returns the latencies recorded since the last take.
func (r *runners) take() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.lat
	r.lat = nil
	return out
}

func (r *runners) measure(d time.Duration) []time.Duration {
	r.take()
	time.Sleep(d) // a load window, not a wait for a timer: the runners work meanwhile
	return r.take()
}

func (r *runners) measureUntil(done <-chan struct{}) []time.Duration {
	r.take()
	<-done
	return r.take()
}

func (r *runners) stop() {
	close(r.quit)
	r.wg.Wait()
}

func p99(l []time.Duration) time.Duration {
	if len(l) == 0 {
		return 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	return s[len(s)*99/100]
}

// TestSeedFinished: the benchmark's seeded rows read back through the
// journal as finished executions with their 4 events, and prune.
func TestSeedFinished(t *testing.T) {
	path := filepath.Join(t.TempDir(), "loom.db")
	seedFinished(t, path, 10)
	j, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	ctx := context.Background()
	e, err := j.Get(ctx, "old-000003")
	if err != nil {
		t.Fatal(err)
	}
	evs, err := j.Events(ctx, "old-000003", 0)
	if err != nil {
		t.Fatal(err)
	}
	if e.State != journal.Completed || e.LastSeq != 4 || len(evs) != 4 || evs[3].Path != "s4" {
		t.Fatalf("seeded execution: %+v with %d events", e, len(evs))
	}
	res, err := j.Prune(ctx, journal.PruneRequest{FinishedBefore: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if res != (journal.PruneResult{Roots: 10, Executions: 10, Events: 40}) {
		t.Errorf("prune of the seeded journal: %+v", res)
	}
}
