package definition

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rogpeppe/go-internal/txtar"
)

// definitionSources returns the YAML of the examples and of every
// testdata definition, valid and invalid: the fuzz tests' seeds.
func definitionSources() [][]byte {
	var out [][]byte
	seeds, _ := filepath.Glob("../examples/*.yaml")
	more, _ := filepath.Glob("testdata/valid/*.yaml")
	for _, p := range append(seeds, more...) {
		if src, err := os.ReadFile(p); err == nil {
			out = append(out, src)
		}
	}
	golden, _ := filepath.Glob("testdata/invalid/*.txtar")
	for _, p := range golden {
		ar, err := txtar.ParseFile(p)
		if err != nil {
			continue
		}
		for _, file := range ar.Files {
			if strings.HasSuffix(file.Name, ".yaml") {
				out = append(out, file.Data)
			}
		}
	}
	return append(out, []byte(orderYAML))
}

// FuzzLoad checks that no input panics the loader and that every reported
// position is inside the input.
func FuzzLoad(f *testing.F) {
	for _, src := range definitionSources() {
		f.Add(src)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		_, err := Parse("f.yaml", src)
		if err == nil {
			return
		}
		var list ErrorList
		if !errors.As(err, &list) {
			t.Fatalf("error %T is not an ErrorList: %v", err, err)
		}
		lines := strings.Split(string(src), "\n")
		for _, e := range list {
			if e.Pos.File != "f.yaml" || e.Pos.Line < 1 || e.Pos.Line > len(lines) {
				t.Fatalf("position %v outside the input (%d lines): %s", e.Pos, len(lines), e.Msg)
			}
			if max := utf8.RuneCountInString(lines[e.Pos.Line-1]) + 1; e.Pos.Col < 1 || e.Pos.Col > max {
				t.Fatalf("position %v outside its line (%d runes): %s", e.Pos, max-1, e.Msg)
			}
		}
	})
}

// FuzzExpr compiles and evaluates expressions: no panic, and a compiled
// expression evaluates (to a value or an error) within its budget.
func FuzzExpr(f *testing.F) {
	for _, s := range []string{
		"input.n * 2", "steps.a.output", "now()", "uuid4()", "randint(1, 6) % 2",
		"keys(input.m)", "values(input.m)", "toPairs(input.m)", "date('2024-01-01')",
		"all(1..100, # > 0)", "reduce(1..10, #acc + #, 0)", "let x = 1; x + 1",
		"filter(input.list, # > 1)", "{a: 1}.a", "1..1000000", "repeat('x', 10)",
		"input?.a ?? 'd'", "map(input.list, #index)", "sortBy(input.list, #)",
		"toJSON(input)", "fromJSON('[1,2]')", "duration('1h')", "[1,2][5]", "trim(nil)",
	} {
		f.Add(s)
	}
	env := map[string]any{
		"input": map[string]any{"n": 3, "m": map[string]any{"b": 1, "a": 2}, "list": []any{1, 2, 3}},
		"steps": map[string]any{"a": map[string]any{"output": "x"}},
		"vars":  map[string]any{}, "execution": map[string]any{"id": "e"},
	}
	for k, v := range funcs {
		env[k] = v
	}
	// The journaled builtins, with their real signatures and fixed values.
	env["now"] = func() (time.Time, error) { return time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), nil }
	env["uuid4"] = func() (string, error) { return "u", nil }
	env["randint"] = func(a, b int) (int, error) { return a, nil }
	env["randrange"] = func(a, b int, s ...int) (int, error) { return a, nil }
	env["choice"] = func(l []any) (any, error) { return nil, nil }
	env["random"] = func() (float64, error) { return 0, nil }
	f.Fuzz(func(t *testing.T, src string) {
		if len(src) > 2000 {
			return
		}
		c := compile(envFor(nil), src)
		if c.err != nil {
			off, _ := exprErrorOffset(c.err)
			if off > utf8.RuneCountInString(src)+1 {
				t.Fatalf("error offset %d past the source (%d runes): %v", off, utf8.RuneCountInString(src), c.err)
			}
			return
		}
		e := &Expr{Source: src, Program: c.program}
		_, _ = e.Eval(env)
	})
}
