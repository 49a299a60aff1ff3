package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/internal/groupcommit"
)

// An op is one queued write. run executes inside the batch's transaction,
// with no savepoint of its own: it either succeeds, or is refused having
// written nothing (its error is a groupcommit.Refusal), or fails with any
// other error, after which the writer rolls the transaction back and runs
// the batch again without it. So run may be called more than once.
//
// A pipelined op has no run: it is sent with the pipelined ops next to it
// in one pgx.Batch, so that they cost one round trip together. An append
// (app) is one of the batch's loom_append_batch calls, a create held
// (held) one of its multi-row creates; both refuse without an error.
type op struct {
	groupcommit.Ticket
	run  func(context.Context, *writer) error
	app  *appendArgs
	held *heldArgs
}

func (o *op) pipelined() bool { return o.run == nil }

// submit queues o and waits for the commit that holds it.
func (j *Journal) submit(ctx context.Context, o *op) error {
	return unavailable(j.queue.Submit(ctx, o))
}

func refuse(err error) error { return groupcommit.Refuse(err) }

// writer runs the queued writes. Only its goroutine uses tx.
type writer struct {
	pool interface {
		Begin(context.Context) (pgx.Tx, error)
		Acquire(context.Context) (*pgxpool.Conn, error)
	}
	now func() time.Time
	max int
	tx  pgx.Tx
	// isolate sends each pipelined op in a statement of its own, to find
	// the one that made a statement of several fail.
	isolate bool
	groupcommit.Counters
}

// errGroupFailed marks the failure of a statement of more than one op (a
// loom_append_batch call, a multi-row create).
var errGroupFailed = errors.New("a batch of appends failed")

// maxRetries bounds how often a batch is run again after the server aborted
// it for a deadlock or a serialization failure (another process's writes).
const maxRetries = 5

// commit runs batch in one transaction. An op that fails with anything but
// a refusal may have left part of its writes, and PostgreSQL refuses every
// statement after an error: the transaction is rolled back and the batch
// runs again without that op.
func (w *writer) commit(batch []*op) {
	live := groupcommit.Live(batch)
	retries := 0
	defer func() { w.isolate = false }()
	for len(live) > 0 {
		bad, err := w.try(live)
		switch {
		case err == nil:
			groupcommit.Committed(&w.Counters, live)
			return
		case transient(err) && retries < maxRetries:
			retries++
		case errors.Is(err, errGroupFailed):
			// Which of the statement's ops failed is not known: run the
			// batch again with one op a statement.
			w.isolate = true
		case bad < 0: // the transaction itself failed
			groupcommit.Fail(live, err)
			return
		default:
			groupcommit.Fail(live[bad:bad+1], err)
			live = slices.Delete(live, bad, bad+1)
		}
	}
}

