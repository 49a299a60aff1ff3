package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/internal/groupcommit"
	"github.com/loomwork/loom/journal/internal/timetext"
	_ "github.com/mattn/go-sqlite3" // registers the "sqlite3" driver
)

type options struct {
	busyTimeout time.Duration
	maxBatch    int
	readConns   int
	now         func() time.Time
}

// Option configures Open.
type Option func(*options)

// DefaultBusyTimeout is how long a write waits, unless WithBusyTimeout says
// otherwise, for the write lock another process holds before it fails with
// journal.ErrUnavailable: long enough for another loom's commits, short
// enough that a lock held by a stuck process reads as an outage.
const DefaultBusyTimeout = 5 * time.Second

// WithBusyTimeout sets how long a connection waits for a lock held by another
// process (another loom on the same file) before failing; default
// DefaultBusyTimeout.
func WithBusyTimeout(d time.Duration) Option {
	return func(o *options) { o.busyTimeout = d }
}

// WithMaxBatch caps how many queued writes the writer commits in one
// transaction; default 1024. 1 gives one commit per write.
func WithMaxBatch(n int) Option {
	return func(o *options) { o.maxBatch = max(n, 1) }
}

// WithReadConns sets the size of the read pool; default 4.
func WithReadConns(n int) Option {
	return func(o *options) { o.readConns = max(n, 1) }
}

// WithClock replaces time.Now: it stamps records, events and lease expiries,
// and decides whether a lease has expired.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// Journal is a journal.Journal in one SQLite file. Writes (Create, Append
// and the lease methods) are queued to one writer goroutine that owns the
// only write connection; reads go through a separate pool.
type Journal struct {
	opts  options
	wdb   *sql.DB // holds the one write connection, used only by the writer
	rdb   *sql.DB // read pool
	w     *writer
	queue *groupcommit.Queue[*op]
}

var _ journal.Journal = (*Journal)(nil)

// Open opens (creating if needed) the journal in the file at path and brings
// its schema to SchemaVersion. It fails if the file's schema is newer than
// this package knows, or if SQLite does not confirm WAL and synchronous=FULL.
func Open(path string, opts ...Option) (*Journal, error) {
	o := options{busyTimeout: DefaultBusyTimeout, maxBatch: 1024, readConns: 4, now: time.Now}
	for _, fn := range opts {
		fn(&o)
	}
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite journal: %q: need a file path (readers and the writer share it)", path)
	}
	// _mutex=no opens each connection without SQLite's own mutex
	// (SQLITE_OPEN_NOMUTEX): database/sql never uses one connection from two
	// goroutines at once, and each bind, step and reset took and released
	// it (pthread mutex calls: 5.1% of BenchmarkWriter's CPU, 3.4% without
	// it: SQLite's allocator and page cache keep theirs).
	dsn := "file:" + strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path) +
		fmt.Sprintf("?_journal_mode=WAL&_synchronous=FULL&_foreign_keys=1&_busy_timeout=%d&_mutex=no", o.busyTimeout.Milliseconds())

	j := &Journal{opts: o, queue: groupcommit.NewQueue[*op](4*o.maxBatch, journal.ErrClosed)}
	var err error
	if j.wdb, err = sql.Open("sqlite3", dsn); err != nil {
		return nil, fmt.Errorf("sqlite journal %s: %w", path, unavailable(err))
	}
	j.wdb.SetMaxOpenConns(1)
	ctx := context.Background()
	conn, err := j.wdb.Conn(ctx)
	if err == nil {
		err = setup(ctx, conn, o.busyTimeout)
	}
	if err == nil {
		err = migrate(ctx, conn, o.busyTimeout)
	}
	if err == nil {
		j.w, err = newWriter(ctx, conn, o)
	}
	if err != nil {
		if conn != nil {
			conn.Close()
		}
		j.wdb.Close()
		return nil, fmt.Errorf("sqlite journal %s: %w", path, classify("", err))
	}

	// Each read connection keeps its last readStmtCache statements
	// prepared (go-sqlite3's cache, off by default): a record's read
	// prepares a long statement (the definition's and input's subqueries),
	// and replaying a tree of call steps reads every child's record and
	// events.
	if j.rdb, err = sql.Open("sqlite3", dsn+fmt.Sprintf("&_query_only=1&_stmt_cache_size=%d", readStmtCache)); err != nil {
		j.w.close()
		j.wdb.Close()
		return nil, fmt.Errorf("sqlite journal %s: %w", path, unavailable(err))
	}
	j.rdb.SetMaxOpenConns(o.readConns)
	j.rdb.SetMaxIdleConns(o.readConns)
	go j.queue.Run(o.maxBatch, j.w.commit)
	return j, nil
}

