package loomtest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/loomwork/loom/clock"
	"github.com/loomwork/loom/definition"
	"github.com/loomwork/loom/interpreter"
)

// Call is one call of a task during a case.
type Call struct {
	Task        string
	ExecutionID string
	Path        string // the attempt path in its execution
	Input       any
}

// caseTasks is the task registry of one case: mocks first, then (unless
// strict) the binary's tasks. It records every call.
type caseTasks struct {
	real   interpreter.Tasks
	c      *Case
	strict bool

	mu         sync.Mutex
	calls      []Call
	used       map[*Mock]int
	violations []failure
}

func newCaseTasks(real interpreter.Tasks, c *Case) *caseTasks {
	return &caseTasks{real: real, c: c, strict: c.Strict, used: map[*Mock]int{}}
}

// HasTask is true for every name, as LookupTask answers every name: a call
// with no mock is the case's to report, so the engine must not refuse to
// drive an execution for a task the case does not mock.
func (t *caseTasks) HasTask(string) bool { return true }

func (t *caseTasks) TaskNames() []string { return taskNames(t.real, t.c.TaskMocks) }

// TaskInputSchema lets the definition check a real task's input schema.
func (t *caseTasks) TaskInputSchema(name string) []byte { return inputSchema(t.real, name) }

func (t *caseTasks) LookupTask(name string) (interpreter.TaskFunc, bool) {
	realFn, hasReal := interpreter.TaskFunc(nil), false
	if t.real != nil {
		realFn, hasReal = t.real.LookupTask(name)
	}
	// Always a function, so a call with no mock is reported by the case
	// rather than becoming the engine's UnknownTask.
	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		id, path, _ := strings.Cut(interpreter.IdempotencyKey(ctx), "/")
		var in any
		if len(raw) > 0 {
			if err := json.Unmarshal(raw, &in); err != nil {
				return nil, err
			}
		}
		in, _ = interpreter.Normalize(in)
		t.mu.Lock()
		t.calls = append(t.calls, Call{Task: name, ExecutionID: id, Path: path, Input: in})
		t.mu.Unlock()
		if m, key := t.mockFor(name, path); m != nil {
			return t.next(m, key, name)
		}
		if t.strict || !hasReal {
			why := "the case is strict"
			if !hasReal {
				why = "this binary has no such task"
			}
			t.violate(t.c.Pos, fmt.Sprintf("task %s was called at %s with no mock, and %s", name, path, why))
			return nil, interpreter.Errorf("UnknownTask", "task %s has no mock in this test case", name)
		}
		return realFn(ctx, raw)
	}, true
}

var (
	attemptRE = regexp.MustCompile(`@[0-9]+`)
	indexRE   = regexp.MustCompile(`\[[0-9]+\]`)
)

// mockFor finds the mock of a call: by step path (exact, then with every
// index as [*]), then by task name. Attempt suffixes (@2) are ignored, so
// a sequence covers a step's retries.
func (t *caseTasks) mockFor(name, path string) (*Mock, string) {
	base := attemptRE.ReplaceAllString(path, "")
	if m := t.c.StepMocks[base]; m != nil {
		return m, "mock.steps." + base
	}
	if star := indexRE.ReplaceAllString(base, "[*]"); star != base {
		if m := t.c.StepMocks[star]; m != nil {
			return m, "mock.steps." + star
		}
	}
	if m := t.c.TaskMocks[name]; m != nil {
		return m, "mock.tasks." + name
	}
	return nil, ""
}

// next returns a mock's next result; the last one is not repeated: a call
// past the sequence is a failure of the case, since the test did not
// foresee it.
func (t *caseTasks) next(m *Mock, key, task string) (any, error) {
	t.mu.Lock()
	n := t.used[m]
	t.used[m] = n + 1
	t.mu.Unlock()
	if len(m.Results) == 1 {
		n = 0 // one result answers every call
	}
	if n >= len(m.Results) {
		t.violate(m.Pos, fmt.Sprintf("%s lists %d results but task %s was called %d times", key, len(m.Results), task, n+1))
		return nil, interpreter.Errorf("MockExhausted", "%s has no result left for call %d", key, n+1)
	}
	r := m.Results[n]
	if r.Error != nil {
		e := *r.Error
		return nil, &e
	}
	return r.Output, nil
}

func (t *caseTasks) violate(pos definition.Pos, msg string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, v := range t.violations {
		if v.Msg == msg {
			return
		}
	}
	t.violations = append(t.violations, failure{Pos: pos, Msg: msg})
}

func taskNames(real interpreter.Tasks, mocks map[string]*Mock) []string {
	seen := map[string]bool{}
	var out []string
	if real != nil {
		for _, n := range real.TaskNames() {
			seen[n] = true
			out = append(out, n)
		}
	}
	for n := range mocks {
		if !seen[n] {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

func inputSchema(real interpreter.Tasks, name string) []byte {
	if s, ok := real.(interface{ TaskInputSchema(string) []byte }); ok {
		return s.TaskInputSchema(name)
	}
	return nil
}

// fileTasks is what a test file's catalog is checked against: the
// binary's tasks and every task a case mocks (a workflow may name tasks
// only the production binary registers).
type fileTasks struct {
	real  interpreter.Tasks
	mocks map[string]*Mock
}

func (t fileTasks) HasTask(name string) bool {
	_, ok := t.mocks[name]
	return ok || (t.real != nil && t.real.HasTask(name))
}
func (t fileTasks) TaskNames() []string                { return taskNames(t.real, t.mocks) }
func (t fileTasks) TaskInputSchema(name string) []byte { return inputSchema(t.real, name) }

// caseClock is a case's clock: now() is the same instant on every call;
// timers (retry delays, timeouts) run in real time.
type caseClock struct{ t time.Time }

func (c caseClock) Now() time.Time                       { return c.t }
func (c caseClock) NewTimer(d time.Duration) clock.Timer { return clock.System{}.NewTimer(d) }

// seeded is a case's random source: the same seed gives the same uuid4(),
// randint() and jitter.
type seeded struct {
	mu sync.Mutex
	r  *rand.Rand
}

func newSeeded(seed uint64) *seeded {
	return &seeded{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

func (s *seeded) Uint64() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.r.Uint64()
}