// transient reports whether err is the server giving up on a transaction
// that may succeed when run again: a deadlock or a serialization failure.
func transient(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

// try runs ops in one transaction and commits it. When an op fails with an
// error that is not a refusal, try rolls back and returns the op's index and
// error; when the transaction fails, -1 and the error. Consecutive pipelined
// ops are sent together.
func (w *writer) try(ops []*op) (int, error) {
	ctx := context.Background() // one caller's deadline must not abort the others' transaction
	if allPipelined(ops) {
		return w.tryPipelined(ctx, ops)
	}
	tx, err := w.pool.Begin(ctx)
	if err != nil {
		return -1, fmt.Errorf("journal: begin: %w", err)
	}
	w.tx = tx
	defer func() { w.tx = nil }()
	for i := 0; i < len(ops); {
		if ops[i].pipelined() {
			var n int
			if n, err = w.pipeline(ctx, ops[i:]); err != nil {
				_ = tx.Rollback(ctx)
				if n < 0 {
					return -1, err
				}
				return i + n, err
			}
			i += n
			continue
		}
		o := ops[i]
		i++
		if o.Err = o.Ctx.Err(); o.Err != nil {
			continue
		}
		switch err := o.run(ctx, w).(type) {
		case nil:
		case groupcommit.Refusal:
			o.Err = err.Err
		default:
			_ = tx.Rollback(ctx)
			return i - 1, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		_ = tx.Rollback(ctx)
		return -1, fmt.Errorf("journal: commit: %w", err)
	}
	return 0, nil
}

func allPipelined(ops []*op) bool {
	for _, o := range ops {
		if !o.pipelined() {
			return false
		}
	}
	return true
}

// tryPipelined is try for a batch of pipelined ops only (appends and
// creates, the common case): BEGIN, the ops' statements and COMMIT go to
// the server in one batch, so a transaction costs one round trip, not
// three. A failed statement makes the server skip the rest, COMMIT
// included; the transaction is then rolled back on its connection before
// the connection goes back to the pool.
func (w *writer) tryPipelined(ctx context.Context, ops []*op) (int, error) {
	c, err := w.pool.Acquire(ctx)
	if err != nil {
		return -1, fmt.Errorf("journal: begin: %w", err)
	}
	defer func() {
		if c.Conn().PgConn().TxStatus() != 'I' {
			_, _ = c.Exec(ctx, "ROLLBACK")
		}
		c.Release()
	}()
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	sent := w.queuePipelined(b, ops)
	b.Queue("COMMIT")
	br := c.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		return -1, fmt.Errorf("journal: begin: %w", err)
	}
	if i, err := readResults(br, ops, sent); err != nil {
		return i, err
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err == nil && tag.String() != "COMMIT" {
		err = errors.New("the server rolled the transaction back")
	}
	if err != nil {
		return -1, fmt.Errorf("journal: commit: %w", err)
	}
	return 0, nil
}

// A statement is one statement of a pipelined batch: a multi-row create
// of creates held, or one loom_append_batch call's appends.
type statement struct {
	creates []*op
	appends []*op
}

// queuePipelined queues the statements of ops, all pipelined: the creates,
// then the appends' calls. A caller gone before its op is sent gets its
// context's error, and the op does not run. Ops of one id go in
// successive statements, in the order queued (a statement's ids are
// distinct); with isolate set, each op in a statement of its own.
func (w *writer) queuePipelined(b *pgx.Batch, ops []*op) []statement {
	var creates, calls groups
	for _, o := range ops {
		if o.Err = o.Ctx.Err(); o.Err != nil {
			continue
		}
		if o.held != nil {
			creates.add(o, o.held.row.id, w.isolate)
		} else {
			calls.add(o, o.app.id, w.isolate)
		}
	}
	var sent []statement
	for _, c := range creates.ops {
		w.queueCreatesHeld(b, c)
		sent = append(sent, statement{creates: c})
	}
	for _, c := range calls.ops {
		w.queueAppends(b, c)
		sent = append(sent, statement{appends: c})
	}
	return sent
}

// groups gathers ops into statements whose ids are distinct: an id's k-th
// op goes in the k-th statement.
type groups struct {
	ops  [][]*op
	seen map[string]int // an id's ops so far
}

func (g *groups) add(o *op, id string, isolate bool) {
	if isolate {
		g.ops = append(g.ops, []*op{o})
		return
	}
	if g.seen == nil {
		g.seen = make(map[string]int)
	}
	k := g.seen[id]
	g.seen[id] = k + 1
	if k == len(g.ops) {
		g.ops = append(g.ops, nil)
	}
	g.ops[k] = append(g.ops[k], o)
}

// readResults reads the results of the statements sent for ops, in order:
// a refusal is its op's error, and any other error closes the batch and
// returns the index in ops of the op that failed (of a statement of
// several, the first, with errGroupFailed).
func readResults(br pgx.BatchResults, ops []*op, sent []statement) (int, error) {
	for _, st := range sent {
		group, err := st.appends, error(nil)
		if st.creates != nil {
			group, err = st.creates, createsHeldResult(br, st.creates)
		} else {
			err = appendsResult(br, st.appends)
		}
		if err != nil {
			if len(group) > 1 {
				err = fmt.Errorf("%w: %w", errGroupFailed, err)
			}
			_ = br.Close()
			return slices.Index(ops, group[0]), err
		}
	}
	return 0, nil
}

// pipeline sends the pipelined ops at the head of ops in one batch and reads
// their results. It returns how many ops it took; on an error that is not a
// refusal, the index of the op that failed (-1: the batch itself).
func (w *writer) pipeline(ctx context.Context, ops []*op) (int, error) {
	n := 0
	for n < len(ops) && ops[n].pipelined() {
		n++
	}
	b := &pgx.Batch{}
	sent := w.queuePipelined(b, ops[:n])
	br := w.tx.SendBatch(ctx, b)
	if i, err := readResults(br, ops[:n], sent); err != nil {
		return i, err
	}
	if err := br.Close(); err != nil {
		return -1, fmt.Errorf("journal: %w", err)
	}
	return n, nil
}

func (w *writer) clock() time.Time { return w.now().UTC() }

// leaseClock is the time leases are judged and set by: the server's, read
// in the writer's transaction, so processes whose clocks disagree still
// agree on whether a lease has expired.
func (w *writer) leaseClock(ctx context.Context) (time.Time, error) {
	var t time.Time
	if err := w.tx.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&t); err != nil {
		return time.Time{}, fmt.Errorf("reading the server's clock: %w", err)
	}
	return t.UTC(), nil
}

// execRow is an Execution bound to database values, copied from the
// caller's at the call.
type execRow struct {
	id, workflow, state, root, parentPath, hash string
	version                                     int
	parent, input, output, error, pauses, wake  *string
	definition                                  []byte
	created, updated                            time.Time
	labels                                      *string
	startedBy, traceParent                      string
}

func newExecRow(e *journal.Execution) execRow {
	r := execRow{id: e.ID, workflow: e.Workflow, state: string(e.State), root: e.RootID, parentPath: e.ParentPath,
		hash: e.DefinitionHash, version: e.Version, parent: nullString(e.ParentID),
		input: nullJSON(e.Input), output: nullJSON(e.Output), error: nullJSON(e.Error), pauses: nullJSON(e.Pauses),
		wake: nullTime(e.WakeAt), created: e.CreatedAt, updated: e.UpdatedAt}
	if r.root == "" {
		r.root = r.id
	}
	if len(e.Definition) > 0 {
		r.definition = slices.Clone(e.Definition)
	}
	if len(e.Labels) > 0 {
		b, _ := json.Marshal(e.Labels)
		s := string(b)
		r.labels = &s
	}
	r.startedBy, r.traceParent = e.StartedBy, e.TraceParent
	return r
}

func (w *writer) create(ctx context.Context, e *execRow) error {
	created, updated := stamps(e, w.clock())
	tag, err := w.tx.Exec(ctx, `INSERT INTO executions (id, workflow, version, state, parent_id, root_id, parent_path,
		input, output, error, pauses, definition, definition_hash, wake_at, created_at, updated_at, labels, started_by, trace_parent)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
		ON CONFLICT (id) DO NOTHING`,
		e.id, e.workflow, e.version, e.state, e.parent, e.root, e.parentPath,
		e.input, e.output, e.error, e.pauses, e.definition, e.hash, e.wake, created, updated,
		e.labels, e.startedBy, e.traceParent)
	if err != nil {
		return fmt.Errorf("journal: create %s: %w", e.id, err)
	}
	if tag.RowsAffected() == 0 {
		return refuse(fmt.Errorf("journal: create %s: %w", e.id, journal.ErrExists))
	}
	return nil
}

// heldArgs is a CreateHeld bound to database values, and its outcome.
type heldArgs struct {
	row     execRow
	h       journal.Holder
	ttl     time.Duration
	expires string        // set when queued
	lease   journal.Lease // the outcome
}

// queueCreatesHeld queues ops' creates held as one statement, pipelined
// with the appends after them: the records' INSERT, and the leases' with
// new tokens for the records inserted. A new root has no lease to be busy
// with; an id already taken inserts neither, and the statement returns no
// row for it. Ids are distinct (queuePipelined). A lone create is a
// statement of one row, without the arrays.
func (w *writer) queueCreatesHeld(b *pgx.Batch, ops []*op) {
	now := w.clock()
	for _, o := range ops {
		c := o.held
		c.expires = formatTime(now.Add(c.ttl))
	}
	if len(ops) == 1 {
		c := ops[0].held
		e := &c.row
		created, updated := stamps(e, now)
		b.Queue(`WITH e AS (
			INSERT INTO executions (id, workflow, version, state, parent_id, root_id, parent_path,
				input, output, error, pauses, definition, definition_hash, wake_at, created_at, updated_at, labels, started_by, trace_parent)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $24)
			ON CONFLICT (id) DO NOTHING
			RETURNING id)
			INSERT INTO leases (root_id, token, holder_id, holder_host, holder_pid, holder_node, expires)
			SELECT id, nextval('lease_tokens'), $19, $20, $21, $23, $22 FROM e
			RETURNING root_id, token`,
			e.id, e.workflow, e.version, e.state, e.parent, e.root, e.parentPath,
			e.input, e.output, e.error, e.pauses, e.definition, e.hash, e.wake, created, updated,
			e.labels, e.startedBy, c.h.ID, c.h.Host, c.h.PID, c.expires, c.h.Node, e.traceParent)
		return
	}
	n := len(ops)
	var (
		ids, workflows, states, roots, parentPaths, hashes = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		versions, pids                                     = make([]int32, n), make([]int32, n)
		parents, inputs, outputs, errs, pauses, wakes      = make([]*string, n), make([]*string, n), make([]*string, n), make([]*string, n), make([]*string, n), make([]*string, n)
		labels                                             = make([]*string, n)
		definitions                                        = make([][]byte, n)
		created, updated, startedBy, traceParents          = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		holders, hosts, nodes, expires                     = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	)
	for i, o := range ops {
		c := o.held
		e := &c.row
		ids[i], workflows[i], versions[i], states[i], parents[i], roots[i], parentPaths[i] = e.id, e.workflow, int32(e.version), e.state, e.parent, e.root, e.parentPath
		inputs[i], outputs[i], errs[i], pauses[i], definitions[i], hashes[i], wakes[i] = e.input, e.output, e.error, e.pauses, e.definition, e.hash, e.wake
		created[i], updated[i] = stamps(e, now)
		labels[i], startedBy[i], traceParents[i] = e.labels, e.startedBy, e.traceParent
		holders[i], hosts[i], pids[i], nodes[i], expires[i] = c.h.ID, c.h.Host, int32(c.h.PID), c.h.Node, c.expires
	}
	b.Queue(`WITH a AS MATERIALIZED (
		SELECT * FROM unnest($1::text[], $2::text[], $3::integer[], $4::text[], $5::text[], $6::text[], $7::text[],
			$8::text[], $9::text[], $10::text[], $11::text[], $12::bytea[], $13::text[], $14::text[], $15::text[], $16::text[],
			$17::text[], $18::text[], $19::text[], $20::text[], $21::text[], $22::integer[], $23::text[], $24::text[])
			AS a(id, workflow, version, state, parent_id, root_id, parent_path, input, output, error, pauses, definition,
				definition_hash, wake_at, created_at, updated_at, labels, started_by, trace_parent,
				holder_id, holder_host, holder_pid, holder_node, expires)),
	e AS (
		INSERT INTO executions (id, workflow, version, state, parent_id, root_id, parent_path,
			input, output, error, pauses, definition, definition_hash, wake_at, created_at, updated_at, labels, started_by, trace_parent)
		SELECT id, workflow, version, state, parent_id, root_id, parent_path, input, output, error, pauses, definition,
			definition_hash, wake_at, created_at, updated_at, labels, started_by, trace_parent FROM a
		ON CONFLICT (id) DO NOTHING
		RETURNING id)
	INSERT INTO leases (root_id, token, holder_id, holder_host, holder_pid, holder_node, expires)
		SELECT a.id, nextval('lease_tokens'), a.holder_id, a.holder_host, a.holder_pid, a.holder_node, a.expires
		FROM e JOIN a ON a.id = e.id
		RETURNING root_id, token`,
		ids, workflows, versions, states, parents, roots, parentPaths, inputs, outputs, errs, pauses, definitions,
		hashes, wakes, created, updated, labels, startedBy, traceParents, holders, hosts, pids, nodes, expires)
}

// stamps is when a record created at now says it was created and updated.
func stamps(e *execRow, now time.Time) (created, updated string) {
	c, u := e.created, e.updated
	if c.IsZero() {
		c = now
	}
	if u.IsZero() {
		u = now
	}
	return formatTime(c), formatTime(u)
}

// createsHeldResult reads the outcome of queueCreatesHeld: each op's lease,
// or its refusal (ErrExists) when no lease came back for its id.
func createsHeldResult(br pgx.BatchResults, ops []*op) error {
	rows, err := br.Query()
	if err != nil {
		return fmt.Errorf("journal: create %s: %w", ops[0].held.row.id, err)
	}
	tokens := make(map[string]int64, len(ops))
	var (
		id    string
		token int64
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &token}, func() error {
		tokens[id] = token
		return nil
	})
	if err != nil {
		return fmt.Errorf("journal: create %s: %w", ops[0].held.row.id, err)
	}
	for _, o := range ops {
		c := o.held
		t, ok := tokens[c.row.id]
		if !ok {
			o.Err = fmt.Errorf("journal: create %s: %w", c.row.id, journal.ErrExists)
			continue
		}
		c.lease = journal.Lease{RootID: c.row.id, Holder: c.h, Token: t}
		c.lease.Expires, _ = parseTime(c.expires) // what a later read returns
	}
	return nil
}

