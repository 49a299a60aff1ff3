package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/internal/listsql"
)

// Reads use the pool: each statement sees every transaction committed before
// it started, so a read after an acknowledged write sees it.

const execColumns = `id, workflow, version, state, parent_id, root_id, parent_path,
	input, output, error, pauses, definition, definition_hash, wake_at, created_at, updated_at,
	labels, started_by, cancel_requested, takeovers, last_seq, stalled, crash_loop_until,
	cancel_requested_by, trace_parent`

// listColumns are execColumns with the definition left out: List does not
// read it.
var listColumns = strings.Replace(execColumns, " definition,", " NULL::bytea,", 1)

func scanExecution(s pgx.Row) (*journal.Execution, error) {
	var (
		e                           journal.Execution
		state                       string
		parent, wake                *string
		input, output, errj, pauses *string
		def                         []byte
		created, updated            string
		labels                      *string
		crashUntil                  *string
	)
	if err := s.Scan(&e.ID, &e.Workflow, &e.Version, &state, &parent, &e.RootID, &e.ParentPath,
		&input, &output, &errj, &pauses, &def, &e.DefinitionHash, &wake, &created, &updated,
		&labels, &e.StartedBy, &e.CancelRequested, &e.Takeovers, &e.LastSeq, &e.StalledTakeovers, &crashUntil,
		&e.CancelRequestedBy, &e.TraceParent); err != nil {
		return nil, err
	}
	if crashUntil != nil {
		var err error
		if e.CrashLoopUntil, err = parseTime(*crashUntil); err != nil {
			return nil, err
		}
	}
	if labels != nil && *labels != "" {
		if err := json.Unmarshal([]byte(*labels), &e.Labels); err != nil {
			return nil, fmt.Errorf("labels of %s: %w", e.ID, err)
		}
	}
	e.State = journal.State(state)
	if parent != nil {
		e.ParentID = *parent
	}
	e.Input, e.Output, e.Error, e.Pauses = jsonOf(input), jsonOf(output), jsonOf(errj), jsonOf(pauses)
	if len(def) > 0 {
		e.Definition = def
	}
	var err error
	if wake != nil {
		if e.WakeAt, err = parseTime(*wake); err != nil {
			return nil, err
		}
	}
	if e.CreatedAt, err = parseTime(created); err != nil {
		return nil, err
	}
	if e.UpdatedAt, err = parseTime(updated); err != nil {
		return nil, err
	}
	return &e, nil
}

// jsonOf is a stored JSON document; NULL (and empty) is nil.
func jsonOf(s *string) []byte {
	if s == nil || *s == "" {
		return nil
	}
	return []byte(*s)
}

func (j *Journal) readable(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if j.queue.Closed() {
		return journal.ErrClosed
	}
	return nil
}

// Get implements journal.Journal.
func (j *Journal) Get(ctx context.Context, id string) (*journal.Execution, error) {
	if err := j.readable(ctx); err != nil {
		return nil, err
	}
	e, err := scanExecution(j.pool.QueryRow(ctx, `SELECT `+execColumns+` FROM executions WHERE id = $1`, id))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, fmt.Errorf("journal: get %s: %w", id, journal.ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("journal: get %s: %w", id, unavailable(err))
	}
	return e, nil
}

// Events implements journal.Journal.
func (j *Journal) Events(ctx context.Context, id string, after int64) ([]journal.Event, error) {
	if err := j.readable(ctx); err != nil {
		return nil, err
	}
	// The record's last sequence, read first, says how many events there
	// must be at least (appends may add more meanwhile).
	var last int64
	err := j.pool.QueryRow(ctx, `SELECT last_seq FROM executions WHERE id = $1`, id).Scan(&last)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, fmt.Errorf("journal: events of %s: %w", id, journal.ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("journal: events of %s: %w", id, unavailable(err))
	}
	evs, err := j.events(ctx, id, after)
	if err != nil {
		return nil, fmt.Errorf("journal: events of %s: %w", id, unavailable(err))
	}
	if err := journal.CheckEvents(id, last, after, evs); err != nil {
		return nil, err
	}
	return evs, nil
}