// walCheckpointPages is the writer's wal_autocheckpoint: the commit that
// takes the write-ahead log past this many pages copies them into the
// database file (two fsyncs, and every page the log holds) before it
// returns. SQLite's default, 1,000 pages, made one commit in four or five
// of the 1,000 x 10 run such a checkpoint, on the writer goroutine whose
// time bounds the throughput; at 4,000 (16 MiB of log at most) the pages
// a run rewrites again and again are copied once per checkpoint, not once
// per four commits (docs/design.md has the figures). A process that opens
// the file after a crash reads the log once to rebuild its index: 16 MiB
// at most.
const walCheckpointPages = 4000

// readStmtCache is how many prepared statements each read connection
// keeps.
const readStmtCache = 32

// setup sets the pragmas the journal's durability rests on and reads them
// back: a driver or build that silently ignores one must not pass for durable.
func setup(ctx context.Context, c *sql.Conn, busy time.Duration) error {
	for _, p := range []string{
		"PRAGMA journal_mode = WAL",
		"PRAGMA synchronous = FULL",
		"PRAGMA foreign_keys = ON",
		fmt.Sprintf("PRAGMA busy_timeout = %d", busy.Milliseconds()),
		fmt.Sprintf("PRAGMA wal_autocheckpoint = %d", walCheckpointPages),
	} {
		if _, err := c.ExecContext(ctx, p); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	var mode string
	var sync, fk int
	if err := c.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return err
	}
	if err := c.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
		return err
	}
	if err := c.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil {
		return err
	}
	switch {
	case !strings.EqualFold(mode, "wal"):
		return fmt.Errorf("journal_mode is %q, want wal", mode)
	case sync != 2:
		return fmt.Errorf("synchronous is %d, want 2 (FULL)", sync)
	case fk != 1:
		return errors.New("foreign_keys is off")
	}
	return nil
}

// Close finishes the writes already queued, then closes the database.
// Calls made after Close fail with journal.ErrClosed.
func (j *Journal) Close() error {
	if !j.queue.Close() {
		return nil
	}
	if j.w == nil {
		return j.rdb.Close() // read-only: there is no writer
	}
	return errors.Join(j.w.close(), j.wdb.Close(), j.rdb.Close())
}

// Stats counts the writer's work since Open.
type Stats = groupcommit.Stats

// Stats returns the writer's counters.
func (j *Journal) Stats() Stats {
	if j.w == nil {
		return Stats{}
	}
	return j.w.Counters.Stats()
}

// Create implements journal.Journal.
func (j *Journal) Create(ctx context.Context, e *journal.Execution) error {
	if err := e.Validate(); err != nil {
		return err
	}
	// The writer reads e while this call waits for it (see submit).
	return j.submit(ctx, &op{fenced: true, run: func(w *writer) error { return w.create(e) }})
}

// CreateHeld implements journal.Journal: both writes are in one
// transaction, and a refused lease takes the record back out, so neither is
// seen without the other.
func (j *Journal) CreateHeld(ctx context.Context, e *journal.Execution, h journal.Holder, ttl time.Duration) (journal.Lease, error) {
	if err := e.Validate(); err != nil {
		return journal.Lease{}, err
	}
	if e.RootID != "" && e.RootID != e.ID {
		return journal.Lease{}, fmt.Errorf("journal: create %s: only a root execution can be created held (its root is %s)", e.ID, e.RootID)
	}
	var l journal.Lease
	err := j.submit(ctx, &op{fenced: true, run: func(w *writer) (err error) {
		l, err = w.createHeld(e, h, journal.LeaseTTL(ttl))
		return err
	}})
	return l, err
}

