package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/internal/groupcommit"
	"github.com/loomwork/loom/journal/internal/timetext"
)

type options struct {
	schema   string
	maxBatch int
	maxConns int32
	now      func() time.Time
}

// Option configures Open.
type Option func(*options)

// WithSchema keeps the journal's tables in the PostgreSQL schema name,
// creating it if absent. Without it they live in the connection's current
// schema (the first of its search_path, usually public).
func WithSchema(name string) Option {
	return func(o *options) { o.schema = name }
}

// WithMaxBatch caps how many queued writes the writer commits in one
// transaction; default 1024. 1 gives one commit per write.
func WithMaxBatch(n int) Option {
	return func(o *options) { o.maxBatch = max(n, 1) }
}

// WithMaxConns sets the size of the connection pool (the writer takes one
// connection while it commits, reads the others); default pgxpool's, or
// pool_max_conns from the DSN.
func WithMaxConns(n int) Option {
	return func(o *options) { o.maxConns = int32(max(n, 2)) }
}

// WithClock replaces time.Now for the times stamped on records and events.
// Leases are not on it: their expiry is set and judged by the database
// server's clock (clock_timestamp()), one clock for every process sharing
// the database, whatever their own clocks say.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// Journal is a journal.Journal in a PostgreSQL database. Writes are queued
// to one writer goroutine, which groups them into shared transactions; reads
// go through the pool.
type Journal struct {
	opts  options
	pool  *pgxpool.Pool
	w     *writer
	queue *groupcommit.Queue[*op]
}

var _ journal.Journal = (*Journal)(nil)

// Open connects to the database at dsn (a URL or key=value connection
// string, as pgxpool.ParseConfig takes) and brings the journal's schema to
// SchemaVersion, creating it if absent. It fails if the database's schema
// is newer than this package knows.
func Open(ctx context.Context, dsn string, opts ...Option) (*Journal, error) {
	o := options{maxBatch: 1024, now: time.Now}
	for _, fn := range opts {
		fn(&o)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres journal: %w", err)
	}
	if o.schema != "" {
		cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{o.schema}.Sanitize()
	}
	// Durability rests on it: a server or role default of off would
	// acknowledge writes a crash can lose.
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	if o.maxConns > 0 {
		cfg.MaxConns = o.maxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres journal: %w", err)
	}
	if !current(ctx, pool) {
		err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return migrate(ctx, tx, o.schema) })
	}
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres journal: %w", unavailable(err))
	}
	j := &Journal{opts: o, pool: pool, queue: groupcommit.NewQueue[*op](4*o.maxBatch, journal.ErrClosed)}
	j.w = &writer{pool: pool, now: o.now, max: o.maxBatch}
	go j.queue.Run(o.maxBatch, j.w.commit)
	return j, nil
}

// Close finishes the writes already queued, then closes the pool. Calls
// made after Close fail with journal.ErrClosed.
func (j *Journal) Close() error {
	if !j.queue.Close() {
		return nil
	}
	j.pool.Close()
	return nil
}

// Stats counts the writer's work since Open.
type Stats = groupcommit.Stats

// Stats returns the writer's counters.
func (j *Journal) Stats() Stats {
	return j.w.Counters.Stats()
}

// Create implements journal.Journal.
func (j *Journal) Create(ctx context.Context, e *journal.Execution) error {
	if err := e.Validate(); err != nil {
		return err
	}
	r := newExecRow(e)
	return j.submit(ctx, &op{run: func(ctx context.Context, w *writer) error { return w.create(ctx, &r) }})
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
	c := &heldArgs{row: newExecRow(e), h: h, ttl: journal.LeaseTTL(ttl)}
	if err := j.submit(ctx, &op{held: c}); err != nil {
		return journal.Lease{}, err
	}
	return c.lease, nil
}

// Append implements journal.Journal.
func (j *Journal) Append(ctx context.Context, a journal.Append) (int64, error) {
	if err := a.Validate(); err != nil {
		return 0, err
	}
	p := newAppendArgs(&a)
	o := &op{Ticket: groupcommit.Ticket{Append: true, Events: len(a.Events)}, app: &p}
	if err := j.submit(ctx, o); err != nil {
		return 0, err
	}
	if a.Stamp != nil {
		// Both functions set updated_at to the call's p_now on success.
		*a.Stamp, _ = parseTime(p.now)
	}
	return p.last, nil
}

// newAppendArgs binds a to database values.
func newAppendArgs(a *journal.Append) appendArgs {
	p := appendArgs{id: a.ExecutionID, token: a.Token, expected: a.ExpectedSeq, release: a.Release, events: make([]eventRow, len(a.Events))}
	for i, ev := range a.Events {
		p.events[i] = eventRow{path: ev.Path, kind: string(ev.Kind), name: ev.Name, ordinal: ev.Ordinal, data: nullJSON(ev.Data), time: ev.Time}
	}
	if u := a.Update; u != nil {
		if u.State != nil {
			p.state = nullString(string(*u.State))
		}
		p.output, p.error = nullJSON(u.Output), nullJSON(u.Error)
		if len(u.Pauses) > 0 {
			p.setPauses = true
			if strings.TrimSpace(string(u.Pauses)) != "null" {
				p.pauses = nullJSON(u.Pauses)
			}
		}
		if u.WakeAt != nil {
			p.setWake, p.wake = true, nullTime(*u.WakeAt)
		}
	}
	return p
}

// Acquire implements journal.Journal.
func (j *Journal) Acquire(ctx context.Context, rootID string, h journal.Holder, ttl time.Duration, takeover int64) (journal.Lease, error) {
	var l journal.Lease
	err := j.submit(ctx, &op{run: func(ctx context.Context, w *writer) (err error) {
		l, err = w.acquire(ctx, rootID, h, journal.LeaseTTL(ttl), takeover)
		return err
	}})
	return l, err
}

// Renew implements journal.Journal.
func (j *Journal) Renew(ctx context.Context, l journal.Lease, ttl time.Duration) (journal.Lease, error) {
	var out journal.Lease
	err := j.submit(ctx, &op{run: func(ctx context.Context, w *writer) (err error) {
		out, err = w.renew(ctx, l, journal.LeaseTTL(ttl))
		return err
	}})
	return out, err
}

// Release implements journal.Journal.
func (j *Journal) Release(ctx context.Context, l journal.Lease) error {
	return j.submit(ctx, &op{run: func(ctx context.Context, w *writer) error { return w.release(ctx, l) }})
}

// Claim implements journal.Journal.
func (j *Journal) Claim(ctx context.Context, r journal.ClaimRequest) (journal.ClaimResult, error) {
	var res journal.ClaimResult
	err := j.submit(ctx, &op{run: func(ctx context.Context, w *writer) (err error) {
		res, err = w.claim(ctx, r)
		return err
	}})
	return res, err
}

// RequestCancel implements journal.Journal.
func (j *Journal) RequestCancel(ctx context.Context, id, by string) (*journal.Execution, error) {
	if err := j.submit(ctx, &op{run: func(ctx context.Context, w *writer) error { return w.requestCancel(ctx, id, by) }}); err != nil {
		return nil, err
	}
	return j.Get(ctx, id)
}

func formatTime(t time.Time) string { return timetext.Format(t) }

func parseTime(s string) (time.Time, error) { return timetext.Parse(s) }

// nullTime is t as stored: nil (NULL) for the zero time.
func nullTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := formatTime(t)
	return &s
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// nullJSON is a JSON document as stored (text), absent as nil (NULL). It
// copies b.
func nullJSON(b []byte) *string {
	if len(b) == 0 {
		return nil
	}
	s := string(b)
	return &s
}
