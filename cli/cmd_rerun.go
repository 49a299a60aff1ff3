package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal"
)

// rerunCommand is `loom rerun`: a failed or cancelled execution's id is
// not a dead end.
var rerunCommand = &command{name: "rerun", usage: "rerun ID [--from PATH] [--definition PATH] [--input JSON | --input-file FILE] [--id NEW] [--json]\n       loom rerun --state FAILED|CANCELLED [--workflow W] [--dry-run]", minArgs: 0, maxArgs: 1,
	summary: "start a new execution that reuses a failed one's outcomes",
	help: `Starts a new execution of a FAILED or CANCELLED execution's workflow, linked
to it (its first event, rerun.of, names ID), that reuses every outcome ID's
journal recorded before the step at --from first ran (default: the step that
failed; for a cancelled execution, everything it recorded): those tasks are
not called again, and everything from that step on runs live. --definition
runs it on a new definition (the reused outcomes must replay on it), --input
with a new input (default: ID's), --id names the new execution.

--state FAILED (or CANCELLED) reruns every such root execution, of
--workflow W only if given, each from its failed step; --dry-run lists them
and starts nothing.

Output and exit status are those of loom run.`,
	flags: []flagSpec{{"from", "PATH", "the step path to run live from (default: the failed step)"},
		{"definition", "PATH", "rerun on this definition instead of the pinned one"}, flagInput, flagFile,
		{"id", "NEW", "the new execution's id (default: a new random one)"},
		{"state", "S", "bulk: rerun every root execution in state S (FAILED or CANCELLED)"},
		{"workflow", "W", "bulk: only executions of workflow W"},
		{"dry-run", "", "bulk: list what would be rerun, start nothing"},
		{"no-wait", "", "do not wait out sleep timers"}, flagJSON, flagQuiet},
	run: (*app).rerun}

func (a *app) rerun() error {
	if a.p.has("state") {
		if len(a.p.args) > 0 {
			return usagef("--state reruns every execution in that state; it takes no ID")
		}
		for _, f := range []string{"from", "definition", "input", "input-file", "id"} {
			if a.p.has(f) {
				return usagef("--state reruns many executions; it takes no --%s", f)
			}
		}
		return a.bulk("rerun", []journal.State{journal.Failed, journal.Cancelled}, func(eng *interpreter.Engine, j journal.Journal, id string) (string, error) {
			ex, err := eng.Rerun(a.ctx, id)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("rerun as %s: %s", safe(ex.ID), ex.State), nil
		})
	}
	if len(a.p.args) != 1 {
		return usagef("usage: loom rerun ID [--from PATH] [--definition PATH] [--input JSON] (or loom rerun --state FAILED)")
	}
	if a.p.has("dry-run") || a.p.has("workflow") {
		return usagef("--dry-run and --workflow go with --state")
	}
	id := a.p.args[0]
	var opts []interpreter.RerunOption
	if p := a.p.get("from"); p != "" {
		opts = append(opts, interpreter.RerunFrom(p))
	}
	if p := a.p.get("definition"); p != "" {
		cat, err := a.load(p, true)
		if err != nil {
			return err
		}
		opts = append(opts, interpreter.RerunDefinition(cat))
	}
	in, given, err := a.input()
	if err != nil {
		return err
	}
	if given {
		opts = append(opts, interpreter.RerunInput(in))
	}
	if a.p.has("id") {
		if err := journal.CheckID(a.p.get("id")); err != nil {
			return err
		}
		opts = append(opts, interpreter.RerunID(a.p.get("id")))
	}
	j, err := a.openForID(id)
	if err != nil {
		return err
	}
	defer a.closeJournal(j)
	eng, pv := a.engine(nil, j)
	ex, err := eng.Rerun(a.ctx, id, opts...)
	pv.stop()
	if errors.Is(err, journal.ErrExists) {
		return refusef("an execution with id %q exists already; nothing was started", a.p.get("id"))
	}
	if err != nil {
		return err
	}
	if !a.p.has("quiet") {
		fmt.Fprintf(a.stderr, "%s: execution %s reruns %s\n", a.prog(), safe(ex.ID), safe(id))
	}
	return a.report(ex)
}

// bulk applies act to every root execution in --state (one of allowed),
// of --workflow if given, or with --dry-run lists them. It prints one line
// per execution and fails (exit 1) if any act failed.
func (a *app) bulk(verb string, allowed []journal.State, act func(*interpreter.Engine, journal.Journal, string) (string, error)) error {
	st, err := a.bulkState(verb, allowed)
	if err != nil {
		return err
	}
	j, err := a.openJournal(false)
	if err == errNoJournal {
		fmt.Fprintf(a.stderr, "%s %s: no %s executions\n", a.prog(), verb, st)
		return nil
	}
	if err != nil {
		return err
	}
	defer a.closeJournal(j)
	// Collect first, act after: acting changes states, and so the pages.
	var ids []string
	f := journal.Filter{State: st, Workflow: a.p.get("workflow"), RootsOnly: true, Limit: checkPage}
	for {
		page, err := j.List(a.ctx, f)
		if err != nil {
			return err
		}
		for _, r := range page {
			ids = append(ids, r.ID)
		}
		if len(page) < checkPage {
			break
		}
		f.After = journal.CursorAt(page[len(page)-1])
	}
	eng, _ := a.engine(nil, j)
	return a.bulkDo(verb, st, ids, func(id string) (string, error) { return act(eng, j, id) })
}

// bulkState reads --state for a bulk verb, one of allowed.
func (a *app) bulkState(verb string, allowed []journal.State) (journal.State, error) {
	st := journal.State(strings.ToUpper(a.p.get("state")))
	ok := false
	names := make([]string, len(allowed))
	for i, s := range allowed {
		ok = ok || s == st
		names[i] = string(s)
	}
	if !ok {
		return "", usagef("--state %q: loom %s --state takes %s", a.p.get("state"), verb, strings.Join(names, " or "))
	}
	return st, nil
}

// bulkDo lists ids (--dry-run) or acts on each, one line each: the local
// and the --server bulk cancel share it.
func (a *app) bulkDo(verb string, st journal.State, ids []string, act func(id string) (string, error)) error {
	if a.p.has("dry-run") {
		for _, id := range ids {
			fmt.Fprintf(a.stdout, "%s\n", safe(id))
		}
		fmt.Fprintf(a.stderr, "%s %s: would %s %d %s execution(s); nothing was done (--dry-run)\n", a.prog(), verb, verb, len(ids), st)
		return nil
	}
	failed := 0
	for _, id := range ids {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		msg, err := act(id)
		if err != nil {
			failed++
			msg = "not done: " + oneLine(err.Error())
		}
		fmt.Fprintf(a.stdout, "%s\t%s\n", safe(id), msg)
	}
	fmt.Fprintf(a.stderr, "%s %s: %d of %d %s execution(s) done\n", a.prog(), verb, len(ids)-failed, len(ids), st)
	if failed > 0 {
		return exitWith(ExitFailed)
	}
	return nil
}
