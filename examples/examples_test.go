package examples_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loomwork/loom/builtins"
	"github.com/loomwork/loom/cli"
	"github.com/loomwork/loom/clock"
	"github.com/loomwork/loom/definition"
	"github.com/loomwork/loom/interpreter"
)

// TestMain runs the tests from the repository root, so that every command a
// test runs is the one its example's header documents (`loom run
// examples/X.yaml`, scripts at examples/scripts/…).
func TestMain(m *testing.M) {
	if err := os.Chdir(".."); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// exampleTests maps each example file (relative to examples/) to its test.
// TestExamples fails for a file that has no entry here.
var exampleTests = map[string]func(t *testing.T){
	"approval.yaml":          testApproval,
	"pause.yaml":             testPause,
	"multi_pause.yaml":       testMultiPause,
	"paused_status.yaml":     testPausedStatus,
	"deterministic.yaml":     testDeterministic,
	"subworkflow.yaml":       testSubworkflow,
	"subworkflow_pause.yaml": testSubworkflowPause,
	"github_stars.yaml":      testGithubStars,
	"composition.yaml":       testComposition,
	"hello_world.yaml":       testHelloWorld,
	"pipeline.yaml":          testPipeline,
	"parallel.yaml":          testParallel,
	"pause_payload.yaml":     testPausePayload,
	"pause_timeout.yaml":     testPauseTimeout,
	"conditional_pause.yaml": testConditionalPause,
	"retry_fallback.yaml":    testRetryFallback,
	"saga.yaml":              testSaga,
	"timeout.yaml":           testTimeout,
	"sleep.yaml":             testSleep,
	"switch.yaml":            testSwitch,
	"for_each.yaml":          testForEach,
	"for_while.yaml":         testForWhile,
	"try_catch.yaml":         testTryCatch,
	"raise.yaml":             testRaise,
	"return.yaml":            testReturn,
	"map_tolerate.yaml":      testMapTolerate,
	"map_pauses.yaml":        testMapPauses,
	"output.yaml":            testOutput,
	"if.yaml":                testIf,
	"deploy_approval.yaml":   testDeployApproval,
}

// exampleFiles lists the workflow files under examples/ (relative to it),
// leaving out examples/custom-cli (validated and run by its own binary in
// its own test) and testdata directories.
func exampleFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir("examples", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path == filepath.Join("examples", "custom-cli") || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if ext := filepath.Ext(path); (ext == ".yaml" || ext == ".yml") && !definition.IsTestFile(path) {
			rel, _ := filepath.Rel("examples", path)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	return files
}

// TestExamples runs every example's test, and fails for an example without
// one (and for a test whose example is gone).
func TestExamples(t *testing.T) {
	files := exampleFiles(t)
	if len(files) == 0 {
		t.Fatal("found no example under examples/")
	}
	seen := map[string]bool{}
	for _, f := range files {
		seen[f] = true
		test, ok := exampleTests[f]
		if !ok {
			t.Errorf("examples/%s has no test: add one to exampleTests in examples/examples_test.go", f)
			continue
		}
		t.Run(f, func(t *testing.T) {
			t.Parallel()
			test(t)
		})
	}
	for f := range exampleTests {
		if !seen[f] {
			t.Errorf("exampleTests has an entry for examples/%s, which does not exist", f)
		}
	}
}

// TestExampleHeaders checks what every example promises a reader: the
// schema line first, a header with the command that runs it, and a row in
// examples/README.md.
func TestExampleHeaders(t *testing.T) {
	readme, err := os.ReadFile("examples/README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range exampleFiles(t) {
		src, err := os.ReadFile(filepath.Join("examples", f))
		if err != nil {
			t.Fatal(err)
		}
		first, _, _ := strings.Cut(string(src), "\n")
		depth := strings.Count(f, "/")
		schema := strings.Repeat("../", depth+1) + "schemas/workflow.schema.json"
		if want := "# yaml-language-server: $schema=" + schema; first != want {
			t.Errorf("examples/%s: first line is %q, want %q", f, first, want)
		}
		if _, err := os.Stat(filepath.Join("examples", filepath.Dir(f), schema)); err != nil {
			t.Errorf("examples/%s: the schema line points at a missing file: %v", f, err)
		}
		if !strings.Contains(string(src), "# ") || !strings.Contains(string(src), "go run ./cmd/loom run examples/"+f) {
			t.Errorf("examples/%s: the header does not say how to run it (go run ./cmd/loom run examples/%s …)", f, f)
		}
		if !bytes.Contains(readme, []byte("("+f+")")) {
			t.Errorf("examples/README.md does not link to %s", f)
		}
	}
}

// TestValidate checks that `loom validate examples/` accepts the whole
// directory, and every example file named at once.
func TestValidate(t *testing.T) {
	c := newCLI(t)
	r := c.loom("validate", "examples/")
	r.exit(t, 0)
	r.noStdout(t)
	if r.stderr != "" {
		t.Errorf("loom validate examples/ printed problems:\n%s", r.stderr)
	}

	args := []string{"validate"}
	for _, f := range exampleFiles(t) {
		args = append(args, "examples/"+f)
	}
	r = c.loom(args...)
	r.exit(t, 0)
	if r.stderr != "" {
		t.Errorf("loom validate of every example printed problems:\n%s", r.stderr)
	}
}

// ---------------------------------------------------------------------------
// The CLI, in process.

// cliEnv runs loom commands in process against one journal, with the
// standard tasks, counting the tasks they run.
type cliEnv struct {
	t     *testing.T
	db    string
	calls sync.Map // task name → *atomic.Int64
}

func newCLI(t *testing.T) *cliEnv {
	c := &cliEnv{t: t, db: filepath.Join(t.TempDir(), "loom.db")}
	t.Cleanup(c.replayAll)
	return c
}

// replayAll checks, when a test is done, that every execution it left in
// its journal (children too) replays to its recorded outcome without running a task:
// `loom replay ID` exits 0 for each.
func (c *cliEnv) replayAll() {
	if _, err := os.Stat(c.db); err != nil {
		return // nothing was run
	}
	before := c.total()
	// Every execution, children included (#8: a child that drew builtins
	// once replayed to a false mismatch).
	for _, rec := range c.list("--all", "--limit", "0") {
		if r := c.loom("replay", rec.ID); r.code != 0 {
			c.t.Errorf("execution %s (%s, %s) does not replay:\n%s", rec.ID, rec.Workflow, rec.State, r)
		}
	}
	if n := c.total() - before; n != 0 {
		c.t.Errorf("replaying the executions ran %d tasks", n)
	}
}

// result is what one loom command did.
type result struct {
	args           []string
	code           int
	stdout, stderr string
}

// loom runs one command line with --db set to the test's journal. Tasks
// that log write to the command's stderr.
func (c *cliEnv) loom(args ...string) result {
	c.t.Helper()
	var stdout, stderr syncBuffer
	tasks := &countingTasks{TaskSet: builtins.Standard(builtins.WithStderr(&stderr)), env: c}
	full := append(append([]string(nil), args...), "--db", c.db)
	code := cli.Run(tasks, full, strings.NewReader(""), &stdout, &stderr, func(string) string { return "" })
	return result{args: args, code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// loomAt runs one command line as loom does at time at (a clock that
// stands still there): a test is at a timer's wake time or a pause's
// deadline without waiting for it.
func (c *cliEnv) loomAt(at time.Time, args ...string) result {
	c.t.Helper()
	var stdout, stderr syncBuffer
	tasks := &countingTasks{TaskSet: builtins.Standard(builtins.WithStderr(&stderr)), env: c}
	full := append(append([]string(nil), args...), "--db", c.db)
	code := cli.Run(tasks, full, strings.NewReader(""), &stdout, &stderr, func(string) string { return "" }, cli.WithClock(clock.NewFake(at)))
	return result{args: args, code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// count returns how many times task name ran (0 for a name never run).
func (c *cliEnv) count(name string) int64 {
	if n, ok := c.calls.Load(name); ok {
		return n.(*atomic.Int64).Load()
	}
	return 0
}

// total returns how many tasks ran, all names together.
func (c *cliEnv) total() int64 {
	var sum int64
	c.calls.Range(func(_, v any) bool {
		sum += v.(*atomic.Int64).Load()
		return true
	})
	return sum
}

// countingTasks is the standard task set, counting each task's runs.
type countingTasks struct {
	*builtins.TaskSet
	env *cliEnv
}

func (c *countingTasks) LookupTask(name string) (interpreter.TaskFunc, bool) {
	fn, ok := c.TaskSet.LookupTask(name)
	if !ok {
		return nil, false
	}
	return func(ctx context.Context, in json.RawMessage) (any, error) {
		n, _ := c.env.calls.LoadOrStore(name, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		return fn(ctx, in)
	}, true
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of tasks.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (r result) String() string {
	return fmt.Sprintf("loom %s\nexit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// exit fails the test unless the command exited with code.
func (r result) exit(t *testing.T, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit status %d, want %d\n%s", r.code, code, r)
	}
}

// out checks the whole stdout: one line of JSON.
func (r result) out(t *testing.T, want string) {
	t.Helper()
	if r.stdout != want+"\n" {
		t.Errorf("loom %s\nstdout:\n%s\nwant:\n%s", strings.Join(r.args, " "), r.stdout, want)
	}
}

func (r result) noStdout(t *testing.T) {
	t.Helper()
	if r.stdout != "" {
		t.Errorf("loom %s printed on stdout:\n%s", strings.Join(r.args, " "), r.stdout)
	}
}

// errContains checks that stderr holds each of parts.
func (r result) errContains(t *testing.T, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(r.stderr, p) {
			t.Errorf("loom %s: stderr does not contain %q:\n%s", strings.Join(r.args, " "), p, r.stderr)
		}
	}
}

// oneLineErr checks that a refusal is one line on stderr, starting with
// prefix, and nothing on stdout.
func (r result) oneLineErr(t *testing.T, prefix string) {
	t.Helper()
	r.noStdout(t)
	if strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, prefix) {
		t.Errorf("loom %s: stderr is not one line starting with %q:\n%s", strings.Join(r.args, " "), prefix, r.stderr)
	}
	if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic") {
		t.Errorf("loom %s: stderr shows a panic:\n%s", strings.Join(r.args, " "), r.stderr)
	}
}

// record is an execution as `--json` prints it (SPEC §5).
type record struct {
	ID       string `json:"id"`
	Workflow string `json:"workflow"`
	Version  int    `json:"version"`
	State    string `json:"state"`
	Input    any    `json:"input"`
	Output   any    `json:"output"`
	Error    *struct {
		Type    string `json:"type"`
		Message string `json:"message"`
		Data    any    `json:"data"`
		Step    string `json:"step"`
	} `json:"error"`
	Pauses []struct {
		Name   string `json:"name"`
		Path   string `json:"path"`
		Schema any    `json:"schema"`
	} `json:"pauses"`
	ParentID  *string   `json:"parent_id"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// pauses renders a record's open pauses as "path (name)", sorted.
func (rec record) pauses() string {
	var ps []string
	for _, p := range rec.Pauses {
		ps = append(ps, p.Path+" ("+p.Name+")")
	}
	sort.Strings(ps)
	return strings.Join(ps, ", ")
}

// errorOf renders a record's error as type|message|data|step.
func (rec record) errorOf() string {
	if rec.Error == nil {
		return "<nil>"
	}
	d, _ := json.Marshal(rec.Error.Data)
	return rec.Error.Type + "|" + rec.Error.Message + "|" + string(d) + "|" + rec.Error.Step
}

func decode[T any](t *testing.T, r result) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("stdout is not the JSON expected: %v\n%s", err, r)
	}
	return v
}

// status returns the record `loom status ID --json` prints.
func (c *cliEnv) status(id string) record {
	c.t.Helper()
	r := c.loom("status", id, "--json")
	r.exit(c.t, 0)
	return decode[record](c.t, r)
}

// list returns the records `loom list --json ARGS…` prints.
func (c *cliEnv) list(args ...string) []record {
	c.t.Helper()
	r := c.loom(append([]string{"list", "--json"}, args...)...)
	r.exit(c.t, 0)
	return decode[[]record](c.t, r)
}

// event is a journal event as `loom show --json` prints it.
type event struct {
	Path string          `json:"path"`
	Kind string          `json:"kind"`
	Name string          `json:"name"`
	Data json.RawMessage `json:"data"`
}

func (c *cliEnv) events(id string) []event {
	c.t.Helper()
	r := c.loom("show", id, "--json")
	r.exit(c.t, 0)
	return decode[[]event](c.t, r)
}

// stepOutputs maps the path of each step.completed event to its output.
func stepOutputs(t *testing.T, evs []event) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, ev := range evs {
		if ev.Kind != "step.completed" {
			continue
		}
		var d struct {
			Output json.RawMessage `json:"output"`
		}
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			t.Fatalf("event %s at %s: %v", ev.Kind, ev.Path, err)
		}
		out[ev.Path] = string(d.Output)
	}
	return out
}

// paths lists the paths of the events of kind, in journal order.
func paths(evs []event, kind string) []string {
	var ps []string
	for _, ev := range evs {
		if ev.Kind == kind {
			ps = append(ps, ev.Path)
		}
	}
	return ps
}

func equal(t *testing.T, what string, got, want any) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if !bytes.Equal(g, w) {
		t.Errorf("%s = %s, want %s", what, g, w)
	}
}

var (
	uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	timeRE = `\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z`
)
