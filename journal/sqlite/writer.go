package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/internal/groupcommit"
)

// An op is one queued write. run executes inside the batch's transaction,
// with no savepoint of its own: it either succeeds, or is refused having
// written nothing (its error is a groupcommit.Refusal), or fails with any
// other error, after which the writer rolls the transaction back and runs
// the batch again without it. So run may be called more than once.
type op struct {
	groupcommit.Ticket
	run func(*writer) error
	// fenced: run keeps the writer's fence cache true itself (appends,
	// creates, the lease methods, claims). After any other op the writer
	// forgets the cache, so a write added later cannot leave it stale.
	fenced bool
	// reads: run reads what the cache may be ahead of (a claim reads the
	// records' last seqs and times), so the writer writes the sequences
	// first, as before an op that is not fenced.
	reads bool
}

// submit queues o and waits for the commit that holds it.
func (j *Journal) submit(ctx context.Context, o *op) error {
	if j.w == nil {
		return journal.ErrReadOnly // opened by OpenReadOnly
	}
	return unavailable(j.queue.Submit(ctx, o))
}

// writer owns the write connection. Only its goroutine touches conn.
type writer struct {
	conn *sql.Conn
	now  func() time.Time
	max  int
	wait time.Duration // the busy timeout: how long BEGIN waits for another process's lock
	groupcommit.Counters

	selExec, selFence, selLease, insExec, selToken, setToken, putLease, renewLease, delLease                      *sql.Stmt
	insEvent, delEvents, updSeq, updSeqBegun, updRecord, dataVersion, insDefinition, selDefinition, delDefinition *sql.Stmt
	selLastEK, insInput, claim0                                                                                   *sql.Stmt

	fences
}

// fences is what append checks, kept between transactions so that an
// append reads nothing: each execution's root and last seq, each root's
// lease token. It is true while this connection is the only one that
// wrote: PRAGMA data_version, read once per transaction, changes when
// another connection (another process on the file) commits, and then the
// cache is forgotten. A rolled-back transaction forgets it too. Sequences
// advanced in a transaction are written to the records once, before its
// COMMIT (dirty), not once per append.
type fences struct {
	version int64
	execs   map[string]execFence // id → root and last seq
	tokens  map[string]int64     // root → current token, 0 for none
	dirty   map[string]seqStamp  // id → last seq and time to write before COMMIT
	// lastToken is the last fencing token handed out (0: not read yet);
	// tokenDirty says it is to be written before COMMIT.
	lastToken  int64
	tokenDirty bool
	// lastEK is the last execution key given (0: not read yet).
	lastEK int64
	// definitions holds the keys (dk) of hashes known to be in the
	// definitions table.
	definitions map[string]int64
}

type execFence struct {
	root string
	last int64
	ek   int64 // the execution's key in events
}

type seqStamp struct {
	ek, last int64
	at       any // timeValue
	// begun: the record's last seq was 0 before this transaction, so its
	// update sets begun (see schemaV10) as well.
	begun bool
}

// maxFences bounds the cache: past it, it is forgotten and refilled as
// executions append again.
const maxFences = 1 << 16

func (f *fences) forget() {
	f.execs, f.tokens, f.dirty = map[string]execFence{}, map[string]int64{}, map[string]seqStamp{}
	f.lastToken, f.tokenDirty, f.lastEK = 0, false, 0
	f.definitions = map[string]int64{}
}

func refuse(err error) error { return groupcommit.Refuse(err) }

