package cli

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/loomwork/loom/interpreter"
)

// progressView draws one status line on a terminal for the map and for
// steps in flight: items done / total and failures. It appears only after
// a step has run for a while, so quick runs print nothing.
type progressView struct {
	w     io.Writer
	delay time.Duration // how long a step runs before it is shown
	every time.Duration // minimum time between redraws

	mu      sync.Mutex
	steps   map[string]*stepProgress
	drawn   time.Time
	visible bool
	stopped bool
}

type stepProgress struct {
	interpreter.Progress
	since time.Time
}

func newProgressView(w io.Writer) *progressView {
	return &progressView{w: w, delay: 500 * time.Millisecond, every: 100 * time.Millisecond, steps: map[string]*stepProgress{}}
}

// update records p and redraws when it is time. It is called from the
// engine's item goroutines.
func (v *progressView) update(p interpreter.Progress) {
	now := time.Now()
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

// stop clears the line; later updates are ignored. A nil view does nothing.
func (v *progressView) stop() {
	if v == nil {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.visible {
		fmt.Fprint(v.w, "\r\x1b[K")
		v.visible = false
	}
	v.stopped = true
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
