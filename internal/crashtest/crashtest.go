package crashtest

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// trialWorkflow is the workflow every trial runs: exec tasks that log
// their side effects, six map items, a call, journaled builtins, a pause
// and a sleep.
//
//go:embed trial.yaml
var trialWorkflow []byte

// Config is a campaign of trials.
type Config struct {
	// Loom is the loom binary to run.
	Loom string
	// DB is the journal every trial shares: a SQLite file or a PostgreSQL
	// URL.
	DB string
	// Dir holds the workflow and each trial's side-effect log.
	Dir string
	// Trials is how many trials to run; Seed makes them reproducible.
	Trials int
	Seed   int64
	// MaxKillDelay bounds how long a process runs before it is killed
	// (default 1.5s): kills land anywhere in a run or resume.
	MaxKillDelay time.Duration
	// Progress, when set, gets a line per trial.
	Progress io.Writer
}

// Result counts what a campaign did and found.
type Result struct {
	Trials      int // trials run
	Passed      int // trials whose every check passed
	Kills       int // processes killed (kill -9)
	ResumeKills int // of them, killed during a resume
	Concurrent  int // rounds where several recoverers raced
	Failures    []string
}

func (r Result) String() string {
	return fmt.Sprintf("%d trials, %d passed, %d kills (%d during a resume), %d rounds of concurrent recoverers, %d failures",
		r.Trials, r.Passed, r.Kills, r.ResumeKills, r.Concurrent, len(r.Failures))
}

// Run runs the campaign. Each trial starts the workflow, kills loom at
// seeded random moments while it runs and while one to three recoverers
// resume it at once, continues it until it completes, and checks: state
// COMPLETED with the right output, `loom replay` exit 0, no task started
// after its result was committed, and no execution of the trial left
// unfinished. A failed check is recorded and the campaign goes on.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.MaxKillDelay <= 0 {
		cfg.MaxKillDelay = 1500 * time.Millisecond
	}
	wf := filepath.Join(cfg.Dir, "trial.yaml")
	if err := os.WriteFile(wf, trialWorkflow, 0o644); err != nil {
		return Result{}, err
	}
	var res Result
	for i := 0; i < cfg.Trials; i++ {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		t := &trial{cfg: cfg, wf: wf, id: fmt.Sprintf("crash-%d-%d", cfg.Seed, i),
			rng: rand.New(rand.NewSource(cfg.Seed*1_000_003 + int64(i))), killed: map[int]int64{}}
		t.log = filepath.Join(cfg.Dir, t.id+".log")
		err := t.run(ctx)
		res.Trials++
		res.Kills += t.kills
		res.ResumeKills += t.resumeKills
		res.Concurrent += t.concurrent
		if err != nil {
			res.Failures = append(res.Failures, fmt.Sprintf("trial %s: %v", t.id, err))
		} else {
			res.Passed++
		}
		if cfg.Progress != nil {
			status := "ok"
			if err != nil {
				status = "FAILED: " + err.Error()
			}
			fmt.Fprintf(cfg.Progress, "trial %s: %d kills: %s\n", t.id, t.kills, status)
		}
	}
	return res, nil
}

type trial struct {
	cfg                            Config
	wf, id, log                    string
	rng                            *rand.Rand
	kills, resumeKills, concurrent int
	mu                             sync.Mutex
	killed                         map[int]int64 // pid of a killed loom → when (unix ns)
}

// outcome is how one loom process ended: its exit code, or -1 when killed.
type outcome struct {
	code   int
	stderr string
}

// loom runs the binary with args; with kill, it is killed with SIGKILL after
// a random delay if it has not finished by then.
func (t *trial) loom(ctx context.Context, kill bool, delay time.Duration, args ...string) (outcome, error) {
	cmd := exec.CommandContext(ctx, t.cfg.Loom, append(args, "--db", t.cfg.DB)...)
	cmd.Dir = t.cfg.Dir
	cmd.Env = append(os.Environ(), "LOOM_DB=")
	var se bytes.Buffer
	cmd.Stderr = &se
	if err := cmd.Start(); err != nil {
		return outcome{}, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	if kill {
		select {
		case err = <-done:
		case <-time.After(delay):
			at := time.Now().UnixNano()
			_ = cmd.Process.Signal(syscall.SIGKILL)
			err = <-done
			var ee *exec.ExitError
			if errors.As(err, &ee) && ee.ExitCode() == -1 {
				t.mu.Lock()
				t.killed[cmd.Process.Pid] = at
				t.kills++
				if args[0] == "resume" {
					t.resumeKills++
				}
				t.mu.Unlock()
				return outcome{code: -1}, nil
			}
		}
	} else {
		err = <-done
	}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return outcome{code: ee.ExitCode(), stderr: se.String()}, nil
	case err != nil:
		return outcome{}, err
	}
	return outcome{code: 0, stderr: se.String()}, nil
}

