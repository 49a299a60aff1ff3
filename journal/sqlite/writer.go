package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/loomwork/loom/journal"
	"github.com/mattn/go-sqlite3"
)

// An op is one queued write. run executes inside the batch's transaction,
// under its own savepoint; err is set before done is closed.
type op struct {
	ctx    context.Context
	run    func(*writer) error
	append bool // counts in Stats.Appends when it succeeds
	events int

	state atomic.Int32 // opQueued → opTaken by the writer, or → opAbandoned by the caller
	err   error
	done  chan struct{}
}

const (
	opQueued int32 = iota
	opTaken
	opAbandoned
)

// submit queues o and waits for its commit. A caller whose context ends
// while o is still queued gets ctx.Err() and o never runs; once the writer
// has taken o, the caller waits for the outcome, so an error never hides a
// committed write.
func (j *Journal) submit(ctx context.Context, o *op) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o.ctx, o.done = ctx, make(chan struct{})
	j.mu.RLock()
	if j.closed {
		j.mu.RUnlock()
		return ErrClosed
	}
	select {
	case j.queue <- o:
	case <-ctx.Done():
		j.mu.RUnlock()
		return ctx.Err()
	}
	j.mu.RUnlock()
	select {
	case <-o.done:
		return o.err
	case <-ctx.Done():
		if o.state.CompareAndSwap(opQueued, opAbandoned) {
			return ctx.Err()
		}
		<-o.done
		return o.err
	}
}

// writer owns the write connection. Only its goroutine touches conn.
type writer struct {
	conn   *sql.Conn
	now    func() time.Time
	max    int
	exited chan struct{}
	batch  []*op

	commits, writes, appends, events, largest atomic.Int64

	selExec, selFence, selLease, insEvent, updSeq, updRecord, insExec, nextToken, putLease, renewLease, delLease *sql.Stmt
	savepoint, rollbackTo, releaseSP                                                                             *sql.Stmt
}

func newWriter(ctx context.Context, conn *sql.Conn, o options) (*writer, error) {
	w := &writer{conn: conn, now: o.now, max: o.maxBatch, exited: make(chan struct{})}
	for _, s := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&w.selExec, `SELECT root_id, last_seq FROM executions WHERE id = ?`},
		{&w.selFence, `SELECT e.root_id, e.last_seq, coalesce(l.token, 0) FROM executions e
			LEFT JOIN leases l ON l.root_id = e.root_id WHERE e.id = ?`},
		{&w.selLease, `SELECT token, holder_id, holder_host, holder_pid, expires FROM leases WHERE root_id = ?`},
		{&w.insEvent, `INSERT INTO events (execution_id, seq, path, kind, name, ordinal, data, time) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`},
		{&w.updSeq, `UPDATE executions SET last_seq = ?, updated_at = ? WHERE id = ?`},
		{&w.updRecord, `UPDATE executions SET last_seq = ?, updated_at = ?,
			state   = coalesce(?, state),
			output  = coalesce(?, output),
			error   = coalesce(?, error),
			pauses  = CASE WHEN ? THEN ? ELSE pauses END,
			wake_at = CASE WHEN ? THEN ? ELSE wake_at END
			WHERE id = ?`},
		{&w.insExec, `INSERT INTO executions (id, workflow, version, state, parent_id, root_id, parent_path,
			input, output, error, pauses, definition, definition_hash, wake_at, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`},
		{&w.nextToken, `UPDATE counters SET value = value + 1 WHERE name = 'lease_token' RETURNING value`},
		{&w.putLease, `INSERT INTO leases (root_id, token, holder_id, holder_host, holder_pid, expires) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (root_id) DO UPDATE SET token = excluded.token, holder_id = excluded.holder_id,
			holder_host = excluded.holder_host, holder_pid = excluded.holder_pid, expires = excluded.expires`},
		{&w.renewLease, `UPDATE leases SET expires = ? WHERE root_id = ? AND token = ?`},
		{&w.delLease, `DELETE FROM leases WHERE root_id = ? AND token = ?`},
		// Prepared once: savepoints are two statements per write.
		{&w.savepoint, `SAVEPOINT op`},
		{&w.rollbackTo, `ROLLBACK TO op`},
		{&w.releaseSP, `RELEASE op`},
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
	for _, st := range []*sql.Stmt{w.selExec, w.selFence, w.selLease, w.insEvent, w.updSeq, w.updRecord, w.insExec, w.nextToken, w.putLease, w.renewLease, w.delLease, w.savepoint, w.rollbackTo, w.releaseSP} {
		if st != nil {
			st.Close()
		}
	}
	return w.conn.Close()
}

func (w *writer) stats() Stats {
	return Stats{Commits: w.commits.Load(), Writes: w.writes.Load(), Appends: w.appends.Load(), Events: w.events.Load(), LargestBatch: w.largest.Load()}
}