// appendArgs is an Append bound to database values.
type appendArgs struct {
	id              string
	token, expected int64
	release         bool
	events          []eventRow

	state              *string // nil leaves it
	output, error      *string // nil leaves it
	setPauses, setWake bool
	pauses             *string // nil clears
	wake               *string // nil clears

	last int64 // the outcome: the last seq after the append
	// now is the time the call that ran the append stamped the record's
	// updated_at with (as stored): on success, the record's UpdatedAt.
	now string
}

type eventRow struct {
	path, kind, name string
	ordinal          int
	data             *string
	time             time.Time
}

// queueAppends queues one loom_append_batch call (see schemaV7) of ops'
// appends, whose executions are distinct; a lone append, one loom_append
// call (schemaV2), whose plans fit one append: a loom_append_batch call of
// one append cost a lone execution's steps 40% of their rate (bench
// PostgresThroughput serial-steps/s).
func (w *writer) queueAppends(b *pgx.Batch, ops []*op) {
	if len(ops) == 1 {
		w.queueAppend(b, ops[0].app)
		return
	}
	n, events, now := len(ops), 0, formatTime(w.clock())
	for _, o := range ops {
		events += len(o.app.events)
		o.app.now = now
	}
	var (
		ids                                  = make([]string, n)
		tokens, expected                     = make([]int64, n), make([]int64, n)
		counts                               = make([]int32, n)
		states, outputs, errs, pauses, wakes = make([]*string, n), make([]*string, n), make([]*string, n), make([]*string, n), make([]*string, n)
		setPauses, setWakes, releases        = make([]bool, n), make([]bool, n), make([]bool, n)

		owners, nums, ordinals = make([]int32, 0, events), make([]int32, 0, events), make([]int32, 0, events)
		paths, kinds, names    = make([]string, 0, events), make([]string, 0, events), make([]string, 0, events)
		data, times            = make([]*string, 0, events), make([]*string, 0, events)
	)
	for i, o := range ops {
		a := o.app
		ids[i], tokens[i], expected[i], counts[i] = a.id, a.token, a.expected, int32(len(a.events))
		states[i], outputs[i], errs[i], setPauses[i], pauses[i], setWakes[i], wakes[i], releases[i] =
			a.state, a.output, a.error, a.setPauses, a.pauses, a.setWake, a.wake, a.release
		for k, ev := range a.events {
			owners, nums = append(owners, int32(i+1)), append(nums, int32(k+1))
			paths, kinds, names, ordinals = append(paths, ev.path), append(kinds, ev.kind), append(names, ev.name), append(ordinals, int32(ev.ordinal))
			data, times = append(data, ev.data), append(times, nullTime(ev.time))
		}
	}
	b.Queue(`SELECT o_codes, o_lasts FROM loom_append_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
		$14, $15, $16, $17, $18, $19, $20, $21)`,
		now, ids, tokens, expected, counts, states, outputs, errs, setPauses, pauses, setWakes, wakes, releases,
		owners, nums, paths, kinds, names, ordinals, data, times)
}

