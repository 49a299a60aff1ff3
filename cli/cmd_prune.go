package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/loomwork/loom/duration"
	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/sqlite"
)

// pruneCommand is `loom prune`: retention, run by hand or from cron.
var pruneCommand = &command{name: "prune", usage: "prune --finished-before AGE_OR_TIME [--state S[,S…]] [--batch N] [--json]", minArgs: 0, maxArgs: 0,
	summary: "delete finished executions and their journals",
	help: `Deletes root executions that finished (COMPLETED, FAILED or CANCELLED) before
--finished-before, with their children and every event of theirs. The
value is an age (30d, 12h: that long ago) or an RFC 3339 time. --state
keeps the prune to some finished states (comma-separated). The journal of an
open execution is never pruned, nor a root with an open child.

It deletes --batch roots (default 100) per transaction, so executions
running beside it wait for one short batch at most. A pruned id can be
started again. SQLite reuses the freed space; loom vacuum gives it back to
the file system.`,
	flags: []flagSpec{{"finished-before", "AGE_OR_TIME", "prune what finished before this: an age (30d) or an RFC 3339 time"},
		{"state", "S[,S…]", "only these finished states (COMPLETED, FAILED, CANCELLED)"},
		{"batch", "N", "roots deleted per transaction (default 100)"}, flagJSON},
	run: (*app).prune}

// vacuumCommand is `loom vacuum`: give a SQLite journal's free pages back.
var vacuumCommand = &command{name: "vacuum", usage: "vacuum", minArgs: 0, maxArgs: 0,
	summary: "shrink a SQLite journal file after a prune",
	help: `Rebuilds the SQLite journal file so the space of pruned executions goes back
to the file system (SQLite reuses freed space by itself, but never shrinks
the file). It holds the journal's write lock while it copies: run it when
no execution is running. A PostgreSQL journal is left to its autovacuum.`,
	run: (*app).vacuum}

// parseCutoff reads --finished-before: an age before now, or a time.
func parseCutoff(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := duration.Parse(s)
	if err != nil || d <= 0 {
		return time.Time{}, usagef("--finished-before wants an age such as 30d or 12h, or an RFC 3339 time; got %q", s)
	}
	return now.Add(-d), nil
}

func (a *app) prune() error {
	if !a.p.has("finished-before") {
		return usagef("loom prune needs --finished-before, such as --finished-before 30d")
	}
	cutoff, err := parseCutoff(a.p.get("finished-before"), a.clock.Now())
	if err != nil {
		return err
	}
	req := journal.PruneRequest{FinishedBefore: cutoff}
	if s := a.p.get("state"); s != "" {
		for _, name := range strings.Split(s, ",") {
			st := journal.State(strings.ToUpper(strings.TrimSpace(name)))
			if !st.Finished() {
				return usagef("--state %q: only finished executions are pruned (COMPLETED, FAILED, CANCELLED)", name)
			}
			req.States = append(req.States, st)
		}
	}
	if b := a.p.get("batch"); b != "" {
		n, err := strconv.Atoi(b)
		if err != nil || n < 1 {
			return usagef("--batch wants a whole number of executions, at least 1; got %q", b)
		}
		req.Limit = n
	}
	var total journal.PruneResult
	j, err := a.openJournal(false)
	switch {
	case err == errNoJournal:
	case err != nil:
		return err
	default:
		defer a.closeJournal(j)
		if total, err = pruneAll(a, j, req); err != nil {
			return fmt.Errorf("the prune stopped after %d executions: %w", total.Executions, err)
		}
	}
	if a.p.has("json") {
		return a.printJSON(map[string]any{"finished_before": cutoff.UTC().Format(time.RFC3339), "roots": total.Roots,
			"executions": total.Executions, "events": total.Events, "definitions": total.Definitions})
	}
	fmt.Fprintf(a.stderr, "%s prune: deleted %d executions (%d roots) and %d events that finished before %s\n",
		a.prog(), total.Executions, total.Roots, total.Events, cutoff.UTC().Format(time.RFC3339))
	return nil
}

// pruneAll calls Prune batch after batch until one deletes nothing, or the
// command is interrupted (what was deleted stays deleted).
func pruneAll(a *app, j journal.Journal, req journal.PruneRequest) (journal.PruneResult, error) {
	var total journal.PruneResult
	for {
		if err := a.ctx.Err(); err != nil {
			return total, err
		}
		res, err := j.Prune(a.ctx, req)
		if err != nil {
			return total, err
		}
		total.Add(res)
		if res.Roots == 0 {
			return total, nil
		}
	}
}

func (a *app) vacuum() error {
	path := a.dbPath()
	if isPostgresURL(path) {
		return refusef("loom vacuum is for SQLite journals; PostgreSQL reclaims the space of pruned rows with its autovacuum")
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return refusef("no journal at %s: nothing to vacuum", path)
	}
	before, after, err := sqlite.Vacuum(a.ctx, path)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "%s vacuum: %s is %s, was %s\n", a.prog(), path, size(after), size(before))
	return nil
}

func size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