// loop commits what is queued, as many ops at a time as are waiting (up to
// max): while one transaction is being made durable, the next batch queues.
func (w *writer) loop(queue <-chan *op) {
	defer close(w.exited)
	for o := range queue {
		w.batch = append(w.batch[:0], o)
	fill:
		for len(w.batch) < w.max {
			select {
			case o, ok := <-queue:
				if !ok {
					break fill
				}
				w.batch = append(w.batch, o)
			default:
				break fill
			}
		}
		w.commit(w.batch)
		clear(w.batch)
	}
}

func (w *writer) commit(batch []*op) {
	live := batch[:0]
	for _, o := range batch {
		if o.state.CompareAndSwap(opQueued, opTaken) {
			live = append(live, o)
		}
	}
	if len(live) == 0 {
		return
	}
	ctx := context.Background() // one caller's deadline must not abort the others' transaction
	fail := func(err error) {
		for _, o := range live {
			o.err = err
			close(o.done)
		}
	}
	if _, err := w.conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		fail(fmt.Errorf("journal: begin: %w", err))
		return
	}
	for _, o := range live {
		if err := o.ctx.Err(); err != nil {
			o.err = err
			continue
		}
		if _, err := w.savepoint.ExecContext(ctx); err != nil {
			w.rollback(ctx)
			fail(fmt.Errorf("journal: savepoint: %w", err))
			return
		}
		o.err = o.run(w)
		if o.err != nil {
			if _, err := w.rollbackTo.ExecContext(ctx); err != nil {
				w.rollback(ctx)
				fail(fmt.Errorf("journal: rollback to savepoint after %v: %w", o.err, err))
				return
			}
		}
		if _, err := w.releaseSP.ExecContext(ctx); err != nil {
			w.rollback(ctx)
			fail(fmt.Errorf("journal: release savepoint: %w", err))
			return
		}
	}
	if _, err := w.conn.ExecContext(ctx, "COMMIT"); err != nil {
		w.rollback(ctx)
		fail(fmt.Errorf("journal: commit: %w", err))
		return
	}
	w.commits.Add(1)
	w.writes.Add(int64(len(live)))
	if n := int64(len(live)); n > w.largest.Load() {
		w.largest.Store(n)
	}
	for _, o := range live {
		if o.append && o.err == nil {
			w.appends.Add(1)
			w.events.Add(int64(o.events))
		}
		close(o.done)
	}
}

func (w *writer) rollback(ctx context.Context) {
	// Fails harmlessly when SQLite has already rolled the transaction back.
	_, _ = w.conn.ExecContext(ctx, "ROLLBACK")
}

func (w *writer) clock() time.Time { return w.now().UTC() }

func (w *writer) create(e *journal.Execution) error {
	root := e.RootID
	if root == "" {
		root = e.ID
	}
	switch err := w.selExec.QueryRow(e.ID).Scan(new(string), new(int64)); {
	case err == nil:
		return fmt.Errorf("journal: create %s: %w", e.ID, journal.ErrExists)
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("journal: create %s: %w", e.ID, err)
	}
	now := w.clock()
	created, updated := e.CreatedAt, e.UpdatedAt
	if created.IsZero() {
		created = now
	}
	if updated.IsZero() {
		updated = now
	}
	_, err := w.insExec.Exec(e.ID, e.Workflow, e.Version, string(e.State), nullString(e.ParentID), root, e.ParentPath,
		nullJSON(e.Input), nullJSON(e.Output), nullJSON(e.Error), nullJSON(e.Pauses),
		nullJSON(e.Definition), e.DefinitionHash, nullTime(e.WakeAt), formatTime(created), formatTime(updated))
	if err != nil {
		return fmt.Errorf("journal: create %s: %w", e.ID, err)
	}
	return nil
}

// appendArgs is an Append bound to database values.
type appendArgs struct {
	id              string
	token, expected int64
	release         bool
	events          []eventRow

	update             bool
	state              string // "" leaves it
	output, error      any    // nil leaves it
	setPauses, setWake bool
	pauses             any // nil clears
	wake               any // nil clears
}

type eventRow struct {
	path, kind, name string
	ordinal          int
	data             any
	time             time.Time
}