// queueAppend queues a's loom_append call (see schemaV2).
func (w *writer) queueAppend(b *pgx.Batch, a *appendArgs) {
	n := len(a.events)
	a.now = formatTime(w.clock())
	var (
		paths, kinds, names = make([]string, n), make([]string, n), make([]string, n)
		ordinals            = make([]int32, n)
		data, times         = make([]*string, n), make([]*string, n)
	)
	for i, ev := range a.events {
		paths[i], kinds[i], names[i], ordinals[i], data[i], times[i] = ev.path, ev.kind, ev.name, int32(ev.ordinal), ev.data, nullTime(ev.time)
	}
	b.Queue(`SELECT ARRAY[o_code], ARRAY[coalesce(o_last, 0)] FROM loom_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`,
		a.id, a.token, a.expected, a.now, paths, kinds, names, ordinals, data, times,
		a.state, a.output, a.error, a.setPauses, a.pauses, a.setWake, a.wake, a.release)
}

// appendsResult reads the outcome of a queueAppends call of ops: each
// append's last seq (o.app.last) or refusal (o.Err). Both functions answer
// with the same codes, as arrays.
func appendsResult(br pgx.BatchResults, ops []*op) error {
	var (
		codes []int32
		lasts []int64
	)
	if err := br.QueryRow().Scan(&codes, &lasts); err != nil {
		if len(ops) == 1 {
			return fmt.Errorf("journal: append to %s: %w", ops[0].app.id, err)
		}
		return fmt.Errorf("journal: %d appends: %w", len(ops), err)
	}
	if len(codes) != len(ops) || len(lasts) != len(ops) {
		return fmt.Errorf("journal: %d appends: %d results", len(ops), len(codes))
	}
	for i, o := range ops {
		a := o.app
		switch codes[i] {
		case 0:
			a.last = lasts[i]
		case 1:
			o.Err = fmt.Errorf("journal: append to %s: %w", a.id, journal.ErrNotFound)
		case 2:
			o.Err = fmt.Errorf("journal: append to %s with token %d: %w", a.id, a.token, journal.ErrFenced)
		case 3:
			o.Err = fmt.Errorf("journal: append to %s after seq %d, last is %d: %w", a.id, a.expected, lasts[i], journal.ErrConflict)
		case 4:
			o.Err = fmt.Errorf("journal: append to %s: an event's (path, kind, ordinal) is already recorded: %w", a.id, journal.ErrConflict)
		default:
			return fmt.Errorf("journal: append to %s: unknown result %d", a.id, codes[i])
		}
	}
	return nil
}

