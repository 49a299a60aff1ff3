package server_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loomwork/loom/internal/pgtest"
	"github.com/loomwork/loom/internal/servetest"
)

// The scale-out trial (SPEC §6): several `loom serve` processes on one
// journal, executions of five exec tasks that record each run with its
// time, one process SIGKILLed mid-load and started again. Every execution
// must complete with the right output, and no task's side effect may come
// after its result was committed. LOOM_SCALE_EXECUTIONS sets the load
// (default 60, so CI runs it quickly).

const scaleFlow = `name: five
input:
  type: object
  required: [n]
steps:
  - {id: s1, task: exec, with: {command: [sh, -c, 'sleep 0.1; echo "$0 s1 $(date +%%s%%N) $PPID" >> %[1]s; echo 1', "${input.n}"]}}
  - {id: s2, task: exec, with: {command: [sh, -c, 'sleep 0.1; echo "$0 s2 $(date +%%s%%N) $PPID" >> %[1]s; echo 2', "${input.n}"]}}
  - {id: s3, task: exec, with: {command: [sh, -c, 'sleep 0.1; echo "$0 s3 $(date +%%s%%N) $PPID" >> %[1]s; echo 3', "${input.n}"]}}
  - {id: s4, task: exec, with: {command: [sh, -c, 'sleep 0.1; echo "$0 s4 $(date +%%s%%N) $PPID" >> %[1]s; echo 4', "${input.n}"]}}
  - {id: s5, task: exec, with: {command: [sh, -c, 'sleep 0.1; echo "$0 s5 $(date +%%s%%N) $PPID" >> %[1]s; echo 5', "${input.n}"]}}
output:
  n: ${input.n}
  sum: ${steps.s1.output + steps.s2.output + steps.s3.output + steps.s4.output + steps.s5.output}
`

func TestScaleOutSQLite(t *testing.T) {
	dir := t.TempDir()
	scaleTrial(t, dir, filepath.Join(dir, "loom.db"), 1)
}

func TestScaleOutPostgres(t *testing.T) {
	_, dsn := pgtest.Schema(t, "scale")
	scaleTrial(t, t.TempDir(), dsn, 3)
}

