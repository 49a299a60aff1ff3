//go:build unix

package sqlite_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/sqlite"
)

// BenchmarkWriter: the writer's side of bench's 1,000 × 10 throughput run
// without the interpreter: 1,000 goroutines each create a held execution
// and make the ten appends of a 10-task chain (the last one finishes it and
// releases the lease), as the interpreter writes them. One writer goroutine
// does all the SQL, so its cost per write bounds the throughput:
// cpu-µs/write is the process's CPU time per write (the writer's and the
// callers'), which holds on a shared machine where writes/s does not.
func BenchmarkWriter(b *testing.B) {
	const execs, steps = 1000, 10
	ctx := context.Background()
	var writes, commits int64
	var cpu, wall time.Duration
	var written int64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		j, err := sqlite.Open(filepath.Join(b.TempDir(), "loom.db"))
		if err != nil {
			b.Fatal(err)
		}
		s0 := j.Stats()
		w0 := bytesWritten()
		cpu0, t0 := cpuTime(), time.Now()
		b.StartTimer()
		var wg sync.WaitGroup
		for e := range execs {
			wg.Go(func() {
				if err := writeChain(ctx, j, fmt.Sprintf("exec-%d-%04d", i, e), steps); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
		b.StopTimer()
		cpu, wall = cpu+cpuTime()-cpu0, wall+time.Since(t0)
		written += bytesWritten() - w0
		s1 := j.Stats()
		writes, commits = writes+s1.Writes-s0.Writes, commits+s1.Commits-s0.Commits
		if err := j.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(writes)/wall.Seconds(), "writes/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(writes), "cpu-µs/write")
	b.ReportMetric(float64(writes)/float64(commits), "writes/commit")
	if written > 0 {
		b.ReportMetric(float64(written)/float64(writes), "bytes-written/write")
	}
}

// writeChain writes what the interpreter writes for a chain of steps echo
// tasks: the record with its lease, one event per task, and the finish.
func writeChain(ctx context.Context, j journal.Journal, id string, steps int) error {
	l, err := j.CreateHeld(ctx, &journal.Execution{ID: id, Workflow: "chain", Version: 1, State: journal.Running,
		Definition: chainDefinition, DefinitionHash: chainHash},
		journal.Holder{ID: "bench", Host: "localhost", PID: 1}, time.Minute)
	if err != nil {
		return err
	}
	var seq int64
	for k := range steps {
		now := time.Now().UTC()
		data := fmt.Appendf(nil, `{"output":%d,"started_at":"%s"}`, k, now.Add(-time.Microsecond).Format(time.RFC3339Nano))
		a := journal.Append{ExecutionID: id, Token: l.Token, ExpectedSeq: seq,
			Events: []journal.Event{{Path: fmt.Sprintf("s%d", k), Kind: journal.StepCompleted, Name: "task:echo", Data: data, Time: now}}}
		if k == steps-1 {
			state := journal.Completed
			out := json.RawMessage(fmt.Sprint(k))
			a.Events = append(a.Events, journal.Event{Kind: journal.ExecutionFinished, Name: "COMPLETED",
				Data: fmt.Appendf(nil, `{"state":"COMPLETED","output":%d}`, k), Time: now})
			a.Update, a.Release = &journal.Update{State: &state, Output: out}, true
		}
		if seq, err = j.Append(ctx, a); err != nil {
			return err
		}
	}
	return nil
}

var (
	chainDefinition = func() []byte {
		b := []byte("name: chain\nsteps:\n  - id: s0\n    task: echo\n    with: 0\n")
		for i := 1; i < 10; i++ {
			b = fmt.Appendf(b, "  - id: s%d\n    task: echo\n    with: \"${ steps.s%d.output + 1 }\"\n", i, i-1)
		}
		return b
	}()
	chainHash = fmt.Sprintf("%x", sha256.Sum256(chainDefinition))
)

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// bytesWritten is what this process has passed to write system calls
// (wchar in /proc/self/io: the WAL's frames, the checkpoints' pages); 0
// where there is no such file.
func bytesWritten() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "wchar: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}