const leaseColumns = `token, holder_id, holder_host, holder_pid, holder_node, expires`

func scanLease(root string, row pgx.Row) (journal.Lease, error) {
	l := journal.Lease{RootID: root}
	var expires string
	switch err := row.Scan(&l.Token, &l.Holder.ID, &l.Holder.Host, &l.Holder.PID, &l.Holder.Node, &expires); {
	case errors.Is(err, pgx.ErrNoRows):
		return journal.Lease{}, nil
	case err != nil:
		return journal.Lease{}, err
	}
	var err error
	l.Expires, err = parseTime(expires)
	return l, err
}

// acquire locks root's row (Append takes a share lock on it), then reads
// and replaces its lease.
func (w *writer) acquire(ctx context.Context, root string, h journal.Holder, ttl time.Duration, takeover int64) (journal.Lease, error) {
	b := &pgx.Batch{}
	b.Queue(`SELECT root_id FROM executions WHERE id = $1 FOR UPDATE`, root)
	b.Queue(`SELECT `+leaseColumns+` FROM leases WHERE root_id = $1`, root)
	res := w.tx.SendBatch(ctx, b)
	var rootOfRoot string
	err := res.QueryRow().Scan(&rootOfRoot)
	notFound := errors.Is(err, pgx.ErrNoRows)
	var cur journal.Lease
	if err == nil || notFound {
		cur, err = scanLease(root, res.QueryRow())
	}
	if cerr := res.Close(); err == nil {
		err = cerr
	}
	switch {
	case notFound && err == nil:
		return journal.Lease{}, refuse(fmt.Errorf("journal: acquire %s: %w", root, journal.ErrNotFound))
	case err != nil:
		return journal.Lease{}, fmt.Errorf("journal: acquire %s: %w", root, err)
	}
	if rootOfRoot != root {
		return journal.Lease{}, refuse(fmt.Errorf("journal: acquire %s: not a root execution (its root is %s)", root, rootOfRoot))
	}
	now, err := w.leaseClock(ctx)
	if err != nil {
		return journal.Lease{}, fmt.Errorf("journal: acquire %s: %w", root, err)
	}
	if cur.Token != 0 && cur.Expires.After(now) && (takeover == 0 || takeover != cur.Token) {
		return journal.Lease{}, refuse(&journal.BusyError{Lease: cur})
	}
	expires := formatTime(now.Add(ttl))
	l := journal.Lease{RootID: root, Holder: h}
	l.Expires, _ = parseTime(expires) // what a later read returns
	err = w.tx.QueryRow(ctx, `INSERT INTO leases (root_id, token, holder_id, holder_host, holder_pid, holder_node, expires)
		VALUES ($1, nextval('lease_tokens'), $2, $3, $4, $6, $5)
		ON CONFLICT (root_id) DO UPDATE SET token = excluded.token, holder_id = excluded.holder_id,
		holder_host = excluded.holder_host, holder_pid = excluded.holder_pid, holder_node = excluded.holder_node,
		expires = excluded.expires
		RETURNING token`, root, h.ID, h.Host, h.PID, expires, h.Node).Scan(&l.Token)
	if err != nil {
		return journal.Lease{}, fmt.Errorf("journal: acquire %s: %w", root, err)
	}
	return l, nil
}

