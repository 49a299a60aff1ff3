package interpreter_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal"
)

// spans is a Telemetry that writes down what it is shown, one line per
// begin and one per end.
type spans struct {
	mu    sync.Mutex
	lines []string
}

type spanKey struct{}

func (s *spans) Begin(ctx context.Context, sp interpreter.Span) (context.Context, func(interpreter.End)) {
	line := fmt.Sprintf("%s %s %s #%d", sp.Kind, sp.Name, sp.Path, sp.Attempt)
	if parent, ok := ctx.Value(spanKey{}).(string); ok {
		line += " in " + parent
	}
	s.add("begin " + line)
	return context.WithValue(ctx, spanKey{}, sp.Path), func(e interpreter.End) {
		s.add(fmt.Sprintf("end %s %s #%d: %s %s", sp.Kind, sp.Path, sp.Attempt, e.Outcome, e.ErrorType))
	}
}

func (s *spans) add(l string) {
	s.mu.Lock()
	s.lines = append(s.lines, l)
	s.mu.Unlock()
}

// take returns the lines so far, sorted (parallel items interleave), and
// forgets them.
func (s *spans) take() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.lines)
	s.lines = nil
	slices.Sort(out)
	return strings.Join(out, "\n")
}

// TestTelemetryShowsWhatRuns: the telemetry sees each step and attempt a
// drive runs, with its outcome, nested as they run; the drive after a
// resume shows only what runs after the pause, none of what it replays.
func TestTelemetryShowsWhatRuns(t *testing.T) {
	tel := &spans{}
	w := newWorld(t, `
name: wf
steps:
  - id: first
    task: flaky
    retry: {max_attempts: 3, delay: 1ms}
  - id: vars
    set: {n: 1}
  - id: gate
    pause: approve
  - id: both
    parallel:
      left:
        - id: l
          task: echo
          with: l
      right:
        - id: r
          task: fail
          with: {type: Nope, message: no}
          fallback: {task: echo, with: caught}
`, interpreter.WithTelemetry(tel))
	w.flaky.Store(1)
	ex := w.run("wf", nil)
	wantState(t, ex, journal.Paused)
	want := strings.Join([]string{
		"begin pause approve gate #0",
		"begin set vars vars #0",
		"begin task flaky first #0",
		"begin task flaky first #1 in first",
		"begin task flaky first@2 #2 in first",
		"end pause gate #0:  ",
		"end set vars #0: ok ",
		"end task first #0: ok ",
		"end task first #1: error Flaky",
		"end task first@2 #2: ok ",
	}, "\n")
	if got := tel.take(); got != want {
		t.Errorf("first drive shows\n%s\nwant\n%s", got, want)
	}
	wantState(t, w.resume(ex.ID, nil), journal.Completed)
	want = strings.Join([]string{
		"begin parallel both both #0",
		"begin task echo both/left/l #0 in both",
		"begin task echo both/left/l #1 in both/left/l",
		"begin task echo both/right/r/#fallback #1 in both",
		"begin task fail both/right/r #0 in both",
		"begin task fail both/right/r #1 in both/right/r",
		"end parallel both #0: ok ",
		"end task both/left/l #0: ok ",
		"end task both/left/l #1: ok ",
		"end task both/right/r #0: error Nope",
		"end task both/right/r #1: error Nope",
		"end task both/right/r/#fallback #1: ok ",
	}, "\n")
	if got := tel.take(); got != want {
		t.Errorf("the drive after the resume shows\n%s\nwant\n%s", got, want)
	}
	// Replay shows nothing: nothing runs.
	if _, err := w.eng.Replay(context.Background(), ex.ID); err != nil {
		t.Fatal(err)
	}
	if got := tel.take(); got != "" {
		t.Errorf("a replay shows\n%s", got)
	}
}