// Append implements journal.Journal.
func (j *Journal) Append(ctx context.Context, a journal.Append) (int64, error) {
	if err := a.Validate(); err != nil {
		return 0, err
	}
	p := appendArgs{id: a.ExecutionID, token: a.Token, expected: a.ExpectedSeq, release: a.Release, stamp: a.Stamp, events: make([]eventRow, len(a.Events))}
	for i, ev := range a.Events {
		p.events[i] = newEventRow(ev)
	}
	if u := a.Update; u != nil {
		p.update = true
		if u.State != nil {
			p.state = string(*u.State)
		}
		p.output, p.error = nullJSON(u.Output), nullJSON(u.Error)
		if len(u.Pauses) > 0 {
			p.setPauses = true
			if strings.TrimSpace(string(u.Pauses)) != "null" {
				p.pauses = string(u.Pauses)
			}
		}
		if u.WakeAt != nil {
			p.setWake, p.wake = true, nullTimeValue(*u.WakeAt)
		}
	}
	var last int64
	o := &op{Ticket: groupcommit.Ticket{Append: true, Events: len(a.Events)}, fenced: true, run: func(w *writer) (err error) {
		last, err = w.append(&p)
		return err
	}}
	if err := j.submit(ctx, o); err != nil {
		return 0, err
	}
	return last, nil
}

// Acquire implements journal.Journal.
func (j *Journal) Acquire(ctx context.Context, rootID string, h journal.Holder, ttl time.Duration, takeover int64) (journal.Lease, error) {
	var l journal.Lease
	err := j.submit(ctx, &op{fenced: true, run: func(w *writer) (err error) {
		l, err = w.acquire(rootID, h, journal.LeaseTTL(ttl), takeover)
		return err
	}})
	return l, err
}

// Renew implements journal.Journal.
func (j *Journal) Renew(ctx context.Context, l journal.Lease, ttl time.Duration) (journal.Lease, error) {
	var out journal.Lease
	err := j.submit(ctx, &op{fenced: true, run: func(w *writer) (err error) {
		out, err = w.renew(l, journal.LeaseTTL(ttl))
		return err
	}})
	return out, err
}

// Release implements journal.Journal.
func (j *Journal) Release(ctx context.Context, l journal.Lease) error {
	return j.submit(ctx, &op{fenced: true, run: func(w *writer) error { return w.release(l) }})
}

// Claim implements journal.Journal.
func (j *Journal) Claim(ctx context.Context, r journal.ClaimRequest) (journal.ClaimResult, error) {
	var res journal.ClaimResult
	// Fenced: its leases are granted through grant, which keeps the cache,
	// and its other writes (takeover counts) are not cached; so the appends
	// after a claim in the same batch still read nothing (a serve's batches
	// mix claims with appends: forgetting the cache at each claim cost the
	// appends after it a read each).
	err := j.submit(ctx, &op{fenced: true, reads: true, run: func(w *writer) (err error) {
		res, err = w.claim(r)
		return err
	}})
	return res, err
}

// RequestCancel implements journal.Journal.
func (j *Journal) RequestCancel(ctx context.Context, id, by string) (*journal.Execution, error) {
	if err := j.submit(ctx, &op{run: func(w *writer) error { return w.requestCancel(id, by) }}); err != nil {
		return nil, err
	}
	return j.Get(ctx, id)
}

// formatTime and parseTime are the text times of the tables outside the
// records and leases (workers, schedule_slots).
func formatTime(t time.Time) string { return timetext.Format(t) }

func parseTime(s string) (time.Time, error) { return timetext.Parse(s) }

// asStored is t as a read gives it back (UTC, no monotonic reading).
func asStored(t time.Time) time.Time {
	s, _ := storedTime{timeValue(t)}.time()
	return s
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// nullJSON binds a JSON document (or the definition) as TEXT, absent as NULL.
func nullJSON(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}