func newWriter(ctx context.Context, conn *sql.Conn, o options) (*writer, error) {
	w := &writer{conn: conn, now: o.now, max: o.maxBatch, wait: o.busyTimeout}
	w.forget()
	// A claim sorts its candidates (a temporary b-tree): in a temporary
	// file, the default, that cost ~0.5 ms of CPU a claim; in memory, a few
	// µs. The writer's transactions sort only what a claim may take
	// (bounded), never a table; set after migrate, whose index builds may
	// sort whole tables.
	if _, err := conn.ExecContext(ctx, "PRAGMA temp_store = MEMORY"); err != nil {
		return nil, fmt.Errorf("PRAGMA temp_store = MEMORY: %w", err)
	}
	for _, s := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&w.selExec, `SELECT root_id, last_seq FROM executions WHERE id = ?`},
		// A subquery, not a join: SQLite re-prepares the join form (parse and
		// plan) every time a new id is bound, ~4x the cost of this form.
		{&w.selFence, `SELECT root_id, last_seq, ek, coalesce((SELECT token FROM leases l WHERE l.root_id = e.root_id), 0)
			FROM executions e WHERE id = ?`},
		{&w.selLease, `SELECT ` + leaseColumns + ` FROM leases WHERE root_id = ?`},
		// A duplicate event key does not fail the insert: it writes no row,
		// and append takes its other events back out.
		{&w.insEvent, `INSERT INTO events (ek, seq, path, kind, name, ordinal, data, time, started) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (ek, path, kind, ordinal) DO NOTHING`},
		{&w.delEvents, `DELETE FROM events WHERE ek = ? AND seq BETWEEN ? AND ?`},
		{&w.insDefinition, `INSERT INTO definitions (hash, body) VALUES (?, ?)`},
		{&w.selDefinition, `SELECT dk FROM definitions WHERE hash = ?`},
		{&w.delDefinition, `DELETE FROM definitions WHERE dk = ?`},
		{&w.selLastEK, `SELECT coalesce(max(ek), 0) FROM executions`},
		{&w.insInput, `INSERT INTO inputs (execution, body, sum) VALUES (?, ?, ?)`},
		// begun is set once, by its own statement: an UPDATE that names it
		// costs the claim indexes' upkeep (schemaV10).
		{&w.updSeq, `UPDATE executions SET last_seq = ?, updated_at = ? WHERE ek = ?`},
		{&w.updSeqBegun, `UPDATE executions SET last_seq = ?, updated_at = ?, begun = 1 WHERE ek = ?`},
		{&w.updRecord, `UPDATE executions SET last_seq = ?, updated_at = ?, begun = ?1 > 0,
			state   = coalesce(?, state),
			output  = coalesce(?, output),
			error   = coalesce(?, error),
			pauses  = CASE WHEN ? THEN ? ELSE pauses END,
			wake_at = CASE WHEN ? THEN ? ELSE wake_at END
			WHERE ek = ?`},
		{&w.insExec, `INSERT INTO executions (id, workflow, version, state, parent_id, root, parent_path,
			input, input_aside, output, error, pauses, dk, definition, definition_hash, wake_at, created_at, updated_at, labels, started_by, trace_parent, ek)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`},
		{&w.selToken, `SELECT value FROM counters WHERE name = 'lease_token'`},
		{&w.setToken, `UPDATE counters SET value = ? WHERE name = 'lease_token'`},
		{&w.putLease, `INSERT INTO leases (root_id, token, holder_id, holder_host, holder_pid, holder_node, expires) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (root_id) DO UPDATE SET token = excluded.token, holder_id = excluded.holder_id,
			holder_host = excluded.holder_host, holder_pid = excluded.holder_pid, holder_node = excluded.holder_node, expires = excluded.expires`},
		{&w.renewLease, `UPDATE leases SET expires = ? WHERE root_id = ? AND token = ?`},
		{&w.delLease, `DELETE FROM leases WHERE root_id = ? AND token = ?`},
		{&w.dataVersion, `PRAGMA data_version`},
	} {
		st, err := conn.PrepareContext(ctx, s.sql)
		if err != nil {
			w.close()
			return nil, fmt.Errorf("prepare %q: %w", s.sql, err)
		}
		*s.dst = st
	}
	return w, nil
}

// close releases the statements and the connection; call it after loop
// has returned (or when loop never started).
func (w *writer) close() error {
	for _, st := range []*sql.Stmt{w.selExec, w.selFence, w.selLease, w.insExec, w.selToken, w.setToken, w.putLease, w.renewLease, w.delLease,
		w.insEvent, w.delEvents, w.updSeq, w.updSeqBegun, w.updRecord, w.dataVersion, w.insDefinition, w.selDefinition, w.delDefinition, w.selLastEK, w.insInput, w.claim0} {
		if st != nil {
			st.Close()
		}
	}
	return w.conn.Close()
}

// commit runs the live ops of batch in one transaction. An op that fails
// with anything but a refusal may have left part of its writes: the
// transaction is rolled back and the batch runs again without that op.
func (w *writer) commit(batch []*op) {
	live := groupcommit.Live(batch)
	for len(live) > 0 {
		bad, err := w.try(live)
		switch {
		case err == nil:
			groupcommit.Committed(&w.Counters, live)
			return
		case bad < 0: // the transaction itself failed
			groupcommit.Fail(live, err)
			return
		default:
			groupcommit.Fail(live[bad:bad+1], err)
			live = slices.Delete(live, bad, bad+1)
		}
	}
}

