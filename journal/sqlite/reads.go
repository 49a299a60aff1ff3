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

const execColumns = `e.id, e.workflow, e.version, e.state, e.parent_id, e.root_id, e.parent_path,
	` + inputColumn + `, e.input_aside, e.output, e.error, e.pauses, ` + definitionColumn + `, ` + hashColumn + `, e.wake_at, e.created_at, e.updated_at,
	e.labels, e.started_by, e.cancel_requested, e.takeovers, e.last_seq, e.stalled, e.crash_loop_until,
	e.cancel_requested_by, e.trace_parent, ` + ownID

// errIndexDamaged: an index entry led to a record that is not the one it
// names. Not one record's damage: the index a query walked cannot be
// trusted, nor what else it found or missed.
var errIndexDamaged = journal.Damaged("", errors.New("an index of the executions leads to records it does not name"))

// ownID is the record's id read from its row, where e.id may be read from
// the index the query walks (SQLite takes an indexed column from the
// index): an index page damaged or replaced by another index's page leads
// to a row whose own id differs, or to none (NULL). With times stored as
// integers, such an entry's columns often parse; this check does not rest
// on that.
const ownID = `(SELECT x.id FROM executions x WHERE x.ek = e.ek)`

// listColumns are execColumns with the definition left out: List does not
// read it.
var listColumns = strings.Replace(execColumns, definitionColumn, "NULL", 1)

// definitionColumn reads the definition inline, or else from definitions
// by its key (schemaCompact); hashColumn reads its hash the same way.
const (
	definitionColumn = `coalesce(e.definition, (SELECT body FROM definitions d WHERE d.dk = e.dk))`
	hashColumn       = `coalesce(e.definition_hash, (SELECT hash FROM definitions d WHERE d.dk = e.dk))`
)

// inputColumn reads the input inline, or else from inputs with its
// checksum (schemaV6).
const inputColumn = `CASE WHEN e.input_aside THEN (SELECT body FROM inputs i WHERE i.execution = e.ek) ELSE e.input END,
	CASE WHEN e.input_aside THEN (SELECT sum FROM inputs i WHERE i.execution = e.ek) END`

type scanner interface{ Scan(dest ...any) error }

func scanExecution(s scanner) (*journal.Execution, error) {
	var (
		e                           journal.Execution
		state                       string
		parent                      sql.NullString
		wake, created, updated      storedTime
		input, output, errj, pauses []byte
		def                         []byte
		labels                      []byte
		aside                       bool
		sum                         sql.NullInt64
		crashUntil                  storedTime
		own                         sql.NullString
	)
	if err := s.Scan(&e.ID, &e.Workflow, &e.Version, &state, &parent, &e.RootID, &e.ParentPath,
		&input, &sum, &aside, &output, &errj, &pauses, &def, &e.DefinitionHash, &wake, &created, &updated,
		&labels, &e.StartedBy, &e.CancelRequested, &e.Takeovers, &e.LastSeq, &e.StalledTakeovers, &crashUntil,
		&e.CancelRequestedBy, &e.TraceParent, &own); err != nil {
		if errors.Is(err, sql.ErrNoRows) || isSQLiteError(err) {
			return nil, classify(e.ID, err)
		}
		return nil, journal.Damaged(e.ID, err) // a column that does not convert
	}
	switch {
	case !own.Valid || own.String != e.ID:
		return nil, errIndexDamaged
	case aside && input == nil:
		return nil, journal.Damaged(e.ID, errors.New("its input is missing from the inputs table"))
	case aside && (!sum.Valid || sum.Int64 != inputSum(input)):
		return nil, journal.Damaged(e.ID, errors.New("its input does not match its checksum"))
	}
	e2, err := parseExecution(&e, state, parent, wake, input, output, errj, pauses, def, created, updated, labels)
	if err == nil {
		e2.CrashLoopUntil, err = crashUntil.time()
	}
	if err != nil {
		return nil, journal.Damaged(e.ID, err)
	}
	return e2, nil
}