func (w *writer) renew(ctx context.Context, l journal.Lease, ttl time.Duration) (journal.Lease, error) {
	now, err := w.leaseClock(ctx)
	if err != nil {
		return journal.Lease{}, fmt.Errorf("journal: renew lease of %s: %w", l.RootID, err)
	}
	expires := formatTime(now.Add(ttl))
	cur, err := scanLease(l.RootID, w.tx.QueryRow(ctx, `UPDATE leases SET expires = $1 WHERE root_id = $2 AND token = $3
		RETURNING `+leaseColumns, expires, l.RootID, l.Token))
	if err != nil {
		return journal.Lease{}, fmt.Errorf("journal: renew lease of %s: %w", l.RootID, err)
	}
	if cur.Token == 0 {
		return journal.Lease{}, refuse(fmt.Errorf("journal: renew lease %d of %s: %w", l.Token, l.RootID, journal.ErrFenced))
	}
	return cur, nil
}

func (w *writer) release(ctx context.Context, l journal.Lease) error {
	tag, err := w.tx.Exec(ctx, `DELETE FROM leases WHERE root_id = $1 AND token = $2`, l.RootID, l.Token)
	if err != nil {
		return fmt.Errorf("journal: release lease of %s: %w", l.RootID, err)
	}
	if tag.RowsAffected() == 0 {
		return refuse(fmt.Errorf("journal: release lease %d of %s: %w", l.Token, l.RootID, journal.ErrFenced))
	}
	return nil
}

// candQuery and claimQuery select the claimable roots in claim order
// (journal.Claim), locking their rows and skipping rows another claimer
// has locked, so that claimers never wait on each other. $1 is the clock,
// $2 the exclusions, $3 the limit, $4 the holders found gone (taken over
// at once). A crash-looping root (stalled takeovers, its back-off not
// over, its tree unchanged since the last takeover) waits, unless a
// cancel is requested.
//
// claimQuery's WHERE decides what may be claimed; candQuery only bounds
// the rows it looks at, each part through an index (schemaV12), so that a claim
// costs what it may take and what is in flight, not the backlog of queued
// starts or the finished history: every cancel requested; the first $3
// due timers of each waiting state and the first $3 starts by
// (created_at, id) with no lease, each skipping the rows another claimer
// has locked (else a second claimer would find the first one's and stop);
// every lease expired or of a gone holder; every begun root running (in
// flight, or released unfinished: a resume). Each class's first $3 rows
// in claim order that no other claimer holds are among them. They are two
// statements so that the judging reads the candidates by key ($5): as one,
// the planner, its statistics not yet counting a burst of starts, read
// every runnable record and joined the candidates to each (0.8 s behind
// 50,000 queued starts).
const candQuery = `WITH starts AS (
		SELECT e.id FROM executions e
		WHERE e.parent_id IS NULL AND e.state = 'RUNNING' AND NOT e.begun
		AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.root_id = e.id) AND NOT (e.id = ANY ($2))
		ORDER BY e.created_at, e.id LIMIT $3 FOR UPDATE OF e SKIP LOCKED),
	waiting AS (` + dueTimers + `'WAITING'` + dueTimersOrder + `),
	paused AS (` + dueTimers + `'PAUSED'` + dueTimersOrder + `),
	cand AS (
		SELECT id FROM executions WHERE cancel_requested AND state IN ('RUNNING', 'WAITING', 'PAUSED')
		UNION SELECT id FROM waiting
		UNION SELECT id FROM paused
		UNION SELECT root_id FROM leases WHERE expires <= $1 OR holder_id = ANY ($4)
		UNION SELECT id FROM executions WHERE parent_id IS NULL AND state = 'RUNNING' AND begun
		UNION SELECT id FROM starts)
	SELECT id FROM cand`