func (t *trial) delay() time.Duration {
	return time.Duration(t.rng.Int63n(int64(t.cfg.MaxKillDelay)))
}

func (t *trial) run(ctx context.Context) error {
	input := fmt.Sprintf(`{"log": %q}`, t.log)
	start := []string{"run", t.wf, "--workflow", "trial", "--id", t.id, "--input", input, "--quiet"}
	starts := 0
	for round := 0; ; round++ {
		if round > 60 {
			return fmt.Errorf("not COMPLETED after %d rounds of resumes: stuck", round)
		}
		if round == 0 {
			// Most runs are killed; some are let through to the pause.
			o, err := t.loom(ctx, t.rng.Intn(5) > 0, t.delay(), start...)
			if err != nil {
				return err
			}
			if o.code != -1 && o.code != 3 {
				return fmt.Errorf("run: exit %d: %s", o.code, o.stderr)
			}
		}
		rec, err := t.status(ctx, t.id)
		if errors.Is(err, errUnknown) && starts < 20 {
			// Killed before the execution was created: start it again.
			starts++
			round = -1
			continue
		}
		if err != nil {
			return err
		}
		var args []string
		switch rec.State {
		case "COMPLETED":
			return t.check(ctx, rec)
		case "PAUSED":
			args = []string{"resume", t.id, "--input", `"ok"`, "--quiet"}
		case "RUNNING", "WAITING":
			args = []string{"resume", t.id, "--quiet"}
		default:
			return fmt.Errorf("state %s: %s", rec.State, rec.Error)
		}
		// One to three recoverers at once, each killed at random.
		n := 1 + t.rng.Intn(3)
		if n > 1 {
			t.concurrent++
		}
		type plan struct {
			kill  bool
			delay time.Duration
		}
		plans := make([]plan, n)
		for i := range plans {
			plans[i] = plan{kill: t.rng.Intn(2) == 0, delay: t.delay()}
		}
		outs := make([]outcome, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range plans {
			wg.Add(1)
			go func() {
				defer wg.Done()
				outs[i], errs[i] = t.loom(ctx, plans[i].kill, plans[i].delay, args...)
			}()
		}
		wg.Wait()
		for i, o := range outs {
			if errs[i] != nil {
				return errs[i]
			}
			switch o.code {
			case -1, 0, 3: // killed, completed, paused or waiting
			case 4: // another recoverer holds it
			case 2:
				// A concurrent recoverer delivered the payload first, or
				// this one (without a payload) found the pause another had
				// just reached.
				if !strings.Contains(o.stderr, "not paused") && !strings.Contains(o.stderr, "does not match the schema of pause approve") {
					return fmt.Errorf("%s: exit 2: %s", strings.Join(args, " "), o.stderr)
				}
			default:
				return fmt.Errorf("%s: exit %d: %s", strings.Join(args, " "), o.code, o.stderr)
			}
		}
	}
}

// record is what `loom status --json` prints.
type record struct {
	ID     string          `json:"id"`
	State  string          `json:"state"`
	Output json.RawMessage `json:"output"`
	Error  json.RawMessage `json:"error"`
}

// errUnknown: the journal has no such execution (yet).
var errUnknown = errors.New("no such execution")

func (t *trial) status(ctx context.Context, id string) (*record, error) {
	out, err := t.output(ctx, "status", id, "--json")
	if err != nil && (strings.Contains(err.Error(), "no execution with id") || strings.Contains(err.Error(), "there is no journal")) {
		return nil, errUnknown
	}
	if err != nil {
		return nil, err
	}
	var r record
	if err := json.Unmarshal(out, &r); err != nil {
		return nil, fmt.Errorf("status --json: %v: %s", err, out)
	}
	return &r, nil
}

// output runs a command that must succeed and returns its stdout.
func (t *trial) output(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, t.cfg.Loom, append(args, "--db", t.cfg.DB)...)
	cmd.Dir = t.cfg.Dir
	cmd.Env = append(os.Environ(), "LOOM_DB=")
	var se bytes.Buffer
	cmd.Stderr = &se
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("loom %s: %v: %s", strings.Join(args, " "), err, se.String())
	}
	return out, nil
}

