package server_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loomwork/loom/internal/pgtest"
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
  - {id: s1, task: exec, with: {command: [sh, -c, 'sleep 0.1; echo "$0 s1 $(date +%%s%%N)" >> %[1]s; echo 1', "${input.n}"]}}
  - {id: s2, task: exec, with: {command: [sh, -c, 'sleep 0.1; echo "$0 s2 $(date +%%s%%N)" >> %[1]s; echo 2', "${input.n}"]}}
  - {id: s3, task: exec, with: {command: [sh, -c, 'sleep 0.1; echo "$0 s3 $(date +%%s%%N)" >> %[1]s; echo 3', "${input.n}"]}}
  - {id: s4, task: exec, with: {command: [sh, -c, 'sleep 0.1; echo "$0 s4 $(date +%%s%%N)" >> %[1]s; echo 4', "${input.n}"]}}
  - {id: s5, task: exec, with: {command: [sh, -c, 'sleep 0.1; echo "$0 s5 $(date +%%s%%N)" >> %[1]s; echo 5', "${input.n}"]}}
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

type proc struct {
	cmd  *exec.Cmd
	url  string
	log  string
	done chan struct{}
}

func scaleTrial(t *testing.T, dir, db string, procs int) {
	if testing.Short() {
		t.Skip("a multi-process trial")
	}
	n := 60
	if v := os.Getenv("LOOM_SCALE_EXECUTIONS"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	loom := buildLoom(t)
	runs := filepath.Join(dir, "runs.log")
	flows := filepath.Join(dir, "flows")
	os.Mkdir(flows, 0o755)
	if err := os.WriteFile(filepath.Join(flows, "five.yaml"), []byte(fmt.Sprintf(scaleFlow, runs)), 0o644); err != nil {
		t.Fatal(err)
	}
	start := func(i int, port int) *proc {
		p := &proc{url: fmt.Sprintf("http://127.0.0.1:%d", port), log: filepath.Join(dir, fmt.Sprintf("serve-%d-%d.log", i, time.Now().UnixNano())), done: make(chan struct{})}
		f, err := os.Create(p.log)
		if err != nil {
			t.Fatal(err)
		}
		p.cmd = exec.Command(loom, "serve", flows, "--db", db, "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--concurrency", "16")
		p.cmd.Env = append(os.Environ(), "LOOM_LEASE_TTL=5s")
		p.cmd.Stdout, p.cmd.Stderr = f, f
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { p.cmd.Wait(); f.Close(); close(p.done) }()
		for range 300 {
			if resp, err := http.Get(p.url + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return p
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		b, _ := os.ReadFile(p.log)
		t.Fatalf("loom serve did not start:\n%s", b)
		return nil
	}
	ports := make([]int, procs)
	ps := make([]*proc, procs)
	for i := range ps {
		ports[i] = freePort(t)
		ps[i] = start(i, ports[i])
	}
	t.Cleanup(func() {
		for _, p := range ps {
			p.cmd.Process.Signal(os.Interrupt)
			<-p.done
		}
	})
	post := func(url, body string) (int, []byte) {
		resp, err := http.Post(url, "application/json", strings.NewReader(body))
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	var mu sync.Mutex
	alive := func(i int) *proc {
		mu.Lock()
		defer mu.Unlock()
		return ps[i%procs]
	}
	killAt := n / 3
	var wg sync.WaitGroup
	for i := range n {
		if i == killAt {
			// Mid-load: SIGKILL the first process, and start it again once
			// the others have the rest of the load.
			wg.Wait()
			p := alive(0)
			p.cmd.Process.Kill()
			<-p.done
			t.Logf("killed process 0 after %d starts", i)
		}
		if i == 2*n/3 {
			p := start(0, ports[0])
			mu.Lock()
			ps[0] = p
			mu.Unlock()
			t.Logf("restarted process 0 after %d starts", i)
		}
		idx := i
		if i >= killAt && i < 2*n/3 && procs > 1 {
			idx = 1 + i%(procs-1) // process 0 is down
		}
		if i >= killAt && i < 2*n/3 && procs == 1 {
			continue // started after the restart, below
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(`{"workflow": "five", "id": "x%05d", "input": {"n": %d}}`, i, i)
			for try := 0; try < 50; try++ {
				st, b := post(alive(idx).url+"/v1/executions", body)
				if st == 201 || st == 200 {
					return
				}
				if st != 0 {
					t.Errorf("start x%05d: %d %s", i, st, b)
					return
				}
				time.Sleep(100 * time.Millisecond) // the process is restarting
			}
			t.Errorf("start x%05d: no process answered", i)
		}()
	}
	wg.Wait()
	if procs == 1 {
		for i := killAt; i < 2*n/3; i++ {
			body := fmt.Sprintf(`{"workflow": "five", "id": "x%05d", "input": {"n": %d}}`, i, i)
			if st, b := post(alive(0).url+"/v1/executions", body); st != 201 {
				t.Fatalf("start x%05d: %d %s", i, st, b)
			}
		}
	}
	// Every execution completes with the right output.
	commits := map[string]map[string]time.Time{}
	takeovers := 0
	for i := range n {
		id := fmt.Sprintf("x%05d", i)
		var rec struct {
			Takeovers int    `json:"takeovers"`
			State     string `json:"state"`
			Output    struct {
				N   int `json:"n"`
				Sum int `json:"sum"`
			} `json:"output"`
		}
		for try := 0; ; try++ {
			resp, err := http.Get(alive(i).url + "/v1/executions/" + id + "?wait=30s&until=finished")
			if err != nil {
				t.Fatal(err)
			}
			json.NewDecoder(resp.Body).Decode(&rec)
			resp.Body.Close()
			if rec.State == "COMPLETED" || rec.State == "FAILED" || try > 10 {
				break
			}
		}
		takeovers += rec.Takeovers
		if rec.State != "COMPLETED" || rec.Output.N != i || rec.Output.Sum != 15 {
			t.Fatalf("%s: %+v", id, rec)
		}
		resp, err := http.Get(alive(i).url + "/v1/executions/" + id + "/events")
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
		commits[strconv.Itoa(i)] = map[string]time.Time{}
		for _, ev := range evs.Events {
			if ev.Kind == "step.completed" {
				commits[strconv.Itoa(i)][ev.Path] = ev.Time
			}
		}
	}
	// No side effect after its result was committed; count the reruns (a
	// step cut short by the kill runs again: at least once).
	f, err := os.Open(runs)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var num, step string
		var ns int64
		if _, err := fmt.Sscanf(sc.Text(), "%s %s %d", &num, &step, &ns); err != nil {
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
	}
	reruns := 0
	for _, c := range seen {
		reruns += c - 1
	}
	if len(seen) != 5*n {
		t.Errorf("%d step runs recorded, want %d", len(seen), 5*n)
	}
	fenced := 0
	for _, p := range ps {
		b, _ := os.ReadFile(p.log)
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "lease lost") {
				fenced++
			}
		}
	}
	t.Logf("%d executions on %d process(es): all completed; %d taken over after the kill; %d step(s) ran again; %d fencing refusal(s) logged", n, procs, takeovers, reruns, fenced)
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

var (
	buildOnce sync.Once
	loomBin   string
	buildErr  error
)

// buildLoom builds cmd/loom once for the trials of this test binary.
func buildLoom(t *testing.T) string {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "loom-scale-")
		if err != nil {
			buildErr = err
			return
		}
		loomBin = filepath.Join(dir, "loom")
		if out, err := exec.Command("go", "build", "-o", loomBin, "github.com/loomwork/loom/cmd/loom").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return loomBin
}