// parseExecution fills e from the columns Scan read as they are stored.
func parseExecution(e *journal.Execution, state string, parent sql.NullString, wake storedTime, input, output, errj, pauses, def []byte, created, updated storedTime, labels []byte) (*journal.Execution, error) {
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
	if e.WakeAt, err = wake.time(); err != nil {
		return nil, fmt.Errorf("its wake time: %w", err)
	}
	if !created.valid() || !updated.valid() {
		return nil, errors.New("its creation or update time is missing")
	}
	if e.CreatedAt, err = created.time(); err != nil {
		return nil, fmt.Errorf("its creation time: %w", err)
	}
	if e.UpdatedAt, err = updated.time(); err != nil {
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
	e, err := scanExecution(j.rdb.QueryRowContext(ctx, `SELECT `+execColumns+` FROM executions e WHERE e.id = ?`, id))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if err := j.missing(ctx, id); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("journal: get %s: %w", id, journal.ErrNotFound)
	case err == errIndexDamaged:
		return nil, journal.Damaged(id, errors.New("the index of ids leads to another record"))
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
	var own sql.NullString
	err := j.rdb.QueryRowContext(ctx, `SELECT e.last_seq, e.ek, `+ownID+` FROM executions e WHERE e.id = ?`, id).Scan(&last, &ek, &own)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if err := j.missing(ctx, id); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("journal: events of %s: %w", id, journal.ErrNotFound)
	case err == nil && own.String != id:
		return nil, journal.Damaged(id, errors.New("the index of ids leads to another record"))
	case err != nil && !isSQLiteError(err):
		return nil, journal.Damaged(id, fmt.Errorf("its record: %w", err))
	case err != nil:
		return nil, fmt.Errorf("journal: events of %s: %w", id, classify(id, err))
	}
	evs, err := j.events(ctx, id, ek, after, last)
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

// missing tells a record that is not there from one the index of ids
// lost (a page of it damaged, or replaced by another index's page): the
// entries next to where id would be must lead to their own records, and
// if there is none on either side the table must be empty. It is two
// index probes and at most one row read; nil means id is truly absent, as
// far as the pages on its lookup path show.
func (j *Journal) missing(ctx context.Context, id string) error {
	// One read transaction: one snapshot for the three reads, which other
	// processes' commits in between would otherwise make disagree.
	tx, err := j.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("journal: %s: %w", id, classify(id, err))
	}
	defer tx.Rollback()
	found := false
	for _, q := range []string{
		`SELECT e.id, ` + ownID + ` FROM executions e WHERE e.id > ? ORDER BY e.id LIMIT 1`,
		`SELECT e.id, ` + ownID + ` FROM executions e WHERE e.id < ? ORDER BY e.id DESC LIMIT 1`,
	} {
		var at any
		var own sql.NullString
		switch err := tx.QueryRowContext(ctx, q, id).Scan(&at, &own); {
		case errors.Is(err, sql.ErrNoRows):
			continue
		case err != nil:
			return journal.Damaged(id, fmt.Errorf("the index of ids: %w", classify(id, err)))
		}
		if b, ok := at.([]byte); ok {
			at = string(b)
		}
		if s, ok := at.(string); !ok || !own.Valid || own.String != s {
			return journal.Damaged(id, errors.New("the index of ids leads to records it does not name"))
		}
		found = true
	}
	if found {
		return nil
	}
	var any int
	switch err := tx.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM executions NOT INDEXED LIMIT 1)`).Scan(&any); {
	case err != nil:
		return fmt.Errorf("journal: %s: %w", id, classify(id, err))
	case any > 0:
		return journal.Damaged(id, errors.New("the index of ids is empty but the records are not"))
	}
	return nil
}

// events reads the events of execution id (key ek) after seq after; last
// is the record's last sequence, how many there should be. A row whose
// columns do not convert, or whose data is not JSON, is damage.
func (j *Journal) events(ctx context.Context, id string, ek, after, last int64) ([]journal.Event, error) {
	rows, err := j.rdb.QueryContext(ctx, `SELECT seq, path, kind, name, ordinal, data, time, started
		FROM events WHERE ek = ? AND seq > ? ORDER BY seq`, ek, after)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	// Sized once (a damaged record's count is not trusted past a bound),
	// and the events' data share blocks of one buffer: a replay reads
	// thousands of events, and an allocation each, or a slice that grows
	// by copying, was a good part of its time.
	evs := make([]journal.Event, 0, min(max(last-after, 0), 1<<16))
	var block []byte
	// Scanned into the same variables each row: taken by address for
	// Scan, they are on the heap, once. The integers are scanned as they
	// come (database/sql converts into an *int64 by reflection).
	var (
		seq, ordinal, t, started, kind any
		path, name                     string
		data                           sql.NullString
	)
	dest := []any{&seq, &path, &kind, &name, &ordinal, &data, &t, &started}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			if isSQLiteError(err) {
				return nil, err
			}
			return nil, journal.Damaged(id, fmt.Errorf("an event after %d: %w", after+int64(len(evs)), err))
		}
		sq, ok1 := seq.(int64)
		ord, ok2 := ordinal.(int64)
		nanos, ok3 := t.(int64)
		before, ok4 := started.(int64)
		if !ok1 || !ok2 || !ok3 || !ok4 && started != nil || int64(int(ord)) != ord {
			return nil, journal.Damaged(id, fmt.Errorf("an event after %d: a column that must be an integer is not", after+int64(len(evs))))
		}
		ev := journal.Event{Seq: sq, Path: path, Name: name, Ordinal: int(ord), Time: time.Unix(0, nanos).UTC()}
		var stored []byte
		off := 0
		if data.Valid {
			if need := len(data.String) + restoredExtra; cap(block)-len(block) < need {
				// A block for the events still to come, at a guessed
				// size each, up to dataBlock: an execution of a few
				// events, held for as long as it runs, must not hold
				// 32 KiB.
				left := max(int(min(last-after, 1<<16))-len(evs), 1)
				block = make([]byte, 0, max(need, min(left*eventDataGuess, dataBlock)))
			}
			off = len(block)
			block = append(block, data.String...)
			stored = block[off:]
		}
		if stored != nil && !json.Valid(stored) {
			return nil, journal.Damaged(id, fmt.Errorf("event %d: its data is not valid JSON", ev.Seq))
		}
		if ev.Kind, err = kindOf(kind); err != nil {
			return nil, journal.Damaged(id, fmt.Errorf("event %d: %w", ev.Seq, err))
		}
		if started != nil {
			if len(stored) < 2 || stored[len(stored)-1] != '}' {
				return nil, journal.Damaged(id, fmt.Errorf("event %d: its data has a start but is not an object", ev.Seq))
			}
			block = restoreStarted(block[:len(block)-1], ev.Time, before)
			stored = block[off:]
		}
		// Capped: appending to one event's data must not write over the
		// next one's.
		ev.Data = stored[:len(stored):len(stored)]
		evs = append(evs, ev)
	}
	return evs, rows.Err()
}

// dataBlock is the largest buffer events' data are read into, and
// eventDataGuess the bytes of data an event is guessed to have when sizing
// a smaller one.
const (
	dataBlock      = 32 << 10
	eventDataGuess = 256
)

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
		where = append(where, listsql.DueTerm(timeValue(f.Due), func(v any) string { args = append(args, v); return "?" }))
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
		where, args = append(where, cmp+" (?, ?)"), append(args, timeValue(at), id)
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
		if err == errIndexDamaged {
			return nil, err
		}
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
