package examples_test

// Tests of the seed's flows (../shared/seed/flux-workflow-controls.txt).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loomwork/loom/builtins"
	"github.com/loomwork/loom/clock"
	"github.com/loomwork/loom/definition"
	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/memory"
	"github.com/loomwork/loom/journal/sqlite"
)

// The quickstart, with the README's exact commands.
func testApproval(t *testing.T) {
	c := newCLI(t)
	r := c.loom("run", "examples/approval.yaml", "--id", "order-a1", "--input", `{"order_id": "A1"}`)
	r.exit(t, 3)
	r.noStdout(t)
	r.errContains(t, "execution order-a1 of order_approval is paused at approval (pause wait_for_approval)",
		"loom resume order-a1 --input")
	rec := c.status("order-a1")
	if rec.State != "PAUSED" || rec.pauses() != "approval (wait_for_approval)" {
		t.Fatalf("after run: state %s, pauses %s; want PAUSED at approval (wait_for_approval)", rec.State, rec.pauses())
	}
	equal(t, "the pause's schema", rec.Pauses[0].Schema, map[string]any{
		"type": "object", "required": []any{"approved"},
		"properties": map[string]any{"approved": map[string]any{"type": "boolean"}, "reason": map[string]any{"type": "string"}},
	})

	// A payload that fails the schema is refused; nothing changes.
	r = c.loom("resume", "order-a1", "--input", `{"approved": "yes"}`)
	r.exit(t, 2)
	r.oneLineErr(t, "loom resume: ")
	r.errContains(t, "approved")
	if rec := c.status("order-a1"); rec.State != "PAUSED" {
		t.Fatalf("after a refused payload: state %s, want PAUSED", rec.State)
	}

	r = c.loom("resume", "order-a1", "--input", `{"approved": true}`)
	r.exit(t, 0)
	want := regexp.MustCompile(`^\{"approved_at":"(` + timeRE + `)","order":\{"currency":"EUR","id":"A1","total":42\},"ticket":"([0-9a-f-]{36})"\}\n$`)
	m := want.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("output %q does not match %s", r.stdout, want)
	}
	if !uuidRE.MatchString(m[3]) {
		t.Errorf("ticket %q is not a version 4 UUID", m[3])
	}
	r.errContains(t, "execution order-a1 of order_approval completed")
	tasks := c.total()

	// A finished execution reports its outcome again, byte for byte, and
	// runs nothing; replay agrees.
	again := c.loom("resume", "order-a1")
	again.exit(t, 0)
	if again.stdout != r.stdout {
		t.Errorf("resuming the completed execution printed %q, first %q", again.stdout, r.stdout)
	}
	c.loom("replay", "order-a1").exit(t, 0)
	r = c.loom("resume", "order-a1", "--input", `{"approved": true}`)
	r.exit(t, 2)
	r.oneLineErr(t, "loom resume: ")
	r.errContains(t, "not paused")
	if n := c.total(); n != tasks {
		t.Errorf("resume and replay of a completed execution ran %d tasks", n-tasks)
	}

	// A rejection fails the execution with the typed error.
	c.loom("run", "examples/approval.yaml", "--id", "order-b2", "--input", `{"order_id": "B2"}`).exit(t, 3)
	r = c.loom("resume", "order-b2", "--input", `{"approved": false, "reason": "out of stock"}`)
	r.exit(t, 1)
	r.noStdout(t)
	r.errContains(t, "execution order-b2 of order_approval failed: Rejected", "order B2 was rejected: out of stock")
	rec = c.status("order-b2")
	if rec.State != "FAILED" || rec.errorOf() != "Rejected|order B2 was rejected: out of stock|null|#2" {
		t.Errorf("after a rejection: state %s, error %s", rec.State, rec.errorOf())
	}
	// A failed execution reports its error again, with the same exit status.
	again = c.loom("resume", "order-b2")
	again.exit(t, 1)
	if again.stderr != r.stderr {
		t.Errorf("resuming the failed execution printed\n%s\nfirst\n%s", again.stderr, r.stderr)
	}
}