// try runs ops in one transaction and commits it. When an op fails with an
// error that is not a refusal, try rolls back and returns the op's index and
// error; when the transaction fails, -1 and the error.
func (w *writer) try(ops []*op) (int, error) {
	ctx := context.Background() // one caller's deadline must not abort the others' transaction
	if _, err := w.conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return -1, fmt.Errorf("journal: begin: %w", lockHeld(err, w.wait))
	}
	var version int64
	if err := w.dataVersion.QueryRow().Scan(&version); err != nil {
		w.rollback(ctx)
		return -1, fmt.Errorf("journal: data_version: %w", err)
	}
	if version != w.version || len(w.execs) > maxFences {
		w.forget()
		w.version = version
	}
	for i, o := range ops {
		if o.Err = o.Ctx.Err(); o.Err != nil {
			continue
		}
		if !o.fenced || o.reads {
			// It may read or write what the cache holds: the records get
			// their sequences first, and (not fenced) the cache is read
			// afresh after.
			if err := w.flushSeqs(); err != nil {
				w.rollback(ctx)
				return -1, err
			}
		}
		err := o.run(w)
		if !o.fenced {
			w.forget()
		}
		switch err := err.(type) {
		case nil:
		case groupcommit.Refusal:
			o.Err = err.Err
		default:
			w.rollback(ctx)
			return i, err
		}
	}
	if err := w.flushSeqs(); err != nil {
		w.rollback(ctx)
		return -1, err
	}
	if _, err := w.conn.ExecContext(ctx, "COMMIT"); err != nil {
		w.rollback(ctx)
		return -1, fmt.Errorf("journal: commit: %w", err)
	}
	return 0, nil
}

func (w *writer) rollback(ctx context.Context) {
	// Fails harmlessly when SQLite has already rolled the transaction back.
	_, _ = w.conn.ExecContext(ctx, "ROLLBACK")
	w.forget()
}

// flushSeqs writes the sequences this transaction advanced to their
// records, and the last token handed out: one UPDATE per execution (and
// one for the tokens) per transaction, however many appends and leases it
// took. (One UPDATE ... FROM json_each for all of them cost twice as much
// as these.)
func (w *writer) flushSeqs() error {
	if w.tokenDirty {
		if _, err := w.setToken.Exec(w.lastToken); err != nil {
			return fmt.Errorf("journal: store the last lease token: %w", err)
		}
		w.tokenDirty = false
	}
	for id, st := range w.dirty {
		upd := w.updSeq
		if st.begun {
			upd = w.updSeqBegun
		}
		if _, err := upd.Exec(st.last, st.at, st.ek); err != nil {
			return fmt.Errorf("journal: append to %s: %w", id, err)
		}
	}
	clear(w.dirty)
	return nil
}

// fence returns what append checks of execution id: its root, last seq
// and the root's token, from the cache or else the database.
func (w *writer) fence(id string) (f execFence, token int64, found bool, err error) {
	if f, ok := w.execs[id]; ok {
		if token, ok := w.tokens[f.root]; ok {
			return f, token, true, nil
		}
	}
	switch err := w.selFence.QueryRow(id).Scan(&f.root, &f.last, &f.ek, &token); {
	case errors.Is(err, sql.ErrNoRows):
		return f, 0, false, nil
	case err != nil:
		return f, 0, false, err
	}
	if st, ok := w.dirty[id]; ok { // not yet on the record
		f.last = st.last
	}
	w.execs[id], w.tokens[f.root] = f, token
	return f, token, true, nil
}

func (w *writer) clock() time.Time { return w.now().UTC() }

