package cli

import (
	"bytes"
	"context"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loomwork/loom/clock"
	"github.com/loomwork/loom/definition"
	"github.com/loomwork/loom/interpreter"
)

func TestParseArgs(t *testing.T) {
	specs := []flagSpec{{"input", "JSON", ""}, {"json", "", ""}, {"db", "PATH", ""}, flagHelp}
	tests := []struct {
		args  []string
		pos   []string
		flags map[string]string
		err   string
	}{
		{args: []string{"wf.yaml", "--input", `{"a":1}`, "--json"}, pos: []string{"wf.yaml"}, flags: map[string]string{"input": `{"a":1}`, "json": "true"}},
		{args: []string{"--json", "wf.yaml", "-input={}"}, pos: []string{"wf.yaml"}, flags: map[string]string{"input": "{}", "json": "true"}},
		{args: []string{"--input", "-", "-"}, pos: []string{"-"}, flags: map[string]string{"input": "-"}},
		{args: []string{"a", "--", "--json", "b"}, pos: []string{"a", "--json", "b"}, flags: map[string]string{}},
		{args: []string{"--json=false", "x"}, pos: []string{"x"}, flags: map[string]string{}},
		{args: []string{"-h"}, flags: map[string]string{"help": "true"}},
		{args: []string{"--db="}, flags: map[string]string{"db": ""}},
		{args: []string{"--nope"}, err: "unknown flag --nope for loom run"},
		{args: []string{"--nope=1"}, err: "unknown flag --nope for loom run"},
		{args: []string{"x", "--input"}, err: "flag --input needs a value (JSON)"},
		{args: []string{"--json=yes"}, err: "flag --json takes no value"},
	}
	for _, tt := range tests {
		p, err := parseArgs("run", specs, tt.args)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("%q: error %v, want %q", tt.args, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.args, err)
			continue
		}
		if !reflect.DeepEqual(p.args, tt.pos) || !reflect.DeepEqual(p.flags, tt.flags) {
			t.Errorf("%q: got %q %q, want %q %q", tt.args, p.args, p.flags, tt.pos, tt.flags)
		}
	}
}

func TestExample(t *testing.T) {
	schema := map[string]any{"type": "object", "required": []any{"approved", "who", "n"},
		"properties": map[string]any{"approved": map[string]any{"type": "boolean"},
			"who": map[string]any{"enum": []any{"ann", "bob"}}, "n": map[string]any{"type": "integer", "minimum": 1},
			"note": map[string]any{"type": "string"}}}
	if got := compact(exampleOf(schema), 0); got != `{"approved":true,"n":1,"who":"ann"}` {
		t.Errorf("example: %s", got)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"abc-1.2": "abc-1.2", "": "''", `{"a":1}`: `'{"a":1}'`, "it's": `'it'\''s'`, "stars[3]/x": `'stars[3]/x'`,
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestProgressView(t *testing.T) {
	var b bytes.Buffer
	v := newProgressView(&b, clock.System{}, 0, 0)
	v.update(interpreter.Progress{ExecutionID: "x", Path: "stars", Done: 1, Total: 10})
	v.update(interpreter.Progress{ExecutionID: "x", Path: "stars", Done: 2, Failed: 1, Total: 10})
	v.update(interpreter.Progress{ExecutionID: "x", Path: "loop", Done: 4})
	out := b.String()
	for _, want := range []string{"\r\x1b[Kstars: 1/10 done", "stars: 2/10 done, 1 failed", "loop: 4 done | stars: 2/10 done, 1 failed"} {
		if !strings.Contains(out, want) {
			t.Errorf("progress output %q lacks %q", out, want)
		}
	}
	v.stop()
	if !strings.HasSuffix(b.String(), "\r\x1b[K") {
		t.Errorf("stop did not clear the line: %q", b.String())
	}
	n := b.Len()
	v.update(interpreter.Progress{ExecutionID: "x", Path: "stars", Done: 3, Total: 10})
	if b.Len() != n {
		t.Error("an update after stop drew")
	}

	// A step shown only after the delay: quick steps print nothing.
	b.Reset()
	v = newProgressView(&b, clock.System{}, time.Hour, 0)
	v.update(interpreter.Progress{ExecutionID: "x", Path: "quick", Done: 1, Total: 2})
	v.stop()
	if b.Len() != 0 {
		t.Errorf("a quick step drew %q", b.String())
	}
	if isTerminal(&b) {
		t.Error("a buffer is not a terminal")
	}
}

// TestProgressShowsALongStep: a single task that runs long shows its path,
// kind and seconds, counted by the view's ticker though the engine reports
// nothing until the task ends; a step inside a map is left to the map's line.
func TestProgressShowsALongStep(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var mu sync.Mutex
	var b bytes.Buffer
	w := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return b.Write(p) })
	screen := func() string { mu.Lock(); defer mu.Unlock(); return b.String() }
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	v := newProgressView(w, clk, 500*time.Millisecond, 100*time.Millisecond)
	defer v.stop()
	v.reached(interpreter.StepEvent{ExecutionID: "x", Path: "prepare", Kind: definition.KindSet})
	v.reached(interpreter.StepEvent{ExecutionID: "x", Path: "fetch", Kind: definition.KindTask})
	// tick advances the clock by n redraw intervals, each once the ticker
	// waits, and returns once the last redraw is drawn (the ticker waits
	// again).
	tick := func(n int) {
		for range n {
			if err := clk.Waiters(ctx, 1); err != nil {
				t.Fatal(err)
			}
			clk.Advance(100 * time.Millisecond)
		}
		if err := clk.Waiters(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	tick(3)
	if s := screen(); s != "" {
		t.Fatalf("a step drew before the delay: %q", s)
	}
	tick(20) // 2.3 s in
	if s := screen(); !strings.Contains(s, "\r\x1b[Krunning fetch (task) 2s") {
		t.Fatalf("terminal %q lacks the long step", s)
	}
	// A map in progress: its line replaces the step's.
	v.update(interpreter.Progress{ExecutionID: "x", Path: "items", Done: 1, Total: 4})
	v.reached(interpreter.StepEvent{ExecutionID: "x", Path: "items[0]", Kind: definition.KindTask})
	tick(10)
	v.stop()
	last := screen()
	if i := strings.LastIndex(last, "\r\x1b[K"); i >= 0 {
		// the line before the clearing one
		last = last[:i]
		last = last[strings.LastIndex(last, "\r\x1b[K"):]
	}
	if !strings.Contains(last, "items: 1/4 done") || strings.Contains(last, "running") {
		t.Errorf("with a map in progress the line is %q", last)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