// claimQuery judges and orders candQuery's candidates ($5), locking the
// rows it takes (see candQuery). It reads them by key: the state it
// tests is an expression (state concatenated with an empty string), no
// index's column, so a planner whose statistics do not yet count a
// burst of starts cannot prefer reading every runnable record (10 ms a
// claim behind 50,000 queued starts).
const claimQuery = `SELECT e.id, coalesce(l.token, 0), e.stalled, e.stall_mark,
	(SELECT coalesce(sum(t.last_seq), 0) FROM executions t WHERE t.root_id = e.id),
	CASE WHEN e.cancel_requested THEN 'cancel'
		WHEN e.state <> 'RUNNING' THEN 'timer'
		WHEN l.token IS NOT NULL THEN 'takeover'
		WHEN e.last_seq > 0 THEN 'resume'
		ELSE 'start' END
	FROM executions e LEFT JOIN leases l ON l.root_id = e.id
	WHERE e.id = ANY ($5) AND e.parent_id IS NULL AND e.state || '' IN ('RUNNING', 'WAITING', 'PAUSED')
	AND (l.token IS NULL OR l.expires <= $1 OR l.holder_id = ANY ($4))
	AND (e.cancel_requested OR e.state = 'RUNNING' OR e.wake_at <= $1)
	AND (e.cancel_requested OR e.state <> 'RUNNING' OR l.token IS NULL OR e.crash_loop_until IS NULL OR e.crash_loop_until <= $1
		OR e.stall_mark <> (SELECT coalesce(sum(t.last_seq), 0) FROM executions t WHERE t.root_id = e.id))
	AND NOT (e.id = ANY ($2))
	ORDER BY CASE WHEN e.cancel_requested THEN 0
			WHEN e.state <> 'RUNNING' OR l.token IS NULL AND e.last_seq > 0 THEN 1
			WHEN l.token IS NOT NULL THEN 2
			ELSE 3 END,
		CASE WHEN e.cancel_requested THEN e.updated_at
			WHEN e.state <> 'RUNNING' THEN e.wake_at
			WHEN l.token IS NOT NULL THEN l.expires
			WHEN e.last_seq > 0 THEN e.updated_at
			ELSE e.created_at END,
		e.id
	LIMIT $3
	FOR UPDATE OF e SKIP LOCKED`

// dueTimers + a state + dueTimersOrder reads the first $3 roots of that
// state whose timer is due, in wake_at order, that a claim may take (see
// claimQuery).
const (
	dueTimers = `SELECT e.id FROM executions e LEFT JOIN leases l ON l.root_id = e.id
		WHERE e.state = `
	dueTimersOrder = ` AND e.wake_at <= $1 AND e.parent_id IS NULL
		AND (l.token IS NULL OR l.expires <= $1 OR l.holder_id = ANY ($4)) AND NOT (e.id = ANY ($2))
		ORDER BY e.wake_at LIMIT $3 FOR UPDATE OF e SKIP LOCKED`
)

