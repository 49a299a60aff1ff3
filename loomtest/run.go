package loomtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/loomwork/loom/definition"
	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/memory"
)

// failure is one failed assertion: where the test file states it, what
// went wrong, and the expected and actual values when there are two.
type failure struct {
	Pos       definition.Pos
	Msg       string
	Want, Got string // empty when the message says it all
}

func (f failure) String() string {
	s := f.Pos.String() + ": " + f.Msg
	if f.Want != "" || f.Got != "" {
		s += "\n    want: " + f.Want + "\n    got:  " + f.Got
	}
	return s
}

// CaseResult is the outcome of one case.
type CaseResult struct {
	Case     *Case
	Failures []string // each "file:line:col: message", maybe with want/got lines
	Duration time.Duration
}

// Passed reports whether the case passed.
func (r *CaseResult) Passed() bool { return len(r.Failures) == 0 }

// FileResult is the outcome of one test file.
type FileResult struct {
	Path  string
	File  *File // nil when the file is invalid
	Cases []*CaseResult
	// Err is why no case could run: the test file or its definition is
	// invalid (a definition.ErrorList), or unreadable.
	Err      error
	Duration time.Duration
}

// Passed reports whether the file was valid and every case that ran passed.
func (r *FileResult) Passed() bool {
	if r.Err != nil {
		return false
	}
	for _, c := range r.Cases {
		if !c.Passed() {
			return false
		}
	}
	return true
}

// Runner runs test files. Catalogs are loaded once per definition path and
// shared by the files that name it.
type Runner struct {
	// Tasks are the binary's tasks: a call with no mock runs them, unless
	// the case is strict.
	Tasks interpreter.Tasks
	// Run, when set, selects the cases whose name it matches.
	Run *regexp.Regexp

	mu       sync.Mutex
	catalogs map[string]catalogResult
}

type catalogResult struct {
	cat *definition.Catalog
	err error
}