func scaleTrial(t *testing.T, dir, db string, procs int) {
	if testing.Short() {
		t.Skip("a multi-process trial")
	}
	n := 60
	if v := os.Getenv("LOOM_SCALE_EXECUTIONS"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	loom := servetest.Loom(t)
	runs := filepath.Join(dir, "runs.log")
	flows := filepath.Join(dir, "flows")
	os.Mkdir(flows, 0o755)
	if err := os.WriteFile(filepath.Join(flows, "five.yaml"), []byte(fmt.Sprintf(scaleFlow, runs)), 0o644); err != nil {
		t.Fatal(err)
	}
	start := func(port int) *servetest.Proc {
		// --rate: all the load comes from one client address. The lease
		// TTL is short, so that the killed process's executions are taken
		// over soon, but long enough that a renewal (every third of it)
		// survives a machine loaded 20 times over: 5 s did not always.
		return servetest.Start(t, loom, dir, port, []string{"LOOM_LEASE_TTL=10s"},
			flows, "--db", db, "--concurrency", "16", "--rate", "100000")
	}
	ports := make([]int, procs)
	ps := make([]*servetest.Proc, procs)
	for i := range ps {
		ports[i] = servetest.FreePort(t)
		ps[i] = start(ports[i])
	}
	t.Cleanup(func() {
		for _, p := range ps {
			p.Stop()
		}
	})
	var mu sync.Mutex
	alive := func(i int) *servetest.Proc {
		mu.Lock()
		defer mu.Unlock()
		return ps[i%procs]
	}
	// startOne starts execution i on process idx as a client must: a 429 or
	// 503 is retried after its Retry-After, a refused connection (the
	// process is restarting) after 100 ms.
	startOne := func(i, idx int) {
		body := fmt.Sprintf(`{"workflow": "five", "id": "x%05d", "input": {"n": %d}}`, i, i)
		for try := 0; try < 200; try++ {
			resp, err := http.Post(alive(idx).URL+"/v1/executions", "application/json", strings.NewReader(body))
			if err != nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch resp.StatusCode {
			case 200, 201:
				return
			case 429, 503:
				secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
				time.Sleep(time.Duration(max(secs, 1)) * time.Second)
			default:
				t.Errorf("start x%05d: %d %s", i, resp.StatusCode, b)
				return
			}
		}
		t.Errorf("start x%05d: no process accepted it", i)
	}
	// startAll starts executions [from, to) from 32 clients at once; on
	// picks the process for each.
	startAll := func(from, to int, on func(i int) int) {
		work := make(chan int)
		var wg sync.WaitGroup
		for range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range work {
					startOne(i, on(i))
				}
			}()
		}
		for i := from; i < to; i++ {
			work <- i
		}
		close(work)
		wg.Wait()
	}
	began := time.Now()
	killAt, restartAt := n/3, 2*n/3
	startAll(0, killAt, func(i int) int { return i })
	// Mid-load (the executions started so far are still running): SIGKILL
	// the first process, and start it again once the others have the next
	// third of the load (with one process, at once).
	p := alive(0)
	p0 := p.Cmd.Process.Pid
	killed := time.Now()
	p.Cmd.Process.Kill()
	<-p.Done
	dead := time.Now()
	t.Logf("killed process 0 (pid %d) after %d starts", p.Cmd.Process.Pid, killAt)
	if procs > 1 {
		startAll(killAt, restartAt, func(i int) int { return 1 + i%(procs-1) })
	}
	p = start(ports[0])
	mu.Lock()
	ps[0] = p
	mu.Unlock()
	t.Logf("restarted process 0 (pid %d)", p.Cmd.Process.Pid)
	if procs == 1 {
		startAll(killAt, restartAt, func(i int) int { return 0 })
	}
	startAll(restartAt, n, func(i int) int { return i })

	// Every execution completes with the right output.
	commits := map[string]map[string]time.Time{}
	takeovers := map[string]int{}
	deadline := time.Now().Add(2*time.Minute + time.Duration(n)*time.Second)
	for i := range n {
		id, num := fmt.Sprintf("x%05d", i), strconv.Itoa(i)
		var rec struct {
			Takeovers int    `json:"takeovers"`
			State     string `json:"state"`
			Output    struct {
				N   int `json:"n"`
				Sum int `json:"sum"`
			} `json:"output"`
		}
		for {
			resp, err := http.Get(alive(i).URL + "/v1/executions/" + id + "?wait=30s&until=finished")
			if err != nil {
				t.Fatal(err)
			}
			json.NewDecoder(resp.Body).Decode(&rec)
			resp.Body.Close()
			if rec.State == "COMPLETED" || rec.State == "FAILED" || rec.State == "CANCELLED" || time.Now().After(deadline) {
				break
			}
		}
		takeovers[num] = rec.Takeovers
		if rec.State != "COMPLETED" || rec.Output.N != i || rec.Output.Sum != 15 {
			t.Fatalf("%s: %+v", id, rec)
		}
		resp, err := http.Get(alive(i).URL + "/v1/executions/" + id + "/events")
		if err != nil {
			t.Fatal(err)
		}
		var evs struct {
			Events []struct {
				Path, Kind string
				Time       time.Time
			} `json:"events"`
		}
		json.NewDecoder(resp.Body).Decode(&evs)
		resp.Body.Close()
		commits[num] = map[string]time.Time{}
		for _, ev := range evs.Events {
			if ev.Kind == "step.completed" {
				commits[num][ev.Path] = ev.Time
			}
		}
	}
	elapsed := time.Since(began)

	// No side effect after its result was committed. A step cut short by
	// the kill runs again (at least once, SPEC §3), but only in an
	// execution that was taken over; and no execution is driven by two
	// processes at once: the processes that ran its steps, in time order,
	// change at most once per takeover and never go back.
	f, err := os.Open(runs)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type run struct {
		step string
		at   time.Time
		pid  int
	}
	byExec := map[string][]run{}
	seen := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var num, step string
		var ns int64
		var pid int
		if _, err := fmt.Sscanf(sc.Text(), "%s %s %d %d", &num, &step, &ns, &pid); err != nil {
			t.Fatalf("runs.log: %q: %v", sc.Text(), err)
		}
		at := time.Unix(0, ns)
		c, ok := commits[num][step]
		if !ok {
			t.Fatalf("a run of %s of execution %s has no committed result", step, num)
		}
		if at.After(c) {
			t.Errorf("execution %s step %s ran at %s, after its result was committed at %s", num, step, at.Format(time.RFC3339Nano), c.Format(time.RFC3339Nano))
		}
		seen[num+" "+step]++
		byExec[num] = append(byExec[num], run{step, at, pid})
	}
	// A command of the SIGKILLed process that wrote its run between the
	// kill and the process's reaping is not a process driving the
	// execution. After the reaping, none may write one on Linux: an exec
	// task's command dies with its Loom process (Pdeathsig, SIGKILL).
	// Elsewhere a command may outlive its process, and its late run is
	// left out the same way.
	killedPID := p0
	reruns, moved, orphans := 0, 0, 0
	for k, c := range seen {
		if num := strings.Fields(k)[0]; c > 1 && takeovers[num] == 0 {
			t.Errorf("execution %s: step %s ran %d times, but the execution was never taken over", num, strings.Fields(k)[1], c)
		}
		reruns += c - 1
	}
	for num, rs := range byExec {
		sort.Slice(rs, func(a, b int) bool { return rs[a].at.Before(rs[b].at) })
		rs = slices.DeleteFunc(rs, func(r run) bool {
			orphan := r.pid == killedPID && r.at.After(killed)
			if orphan {
				orphans++
				if runtime.GOOS == "linux" && r.at.After(dead) {
					t.Errorf("execution %s: a command of the killed process (pid %d) ran %s at %s, after the process was reaped at %s: it should have died with it", num, killedPID, r.step, r.at.Format("15:04:05.000"), dead.Format("15:04:05.000"))
				}
			}
			return orphan
		})
		seq := ""
		for _, r := range rs {
			seq += fmt.Sprintf(" %s@%d(%s)", r.step, r.pid, r.at.Format("15:04:05.000"))
		}
		done := map[int]bool{}
		switches := 0
		for k := 1; k < len(rs); k++ {
			if rs[k].pid != rs[k-1].pid {
				switches++
				done[rs[k-1].pid] = true
			}
			if done[rs[k].pid] {
				t.Errorf("execution %s was driven by two processes at once: pid %d ran a step after another process had taken over:%s", num, rs[k].pid, seq)
				break
			}
		}
		if switches > takeovers[num] {
			t.Errorf("execution %s moved between processes %d times but was taken over %d times:%s (killed: pid %d at %s)", num, switches, takeovers[num], seq, killedPID, killed.Format("15:04:05.000"))
		}
		if switches > 0 {
			moved++
		}
	}
	if len(seen) != 5*n {
		t.Errorf("%d step runs recorded, want %d", len(seen), 5*n)
	}
	// Fencing refusals (a process whose lease was taken over is refused
	// its next write) are expected only after the kill.
	fenced, early := 0, 0
	for _, p := range ps {
		b, _ := os.ReadFile(p.Log)
		for _, l := range strings.Split(string(b), "\n") {
			if !strings.Contains(l, "lease lost") {
				continue
			}
			fenced++
			if at, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(strings.Fields(l)[0], "time=")); err == nil && at.Before(killed) {
				early++
			}
		}
	}
	if early > 0 {
		t.Errorf("%d fencing refusal(s) before the kill: a process lost a lease it was renewing", early)
	}
	taken := 0
	for _, c := range takeovers {
		taken += c
	}
	t.Logf("%d executions on %d process(es) in %s (%.1f executions/s, %.1f steps/s): all completed with the right output; %d takeovers after the kill; %d execution(s) moved between processes; %d step(s) ran again (%d by a command of the killed process after the kill); %d fencing refusal(s), none before the kill",
		n, procs, elapsed.Round(time.Second), float64(n)/elapsed.Seconds(), float64(5*n)/elapsed.Seconds(), taken, moved, reruns, orphans, fenced)
}
