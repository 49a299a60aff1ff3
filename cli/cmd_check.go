package cli

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal"
)

// checkCommand is `loom check`: the deploy-time test that a new definition
// fits every open execution's journal.
var checkCommand = &command{name: "check", usage: "check --definition PATH [--workflow W] [--json]", minArgs: 0, maxArgs: 0,
	summary: "check that open executions can move to a new definition",
	help: `Replays the journal of every open execution (RUNNING, PAUSED, WAITING) of
the workflows in PATH against PATH's definition, as "loom resume
--definition" would before upgrading, running no task and writing nothing.
Prints "compatible" for each, or the non-determinism it meets: the step
path, what the journal recorded there and what the new definition has.
Executions of workflows PATH does not hold are not checked: they keep their
pinned definition. Children are checked with their root.

Exit status: 0 every open execution is compatible (or there is none), 1 one
is not, 2 bad usage or an invalid definition.`,
	flags: []flagSpec{{"definition", "PATH", "the new definition (a file or a directory)"},
		{"workflow", "W", "only executions of workflow W"}, flagJSON},
	run: (*app).check}

// checkResult is one open execution's verdict, as --json prints it.
type checkResult struct {
	ID         string       `json:"id"`
	Workflow   string       `json:"workflow"`
	State      string       `json:"state"`
	Compatible bool         `json:"compatible"`
	Problem    *checkReason `json:"problem,omitempty"`
}

type checkReason struct {
	Message string `json:"message"`
	// ExecutionID is where it diverged: the root or one of its children.
	ExecutionID string `json:"execution_id,omitempty"`
	Path        string `json:"path,omitempty"`
	Recorded    string `json:"recorded,omitempty"`
	New         string `json:"new,omitempty"`
}

// checkPage is how many records one List call reads.
const checkPage = 500

func (a *app) check() error {
	path := a.p.get("definition")
	if path == "" {
		return usagef("loom check needs --definition PATH, the definition to check the open executions against")
	}
	cat, err := a.load(path, true)
	if err != nil {
		return err
	}
	inCatalog := map[string]bool{}
	for _, n := range cat.Names() {
		inCatalog[n] = true
	}
	var results []checkResult
	skipped := map[string]int{}
	// Read-only: a SQLite journal is opened so it cannot be written.
	j, err := a.openReader()
	switch {
	case err == errNoJournal:
	case err != nil:
		return err
	default:
		defer a.closeJournal(j)
		eng := interpreter.New(nil, a.tasks, j, append(a.secretOptions(), interpreter.WithClock(a.clock))...)
		for _, st := range []journal.State{journal.Running, journal.Paused, journal.Waiting} {
			f := journal.Filter{State: st, RootsOnly: true, Workflow: a.p.get("workflow"), Limit: checkPage}
			for {
				page, err := j.List(a.ctx, f)
				if err != nil {
					return err
				}
				for _, rec := range page {
					if !inCatalog[rec.Workflow] {
						skipped[rec.Workflow]++
						continue
					}
					results = append(results, verdict(rec, eng.CheckDefinition(a.ctx, rec.ID, cat)))
				}
				if len(page) < checkPage {
					break
				}
				f.After = journal.CursorAt(page[len(page)-1])
			}
		}
	}
	bad := 0
	for _, r := range results {
		if !r.Compatible {
			bad++
		}
	}
	if a.p.has("json") {
		if results == nil {
			results = []checkResult{}
		}
		if err := a.printJSON(results); err != nil {
			return err
		}
	} else {
		for _, r := range results {
			if r.Compatible {
				fmt.Fprintf(a.stdout, "%s\t%s\t%s\tcompatible\n", r.ID, r.Workflow, r.State)
			} else {
				fmt.Fprintf(a.stdout, "%s\t%s\t%s\tINCOMPATIBLE: %s\n", r.ID, r.Workflow, r.State, r.Problem.Message)
			}
		}
		names := make([]string, 0, len(skipped))
		for w := range skipped {
			names = append(names, w)
		}
		sort.Strings(names)
		for _, w := range names {
			fmt.Fprintf(a.stderr, "%s check: %d open execution(s) of %s not checked: %s has no workflow %s\n", a.prog(), skipped[w], w, path, w)
		}
		fmt.Fprintf(a.stderr, "%s check: %d open execution(s) checked against %s: %d compatible, %d incompatible\n", a.prog(), len(results), path, len(results)-bad, bad)
	}
	if bad > 0 {
		return exitWith(ExitFailed)
	}
	return nil
}

func verdict(rec *journal.Execution, err error) checkResult {
	r := checkResult{ID: rec.ID, Workflow: rec.Workflow, State: string(rec.State), Compatible: err == nil}
	if err == nil {
		return r
	}
	r.Problem = &checkReason{Message: strings.TrimPrefix(err.Error(), interpreter.ErrNonDeterminism.Error()+": ")}
	var nd *interpreter.NonDeterminismError
	if errors.As(err, &nd) {
		r.Problem.ExecutionID, r.Problem.Path, r.Problem.Recorded, r.Problem.New = nd.ExecutionID, nd.Path, nd.Recorded, nd.Now
		rec, now := nd.Recorded, nd.Now
		if rec == "" {
			rec = "nothing"
		}
		if now == "" {
			now = "nothing (the step is gone or never reached)"
		}
		where := ""
		if nd.ExecutionID != r.ID {
			where = " of child " + nd.ExecutionID
		}
		r.Problem.Message = fmt.Sprintf("at %q%s the journal recorded %s, the new definition has %s", nd.Path, where, rec, now)
	}
	return r
}