func (w *writer) create(e *journal.Execution) error {
	root := e.RootID
	if root == "" {
		root = e.ID
	}
	now := w.clock()
	created, updated := e.CreatedAt, e.UpdatedAt
	if created.IsZero() {
		created = now
	}
	if updated.IsZero() {
		updated = now
	}
	if w.lastEK == 0 {
		if err := w.selLastEK.QueryRow().Scan(&w.lastEK); err != nil {
			return fmt.Errorf("journal: create %s: %w", e.ID, err)
		}
	}
	// A definition is stored once, under its hash, and the record names it
	// by its key; only one whose hash is not its SHA-256 stays on the
	// record. It is stored first (the record refers to it), and taken
	// back out if the record is refused.
	def, hash, shared := e.Definition, any(e.DefinitionHash), definitionKey(e.Definition, e.DefinitionHash)
	var dk any
	newDefinition := int64(0)
	if shared {
		k, added, err := w.definition(e.DefinitionHash, e.Definition)
		if err != nil {
			return fmt.Errorf("journal: create %s: store its definition: %w", e.ID, err)
		}
		if added {
			newDefinition = k
		}
		def, hash, dk = nil, nil, k
	}
	// A large input is stored aside (schemaV6): the row is rewritten by
	// every commit that appends to the execution.
	input, aside := e.Input, len(e.Input) > inputInlineMax
	if aside {
		input = nil
	}
	ek := w.lastEK + 1
	var rootKey any // a root's root is itself: stored as NULL (schemaCompact)
	if root != e.ID {
		rootKey = root
	}
	res, err := w.insExec.Exec(e.ID, e.Workflow, e.Version, string(e.State), nullString(e.ParentID), rootKey, e.ParentPath,
		nullJSON(input), aside, nullJSON(e.Output), nullJSON(e.Error), nullJSON(e.Pauses),
		dk, nullJSON(def), hash, nullTimeValue(e.WakeAt), timeValue(created), timeValue(updated),
		nullJSON(labelsJSON(e.Labels)), e.StartedBy, e.TraceParent, ek)
	var n int64
	if err == nil {
		n, err = res.RowsAffected()
	}
	if err != nil {
		return fmt.Errorf("journal: create %s: %w", e.ID, err)
	}
	if n == 0 {
		if newDefinition != 0 {
			if _, err := w.delDefinition.Exec(newDefinition); err != nil {
				return fmt.Errorf("journal: create %s: %w", e.ID, err)
			}
			delete(w.definitions, e.DefinitionHash)
		}
		return refuse(fmt.Errorf("journal: create %s: %w", e.ID, journal.ErrExists))
	}
	w.lastEK = ek
	if aside {
		if _, err := w.insInput.Exec(ek, string(e.Input), inputSum(e.Input)); err != nil {
			return fmt.Errorf("journal: create %s: store its input: %w", e.ID, err)
		}
	}
	w.execs[e.ID] = execFence{root: root, ek: ek}
	return nil
}

// definition returns the key of the definition stored under hash, storing
// body under it first if there is none (added).
func (w *writer) definition(hash string, body []byte) (dk int64, added bool, err error) {
	if dk, ok := w.definitions[hash]; ok {
		return dk, false, nil
	}
	switch err := w.selDefinition.QueryRow(hash).Scan(&dk); {
	case errors.Is(err, sql.ErrNoRows):
		res, err := w.insDefinition.Exec(hash, string(body))
		if err == nil {
			dk, err = res.LastInsertId()
		}
		if err != nil {
			return 0, false, err
		}
		added = true
	case err != nil:
		return 0, false, err
	}
	w.definitions[hash] = dk
	return dk, added, nil
}

// createHeld creates root execution e and takes its lease. The record is
// new, so no lease of it can be in the table (leases refer to records):
// there is nothing for the lease to check.
func (w *writer) createHeld(e *journal.Execution, h journal.Holder, ttl time.Duration) (journal.Lease, error) {
	if err := w.create(e); err != nil {
		return journal.Lease{}, err
	}
	return w.grant(e.ID, h, ttl)
}

// appendArgs is an Append bound to database values.
type appendArgs struct {
	id              string
	token, expected int64
	release         bool
	events          []eventRow
	stamp           *time.Time // receives updated_at when written (journal.Append.Stamp)

	update             bool
	state              string // "" leaves it
	output, error      any    // nil leaves it
	setPauses, setWake bool
	pauses             any // nil clears
	wake               any // nil clears
}

type eventRow struct {
	path, name string
	kind       any // kindValue
	ordinal    int
	data       []byte
	time       time.Time // zero: the append's time, which the writer stamps
	// stored and started are data as stored (storedData), prepared by
	// the caller's goroutine when the time is known (ready): the writer
	// goroutine's time bounds the throughput.
	stored, started any
	ready           bool
}

// newEventRow binds ev.
func newEventRow(ev journal.Event) eventRow {
	r := eventRow{path: ev.Path, kind: kindValue(ev.Kind), name: ev.Name, ordinal: ev.Ordinal, data: ev.Data, time: ev.Time}
	if !ev.Time.IsZero() {
		r.stored, r.started = storedData(ev.Data, ev.Time)
		r.ready = true
	}
	return r
}

// storedData is how data is stored in an event of time t: its text, with
// its trailing started_at cut into started where it reads back the same
// (cutStarted).
func storedData(data []byte, t time.Time) (text, started any) {
	if rest, before, ok := cutStarted(data, t); ok {
		return string(rest), before
	}
	return nullJSON(data), nil
}

