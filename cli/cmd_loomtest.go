package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"strings"

	"github.com/loomwork/loom/loomtest"
)

// testCommand is `loom test`: the workflow test files of loomtest, run
// in memory over this binary's tasks.
var testCommand = &command{name: "test", usage: "test [PATH...] [--run PATTERN] [-v] [--junit FILE]", minArgs: 0, maxArgs: -1, local: true,
	summary: "run workflow test files (*.test.yaml) in memory",
	help: `Runs the cases of workflow test files: each PATH is a test file or a
directory searched for *.test.yaml and *.test.yml (default: the current
directory). Each case starts a workflow in an in-memory journal with mocked
task results, a fixed clock and a seeded random source, resumes its pauses
and checks the outcome. Nothing is written to any journal.

Output is like go test's: failures name the file:line:col of the assertion
with what was expected and what came; -v also lists every case. --junit
writes a JUnit XML report for CI.

A task with no mock runs this binary's task, unless the file or case says
strict: true. The file format is in docs/testing.md.

Exit status: 0 every case passed, 1 a case failed, 2 a test file or its
definition is invalid (every problem is printed as file:line:col) or bad usage.`,
	flags: []flagSpec{{"run", "PATTERN", "run only the cases whose name matches this regular expression"},
		{"v", "", "print every case, not only the failures"},
		{"junit", "FILE", "also write a JUnit XML report to FILE"}},
	run: (*app).loomTest}

func (a *app) loomTest() error {
	paths := a.p.args
	if len(paths) == 0 {
		paths = []string{"."}
	}
	r := &loomtest.Runner{Tasks: a.tasks}
	if pat := a.p.get("run"); pat != "" {
		re, err := regexp.Compile(pat)
		if err != nil {
			return usagef("--run %q is not a regular expression: %v", pat, err)
		}
		r.Run = re
	}
	files, err := loomtest.Find(paths...)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return refusef("%v", unwrapPath(err))
		}
		return refusef("cannot read the test files: %v", err)
	}
	if len(files) == 0 {
		return refusef("no test files (*.test.yaml) under %s", strings.Join(paths, ", "))
	}
	var results []*loomtest.FileResult
	for _, f := range files {
		results = append(results, r.RunFile(a.ctx, f))
	}
	loomtest.WriteText(a.stdout, results, a.p.has("v"))
	if path := a.p.get("junit"); path != "" {
		out, err := os.Create(path)
		if err != nil {
			return refusef("cannot write the JUnit report: %v", unwrapPath(err))
		}
		werr := loomtest.WriteJUnit(out, results)
		if cerr := out.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return fmt.Errorf("cannot write the JUnit report %s: %v", path, werr)
		}
	}
	cases, failed, invalid := loomtest.Summary(results)
	switch {
	case invalid > 0:
		fmt.Fprintln(a.stdout, "FAIL")
		return exitWith(ExitRefused)
	case failed > 0:
		fmt.Fprintf(a.stdout, "FAIL (%d of %d cases failed)\n", failed, cases)
		return exitWith(ExitFailed)
	}
	if a.p.has("v") {
		fmt.Fprintf(a.stdout, "PASS (%d cases)\n", cases)
	}
	return nil
}
