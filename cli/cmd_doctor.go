package cli

import (
	"errors"
	"fmt"
	"sort"

	"github.com/loomwork/loom/journal"
)

// doctorCommand is `loom doctor`: the journal's integrity, checked without
// changing it, and what can be recovered of what is damaged.
var doctorCommand = &command{name: "doctor", usage: "doctor [--json]", minArgs: 0, maxArgs: 0,
	summary: "check the journal's integrity and say what can be recovered",
	help: `Checks the journal without changing it: the database's own integrity (SQLite's
integrity check), then every execution: its record is readable and its events
run from 1 to the last sequence the record holds, none missing. For each
damaged execution it says what can still be read and what to do.

Exits 0 when the journal is sound, 1 when anything is damaged.`,
	flags: []flagSpec{flagJSON}, run: (*app).doctor}

// doctorReport is what loom doctor found (--json prints it).
type doctorReport struct {
	OK bool `json:"ok"`
	// Database lists the problems the database's own check found.
	Database   []string        `json:"database"`
	Executions int             `json:"executions"`
	Damaged    []damagedReport `json:"damaged"`
}

type damagedReport struct {
	ID      string `json:"id"`
	Problem string `json:"problem"`
	State   string `json:"state,omitempty"`
	Advice  string `json:"advice"`
}

func (a *app) doctor() error {
	j, err := a.openReader()
	if err == errNoJournal {
		return refusef("there is no journal at %s", a.dbPath())
	}
	if err != nil {
		return err
	}
	defer a.closeJournal(j)
	rep := doctorReport{Database: []string{}, Damaged: []damagedReport{}}
	if c, ok := j.(journal.IntegrityChecker); ok {
		probs, err := c.CheckIntegrity(a.ctx)
		if err != nil {
			probs = append(probs, err.Error())
		}
		rep.Database = append(rep.Database, probs...)
	}
	exs, err := j.List(a.ctx, journal.Filter{})
	var rows *journal.DamagedRowsError
	switch {
	case errors.As(err, &rows):
		for _, r := range rows.Rows {
			rep.Damaged = append(rep.Damaged, damagedReport{ID: r.ID, Problem: r.Problem,
				Advice: "its record cannot be read, so it cannot be shown, resumed or replayed; recovering the file (below) may save it, else start it again"})
		}
	case err != nil:
		rep.Database = append(rep.Database, "the list of executions cannot be read: "+err.Error())
	}
	rep.Executions = len(exs) + len(rep.Damaged)
	for _, ex := range exs {
		_, err := j.Events(a.ctx, ex.ID, 0)
		var de *journal.DamagedError
		if err == nil {
			continue
		}
		if !errors.As(err, &de) {
			de = &journal.DamagedError{ID: ex.ID, Problem: err.Error()}
		}
		rep.Damaged = append(rep.Damaged, damagedReport{ID: ex.ID, Problem: de.Problem, State: string(ex.State), Advice: adviceFor(ex)})
	}
	sort.Slice(rep.Damaged, func(i, k int) bool { return rep.Damaged[i].ID < rep.Damaged[k].ID })
	rep.OK = len(rep.Database) == 0 && len(rep.Damaged) == 0
	if a.p.has("json") {
		if err := a.printJSON(rep); err != nil {
			return err
		}
	} else {
		a.printDoctor(rep)
	}
	if !rep.OK {
		return exitWith(ExitFailed)
	}
	return nil
}

// adviceFor says what can be recovered of an execution whose events are
// damaged but whose record is readable.
func adviceFor(ex *journal.Execution) string {
	if ex.State.Finished() {
		return fmt.Sprintf("its outcome (%s, with its output or error) is in its record and `loom status` shows it; its history cannot be shown or replayed", ex.State)
	}
	return "do not resume it: the steps whose events are missing would run again; `loom cancel` ends it (its compensations may not all run), then start it again"
}

func (a *app) printDoctor(rep doctorReport) {
	w := a.stdout
	fmt.Fprintf(w, "journal %s: %d executions checked\n", safe(a.dbPath()), rep.Executions)
	if rep.OK {
		fmt.Fprintln(w, "database: ok")
		fmt.Fprintln(w, "executions: every record is readable and every event sequence is whole")
		return
	}
	if len(rep.Database) == 0 {
		fmt.Fprintln(w, "database: ok")
	}
	for _, p := range rep.Database {
		fmt.Fprintf(w, "database: %s\n", safe(p))
	}
	for _, d := range rep.Damaged {
		id := d.ID
		if id == "" {
			id = "(unreadable id)"
		}
		state := ""
		if d.State != "" {
			state = " (" + d.State + ")"
		}
		fmt.Fprintf(w, "damaged: %s%s: %s\n  %s\n", safe(id), state, safe(d.Problem), d.Advice)
	}
	if !isPostgresURL(a.dbPath()) {
		fmt.Fprintf(w, "to recover what SQLite can still read: stop every loom using it, copy the file, then\n  sqlite3 %s .recover | sqlite3 recovered.db\nand check the copy with %s doctor --db recovered.db\n",
			shellQuote(safe(a.dbPath())), a.prog())
	}
}