// append checks the fencing token and the expected sequence against the
// database as this transaction sees it, so appends earlier in the same batch
// count; then it writes the events and updates the record. A duplicate event
// key is the one refusal found while writing: append deletes the events it
// had inserted, so a refused append leaves nothing written.
func (w *writer) append(a *appendArgs) (int64, error) {
	f, token, found, err := w.fence(a.id)
	switch {
	case err != nil:
		return 0, fmt.Errorf("journal: append to %s: %w", a.id, err)
	case !found:
		return 0, refuse(fmt.Errorf("journal: append to %s: %w", a.id, journal.ErrNotFound))
	}
	root, last := f.root, f.last
	if token == 0 || token != a.token {
		return 0, refuse(fmt.Errorf("journal: append to %s with token %d: %w", a.id, a.token, journal.ErrFenced))
	}
	if a.expected != last {
		return 0, refuse(fmt.Errorf("journal: append to %s after seq %d, last is %d: %w", a.id, a.expected, last, journal.ErrConflict))
	}
	now := w.clock()
	nowValue := timeValue(now)
	for _, ev := range a.events {
		last++
		t, data, started := ev.time, ev.stored, ev.started
		if !ev.ready {
			t = now
			data, started = storedData(ev.data, t)
		}
		res, err := w.insEvent.Exec(f.ek, last, ev.path, ev.kind, ev.name, ev.ordinal, data, t.UnixNano(), started)
		var n int64
		if err == nil {
			n, err = res.RowsAffected()
		}
		if err != nil {
			return 0, fmt.Errorf("journal: append to %s: %w", a.id, err)
		}
		if n == 0 {
			if last > a.expected+1 {
				if _, err := w.delEvents.Exec(f.ek, a.expected+1, last-1); err != nil {
					return 0, fmt.Errorf("journal: append to %s: %w", a.id, err)
				}
			}
			return 0, refuse(fmt.Errorf("journal: append to %s: event (%q, %v, %d) already recorded: %w", a.id, ev.path, ev.kind, ev.ordinal, journal.ErrConflict))
		}
	}
	if a.update {
		if _, err := w.updRecord.Exec(last, nowValue, nullString(a.state), a.output, a.error, a.setPauses, a.pauses, a.setWake, a.wake, f.ek); err != nil {
			return 0, fmt.Errorf("journal: append to %s: %w", a.id, err)
		}
		delete(w.dirty, a.id)
	} else if last != f.last {
		w.dirty[a.id] = seqStamp{ek: f.ek, last: last, at: nowValue, begun: f.last == 0 || w.dirty[a.id].begun}
	}
	if a.stamp != nil && (a.update || last != f.last) {
		*a.stamp = now // what parseTime(nowText) gives back: UTC, to the nanosecond
	}
	f.last = last
	w.execs[a.id] = f
	if journal.State(a.state).Finished() {
		delete(w.execs, a.id) // it takes no more appends (but a cancel's): read it again then
	}
	if a.release {
		if _, err := w.delLease.Exec(root, a.token); err != nil {
			return 0, fmt.Errorf("journal: release lease of %s: %w", root, err)
		}
		w.tokens[root] = 0
	}
	return last, nil
}

// lease reads root's lease; the zero Lease when there is none.
func (w *writer) lease(root string) (journal.Lease, error) {
	return scanLease(root, w.selLease.QueryRow(root))
}

// leaseColumns are the columns scanLease reads.
const leaseColumns = `token, holder_id, holder_host, holder_pid, holder_node, expires`

func scanLease(root string, row *sql.Row) (journal.Lease, error) {
	l := journal.Lease{RootID: root}
	var expires storedTime
	switch err := row.Scan(&l.Token, &l.Holder.ID, &l.Holder.Host, &l.Holder.PID, &l.Holder.Node, &expires); {
	case errors.Is(err, sql.ErrNoRows):
		return journal.Lease{}, nil
	case err != nil:
		return journal.Lease{}, err
	}
	var err error
	l.Expires, err = expires.time()
	return l, err
}

func (w *writer) acquire(root string, h journal.Holder, ttl time.Duration, takeover int64) (journal.Lease, error) {
	var rootOfRoot string
	switch err := w.selExec.QueryRow(root).Scan(&rootOfRoot, new(int64)); {
	case errors.Is(err, sql.ErrNoRows):
		return journal.Lease{}, refuse(fmt.Errorf("journal: acquire %s: %w", root, journal.ErrNotFound))
	case err != nil:
		return journal.Lease{}, fmt.Errorf("journal: acquire %s: %w", root, err)
	}
	if rootOfRoot != root {
		return journal.Lease{}, refuse(fmt.Errorf("journal: acquire %s: not a root execution (its root is %s)", root, rootOfRoot))
	}
	cur, err := w.lease(root)
	if err != nil {
		return journal.Lease{}, fmt.Errorf("journal: acquire %s: %w", root, err)
	}
	if cur.Token != 0 && cur.Expires.After(w.clock()) && (takeover == 0 || takeover != cur.Token) {
		return journal.Lease{}, refuse(&journal.BusyError{Lease: cur})
	}
	return w.grant(root, h, ttl)
}