// append checks the fencing token and the expected sequence against the
// database as this transaction sees it, so appends earlier in the same
// batch count.
func (w *writer) append(a *appendArgs) (int64, error) {
	var root string
	var last, token int64
	switch err := w.selFence.QueryRow(a.id).Scan(&root, &last, &token); {
	case errors.Is(err, sql.ErrNoRows):
		return 0, fmt.Errorf("journal: append to %s: %w", a.id, journal.ErrNotFound)
	case err != nil:
		return 0, fmt.Errorf("journal: append to %s: %w", a.id, err)
	}
	if token == 0 || token != a.token {
		return 0, fmt.Errorf("journal: append to %s with token %d: %w", a.id, a.token, journal.ErrFenced)
	}
	if a.expected != last {
		return 0, fmt.Errorf("journal: append to %s after seq %d, last is %d: %w", a.id, a.expected, last, journal.ErrConflict)
	}
	now := w.clock()
	nowText := formatTime(now)
	for _, ev := range a.events {
		last++
		t := nowText
		if !ev.time.IsZero() {
			t = formatTime(ev.time)
		}
		if _, err := w.insEvent.Exec(a.id, last, ev.path, ev.kind, ev.name, ev.ordinal, ev.data, t); err != nil {
			if isConstraint(err) {
				return 0, fmt.Errorf("journal: append to %s: event (%q, %s, %d) already recorded: %w", a.id, ev.path, ev.kind, ev.ordinal, journal.ErrConflict)
			}
			return 0, fmt.Errorf("journal: append to %s: %w", a.id, err)
		}
	}
	var err error
	if a.update {
		_, err = w.updRecord.Exec(last, nowText, nullString(a.state), a.output, a.error, a.setPauses, a.pauses, a.setWake, a.wake, a.id)
	} else {
		_, err = w.updSeq.Exec(last, nowText, a.id)
	}
	if err != nil {
		return 0, fmt.Errorf("journal: append to %s: %w", a.id, err)
	}
	if a.release {
		if _, err := w.delLease.Exec(root, a.token); err != nil {
			return 0, fmt.Errorf("journal: release lease of %s: %w", root, err)
		}
	}
	return last, nil
}

func isConstraint(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.Code == sqlite3.ErrConstraint &&
		(se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey)
}

// lease reads root's lease; the zero Lease when there is none.
func (w *writer) lease(root string) (journal.Lease, error) {
	return scanLease(root, w.selLease.QueryRow(root))
}

func scanLease(root string, row *sql.Row) (journal.Lease, error) {
	l := journal.Lease{RootID: root}
	var expires string
	switch err := row.Scan(&l.Token, &l.Holder.ID, &l.Holder.Host, &l.Holder.PID, &expires); {
	case errors.Is(err, sql.ErrNoRows):
		return journal.Lease{}, nil
	case err != nil:
		return journal.Lease{}, err
	}
	var err error
	l.Expires, err = parseTime(expires)
	return l, err
}

func (w *writer) acquire(root string, h journal.Holder, ttl time.Duration, takeover int64) (journal.Lease, error) {
	var rootOfRoot string
	switch err := w.selExec.QueryRow(root).Scan(&rootOfRoot, new(int64)); {
	case errors.Is(err, sql.ErrNoRows):
		return journal.Lease{}, fmt.Errorf("journal: acquire %s: %w", root, journal.ErrNotFound)
	case err != nil:
		return journal.Lease{}, fmt.Errorf("journal: acquire %s: %w", root, err)
	}
	if rootOfRoot != root {
		return journal.Lease{}, fmt.Errorf("journal: acquire %s: not a root execution (its root is %s)", root, rootOfRoot)
	}
	cur, err := w.lease(root)
	if err != nil {
		return journal.Lease{}, fmt.Errorf("journal: acquire %s: %w", root, err)
	}
	now := w.clock()
	if cur.Token != 0 && cur.Expires.After(now) && (h.ID == "" || cur.Holder.ID != h.ID) && (takeover == 0 || takeover != cur.Token) {
		return journal.Lease{}, &journal.BusyError{Lease: cur}
	}
	l := journal.Lease{RootID: root, Holder: h, Expires: now.Add(ttl)}
	if err := w.nextToken.QueryRow().Scan(&l.Token); err != nil {
		return journal.Lease{}, fmt.Errorf("journal: acquire %s: next token: %w", root, err)
	}
	if _, err := w.putLease.Exec(root, l.Token, h.ID, h.Host, h.PID, formatTime(l.Expires)); err != nil {
		return journal.Lease{}, fmt.Errorf("journal: acquire %s: %w", root, err)
	}
	l.Expires, _ = parseTime(formatTime(l.Expires)) // what a later read returns
	return l, nil
}

func (w *writer) renew(l journal.Lease, ttl time.Duration) (journal.Lease, error) {
	cur, err := w.lease(l.RootID)
	if err != nil {
		return journal.Lease{}, fmt.Errorf("journal: renew lease of %s: %w", l.RootID, err)
	}
	if cur.Token == 0 || cur.Token != l.Token {
		return journal.Lease{}, fmt.Errorf("journal: renew lease %d of %s: %w", l.Token, l.RootID, journal.ErrFenced)
	}
	cur.Expires, _ = parseTime(formatTime(w.clock().Add(ttl)))
	if _, err := w.renewLease.Exec(formatTime(cur.Expires), l.RootID, l.Token); err != nil {
		return journal.Lease{}, fmt.Errorf("journal: renew lease of %s: %w", l.RootID, err)
	}
	return cur, nil
}

func (w *writer) release(l journal.Lease) error {
	res, err := w.delLease.Exec(l.RootID, l.Token)
	if err != nil {
		return fmt.Errorf("journal: release lease of %s: %w", l.RootID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("journal: release lease %d of %s: %w", l.Token, l.RootID, journal.ErrFenced)
	}
	return nil
}