// The seed's pause_workflow: one pause, resumed by execution id, without a
// payload.
func testPause(t *testing.T) {
	c := newCLI(t)
	r := c.loom("run", "examples/pause.yaml", "--id", "p1")
	r.exit(t, 3)
	r.noStdout(t)
	r.errContains(t, "execution p1 of pause_workflow is paused at #1 (pause wait_for_approval)", "loom resume p1")
	if n := c.count("exec"); n != 1 {
		t.Errorf("process_data ran %d times before the pause, want 1", n)
	}
	if rec := c.status("p1"); rec.State != "PAUSED" || rec.pauses() != "#1 (wait_for_approval)" {
		t.Errorf("state %s, pauses %s; want PAUSED at #1 (wait_for_approval)", rec.State, rec.pauses())
	}

	r = c.loom("resume", "p1")
	r.exit(t, 0)
	r.out(t, `"Data processed and approved"`)
	if n := c.count("exec"); n != 1 {
		t.Errorf("process_data ran %d times in all, want 1 (resume replays it from the journal)", n)
	}
	outs := stepOutputs(t, c.events("p1"))
	equal(t, "the pause's recorded payload", outs["#1"], "null")
}

// The seed's multi_stage_workflow: two pauses resumed one by one, through
// the CLI and through the library on a SQLite journal.
func testMultiPause(t *testing.T) {
	t.Run("cli", testMultiPauseCLI)
	t.Run("engine", func(t *testing.T) {
		ctx := context.Background()
		cat, err := definition.Load("examples/multi_pause.yaml", definition.WithTasks(builtins.Standard()))
		if err != nil {
			t.Fatal(err)
		}
		j, err := sqlite.Open(filepath.Join(t.TempDir(), "loom.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		eng := interpreter.New(cat, builtins.Standard(), j)
		pauses := func(ex *interpreter.Execution) string {
			var ps []string
			for _, p := range ex.Pauses {
				ps = append(ps, p.Path+" ("+p.Name+")")
			}
			return strings.Join(ps, ", ")
		}

		ex, err := eng.Run(ctx, "multi_stage_workflow", nil)
		if err != nil {
			t.Fatal(err)
		}
		if ex.State != journal.Paused || pauses(ex) != "verify_data (verify_data)" || ex.Output != nil {
			t.Fatalf("run: %s, pauses %s, output %v", ex.State, pauses(ex), ex.Output)
		}
		if _, err := eng.Resume(ctx, ex.ID, map[string]any{"ok": "yes"}); !errors.Is(err, interpreter.ErrInvalidInput) {
			t.Errorf("a payload against the schema: %v, want ErrInvalidInput", err)
		}
		ex, err = eng.Resume(ctx, ex.ID, map[string]any{"ok": true})
		if err != nil {
			t.Fatal(err)
		}
		if ex.State != journal.Paused || pauses(ex) != "review_processing (review_processing)" {
			t.Fatalf("first resume: %s, pauses %s", ex.State, pauses(ex))
		}
		if _, err := eng.ResumePause(ctx, ex.ID, "verify_data", map[string]any{"ok": true}); !errors.Is(err, interpreter.ErrNotPaused) {
			t.Errorf("resuming a resumed pause: %v, want ErrNotPaused", err)
		}
		ex, err = eng.ResumePause(ctx, ex.ID, "review_processing", map[string]any{"reviewer": "grace"})
		if err != nil {
			t.Fatal(err)
		}
		if ex.State != journal.Completed || len(ex.Pauses) != 0 || ex.Error != nil {
			t.Fatalf("second resume: %s, pauses %s, error %v", ex.State, pauses(ex), ex.Error)
		}
		equal(t, "the output", ex.Output, map[string]any{
			"result": map[string]any{"count": 3, "records": []any{1, 2, 3}}, "reviewed_by": "grace",
		})
		if _, err := eng.Resume(ctx, ex.ID, map[string]any{"reviewer": "alan"}); !errors.Is(err, interpreter.ErrNotPaused) {
			t.Errorf("a payload for a completed execution: %v, want ErrNotPaused", err)
		}
	})
}

func testMultiPauseCLI(t *testing.T) {
	c := newCLI(t)
	r := c.loom("run", "examples/multi_pause.yaml", "--id", "m1")
	r.exit(t, 3)
	if rec := c.status("m1"); rec.pauses() != "verify_data (verify_data)" {
		t.Fatalf("after run: pauses %s, want verify_data", rec.pauses())
	}

	r = c.loom("resume", "m1", "--input", `{"ok": true}`)
	r.exit(t, 3)
	r.noStdout(t)
	r.errContains(t, "is paused at review_processing (pause review_processing)")
	if rec := c.status("m1"); rec.State != "PAUSED" || rec.pauses() != "review_processing (review_processing)" {
		t.Fatalf("after the first resume: state %s, pauses %s", rec.State, rec.pauses())
	}

	// The first pause was resumed already: the first valid resume wins.
	r = c.loom("resume", "m1", "--pause", "verify_data", "--input", `{"ok": true}`)
	r.exit(t, 2)
	r.oneLineErr(t, "loom resume: ")
	r.errContains(t, "not paused")

	r = c.loom("resume", "m1", "--input", `{"reviewer": "grace"}`)
	r.exit(t, 0)
	r.out(t, `{"result":{"count":3,"records":[1,2,3]},"reviewed_by":"grace"}`)
	if n := c.count("echo"); n != 3 {
		t.Errorf("echo ran %d times over three drives, want 3 (one per stage)", n)
	}

	// Stopped at the first pause.
	c.loom("run", "examples/multi_pause.yaml", "--id", "m2").exit(t, 3)
	r = c.loom("resume", "m2", "--input", `{"ok": false}`)
	r.exit(t, 1)
	if rec := c.status("m2"); rec.errorOf() != "DataRejected|the data was rejected at verify_data|null|#2" {
		t.Errorf("error %s", rec.errorOf())
	}
}

// The seed's `if ctx.paused:` — the exit status of run, and loom status.
func testPausedStatus(t *testing.T) {
	c := newCLI(t)
	r := c.loom("run", "examples/paused_status.yaml", "--id", "day1", "--input", `{"day": "2024-05-01"}`)
	r.exit(t, 3) // paused

	r = c.loom("status", "day1")
	r.exit(t, 0)
	for _, re := range []string{`(?m)^id\s+day1$`, `(?m)^workflow\s+report_review \(version 1\)$`, `(?m)^state\s+PAUSED$`, `(?m)^open pauses:\n  review \(pause review\)$`} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("loom status day1 does not match %s:\n%s", re, r.stdout)
		}
	}
	rec := c.status("day1")
	if rec.State != "PAUSED" || rec.pauses() != "review (review)" || rec.Output != nil || rec.Error != nil {
		t.Errorf("status --json: %+v", rec)
	}
	if l := c.list("--state", "PAUSED"); len(l) != 1 || l[0].ID != "day1" {
		t.Errorf("list --state PAUSED: %+v", l)
	}

	r = c.loom("resume", "day1", "--input", `{"publish": true}`)
	r.exit(t, 0)
	r.out(t, `{"day":"2024-05-01","published":true}`)
	rec = c.status("day1")
	if rec.State != "COMPLETED" || len(rec.Pauses) != 0 {
		t.Errorf("after resume: state %s, pauses %s", rec.State, rec.pauses())
	}
	if l := c.list("--state", "PAUSED"); len(l) != 0 {
		t.Errorf("list --state PAUSED after resume: %+v", l)
	}
	if l := c.list("--state", "COMPLETED"); len(l) != 1 || l[0].ID != "day1" {
		t.Errorf("list --state COMPLETED: %+v", l)
	}
	// status reads any execution and exits 0; an unknown id is exit 2.
	r = c.loom("status", "nope")
	r.exit(t, 2)
	r.oneLineErr(t, "loom status: ")
}