func (j *Journal) events(ctx context.Context, id string, after int64) ([]journal.Event, error) {
	rows, err := j.pool.Query(ctx, `SELECT seq, path, kind, name, ordinal, data, time
		FROM events WHERE execution_id = $1 AND seq > $2 ORDER BY seq`, id, after)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var evs []journal.Event
	for rows.Next() {
		var (
			ev   journal.Event
			kind string
			data *string
			t    string
		)
		if err := rows.Scan(&ev.Seq, &ev.Path, &kind, &ev.Name, &ev.Ordinal, &data, &t); err != nil {
			return nil, err
		}
		ev.Kind, ev.Data = journal.EventKind(kind), jsonOf(data)
		if ev.Time, err = parseTime(t); err != nil {
			return nil, err
		}
		evs = append(evs, ev)
	}
	return evs, rows.Err()
}

// List implements journal.Journal.
func (j *Journal) List(ctx context.Context, f journal.Filter) ([]*journal.Execution, error) {
	if err := j.readable(ctx); err != nil {
		return nil, err
	}
	q, args, err := listQuery(f)
	if err != nil {
		return nil, err
	}
	rows, err := j.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("journal: list: %w", unavailable(err))
	}
	defer rows.Close()
	out := []*journal.Execution{}
	for rows.Next() {
		e, err := scanExecution(rows)
		if err != nil {
			return nil, fmt.Errorf("journal: list: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("journal: list: %w", unavailable(err))
	}
	return out, nil
}

// listQuery is the query of List(f) and its arguments.
func listQuery(f journal.Filter) (q string, args []any, err error) {
	var where []string
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.State != "" {
		where = append(where, listsql.StateTerm(f.State, f.Order, arg))
	}
	if f.Workflow != "" {
		where = append(where, "e.workflow = "+arg(f.Workflow))
	}
	if f.ParentID != "" {
		where = append(where, "e.parent_id = "+arg(f.ParentID))
	}
	if f.RootsOnly {
		where = append(where, "e.parent_id IS NULL")
	}
	for _, k := range slices.Sorted(maps.Keys(f.Labels)) {
		where = append(where, "(e.labels::jsonb ->> "+arg(k)+") = "+arg(f.Labels[k]))
	}
	if !f.Due.IsZero() {
		where = append(where, listsql.DueTerm(formatTime(f.Due), arg))
	}
	order, cmp, err := listsql.Order(f.Order)
	if err != nil {
		return "", nil, err
	}
	if f.State == journal.Paused && f.Order == journal.OldestUpdated {
		// The paused records' updated_at, as the index keeps it (schemaV8).
		order, cmp = strings.ReplaceAll(order, "e.updated_at", "e.paused_at"), strings.ReplaceAll(cmp, "e.updated_at", "e.paused_at")
	}
	if f.After != "" {
		at, id, err := f.Order.ParseCursor(f.After)
		if err != nil {
			return "", nil, fmt.Errorf("journal: list: %w", err)
		}
		where = append(where, cmp+" ("+arg(formatTime(at))+", "+arg(id)+")")
	}
	q = `SELECT ` + listColumns + ` FROM executions e`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += order
	if f.Limit > 0 {
		q += " LIMIT " + arg(f.Limit)
	}
	return q, args, nil
}

// LeaseOf implements journal.Journal.
func (j *Journal) LeaseOf(ctx context.Context, rootID string) (journal.Lease, error) {
	if err := j.readable(ctx); err != nil {
		return journal.Lease{}, err
	}
	l, err := scanLease(rootID, j.pool.QueryRow(ctx, `SELECT `+leaseColumns+` FROM leases WHERE root_id = $1`, rootID))
	if err != nil {
		return journal.Lease{}, fmt.Errorf("journal: lease of %s: %w", rootID, err)
	}
	return l, nil
}