// claim takes the leases of up to r.Limit claimable roots, in claim order.
func (w *writer) claim(ctx context.Context, r journal.ClaimRequest) (journal.ClaimResult, error) {
	var res journal.ClaimResult
	t, err := w.leaseClock(ctx)
	if err != nil {
		return res, fmt.Errorf("journal: claim: %w", err)
	}
	now := formatTime(t)
	exclude := r.Exclude
	if exclude == nil {
		exclude = []string{}
	}
	gone := []string{}
	if r.Gone != nil && r.Holder.Node != "" {
		rows, err := w.tx.Query(ctx, `SELECT DISTINCT holder_id, holder_host, holder_pid, holder_node FROM leases
			WHERE holder_node = $1 AND holder_pid <> $2 AND expires > $3`, r.Holder.Node, r.Holder.PID, now)
		if err != nil {
			return res, fmt.Errorf("journal: claim: %w", err)
		}
		holders, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (journal.Holder, error) {
			var h journal.Holder
			err := row.Scan(&h.ID, &h.Host, &h.PID, &h.Node)
			return h, err
		})
		if err != nil {
			return res, fmt.Errorf("journal: claim: %w", err)
		}
		for _, h := range holders {
			if journal.SameNode(r.Holder, h) && r.Gone(h) {
				gone = append(gone, h.ID)
			}
		}
	}
	rows, err := w.tx.Query(ctx, candQuery, now, exclude, max(r.Limit, 0), gone)
	if err != nil {
		return res, fmt.Errorf("journal: claim: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return res, fmt.Errorf("journal: claim: %w", err)
	}
	// Planned for its parameters each time (an unnamed statement): a
	// prepared statement's generic plan, after five claims, cannot know
	// how few ids $5 holds, and read every runnable record (50 ms a claim
	// behind 50,000 queued starts, against ~1 ms planning it).
	rows, err = w.tx.Query(ctx, claimQuery, pgx.QueryExecModeExec, now, exclude, max(r.Limit, 0), gone, ids)
	if err != nil {
		return res, fmt.Errorf("journal: claim: %w", err)
	}
	type cand struct {
		id, reason         string
		token              int64
		stalled            int
		stallMark, treeSeq int64
	}
	var cands []cand
	for rows.Next() {
		var c cand
		if err := rows.Scan(&c.id, &c.token, &c.stalled, &c.stallMark, &c.treeSeq, &c.reason); err != nil {
			rows.Close()
			return res, fmt.Errorf("journal: claim: %w", err)
		}
		cands = append(cands, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return res, fmt.Errorf("journal: claim: %w", err)
	}
	for _, c := range cands {
		// The token of a lease still live is that of a holder found gone:
		// take it over at once.
		l, err := w.acquire(ctx, c.id, r.Holder, journal.LeaseTTL(r.TTL), c.token)
		if err != nil {
			return journal.ClaimResult{}, err
		}
		cl := journal.Claim{Lease: l, Reason: journal.ClaimReason(c.reason)}
		if cl.Reason == journal.ClaimTakeover {
			cl.Stalled = 1
			if c.stalled > 0 && c.treeSeq == c.stallMark {
				cl.Stalled = c.stalled + 1
			}
			var until *string
			if u := journal.CrashLoopUntil(cl.Stalled, t); !u.IsZero() {
				s := formatTime(u)
				until = &s
			}
			if _, err := w.tx.Exec(ctx, `UPDATE executions SET takeovers = takeovers + 1,
				stalled = $2, stall_mark = $3, crash_loop_until = $4 WHERE id = $1`, c.id, cl.Stalled, c.treeSeq, until); err != nil {
				return journal.ClaimResult{}, fmt.Errorf("journal: claim %s: %w", c.id, err)
			}
		}
		res.Claims = append(res.Claims, cl)
	}
	var next *string
	// Each state's first future timer in wake_at order (executions_state),
	// not a min over a set the planner may gather from every root (9 ms a
	// claim behind 50,000 queued starts).
	if err := w.tx.QueryRow(ctx, `SELECT min(w) FROM (
		(SELECT wake_at AS w FROM executions WHERE state = 'WAITING' AND wake_at > $1 AND parent_id IS NULL ORDER BY wake_at LIMIT 1)
		UNION ALL
		(SELECT wake_at FROM executions WHERE state = 'PAUSED' AND wake_at > $1 AND parent_id IS NULL ORDER BY wake_at LIMIT 1)) t`, now).Scan(&next); err != nil {
		return journal.ClaimResult{}, fmt.Errorf("journal: claim: %w", err)
	}
	if next != nil {
		if res.NextWake, err = parseTime(*next); err != nil {
			return journal.ClaimResult{}, fmt.Errorf("journal: claim: %w", err)
		}
	}
	return res, nil
}

// requestCancel marks root id CancelRequested unless it is finished.
func (w *writer) requestCancel(ctx context.Context, id, by string) error {
	var root string
	switch err := w.tx.QueryRow(ctx, `SELECT root_id FROM executions WHERE id = $1`, id).Scan(&root); {
	case errors.Is(err, pgx.ErrNoRows):
		return refuse(fmt.Errorf("journal: cancel %s: %w", id, journal.ErrNotFound))
	case err != nil:
		return fmt.Errorf("journal: cancel %s: %w", id, err)
	}
	if root != id {
		return refuse(fmt.Errorf("journal: cancel %s: %w", id, &journal.NotRootError{ID: id, RootID: root}))
	}
	_, err := w.tx.Exec(ctx, `UPDATE executions SET cancel_requested = true, cancel_requested_by = $3, updated_at = $1
		WHERE id = $2 AND NOT cancel_requested AND state NOT IN ('COMPLETED', 'FAILED', 'CANCELLED')`, formatTime(w.clock()), id, by)
	if err != nil {
		return fmt.Errorf("journal: cancel %s: %w", id, err)
	}
	return nil
}
