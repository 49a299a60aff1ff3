package postgres_test

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loomwork/loom/internal/pgtest"

	"github.com/jackc/pgx/v5"
	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/journaltest"
	"github.com/loomwork/loom/journal/postgres"
)

// dsn returns $LOOM_POSTGRES_DSN or skips t (export
// LOOM_POSTGRES_DSN=$(bash scripts/postgres-for-tests.sh) to run these tests).
func dsn(t testing.TB) string { return pgtest.DSN(t) }

// freshSchema returns the name of a schema no test uses, dropped with
// everything in it when t ends.
func freshSchema(t testing.TB) string {
	name, _ := pgtest.Schema(t, "loomtest")
	return name
}

func open(t testing.TB, schema string, opts ...postgres.Option) *postgres.Journal {
	t.Helper()
	j, err := postgres.Open(t.Context(), dsn(t), append([]postgres.Option{postgres.WithSchema(schema), postgres.WithMaxConns(3)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestConformance(t *testing.T) {
	dsn(t)
	journaltest.Run(t, func(t *testing.T) journal.Journal { return open(t, freshSchema(t)) })
}

func TestReopenKeepsData(t *testing.T) {
	ctx := t.Context()
	schema := freshSchema(t)
	j := open(t, schema)
	if err := j.Create(ctx, &journal.Execution{ID: "r", Workflow: "wf", Version: 2, State: journal.Running, Input: json.RawMessage(`{"a":[1,2]}`), Definition: []byte("name: wf\n")}); err != nil {
		t.Fatal(err)
	}
	l, err := j.Acquire(ctx, "r", journal.Holder{ID: "a", Host: "h", PID: 1}, time.Hour, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Append(ctx, journal.Append{ExecutionID: "r", Token: l.Token, Events: []journal.Event{
		{Path: "s", Kind: journal.StepCompleted, Name: "task:t", Data: json.RawMessage(`{"output":"x"}`)},
	}}); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Get(ctx, "r"); !errors.Is(err, journal.ErrClosed) {
		t.Errorf("Get after Close: %v, want ErrClosed", err)
	}

	j = open(t, schema)
	defer j.Close()
	e, err := j.Get(ctx, "r")
	if err != nil || string(e.Input) != `{"a":[1,2]}` || string(e.Definition) != "name: wf\n" || e.Version != 2 {
		t.Fatalf("after reopen: %+v, %v", e, err)
	}
	evs, err := j.Events(ctx, "r", 0)
	if err != nil || len(evs) != 1 || string(evs[0].Data) != `{"output":"x"}` {
		t.Fatalf("events after reopen: %+v, %v", evs, err)
	}
	if got, err := j.LeaseOf(ctx, "r"); err != nil || got.Token != l.Token {
		t.Fatalf("lease after reopen: %+v, %v", got, err)
	}
	// Tokens keep growing across reopen (the live lease is taken over: a
	// live lease is refused even to its own holder).
	l2, err := j.Acquire(ctx, "r", journal.Holder{ID: "a", Host: "h", PID: 1}, time.Hour, l.Token)
	if err != nil || l2.Token <= l.Token {
		t.Fatalf("re-acquire after reopen: %+v, %v", l2, err)
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	ctx := t.Context()
	schema := freshSchema(t)
	j := open(t, schema)
	j.Close()
	c, err := pgx.Connect(ctx, dsn(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "UPDATE "+pgx.Identifier{schema, "loom_meta"}.Sanitize()+" SET value = value + 1 WHERE key = 'schema_version'"); err != nil {
		t.Fatal(err)
	}
	_, err = postgres.Open(ctx, dsn(t), postgres.WithSchema(schema))
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open of a newer schema: %v, want a refusal", err)
	}
}

// TestOpenWritesNothing: opening a journal already at SchemaVersion writes
// nothing (loom_meta's row keeps its version, xmin): `loom list` costs no
// commit.
func TestOpenWritesNothing(t *testing.T) {
	ctx := t.Context()
	schema := freshSchema(t)
	open(t, schema).Close()
	c, err := pgx.Connect(ctx, dsn(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	xmin := func() string {
		var x string
		if err := c.QueryRow(ctx, `SELECT xmin::text FROM `+pgx.Identifier{schema, "loom_meta"}.Sanitize()+` WHERE key = 'schema_version'`).Scan(&x); err != nil {
			t.Fatal(err)
		}
		return x
	}
	before := xmin()
	open(t, schema).Close()
	if after := xmin(); after != before {
		t.Errorf("loom_meta rewritten by an Open of a current schema (xmin %s → %s)", before, after)
	}
}

// TestOpenConcurrently: processes starting at once on a new schema must not
// both create it.
func TestOpenConcurrently(t *testing.T) {
	schema := freshSchema(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			j, err := postgres.Open(t.Context(), dsn(t), postgres.WithSchema(schema), postgres.WithMaxConns(2))
			if err != nil {
				errs <- err
				return
			}
			j.Close()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestGroupedCommits: concurrent appends to different executions share
// transactions, and each caller is answered after its commit.
func TestGroupedCommits(t *testing.T) {
	ctx := t.Context()
	j := open(t, freshSchema(t))
	defer j.Close()
	const n = 50
	leases := make([]journal.Lease, n)
	for i := range n {
		id := "e" + string(rune('A'+i/26)) + string(rune('a'+i%26))
		var err error
		if leases[i], err = j.CreateHeld(ctx, &journal.Execution{ID: id, Workflow: "wf", Version: 1, State: journal.Running}, journal.Holder{ID: "a"}, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	before := j.Stats()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var seq int64
			for k := range 5 {
				var err error
				seq, err = j.Append(ctx, journal.Append{ExecutionID: leases[i].RootID, Token: leases[i].Token, ExpectedSeq: seq,
					Events: []journal.Event{{Path: "s" + string(rune('0'+k)), Kind: journal.StepCompleted, Data: json.RawMessage(`{"output":1}`)}}})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	after := j.Stats()
	appends, commits := after.Appends-before.Appends, after.Commits-before.Commits
	if appends != n*5 {
		t.Fatalf("%d appends counted, want %d", appends, n*5)
	}
	if commits >= appends {
		t.Errorf("%d commits for %d concurrent appends: none shared", commits, appends)
	}
	t.Logf("%d appends in %d commits (largest batch %d)", appends, commits, after.LargestBatch)
}

// TestFailedStatementInAPipelinedBatch: an append the server rejects (a
// NUL byte in a text column) among concurrent ones, which share its
// pipelined transaction, fails alone; the others commit, and the writer's
// connections work afterwards (the aborted transaction was rolled back).
func TestFailedStatementInAPipelinedBatch(t *testing.T) {
	ctx := t.Context()
	j := open(t, freshSchema(t), postgres.WithMaxConns(2))
	defer j.Close()
	const n = 20
	leases := make([]journal.Lease, n)
	for i := range n {
		var err error
		if leases[i], err = j.CreateHeld(ctx, &journal.Execution{ID: "f" + string(rune('a'+i)), Workflow: "wf", Version: 1, State: journal.Running}, journal.Holder{ID: "a"}, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 3 {
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				path, expected := "ok", int64(round)
				if i == n/2 {
					path, expected = "bad\x00path", 0
				}
				_, errs[i] = j.Append(ctx, journal.Append{ExecutionID: leases[i].RootID, Token: leases[i].Token, ExpectedSeq: expected,
					Events: []journal.Event{{Path: path, Kind: journal.StepCompleted, Ordinal: round, Data: json.RawMessage(`{"output":1}`)}}})
			})
		}
		wg.Wait()
		for i, err := range errs {
			if i == n/2 {
				if err == nil || !strings.Contains(err.Error(), "0x00") {
					t.Fatalf("round %d: the append with a NUL byte: %v, want the server's encoding error", round, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("round %d: append %d: %v", round, i, err)
			}
		}
	}
	if evs, err := j.Events(ctx, leases[n/2].RootID, 0); err != nil || len(evs) != 0 {
		t.Fatalf("the rejected appends' execution has %d events (%v), want none", len(evs), err)
	}
	if evs, err := j.Events(ctx, leases[0].RootID, 0); err != nil || len(evs) != 3 {
		t.Fatalf("execution %s has %d events (%v), want 3", leases[0].RootID, len(evs), err)
	}
}

// TestTwoJournalsOneSchema: two Journals on one schema (two runners'
// processes) share leases, tokens and fencing.
func TestTwoJournalsOneSchema(t *testing.T) {
	ctx := t.Context()
	schema := freshSchema(t)
	a, b := open(t, schema), open(t, schema)
	defer a.Close()
	defer b.Close()
	la, err := a.CreateHeld(ctx, &journal.Execution{ID: "r", Workflow: "wf", Version: 1, State: journal.Running}, journal.Holder{ID: "a"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Acquire(ctx, "r", journal.Holder{ID: "b"}, time.Minute, 0); !errors.Is(err, journal.ErrBusy) {
		t.Fatalf("Acquire of a lease held through another Journal: %v, want ErrBusy", err)
	}
	lb, err := b.Acquire(ctx, "r", journal.Holder{ID: "b"}, time.Minute, la.Token)
	if err != nil || lb.Token <= la.Token {
		t.Fatalf("takeover: %+v, %v", lb, err)
	}
	ev := []journal.Event{{Path: "s", Kind: journal.StepCompleted}}
	if _, err := a.Append(ctx, journal.Append{ExecutionID: "r", Token: la.Token, Events: ev}); !errors.Is(err, journal.ErrFenced) {
		t.Fatalf("Append with the token taken over: %v, want ErrFenced", err)
	}
	if n, err := b.Append(ctx, journal.Append{ExecutionID: "r", Token: lb.Token, Events: ev}); err != nil || n != 1 {
		t.Fatalf("Append by the new holder: %d, %v", n, err)
	}
	if evs, err := a.Events(ctx, "r", 0); err != nil || len(evs) != 1 {
		t.Fatalf("Events through the other Journal: %+v, %v", evs, err)
	}
}

// Two processes whose clocks disagree by an hour still agree on a lease:
// its expiry is set and judged by the server's clock (#8, defect 2).
func TestLeaseExpiryIsJudgedByTheServersClock(t *testing.T) {
	schema := freshSchema(t)
	ctx := t.Context()
	here := open(t, schema)
	defer here.Close()
	ahead := open(t, schema, postgres.WithClock(func() time.Time { return time.Now().Add(time.Hour) }))
	defer ahead.Close()
	if err := here.Create(ctx, &journal.Execution{ID: "r", RootID: "r", Workflow: "wf", Version: 1, State: journal.Running}); err != nil {
		t.Fatal(err)
	}
	a := journal.Holder{ID: "a", Host: "here", PID: 1}
	b := journal.Holder{ID: "b", Host: "ahead", PID: 2}
	la, err := here.Acquire(ctx, "r", a, time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The process an hour ahead would take the lease for expired if it
	// judged by its own clock.
	if _, err := ahead.Acquire(ctx, "r", b, time.Minute, 0); !errors.Is(err, journal.ErrBusy) {
		t.Fatalf("Acquire by the process an hour ahead: %v, want busy", err)
	}
	// And its renewals do not stretch a lease by its clock either.
	if err := here.Release(ctx, la); err != nil {
		t.Fatal(err)
	}
	lb, err := ahead.Acquire(ctx, "r", b, time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	if lb.Expires.After(time.Now().Add(30 * time.Minute)) {
		t.Errorf("a lease taken by the process an hour ahead expires at %v, by its clock", lb.Expires)
	}
}
