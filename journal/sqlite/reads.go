package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/internal/listsql"
)

// Reads use the pool: in WAL mode each statement sees the last commit, so a
// read after an acknowledged write sees it.

const execColumns = `id, workflow, version, state, parent_id, root_id, parent_path,
	` + inputColumn + `, input_aside, output, error, pauses, ` + definitionColumn + `, definition_hash, wake_at, created_at, updated_at,
	labels, started_by, cancel_requested, takeovers, last_seq, stalled, crash_loop_until,
	cancel_requested_by, trace_parent`

// listColumns are execColumns with the definition left out: List does not
// read it.
var listColumns = strings.Replace(execColumns, definitionColumn, "NULL", 1)

// definitionColumn reads the definition inline, or else from definitions
// by its hash (schemaV3).
const definitionColumn = `coalesce(definition, (SELECT body FROM definitions d WHERE d.hash = definition_hash))`

// inputColumn reads the input inline, or else from inputs with its
// checksum (schemaV6).
const inputColumn = `CASE WHEN input_aside THEN (SELECT body FROM inputs i WHERE i.execution = ek) ELSE input END,
	CASE WHEN input_aside THEN (SELECT sum FROM inputs i WHERE i.execution = ek) END`

type scanner interface{ Scan(dest ...any) error }

func scanExecution(s scanner) (*journal.Execution, error) {
	var (
		e                           journal.Execution
		state                       string
		parent, wake                sql.NullString
		input, output, errj, pauses []byte
		def                         []byte
		created, updated            string
		labels                      []byte
		aside                       bool
		sum                         sql.NullInt64
		crashUntil                  sql.NullString
	)
	if err := s.Scan(&e.ID, &e.Workflow, &e.Version, &state, &parent, &e.RootID, &e.ParentPath,
		&input, &sum, &aside, &output, &errj, &pauses, &def, &e.DefinitionHash, &wake, &created, &updated,
		&labels, &e.StartedBy, &e.CancelRequested, &e.Takeovers, &e.LastSeq, &e.StalledTakeovers, &crashUntil,
		&e.CancelRequestedBy, &e.TraceParent); err != nil {
		if errors.Is(err, sql.ErrNoRows) || isSQLiteError(err) {
			return nil, classify(e.ID, err)
		}
		return nil, journal.Damaged(e.ID, err) // a column that does not convert
	}
	switch {
	case aside && input == nil:
		return nil, journal.Damaged(e.ID, errors.New("its input is missing from the inputs table"))
	case aside && (!sum.Valid || sum.Int64 != inputSum(input)):
		return nil, journal.Damaged(e.ID, errors.New("its input does not match its checksum"))
	}
	e2, err := parseExecution(&e, state, parent, wake, input, output, errj, pauses, def, created, updated, labels)
	if err == nil && crashUntil.Valid {
		e2.CrashLoopUntil, err = parseTime(crashUntil.String)
	}
	if err != nil {
		return nil, journal.Damaged(e.ID, err)
	}
	return e2, nil
}

// parseExecution fills e from the columns Scan read as text.
func parseExecution(e *journal.Execution, state string, parent, wake sql.NullString, input, output, errj, pauses, def []byte, created, updated string, labels []byte) (*journal.Execution, error) {
	if len(labels) > 0 {
		if err := json.Unmarshal(labels, &e.Labels); err != nil {
			return nil, fmt.Errorf("its labels are not a JSON object of strings: %w", err)
		}
	}
	// SQLite checks JSON when it is written, not when it is read: a
	// damaged page reads as text that is not JSON.
	for _, v := range []struct {
		what string
		doc  []byte
	}{{"input", input}, {"output", output}, {"error", errj}, {"pauses", pauses}} {
		if v.doc != nil && !json.Valid(v.doc) {
			return nil, fmt.Errorf("its %s is not valid JSON", v.what)
		}
	}
	e.State, e.ParentID = journal.State(state), parent.String
	e.Input, e.Output, e.Error, e.Pauses, e.Definition = input, output, errj, pauses, def
	var err error
	if wake.Valid {
		if e.WakeAt, err = parseTime(wake.String); err != nil {
			return nil, fmt.Errorf("its wake time: %w", err)
		}
	}
	if e.CreatedAt, err = parseTime(created); err != nil {
		return nil, fmt.Errorf("its creation time: %w", err)
	}
	if e.UpdatedAt, err = parseTime(updated); err != nil {
		return nil, fmt.Errorf("its update time: %w", err)
	}
	return e, nil
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
	e, err := scanExecution(j.rdb.QueryRowContext(ctx, `SELECT `+execColumns+` FROM executions WHERE id = ?`, id))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("journal: get %s: %w", id, journal.ErrNotFound)
	case errors.Is(err, journal.ErrDamaged):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("journal: get %s: %w", id, classify(id, err))
	case e.ID != id: // a damaged index led to another row
		return nil, journal.Damaged(id, fmt.Errorf("its lookup found the record of %q", e.ID))
	}
	return e, nil
}