// check runs the checks of a COMPLETED trial.
func (t *trial) check(ctx context.Context, rec *record) error {
	var out struct {
		First, Parts, Child, Last, N int
		Approve                      string
	}
	if err := json.Unmarshal(rec.Output, &out); err != nil {
		return fmt.Errorf("output %s: %v", rec.Output, err)
	}
	if out.First != 10 || out.Parts != 30 || out.Last != 5 || out.Approve != "ok" || out.N < 1 || out.N > 1000 || out.Child != 2*out.N {
		return fmt.Errorf("wrong output %s", rec.Output)
	}
	if _, err := t.output(ctx, "replay", t.id); err != nil {
		return fmt.Errorf("replay: %v", err)
	}
	committed, child, err := t.completions(ctx, t.id, "")
	if err != nil {
		return err
	}
	if child == "" {
		return errors.New("no child.started event")
	}
	cc, _, err := t.completions(ctx, child, "child/")
	if err != nil {
		return err
	}
	for k, v := range cc {
		committed[k] = v
	}
	if crec, err := t.status(ctx, child); err != nil || crec.State != "COMPLETED" {
		return fmt.Errorf("child %s is not COMPLETED: %v %v", child, crec, err)
	}
	return t.checkEffects(committed)
}

// completions returns when each step's completion was recorded (unix ns),
// keyed by prefix+path, and the id of a child the execution started.
func (t *trial) completions(ctx context.Context, id, prefix string) (map[string]int64, string, error) {
	out, err := t.output(ctx, "show", id, "--json")
	if err != nil {
		return nil, "", err
	}
	var evs []struct {
		Path string          `json:"path"`
		Kind string          `json:"kind"`
		Data json.RawMessage `json:"data"`
		Time time.Time       `json:"time"`
	}
	if err := json.Unmarshal(out, &evs); err != nil {
		return nil, "", fmt.Errorf("show --json: %v", err)
	}
	m := map[string]int64{}
	child := ""
	for _, ev := range evs {
		switch ev.Kind {
		case "step.completed":
			m[prefix+ev.Path] = ev.Time.UnixNano()
		case "child.started":
			var d struct{ ID string }
			_ = json.Unmarshal(ev.Data, &d)
			child = d.ID
		}
	}
	return m, child, nil
}

// checkEffects reads the side-effect log (label, time, runner pid per
// line) and checks every task ran at least once and none was started after
// its completion was committed. A line later than the completion is
// allowed only from a runner killed before that completion: a task it had
// started before it died may still write after (at least once).
func (t *trial) checkEffects(committed map[string]int64) error {
	f, err := os.Open(t.log)
	if err != nil {
		return err
	}
	defer f.Close()
	seen := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 3 {
			return fmt.Errorf("side-effect log line %q", sc.Text())
		}
		label := fs[0]
		at, _ := strconv.ParseInt(fs[1], 10, 64)
		pid, _ := strconv.Atoi(fs[2])
		seen[label]++
		done, ok := committed[label]
		if !ok {
			return fmt.Errorf("side effect of %s, which the journal does not record as completed", label)
		}
		if at > done {
			if k, killed := t.killed[pid]; !killed || k > done {
				return fmt.Errorf("%s ran again (runner %d) %s after its completion was committed", label, pid, time.Duration(at-done))
			}
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	var labels []string
	for l := range committed {
		if strings.HasPrefix(l, "first") || strings.HasPrefix(l, "parts[") || strings.HasPrefix(l, "child/") || l == "last" {
			labels = append(labels, l)
		}
	}
	sort.Strings(labels)
	for _, l := range labels {
		if strings.HasSuffix(l, "/work") || l == "first" || l == "last" || l == "child/double" {
			if seen[l] == 0 {
				return fmt.Errorf("%s is recorded as completed but never ran", l)
			}
		}
	}
	if len(seen) != 9 {
		return fmt.Errorf("side effects of %d tasks, want 9 (first, 6 parts, child, last)", len(seen))
	}
	return nil
}
