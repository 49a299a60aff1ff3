package cli

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/loomwork/loom/clock"
	"github.com/loomwork/loom/definition"
	"github.com/loomwork/loom/interpreter"
)

// progressView draws one status line on a terminal: the step each
// execution is running and for how long, and for a map or a for loop its
// items done / total and failures. A step appears only after it has run
// for a while, so quick runs print nothing; a ticker redraws the line while
// something is shown, so a long single task counts its seconds even though
// the engine reports nothing until it ends.
type progressView struct {
	w     io.Writer
	clk   clock.Clock
	delay time.Duration // how long a step runs before it is shown
	every time.Duration // time between redraws

	mu      sync.Mutex
	steps   map[string]*stepProgress
	current *runningStep // the step reached last, by any execution
	drawn   time.Time
	visible bool
	stopped bool
	done    chan struct{} // closed by stop; ends the ticker
}

type stepProgress struct {
	interpreter.Progress
	since time.Time
}

// runningStep is the step reached last. The engine reports when a step is
// reached, not when it ends, so the step shown is the latest one reached:
// in a sequence that is the one running, and during a call the child's step
// (a child's steps are reached after its call step).
type runningStep struct {
	path  string
	kind  definition.Kind
	since time.Time
}

// newProgressView shows a step once it has run for delay and redraws at
// most every every (and, with every > 0, at least that often).
func newProgressView(w io.Writer, clk clock.Clock, delay, every time.Duration) *progressView {
	v := &progressView{w: w, clk: clk, delay: delay, every: every,
		steps: map[string]*stepProgress{}, done: make(chan struct{})}
	if every > 0 {
		go v.tick()
	}
	return v
}

// tick redraws the line every v.every until the view stops.
func (v *progressView) tick() {
	for {
		t := v.clk.NewTimer(v.every)
		select {
		case <-v.done:
			t.Stop()
			return
		case <-t.C():
		}
		v.mu.Lock()
		if !v.stopped {
			v.draw(v.clk.Now())
		}
		v.mu.Unlock()
	}
}

// reached records the step an execution has just reached. Steps that only
// compute (set, switch, if, return) are over as soon as reached and are
// not shown; a replayed step is replaced by the next one before the delay
// passes.
func (v *progressView) reached(ev interpreter.StepEvent) {
	if ev.Skipped {
		return
	}
	switch ev.Kind {
	case definition.KindTask, definition.KindCall, definition.KindSleep, definition.KindPause:
	default:
		return
	}
	now := v.clk.Now()
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.stopped {
		return
	}
	v.current = &runningStep{path: ev.Path, kind: ev.Kind, since: now}
}

// update records p and redraws when it is time. It is called from the
// engine's item goroutines.
func (v *progressView) update(p interpreter.Progress) {
	now := v.clk.Now()
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.stopped {
		return
	}
	key := p.ExecutionID + "\x00" + p.Path
	sp := v.steps[key]
	if sp == nil {
		sp = &stepProgress{since: now}
		v.steps[key] = sp
	}
	sp.Progress = p
	if p.Total > 0 && p.Done >= p.Total { // Done counts failed items too
		delete(v.steps, key)
	}
	if now.Sub(v.drawn) < v.every {
		return
	}
	v.draw(now)
}

func (v *progressView) draw(now time.Time) {
	var parts []string
	keys := make([]string, 0, len(v.steps))
	for k := range v.steps {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		sp := v.steps[k]
		if now.Sub(sp.since) < v.delay {
			continue
		}
		parts = append(parts, formatProgress(sp.Progress))
	}
	// While a map or loop is in progress its line says what runs: the step
	// reached last is one of its items (or a child of one).
	if rs := v.current; rs != nil && len(v.steps) == 0 && now.Sub(rs.since) >= v.delay {
		parts = append(parts, fmt.Sprintf("running %s (%s) %s", rs.path, rs.kind, formatElapsed(now.Sub(rs.since))))
	}
	if len(parts) == 0 && !v.visible {
		return
	}
	line := strings.Join(parts, " | ")
	if r := []rune(line); len(r) > 100 {
		line = string(r[:99]) + "…"
	}
	fmt.Fprintf(v.w, "\r\x1b[K%s", line)
	v.visible = len(parts) > 0
	v.drawn = now
}

func formatProgress(p interpreter.Progress) string {
	s := p.Path + ": "
	if p.Total > 0 {
		s += fmt.Sprintf("%d/%d done", p.Done, p.Total)
	} else {
		s += fmt.Sprintf("%d done", p.Done)
	}
	if p.Failed > 0 {
		s += fmt.Sprintf(", %d failed", p.Failed)
	}
	return s
}

// formatElapsed prints whole seconds, then minutes and seconds: the line is
// redrawn often and must not jitter with fractions.
func formatElapsed(d time.Duration) string {
	d = d.Truncate(time.Second)
	if d < time.Minute {
		return fmt.Sprintf("%ds", int(d.Seconds()))
	}
	return d.String()
}

// stop clears the line; later updates are ignored. A nil view does nothing.
func (v *progressView) stop() {
	if v == nil {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.stopped {
		return
	}
	if v.visible {
		fmt.Fprint(v.w, "\r\x1b[K")
		v.visible = false
	}
	v.stopped = true
	close(v.done)
}

// isTerminal reports whether w is a terminal (not a file, pipe or
// /dev/null).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	return isatty(f.Fd())
}
