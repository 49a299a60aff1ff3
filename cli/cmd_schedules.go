package cli

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/server"
)

// schedulesCommand is `loom schedules`: what `loom serve` will start by
// itself, and when.
var schedulesCommand = &command{name: "schedules", usage: "schedules PATH [--next N] [--at TIME] [--json]", minArgs: 1, maxArgs: 1,
	summary: "list the workflows with a schedule and their next fire times",
	help: `Lists every workflow in PATH (a file or a directory, as loom serve loads it)
that has a schedule: when it fires, its overlap and catch-up policies, the
last slot the journal decided (started, or skipped and why) and the next
fire times. loom serve fires each slot once across all its processes
(docs/schedules.md). A slot that fell due while no loom serve ran is shown
as due.

--next N prints N fire times (default 1); --at TIME computes them from an
RFC 3339 time instead of now. Times are printed in the schedule's time zone.`,
	flags: []flagSpec{{"next", "N", "how many next fire times to print (default 1)"},
		{"at", "TIME", "compute from this RFC 3339 time instead of now"}, flagJSON},
	run: (*app).schedules}

func (a *app) schedules() error {
	n := 1
	if v := a.p.get("next"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > 1000 {
			return usagef("--next wants a whole number from 1 to 1000; got %q", v)
		}
	}
	now := a.clock.Now()
	if v := a.p.get("at"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return usagef("--at wants an RFC 3339 time such as 2026-11-29T10:00:00Z; got %q", v)
		}
		now = t
	}
	path := a.p.args[0]
	cat, err := a.load(path, false)
	if err != nil {
		return err
	}
	last := map[string]journal.ScheduleSlot{}
	j, err := a.openReader()
	switch {
	case err == errNoJournal:
	case err != nil:
		return err
	default:
		defer a.closeJournal(j)
		slots, err := j.ScheduleSlots(a.ctx)
		if err != nil {
			return err
		}
		for _, s := range slots {
			last[s.Workflow] = s
		}
	}
	var out []server.ScheduleInfo
	for _, name := range cat.Names() {
		wf := cat.Workflow(name)
		if wf.Schedule != nil {
			out = append(out, server.DescribeSchedule(wf, last, now, n))
		}
	}
	if a.p.has("json") {
		if out == nil {
			out = []server.ScheduleInfo{}
		}
		return a.printJSON(out)
	}
	if len(out) == 0 {
		fmt.Fprintf(a.stderr, "%s schedules: no workflow in %s has a schedule\n", a.prog(), path)
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKFLOW\tSCHEDULE\tOVERLAP\tCATCH_UP\tLAST\tNEXT")
	for _, s := range out {
		lastText := "-"
		if l := s.Last; l != nil {
			lastText = l.At + " started " + l.ExecutionID
			if l.Skipped != "" {
				lastText = l.At + " skipped (" + l.Skipped + ")"
			}
		}
		next := strings.Join(s.Next, ", ")
		if s.Due {
			next = "due since " + s.Next[0]
			if len(s.Next) > 1 {
				next += ", then " + strings.Join(s.Next[1:], ", ")
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Workflow, s.Schedule, s.Overlap, s.CatchUp, lastText, next)
	}
	return tw.Flush()
}