// Find lists the test files of paths: a file is taken as it is, a
// directory gives every *.test.yaml and *.test.yml under it (skipping
// testdata and names starting with "." or "_", as catalogs do). The list is
// sorted.
func Find(paths ...string) ([]string, error) {
	var out []string
	for _, path := range paths {
		info, err := os.Stat(path)
		if err != nil {
			return nil, err
		}
		if !info.IsDir() {
			out = append(out, path)
			continue
		}
		err = filepath.WalkDir(path, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if n := d.Name(); p != path && (strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_") || n == "testdata") {
					return filepath.SkipDir
				}
				return nil
			}
			if definition.IsTestFile(p) {
				out = append(out, p)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Strings(out)
	return out, nil
}

// RunFile parses and runs one test file.
func (r *Runner) RunFile(ctx context.Context, path string) *FileResult {
	start := time.Now()
	res := &FileResult{Path: path}
	defer func() { res.Duration = time.Since(start) }()
	f, err := ParseFile(path)
	if err != nil {
		res.Err = err
		return res
	}
	res.File = f
	cat, err := r.catalog(f)
	if err != nil {
		res.Err = err
		return res
	}
	for _, c := range f.Cases {
		if r.Run != nil && !r.Run.MatchString(c.Name) {
			continue
		}
		res.Cases = append(res.Cases, r.runCase(ctx, f, cat, c))
	}
	return res
}

// definitionPath is the catalog of a test file: its `definition:`, else
// NAME.yaml (or .yml) beside NAME.test.yaml, else its directory.
func definitionPath(f *File) string {
	dir := filepath.Dir(f.Path)
	if f.Definition != "" {
		if filepath.IsAbs(f.Definition) {
			return f.Definition
		}
		return filepath.Join(dir, f.Definition)
	}
	base := filepath.Base(f.Path)
	stem := strings.TrimSuffix(strings.TrimSuffix(base, ".test.yaml"), ".test.yml")
	for _, ext := range []string{".yaml", ".yml"} {
		p := filepath.Join(dir, stem+ext)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return dir
}

func (r *Runner) catalog(f *File) (*definition.Catalog, error) {
	mocks := map[string]*Mock{}
	for _, c := range f.Cases {
		for n, m := range c.TaskMocks {
			mocks[n] = m
		}
	}
	names := make([]string, 0, len(mocks))
	for n := range mocks {
		names = append(names, n)
	}
	sort.Strings(names)
	path := definitionPath(f)
	key := path + "\x00" + strings.Join(names, ",")
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.catalogs[key]; ok {
		return c.cat, c.err
	}
	cat, err := definition.Load(path, definition.WithTasks(fileTasks{r.Tasks, mocks}))
	if err != nil {
		var list definition.ErrorList
		if !errors.As(err, &list) {
			err = fmt.Errorf("%s: cannot load the definition %s: %v", f.Path, path, err)
		}
	} else {
		err = checkWorkflows(f, cat)
	}
	if r.catalogs == nil {
		r.catalogs = map[string]catalogResult{}
	}
	r.catalogs[key] = catalogResult{cat, err}
	return cat, err
}

// checkWorkflows reports each case whose workflow is not in the catalog,
// or that names none where the catalog has several.
func checkWorkflows(f *File, cat *definition.Catalog) error {
	var errs definition.ErrorList
	for _, c := range f.Cases {
		name := c.workflow(f)
		switch {
		case name == "" && len(cat.Names()) != 1:
			errs.Add(c.Pos, fmt.Sprintf("case %q names no workflow and %s holds %d (%s); add workflow:", c.Name, definitionPath(f), len(cat.Names()), strings.Join(cat.Names(), ", ")))
		case name != "" && cat.Workflow(name) == nil:
			msg := fmt.Sprintf("case %q: no workflow named %q in %s", c.Name, name, definitionPath(f))
			if s := definition.Suggest(name, cat.Names()); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			}
			errs.Add(c.Pos, msg)
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

func (c *Case) workflow(f *File) string {
	if c.Workflow != "" {
		return c.Workflow
	}
	return f.Workflow
}

// testExecutionID is every case's root execution id, so execution.id is
// the same on every run.
const testExecutionID = "test"

func (r *Runner) runCase(ctx context.Context, f *File, cat *definition.Catalog, c *Case) *CaseResult {
	start := time.Now()
	res := &CaseResult{Case: c}
	var fails []failure
	defer func() {
		res.Duration = time.Since(start)
		for _, fl := range fails {
			res.Failures = append(res.Failures, fl.String())
		}
	}()
	wf := c.workflow(f)
	if wf == "" {
		wf = cat.Names()[0]
	}
	tasks := newCaseTasks(r.Tasks, c)
	var mu sync.Mutex
	ran, skipped := map[string]bool{}, map[string]bool{}
	clk := caseClock{c.Clock}
	j := memory.New(memory.WithClock(clk.Now))
	defer j.Close()
	eng := interpreter.New(cat, tasks, j,
		interpreter.WithClock(clk), interpreter.WithRandom(newSeeded(c.Seed)),
		interpreter.WithTimerWait(false, 0),
		interpreter.WithHolder(journal.Holder{ID: "loom-test", Host: "loom-test", PID: 0}),
		interpreter.WithStepObserver(func(ev interpreter.StepEvent) {
			if ev.ExecutionID != testExecutionID {
				return
			}
			mu.Lock()
			if ev.Skipped {
				skipped[ev.Path] = true
			} else {
				ran[ev.Path] = true
			}
			mu.Unlock()
		}))
	ex, err := eng.Run(ctx, wf, c.Input, interpreter.WithExecutionID(testExecutionID))
	if c.Expect.Refused != nil {
		fails = append(fails, checkRefusal(c.Expect.Refused, "the run", err)...)
		return res
	}
	if err != nil {
		fails = append(fails, failure{Pos: c.Pos, Msg: "the run was refused: " + err.Error()})
		return res
	}
	for i, rs := range c.Resumes {
		if ex.State != journal.Paused {
			fails = append(fails, failure{Pos: rs.Pos, Msg: fmt.Sprintf("resume %d: the execution is %s, not paused%s", i+1, ex.State, errorNote(ex))})
			break
		}
		var next *interpreter.Execution
		if rs.Pause != "" {
			next, err = eng.ResumePause(ctx, ex.ID, rs.Pause, rs.Payload)
		} else {
			next, err = eng.Resume(ctx, ex.ID, rs.Payload)
		}
		if rs.Refused != nil {
			fails = append(fails, checkRefusal(rs.Refused, fmt.Sprintf("resume %d", i+1), err)...)
			if err == nil {
				ex = next
			}
			continue
		}
		if err != nil {
			fails = append(fails, failure{Pos: rs.Pos, Msg: fmt.Sprintf("resume %d was refused: %v", i+1, err)})
			break
		}
		ex = next
	}
	tasks.mu.Lock()
	fails = append(fails, tasks.violations...)
	calls := append([]Call(nil), tasks.calls...)
	tasks.mu.Unlock()
	fails = append(fails, check(&c.Expect, ex, ran, skipped, calls)...)
	return res
}

func checkRefusal(want *Check[string], what string, err error) []failure {
	if err == nil {
		return []failure{{Pos: want.Pos, Msg: fmt.Sprintf("%s was not refused; want a refusal containing %q", what, want.Want)}}
	}
	if !strings.Contains(err.Error(), want.Want) {
		return []failure{{Pos: want.Pos, Msg: what + " was refused with another message", Want: "…" + want.Want + "…", Got: err.Error()}}
	}
	return nil
}

func errorNote(ex *interpreter.Execution) string {
	if ex.Error != nil {
		return " (" + ex.Error.Error() + ")"
	}
	return ""
}

func check(e *Expect, ex *interpreter.Execution, ran, skipped map[string]bool, calls []Call) []failure {
	var fails []failure
	if e.State != nil && ex.State != e.State.Want {
		fails = append(fails, failure{Pos: e.State.Pos, Msg: "state differs", Want: string(e.State.Want), Got: string(ex.State) + errorNote(ex)})
	}
	if e.Output != nil && !reflect.DeepEqual(e.Output.Want, ex.Output) {
		fails = append(fails, failure{Pos: e.Output.Pos, Msg: "output differs", Want: render(e.Output.Want), Got: render(ex.Output) + stateNote(ex)})
	}
	if ec := e.Error; ec != nil {
		if ex.Error == nil {
			fails = append(fails, failure{Pos: ec.Pos, Msg: fmt.Sprintf("the execution has no error (state %s)", ex.State)})
		} else {
			for _, f := range []struct {
				name string
				c    *Check[string]
				got  string
			}{{"type", ec.Type, ex.Error.Type}, {"message", ec.Message, ex.Error.Message}, {"step", ec.Step, ex.Error.Step}} {
				if f.c != nil && f.c.Want != f.got {
					fails = append(fails, failure{Pos: f.c.Pos, Msg: "error " + f.name + " differs", Want: f.c.Want, Got: f.got + " (" + ex.Error.Error() + ")"})
				}
			}
		}
	}
	if e.Pauses != nil {
		var got []string
		left := append([]interpreter.Pause(nil), ex.Pauses...)
		ok := true
		for _, w := range e.Pauses.Want {
			i := slicesIndex(left, func(p interpreter.Pause) bool { return p.Path == w || p.Name == w })
			if i < 0 {
				ok = false
				continue
			}
			left = append(left[:i], left[i+1:]...)
		}
		for _, p := range ex.Pauses {
			got = append(got, p.Path)
		}
		sort.Strings(got)
		if !ok || len(left) > 0 {
			fails = append(fails, failure{Pos: e.Pauses.Pos, Msg: "open pauses differ", Want: render(e.Pauses.Want), Got: render(got)})
		}
	}
	for _, w := range e.Ran {
		if !ran[w.Want] {
			msg := fmt.Sprintf("step %s did not run", w.Want)
			if skipped[w.Want] {
				msg = fmt.Sprintf("step %s did not run: its if was false", w.Want)
			}
			fails = append(fails, failure{Pos: w.Pos, Msg: msg})
		}
	}
	for _, w := range e.Skipped {
		if !skipped[w.Want] {
			msg := fmt.Sprintf("step %s was not skipped: it was never reached", w.Want)
			if ran[w.Want] {
				msg = fmt.Sprintf("step %s was not skipped: it ran", w.Want)
			}
			fails = append(fails, failure{Pos: w.Pos, Msg: msg})
		}
	}
	for _, cc := range e.Calls {
		var got []any
		for _, c := range calls {
			if c.Task == cc.Task {
				got = append(got, c.Input)
			}
		}
		if cc.Inputs == nil {
			if len(got) != cc.Count {
				fails = append(fails, failure{Pos: cc.Pos, Msg: fmt.Sprintf("task %s was called %s, want %s", cc.Task, times(len(got)), times(cc.Count))})
			}
			continue
		}
		if !sameMultiset(cc.Inputs, got) {
			fails = append(fails, failure{Pos: cc.Pos, Msg: fmt.Sprintf("calls of task %s differ (inputs, in any order)", cc.Task), Want: renderSorted(cc.Inputs), Got: renderSorted(got)})
		}
	}
	return fails
}

func times(n int) string {
	switch n {
	case 0:
		return "never"
	case 1:
		return "once"
	}
	return fmt.Sprintf("%d times", n)
}

func stateNote(ex *interpreter.Execution) string {
	if ex.State == journal.Completed {
		return ""
	}
	if ex.Error != nil {
		return " (" + string(ex.State) + ": " + ex.Error.Error() + ")"
	}
	return " (" + string(ex.State) + ")"
}

func slicesIndex[T any](s []T, f func(T) bool) int {
	for i, v := range s {
		if f(v) {
			return i
		}
	}
	return -1
}

func sameMultiset(want, got []any) bool {
	if len(want) != len(got) {
		return false
	}
	used := make([]bool, len(got))
	for _, w := range want {
		found := false
		for i, g := range got {
			if !used[i] && reflect.DeepEqual(w, g) {
				used[i], found = true, true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// render is a value as compact JSON (map keys sorted).
func render(v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func renderSorted(l []any) string {
	s := make([]string, len(l))
	for i, v := range l {
		s[i] = render(v)
	}
	sort.Strings(s)
	return "[" + strings.Join(s, ", ") + "]"
}