// Events implements journal.Journal.
func (j *Journal) Events(ctx context.Context, id string, after int64) ([]journal.Event, error) {
	if err := j.readable(ctx); err != nil {
		return nil, err
	}
	// The record's last sequence, read first, says how many events there
	// must be at least (appends may add more meanwhile). Neither it nor
	// the record's key can be NULL but in a damaged file, where a lookup
	// may land on a row that is not the record: Scan refuses the NULL.
	var last, ek int64
	err := j.rdb.QueryRowContext(ctx, `SELECT last_seq, ek FROM executions WHERE id = ?`, id).Scan(&last, &ek)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("journal: events of %s: %w", id, journal.ErrNotFound)
	case err != nil && !isSQLiteError(err):
		return nil, journal.Damaged(id, fmt.Errorf("its record: %w", err))
	case err != nil:
		return nil, fmt.Errorf("journal: events of %s: %w", id, classify(id, err))
	}
	evs, err := j.events(ctx, id, ek, after)
	switch {
	case errors.Is(err, journal.ErrDamaged):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("journal: events of %s: %w", id, classify(id, err))
	}
	if err := journal.CheckEvents(id, last, after, evs); err != nil {
		return nil, err
	}
	return evs, nil
}

// events reads the events of execution id (key ek) after seq after. A row
// whose columns do not convert, or whose data is not JSON, is damage.
func (j *Journal) events(ctx context.Context, id string, ek, after int64) ([]journal.Event, error) {
	rows, err := j.rdb.QueryContext(ctx, `SELECT seq, path, kind, name, ordinal, data, time
		FROM events WHERE ek = ? AND seq > ? ORDER BY seq`, ek, after)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var evs []journal.Event
	for rows.Next() {
		var (
			ev   journal.Event
			kind string
			data []byte
			t    int64
		)
		if err := rows.Scan(&ev.Seq, &ev.Path, &kind, &ev.Name, &ev.Ordinal, &data, &t); err != nil {
			if isSQLiteError(err) {
				return nil, err
			}
			return nil, journal.Damaged(id, fmt.Errorf("an event after %d: %w", after+int64(len(evs)), err))
		}
		if data != nil && !json.Valid(data) {
			return nil, journal.Damaged(id, fmt.Errorf("event %d: its data is not valid JSON", ev.Seq))
		}
		ev.Kind, ev.Data, ev.Time = journal.EventKind(kind), data, time.Unix(0, t).UTC()
		evs = append(evs, ev)
	}
	return evs, rows.Err()
}

// List implements journal.Journal.
func (j *Journal) List(ctx context.Context, f journal.Filter) ([]*journal.Execution, error) {
	if err := j.readable(ctx); err != nil {
		return nil, err
	}
	var (
		where []string
		args  []any
	)
	if f.State != "" {
		where = append(where, listsql.StateTerm(f.State, f.Order, func(v any) string { args = append(args, v); return "?" }))
	}
	if f.Workflow != "" {
		where, args = append(where, "e.workflow = ?"), append(args, f.Workflow)
	}
	if f.ParentID != "" {
		where, args = append(where, "e.parent_id = ?"), append(args, f.ParentID)
	}
	if f.RootsOnly {
		// Not through executions_parent: nearly every record is a root,
		// and walking (created_at, id) newest first stops after a page
		// where that index would sort them all.
		where = append(where, "+e.parent_id IS NULL")
	}
	for _, k := range slices.Sorted(maps.Keys(f.Labels)) {
		where, args = append(where, "json_extract(e.labels, ?) = ?"), append(args, journal.LabelPath(k), f.Labels[k])
	}
	if !f.Due.IsZero() {
		where = append(where, listsql.DueTerm(formatTime(f.Due), func(v any) string { args = append(args, v); return "?" }))
	}
	order, cmp, err := listsql.Order(f.Order)
	if err != nil {
		return nil, err
	}
	if f.After != "" {
		at, id, err := f.Order.ParseCursor(f.After)
		if err != nil {
			return nil, fmt.Errorf("journal: list: %w", err)
		}
		where, args = append(where, cmp+" (?, ?)"), append(args, formatTime(at), id)
	}
	q := `SELECT ` + listColumns + ` FROM executions e`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += order
	if f.Limit > 0 {
		q, args = q+" LIMIT ?", append(args, f.Limit)
	}
	rows, err := j.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("journal: list: %w", classify("", err))
	}
	defer rows.Close()
	var out []*journal.Execution
	var bad journal.DamagedRowsError // rows that do not parse: the others are still listed
	for rows.Next() {
		e, err := scanExecution(rows)
		var de *journal.DamagedError
		if errors.As(err, &de) {
			bad.Rows = append(bad.Rows, de)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("journal: list: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return out, fmt.Errorf("journal: list: %w", classify("", err))
	}
	if len(bad.Rows) > 0 {
		return out, &bad
	}
	return out, nil
}

// LeaseOf implements journal.Journal.
func (j *Journal) LeaseOf(ctx context.Context, rootID string) (journal.Lease, error) {
	if err := j.readable(ctx); err != nil {
		return journal.Lease{}, err
	}
	l, err := scanLease(rootID, j.rdb.QueryRowContext(ctx,
		`SELECT `+leaseColumns+` FROM leases WHERE root_id = ?`, rootID))
	if err != nil {
		return journal.Lease{}, fmt.Errorf("journal: lease of %s: %w", rootID, err)
	}
	return l, nil
}
