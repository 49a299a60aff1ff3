package listsql

import (
	"fmt"

	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/internal/timetext"
)

// Order is the ORDER BY clause of a List in o (the executions table is
// aliased e), and the comparison of (time, id) with a cursor's position
// that keeps the records after it: the caller appends "(T, ID)".
func Order(o journal.Order) (orderBy, after string, err error) {
	switch o {
	case journal.NewestCreated:
		return " ORDER BY e.created_at DESC, e.id DESC", "(e.created_at, e.id) <", nil
	case journal.OldestUpdated:
		return " ORDER BY e.updated_at, e.id", "(e.updated_at, e.id) >", nil
	}
	return "", "", fmt.Errorf("journal: list: unknown order %d", o)
}

// StateTerm is the condition e.state = st of a List in o. In the
// OldestUpdated order a known state is written into the query as a
// literal, so that the planner can use the index of paused records by
// update time (executions_paused), which is partial on state = 'PAUSED'
// and so unusable for a bound parameter. Otherwise the state is bound
// through arg (which returns the parameter's placeholder): a newest-first
// list keeps the plans it had before that index, walking (created_at, id)
// rather than sorting the paused records.
func StateTerm(st journal.State, o journal.Order, arg func(any) string) string {
	switch st {
	case journal.Running, journal.Paused, journal.Waiting, journal.Completed, journal.Failed, journal.Cancelled:
		if o == journal.OldestUpdated {
			return "e.state = '" + string(st) + "'"
		}
	}
	return "e.state = " + arg(string(st))
}

// DueTerm is Filter.Due's condition, journal.Due in SQL: a WAITING or
// PAUSED execution whose wake_at has come, or a RUNNING one whose root has
// no lease live at the time. at is that time as the backend stores it
// (text, or Unix nanoseconds in SQLite); arg binds it and
// returns its placeholder, as for StateTerm.
func DueTerm(at any, arg func(any) string) string {
	return `((e.state IN ('WAITING', 'PAUSED') AND e.wake_at <= ` + arg(at) + `) OR
			(e.state = 'RUNNING' AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.root_id = e.root_id AND l.expires > ` + arg(at) + `)))`
}

// BacklogQuery counts the roots waiting for a worker (journal.Gauges) and
// the update time of the longest waiting; now is the placeholder of the
// journal's clock, as stored text.
func BacklogQuery(now string) string {
	return `SELECT count(*), min(e.updated_at) FROM executions e
	WHERE e.parent_id IS NULL AND e.state = 'RUNNING'
	AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.root_id = e.id AND l.expires > ` + now + `)`
}

// PausesQuery counts the open pauses of paused roots by workflow
// (journal.Gauges); arrayLength is the backend's JSON array length
// function applied to the pauses column.
func PausesQuery(arrayLength string) string {
	return `SELECT e.workflow, sum(` + arrayLength + `) FROM executions e
	WHERE e.state = 'PAUSED' AND e.parent_id IS NULL AND e.pauses IS NOT NULL
	GROUP BY e.workflow`
}

// Row is a row to scan (*sql.Row, pgx.Row); Rows are rows to scan
// (*sql.Rows, pgx.Rows).
type (
	Row  interface{ Scan(dest ...any) error }
	Rows interface {
		Next() bool
		Scan(dest ...any) error
		Err() error
	}
)

// ScanBacklog reads the answer of BacklogQuery into g.
func ScanBacklog(row Row, g *journal.Gauges) error {
	var since *string
	if err := row.Scan(&g.Backlog, &since); err != nil {
		return err
	}
	if since != nil {
		t, err := timetext.Parse(*since)
		if err != nil {
			return err
		}
		g.BacklogSince = t
	}
	return nil
}

// ScanPauses reads the answer of PausesQuery into g.
func ScanPauses(rows Rows, g *journal.Gauges) error {
	g.PausesOpen = map[string]int{}
	for rows.Next() {
		var wf string
		var n int64
		if err := rows.Scan(&wf, &n); err != nil {
			return err
		}
		g.PausesOpen[wf] = int(n)
	}
	return rows.Err()
}