// grant gives root's lease to h with the next token, replacing any lease
// root has.
func (w *writer) grant(root string, h journal.Holder, ttl time.Duration) (journal.Lease, error) {
	l := journal.Lease{RootID: root, Holder: h, Expires: w.clock().Add(ttl)}
	if w.lastToken == 0 {
		if err := w.selToken.QueryRow().Scan(&w.lastToken); err != nil {
			return journal.Lease{}, fmt.Errorf("journal: acquire %s: next token: %w", root, err)
		}
	}
	w.lastToken++
	l.Token, w.tokenDirty = w.lastToken, true
	if _, err := w.putLease.Exec(root, l.Token, h.ID, h.Host, h.PID, h.Node, timeValue(l.Expires)); err != nil {
		return journal.Lease{}, fmt.Errorf("journal: acquire %s: %w", root, err)
	}
	l.Expires = asStored(l.Expires) // what a later read returns
	w.tokens[root] = l.Token
	return l, nil
}

func (w *writer) renew(l journal.Lease, ttl time.Duration) (journal.Lease, error) {
	cur, err := w.lease(l.RootID)
	if err != nil {
		return journal.Lease{}, fmt.Errorf("journal: renew lease of %s: %w", l.RootID, err)
	}
	if cur.Token == 0 || cur.Token != l.Token {
		return journal.Lease{}, refuse(fmt.Errorf("journal: renew lease %d of %s: %w", l.Token, l.RootID, journal.ErrFenced))
	}
	cur.Expires = asStored(w.clock().Add(ttl))
	if _, err := w.renewLease.Exec(timeValue(cur.Expires), l.RootID, l.Token); err != nil {
		return journal.Lease{}, fmt.Errorf("journal: renew lease of %s: %w", l.RootID, err)
	}
	return cur, nil
}