// The seed's deterministic_workflow: a finished execution runs again to
// byte-identical output without running a task or reading the clock.
func testDeterministic(t *testing.T) {
	t.Run("cli", func(t *testing.T) {
		c := newCLI(t)
		r := c.loom("run", "examples/deterministic.yaml", "--id", "d1")
		r.exit(t, 0)
		checkDeterministicOutput(t, r.stdout)
		if n := c.total(); n != 1 {
			t.Errorf("the first run ran %d tasks, want 1", n)
		}

		again := c.loom("resume", "d1")
		again.exit(t, 0)
		if again.stdout != r.stdout {
			t.Errorf("running the finished execution again printed\n%s\nthe first run printed\n%s", again.stdout, r.stdout)
		}
		r = c.loom("replay", "d1")
		r.exit(t, 0)
		if !strings.Contains(r.stdout, "replays to its recorded outcome") {
			t.Errorf("replay: %s", r)
		}
		if n := c.total(); n != 1 {
			t.Errorf("resume and replay ran %d more tasks, want none", n-1)
		}
		var names []string
		for _, ev := range c.events("d1") {
			if ev.Kind == "builtin" {
				names = append(names, ev.Name)
			}
		}
		equal(t, "the journaled builtins", strings.Join(names, " "), "now uuid4 randint randrange now")
	})

	t.Run("engine", func(t *testing.T) {
		ctx := context.Background()
		cat, err := definition.Load("examples/deterministic.yaml", definition.WithTasks(builtins.Standard()))
		if err != nil {
			t.Fatal(err)
		}
		j := memory.New()
		ex, err := interpreter.New(cat, builtins.Standard(), j).Run(ctx, "deterministic_workflow", nil)
		if err != nil {
			t.Fatal(err)
		}
		if ex.State != journal.Completed {
			t.Fatalf("state %s, error %v", ex.State, ex.Error)
		}
		first, _ := json.Marshal(ex.Output)
		checkDeterministicOutput(t, string(first)+"\n")

		// Replay must not touch the world: tasks, the clock and the
		// random source all fail the test when used.
		eng := interpreter.New(cat, forbiddenTasks{t}, j, interpreter.WithClock(forbiddenClock{t}), interpreter.WithRandom(forbiddenRandom{t}))
		ex2, err := eng.Resume(ctx, ex.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		second, _ := json.Marshal(ex2.Output)
		if ex2.State != journal.Completed || string(second) != string(first) {
			t.Errorf("again: %s %s, first %s", ex2.State, second, first)
		}
		res, err := eng.Replay(ctx, ex.ID)
		if err != nil {
			t.Fatal(err)
		}
		derived, _ := json.Marshal(res.Derived.Output)
		if !res.Match || string(derived) != string(first) {
			t.Errorf("replay: match %v, diff %v, derived %s, recorded %s", res.Match, res.Diff, derived, first)
		}
	})
}

func checkDeterministicOutput(t *testing.T, stdout string) {
	t.Helper()
	var out struct {
		Start, End, ID string
		ElapsedNS      int64 `json:"elapsed_ns"`
		Dice, Pick     int
		Noise          *int64
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("output %q: %v", stdout, err)
	}
	keys := regexp.MustCompile(`^\{"dice":\d,"elapsed_ns":\d+,"end":"` + timeRE + `","id":"[0-9a-f-]{36}","noise":\d+,"pick":\d,"start":"` + timeRE + `"\}\n$`)
	if !keys.MatchString(stdout) {
		t.Errorf("output %q does not match %s", stdout, keys)
	}
	start, err1 := time.Parse(time.RFC3339Nano, out.Start)
	end, err2 := time.Parse(time.RFC3339Nano, out.End)
	if err1 != nil || err2 != nil || end.Before(start) || end.Sub(start).Nanoseconds() != out.ElapsedNS {
		t.Errorf("start %s, end %s, elapsed_ns %d: want end ≥ start and elapsed = end - start", out.Start, out.End, out.ElapsedNS)
	}
	if !uuidRE.MatchString(out.ID) {
		t.Errorf("id %q is not a version 4 UUID", out.ID)
	}
	if out.Dice < 1 || out.Dice > 5 {
		t.Errorf("randint(1, 5) = %d", out.Dice)
	}
	if out.Pick < 1 || out.Pick > 9 {
		t.Errorf("randrange(1, 10) = %d", out.Pick)
	}
	if out.Noise == nil {
		t.Errorf("noise is missing")
	}
}

type forbiddenClock struct{ t *testing.T }

func (c forbiddenClock) Now() time.Time {
	c.t.Error("the replay read the clock")
	return time.Time{}
}

func (c forbiddenClock) NewTimer(time.Duration) clock.Timer {
	c.t.Error("the replay set a timer")
	return clock.NewFake(time.Time{}).NewTimer(0)
}

type forbiddenRandom struct{ t *testing.T }

func (r forbiddenRandom) Uint64() uint64 {
	r.t.Error("the replay read the random source")
	return 0
}

// forbiddenTasks has the standard tasks' names, and fails the test when one
// runs.
type forbiddenTasks struct{ t *testing.T }

func (f forbiddenTasks) HasTask(name string) bool { return builtins.Standard().HasTask(name) }
func (f forbiddenTasks) TaskNames() []string      { return builtins.Standard().TaskNames() }
func (f forbiddenTasks) LookupTask(name string) (interpreter.TaskFunc, bool) {
	return func(context.Context, json.RawMessage) (any, error) {
		f.t.Errorf("the replay ran task %s", name)
		return nil, fmt.Errorf("task %s must not run", name)
	}, f.HasTask(name)
}

// The seed's main_workflow calling sub_workflow.
func testSubworkflow(t *testing.T) {
	c := newCLI(t)
	r := c.loom("run", "examples/subworkflow.yaml", "--workflow", "main_workflow", "--input", `"hello, loom"`, "--id", "main-1")
	r.exit(t, 0)
	r.out(t, `{"parent":"main-1","text":"HELLO, LOOM!"}`)

	all := c.list("--all")
	if len(all) != 2 {
		t.Fatalf("list --all: %d executions, want the root and its child: %+v", len(all), all)
	}
	var child record
	for _, rec := range all {
		if rec.ID != "main-1" {
			child = rec
		}
	}
	if child.Workflow != "sub_workflow" || child.ParentID == nil || *child.ParentID != "main-1" || child.State != "COMPLETED" {
		t.Errorf("child: %+v", child)
	}
	equal(t, "the child's input", child.Input, "hello, loom")
	equal(t, "the child's output", child.Output, map[string]any{"parent": "main-1", "text": "HELLO, LOOM!"})
	if roots := c.list(); len(roots) != 1 || roots[0].ID != "main-1" {
		t.Errorf("list (roots only): %+v", roots)
	}

	// The file holds two workflows: run needs --workflow.
	r = c.loom("run", "examples/subworkflow.yaml", "--input", `"x"`)
	r.exit(t, 2)
	r.oneLineErr(t, "loom run: ")
	r.errContains(t, "--workflow")
}

// A pause in a child pauses its parent; resuming the root continues both.
func testSubworkflowPause(t *testing.T) {
	c := newCLI(t)
	r := c.loom("run", "examples/subworkflow_pause.yaml", "--workflow", "release_notes", "--id", "notes", "--input", `{"version": "2.0.0"}`)
	r.exit(t, 3)
	r.noStdout(t)
	rec := c.status("notes")
	if rec.State != "PAUSED" || rec.pauses() != "signature (sign_off)" {
		t.Fatalf("root: state %s, pauses %s; want PAUSED at the child's signature", rec.State, rec.pauses())
	}
	children := c.list("--all", "--workflow", "sign_off")
	if len(children) != 1 || children[0].State != "PAUSED" || children[0].ParentID == nil || *children[0].ParentID != "notes" {
		t.Fatalf("child: %+v", children)
	}
	equal(t, "the child's input", children[0].Input, map[string]any{"changes": 12, "title": "Release 2.0.0"})

	r = c.loom("resume", "notes", "--input", `{"signed_by": "lin"}`)
	r.exit(t, 0)
	r.out(t, `{"signed_by":"lin","title":"Release 2.0.0"}`)
	if rec := c.status(children[0].ID); rec.State != "COMPLETED" {
		t.Errorf("child after resume: %s", rec.State)
	}
	if n := c.count("echo"); n != 1 {
		t.Errorf("draft ran %d times, want 1", n)
	}
}

// The seed's parallel_subflows over get_stars_workflow, against a fake
// GitHub API.
func testGithubStars(t *testing.T) {
	stars := map[string]int{"golang/go": 125000, "python/cpython": 65000, "loomwork/loom": 42}
	var mu sync.Mutex
	var hits []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits = append(hits, r.Method+" "+r.URL.Path)
		mu.Unlock()
		repo := strings.TrimPrefix(r.URL.Path, "/repos/")
		n, ok := stars[repo]
		if repo == "golang/go" {
			// Slow, so that in "unknown repository" its item is in
			// flight when the other item fails, every time.
			time.Sleep(300 * time.Millisecond)
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		if r.Method != http.MethodGet || !ok || r.Header.Get("User-Agent") != "loom-examples" || r.Header.Get("Accept") != "application/vnd.github+json" {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"message": "Not Found"}`)
			return
		}
		fmt.Fprintf(w, `{"full_name": %q, "stargazers_count": %d, "forks_count": 7}`, repo, n)
	}))
	defer srv.Close()

	t.Run("stars", func(t *testing.T) {
		testStars(t, srv.URL, &mu, &hits)
	})

	// As in the seed, an empty list is a TypeError.
	t.Run("empty", func(t *testing.T) {
		c := newCLI(t)
		r := c.loom("run", "examples/github_stars.yaml", "--workflow", "parallel_subflows", "--id", "none", "--input", `{"repos": []}`)
		r.exit(t, 1)
		r.noStdout(t)
		r.errContains(t, "failed: TypeError", "Repository list cannot be empty")
		if rec := c.status("none"); rec.errorOf() != "TypeError|Repository list cannot be empty|null|#0" {
			t.Errorf("error %s", rec.errorOf())
		}
	})

	// A repository the API does not know fails its item, and so the map;
	// the item in flight is cancelled, and the execution must still replay.
	t.Run("unknown repository", func(t *testing.T) {
		c := newCLI(t)
		in := fmt.Sprintf(`{"repos": ["golang/go", "no/such"], "api": %q}`, srv.URL)
		r := c.loom("run", "examples/github_stars.yaml", "--workflow", "parallel_subflows", "--id", "missing", "--input", in)
		r.exit(t, 1)
		rec := c.status("missing")
		if rec.Error == nil || rec.Error.Type != "MapFailed" || rec.Error.Step != "stars" || !strings.Contains(rec.Error.Message, "404") {
			t.Errorf("error %s, want MapFailed at stars mentioning the 404", rec.errorOf())
		}
		// The cancelled item's child is finished too, not left RUNNING.
		for _, ch := range c.list("--all", "--workflow", "get_stars_workflow") {
			if ch.State == "RUNNING" {
				t.Errorf("child %s (input %v) is still RUNNING after its parent failed", ch.ID, ch.Input)
			}
		}
	})
}

func testStars(t *testing.T, url string, mu *sync.Mutex, hits *[]string) {
	c := newCLI(t)
	in := fmt.Sprintf(`{"repos": ["golang/go", "python/cpython", "loomwork/loom"], "api": %q}`, url)
	r := c.loom("run", "examples/github_stars.yaml", "--workflow", "parallel_subflows", "--id", "stars", "--input", in)
	r.exit(t, 0)
	r.out(t, `{"golang/go":125000,"loomwork/loom":42,"python/cpython":65000}`)
	mu.Lock()
	if len(*hits) != 3 {
		t.Errorf("the API got %d requests, want 3: %v", len(*hits), *hits)
	}
	mu.Unlock()
	children := c.list("--all", "--workflow", "get_stars_workflow")
	if len(children) != 3 {
		t.Fatalf("%d get_stars_workflow executions, want 3", len(children))
	}
	for _, ch := range children {
		if ch.ParentID == nil || *ch.ParentID != "stars" || ch.State != "COMPLETED" {
			t.Errorf("child %s: parent %v, state %s", ch.ID, ch.ParentID, ch.State)
		}
	}
}

// The seed's process_workflow: three subworkflows in sequence.
func testComposition(t *testing.T) {
	c := newCLI(t)
	r := c.loom("run", "examples/composition.yaml", "--workflow", "process_workflow", "--id", "proc")
	r.exit(t, 0)
	r.out(t, `{"names":["GRACE","ADA"],"saved":2}`)
	r.errContains(t, "[info] saving 2 results\n")

	all := c.list("--all")
	got := map[string]record{}
	for _, rec := range all {
		got[rec.Workflow] = rec
	}
	if len(all) != 4 {
		t.Fatalf("list --all: %d executions, want 4", len(all))
	}
	for _, wf := range []string{"fetch_data_workflow", "transform_workflow", "save_workflow"} {
		ch := got[wf]
		if ch.ParentID == nil || *ch.ParentID != "proc" || ch.State != "COMPLETED" {
			t.Errorf("%s: %+v", wf, ch)
		}
	}
	// Each child's output is the next one's input.
	equal(t, "transform_workflow's input", got["transform_workflow"].Input, got["fetch_data_workflow"].Output)
	equal(t, "save_workflow's input", got["save_workflow"].Input, []any{
		map[string]any{"name": "GRACE", "score": 41}, map[string]any{"name": "ADA", "score": 36},
	})
	equal(t, "transform_workflow's output", got["transform_workflow"].Output, got["save_workflow"].Input)
}