func (w *writer) release(l journal.Lease) error {
	res, err := w.delLease.Exec(l.RootID, l.Token)
	if err != nil {
		return fmt.Errorf("journal: release lease of %s: %w", l.RootID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("journal: release lease of %s: %w", l.RootID, err)
	}
	if n == 0 {
		delete(w.tokens, l.RootID)
		return refuse(fmt.Errorf("journal: release lease %d of %s: %w", l.Token, l.RootID, journal.ErrFenced))
	}
	w.tokens[l.RootID] = 0
	return nil
}

// labelsJSON is the stored form of a start's labels; nil for none.
func labelsJSON(l map[string]string) []byte {
	if len(l) == 0 {
		return nil
	}
	b, _ := json.Marshal(l)
	return b
}

// claimQuery selects the claimable roots in claim order (journal.Claim):
// its class (0 cancel, 1 resume or due, 2 takeover, 3 start), then the
// time that orders the class. :now is the clock and :lim the limit;
// claimSQL puts in the lists of exclusions (:x0, :x1, …) and of holders
// found gone (:g0, …), both usually empty. A crash-looping
// root (stalled takeovers, its back-off not over, its tree unchanged
// since the last takeover) waits, unless a cancel is requested.
//
// The final WHERE decides what may be claimed; cand only bounds the rows
// it looks at (CROSS JOIN: SQLite reads cand first, not every record of
// a state), each part through an index (schemaV10), so that a claim
// costs what it may take and what is in flight, not the backlog of queued
// starts or the finished history: every cancel requested; the first :lim due
// timers of each waiting state; every lease expired or of a gone holder;
// every begun root running (in flight, or released unfinished: a resume);
// the first :lim starts by (created_at, id) with no lease. Each class's
// first :lim rows in claim order are among them.
const claimQuery = `WITH cand(id) AS (
		SELECT id FROM executions INDEXED BY executions_cancels
			WHERE cancel_requested AND state IN ('RUNNING', 'WAITING', 'PAUSED')
		UNION ALL
		SELECT id FROM (` + dueTimers + `'WAITING'` + dueTimersOrder + `)
		UNION ALL
		SELECT id FROM (` + dueTimers + `'PAUSED'` + dueTimersOrder + `)
		UNION ALL
		SELECT root_id FROM leases WHERE expires <= :now OR holder_id IN (GONE)
		UNION ALL
		SELECT id FROM executions INDEXED BY executions_inflight
			WHERE parent_id IS NULL AND state = 'RUNNING' AND begun
		UNION ALL
		SELECT id FROM (SELECT e.id FROM executions e INDEXED BY executions_queued
			WHERE e.parent_id IS NULL AND e.state = 'RUNNING' AND NOT e.begun
			AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.root_id = e.id) AND e.id NOT IN (EXCLUDED)
			ORDER BY e.created_at, e.id LIMIT :lim))
	SELECT e.id, coalesce(l.token, 0), e.stalled, e.stall_mark,
	` + treeSeq + ` AS tree_seq,
	CASE WHEN e.cancel_requested THEN 'cancel'
		WHEN e.state <> 'RUNNING' THEN 'timer'
		WHEN l.token IS NOT NULL THEN 'takeover'
		WHEN e.last_seq > 0 THEN 'resume'
		ELSE 'start' END AS reason,
	CASE WHEN e.cancel_requested THEN 0
		WHEN e.state <> 'RUNNING' OR l.token IS NULL AND e.last_seq > 0 THEN 1
		WHEN l.token IS NOT NULL THEN 2
		ELSE 3 END AS class,
	CASE WHEN e.cancel_requested THEN e.updated_at
		WHEN e.state <> 'RUNNING' THEN e.wake_at
		WHEN l.token IS NOT NULL THEN l.expires
		WHEN e.last_seq > 0 THEN e.updated_at
		ELSE e.created_at END AS key
	FROM (SELECT DISTINCT id FROM cand) c CROSS JOIN executions e ON e.id = c.id LEFT JOIN leases l ON l.root_id = e.id
	WHERE e.id NOT IN (EXCLUDED)
	AND e.parent_id IS NULL AND e.state IN ('RUNNING', 'WAITING', 'PAUSED')
	AND (e.cancel_requested OR e.state = 'RUNNING' OR e.wake_at <= :now)
	AND (e.cancel_requested OR e.state <> 'RUNNING' OR l.token IS NULL OR e.crash_loop_until IS NULL OR e.crash_loop_until <= :now
		OR e.stall_mark <> ` + treeSeq + `)
	AND (l.token IS NULL OR l.expires <= :now OR l.holder_id IN (GONE))
	ORDER BY class, key, e.id LIMIT :lim`

// dueTimers + a state + dueTimersOrder reads the first :lim roots of that
// state whose timer is due, in wake_at order, that a claim may take (see
// claimQuery).
const (
	dueTimers = `SELECT e.id FROM executions e INDEXED BY executions_state LEFT JOIN leases l ON l.root_id = e.id
			WHERE e.state = `
	dueTimersOrder = ` AND e.wake_at <= :now AND e.parent_id IS NULL
			AND (l.token IS NULL OR l.expires <= :now OR l.holder_id IN (GONE)) AND e.id NOT IN (EXCLUDED)
			ORDER BY e.wake_at LIMIT :lim`
)

// treeSeq is the sum of the last sequences of root e's tree: its own and
// its descendants' (found by the index on root, which holds no root).
const treeSeq = `(e.last_seq + coalesce((SELECT sum(t.last_seq) FROM executions t WHERE t.root = e.id), 0))`

// claimSQL is claimQuery with nx exclusions and ng holders gone.
func claimSQL(nx, ng int) string {
	list := func(prefix string, n int) string {
		names := make([]string, n)
		for i := range names {
			names[i] = fmt.Sprintf(":%s%d", prefix, i)
		}
		return strings.Join(names, ", ")
	}
	return strings.NewReplacer("(EXCLUDED)", "("+list("x", nx)+")", "(GONE)", "("+list("g", ng)+")").Replace(claimQuery)
}

// goneHolders asks r.Gone about the other processes of r.Holder's node
// that hold live leases, and returns the IDs of those it says are gone.
func goneHolders(r journal.ClaimRequest, rows *sql.Rows) ([]string, error) {
	var gone []string
	for rows.Next() {
		var h journal.Holder
		if err := rows.Scan(&h.ID, &h.Host, &h.PID, &h.Node); err != nil {
			return nil, err
		}
		if journal.SameNode(r.Holder, h) && r.Gone(h) {
			gone = append(gone, h.ID)
		}
	}
	return gone, rows.Err()
}

// liveHoldersQuery lists the other holders of live leases on a node ($1
// node, $2 pid, $3 clock), for journal.ClaimRequest.Gone.
const liveHoldersQuery = `SELECT DISTINCT holder_id, holder_host, holder_pid, holder_node FROM leases
	WHERE holder_node = ? AND holder_pid <> ? AND expires > ?`

// claim takes the leases of up to r.Limit claimable roots, in claim order.
func (w *writer) claim(r journal.ClaimRequest) (journal.ClaimResult, error) {
	var res journal.ClaimResult
	t := w.clock()
	now := timeValue(t)
	var gone []string
	if r.Gone != nil && r.Holder.Node != "" {
		rows, err := w.conn.QueryContext(context.Background(), liveHoldersQuery, r.Holder.Node, r.Holder.PID, now)
		if err != nil {
			return res, fmt.Errorf("journal: claim: %w", err)
		}
		gone, err = goneHolders(r, rows)
		rows.Close()
		if err != nil {
			return res, fmt.Errorf("journal: claim: %w", err)
		}
	}
	args := []any{sql.Named("now", now), sql.Named("lim", max(r.Limit, 0))}
	for i, id := range r.Exclude {
		args = append(args, sql.Named(fmt.Sprintf("x%d", i), id))
	}
	for i, id := range gone {
		args = append(args, sql.Named(fmt.Sprintf("g%d", i), id))
	}
	type cand struct {
		id                 string
		token              int64
		stalled            int
		stallMark, treeSeq int64
		reason             string
	}
	var cands []cand
	var rows *sql.Rows
	var err error
	if len(r.Exclude) == 0 && len(gone) == 0 {
		if w.claim0 == nil {
			// Prepared at the first claim, not at Open: a CLI command
			// never claims, and preparing it cost each one ~1 ms.
			if w.claim0, err = w.conn.PrepareContext(context.Background(), claimSQL(0, 0)); err != nil {
				return res, fmt.Errorf("journal: claim: %w", err)
			}
		}
		rows, err = w.claim0.Query(args...) // the usual claim: prepared once
	} else {
		rows, err = w.conn.QueryContext(context.Background(), claimSQL(len(r.Exclude), len(gone)), args...)
	}
	if err != nil {
		return res, fmt.Errorf("journal: claim: %w", err)
	}
	for rows.Next() {
		var c cand
		if err := rows.Scan(&c.id, &c.token, &c.stalled, &c.stallMark, &c.treeSeq, &c.reason, new(int), new(storedTime)); err != nil {
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
		l, err := w.acquire(c.id, r.Holder, journal.LeaseTTL(r.TTL), c.token)
		if err != nil {
			return journal.ClaimResult{}, err
		}
		cl := journal.Claim{Lease: l, Reason: journal.ClaimReason(c.reason)}
		if cl.Reason == journal.ClaimTakeover {
			cl.Stalled = 1
			if c.stalled > 0 && c.treeSeq == c.stallMark {
				cl.Stalled = c.stalled + 1
			}
			if _, err := w.conn.ExecContext(context.Background(), `UPDATE executions SET takeovers = takeovers + 1,
				stalled = ?, stall_mark = ?, crash_loop_until = ? WHERE id = ?`,
				cl.Stalled, c.treeSeq, nullTimeValue(journal.CrashLoopUntil(cl.Stalled, t)), c.id); err != nil {
				return journal.ClaimResult{}, fmt.Errorf("journal: claim %s: %w", c.id, err)
			}
		}
		res.Claims = append(res.Claims, cl)
	}
	var next storedTime
	if err := w.conn.QueryRowContext(context.Background(), `SELECT min(wake_at) FROM executions
		WHERE parent_id IS NULL AND state IN ('WAITING', 'PAUSED') AND wake_at > ?`, now).Scan(&next); err != nil {
		return journal.ClaimResult{}, fmt.Errorf("journal: claim: %w", err)
	}
	if res.NextWake, err = next.time(); err != nil {
		return journal.ClaimResult{}, fmt.Errorf("journal: claim: %w", err)
	}
	return res, nil
}

// requestCancel marks root id CancelRequested unless it is finished.
func (w *writer) requestCancel(id, by string) error {
	var root string
	switch err := w.selExec.QueryRow(id).Scan(&root, new(int64)); {
	case errors.Is(err, sql.ErrNoRows):
		return refuse(fmt.Errorf("journal: cancel %s: %w", id, journal.ErrNotFound))
	case err != nil:
		return fmt.Errorf("journal: cancel %s: %w", id, err)
	}
	if root != id {
		return refuse(fmt.Errorf("journal: cancel %s: %w", id, &journal.NotRootError{ID: id, RootID: root}))
	}
	_, err := w.conn.ExecContext(context.Background(), `UPDATE executions SET cancel_requested = 1, cancel_requested_by = ?, updated_at = ?
		WHERE id = ? AND NOT cancel_requested AND state NOT IN ('COMPLETED', 'FAILED', 'CANCELLED')`, by, timeValue(w.clock()), id)
	if err != nil {
		return fmt.Errorf("journal: cancel %s: %w", id, err)
	}
	return nil
}
