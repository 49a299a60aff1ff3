package postgres

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/loomwork/loom/internal/pgtest"
	"github.com/loomwork/loom/journal"
)

// TestMigrateV9: a journal written at schema 8, with a cancel requested
// before the upgrade, opens at schema 9: that request is still there (by
// no one known), a new request stores its requester, and a start's trace
// context is stored and read back. It needs LOOM_POSTGRES_DSN.
func TestMigrateV9(t *testing.T) {
	ctx := t.Context()
	schema, _ := pgtest.Schema(t, "loommig")
	c, err := pgx.Connect(ctx, pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SET LOCAL search_path TO `+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	for v, m := range migrations[:8] {
		if _, err := tx.Exec(ctx, m); err != nil {
			t.Fatalf("migration %d: %v", v+1, err)
		}
	}
	for _, q := range []string{
		`CREATE TABLE loom_meta (key text PRIMARY KEY, value bigint NOT NULL)`,
		`INSERT INTO loom_meta (key, value) VALUES ('schema_version', 8)`,
		`INSERT INTO executions (id, workflow, version, state, root_id, parent_path, definition_hash, created_at, updated_at, cancel_requested)
			VALUES ('asked', 'wf', 1, 'PAUSED', 'asked', '', 'h', '2025-01-02T03:04:05.000000001Z', '2025-01-02T03:04:05.000000001Z', true)`,
		`INSERT INTO executions (id, workflow, version, state, root_id, parent_path, definition_hash, created_at, updated_at)
			VALUES ('quiet', 'wf', 1, 'PAUSED', 'quiet', '', 'h', '2025-01-02T03:04:06.000000000Z', '2025-01-02T03:04:06.000000000Z')`,
	} {
		if _, err := tx.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	j, err := Open(ctx, pgtest.DSN(t), WithSchema(schema), WithMaxConns(2))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	var v int64
	if err := c.QueryRow(ctx, `SELECT value FROM `+pgx.Identifier{schema, "loom_meta"}.Sanitize()+` WHERE key = 'schema_version'`).Scan(&v); err != nil || v != SchemaVersion {
		t.Fatalf("schema version after Open: %d (%v), want %d", v, err, SchemaVersion)
	}
	if e, err := j.Get(ctx, "asked"); err != nil || !e.CancelRequested || e.CancelRequestedBy != "" || e.TraceParent != "" {
		t.Fatalf("a request made before the upgrade: %+v, %v", e, err)
	}
	if e, err := j.RequestCancel(ctx, "quiet", "ops"); err != nil || !e.CancelRequested || e.CancelRequestedBy != "ops" {
		t.Fatalf("a request after the upgrade: %+v, %v", e, err)
	}
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	if err := j.Create(ctx, &journal.Execution{ID: "new", Workflow: "wf", Version: 1, State: journal.Running, TraceParent: tp}); err != nil {
		t.Fatal(err)
	}
	if e, err := j.Get(ctx, "new"); err != nil || e.TraceParent != tp {
		t.Fatalf("a start's trace context after the upgrade: %+v, %v", e, err)
	}
	res, err := j.Claim(ctx, journal.ClaimRequest{Holder: journal.Holder{ID: "b", Host: "h", PID: 2}, TTL: time.Minute, Limit: 1})
	if err != nil || len(res.Claims) != 1 || res.Claims[0].Reason != journal.ClaimCancel {
		t.Fatalf("claim after the upgrade: %+v, %v; want a cancel", res, err)
	}
}

// TestMigrateV10: a journal written at schema 9 (an execution held, with
// an event appended) opens at schema 10, whose loom_append_batch inserts
// events with a plain INSERT: a batch of two appends after the upgrade
// writes one and refuses the other, which repeats a key recorded before
// the upgrade, having written nothing of it. It needs LOOM_POSTGRES_DSN.
func TestMigrateV10(t *testing.T) {
	ctx := t.Context()
	schema, dsn := pgtest.Schema(t, "loommig")
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	steps := append([]string{`CREATE TABLE loom_meta (key text PRIMARY KEY, value bigint NOT NULL)`}, migrations[:9]...)
	steps = append(steps,
		`INSERT INTO loom_meta (key, value) VALUES ('schema_version', 9)`,
		`INSERT INTO executions (id, workflow, version, state, root_id, parent_path, definition_hash, created_at, updated_at)
			VALUES ('r', 'wf', 1, 'RUNNING', 'r', '', 'h', '2026-11-30T00:00:00.000000000Z', '2026-11-30T00:00:00.000000000Z'),
			('s', 'wf', 1, 'RUNNING', 's', '', 'h', '2026-11-30T00:00:00.000000000Z', '2026-11-30T00:00:00.000000000Z')`,
		`INSERT INTO leases (root_id, token, holder_id, holder_host, holder_pid, expires)
			VALUES ('r', 7, 'a', 'host', 1, '2999-01-01T00:00:00.000000000Z'), ('s', 8, 'a', 'host', 1, '2999-01-01T00:00:00.000000000Z')`,
		`SELECT loom_append('r', 7, 0, '2026-11-30T00:00:01.000000000Z', ARRAY['a'], ARRAY['step.completed'], ARRAY['a'],
			ARRAY[0], ARRAY['{}'], ARRAY[NULL]::text[], NULL, NULL, NULL, false, NULL, false, NULL, false)`)
	for _, s := range steps {
		if _, err := c.Exec(ctx, s); err != nil {
			t.Fatalf("building schema 9: %s: %v", s, err)
		}
	}
	j, err := Open(ctx, pgtest.DSN(t), WithSchema(schema), WithMaxConns(2))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	var v int64
	if err := c.QueryRow(ctx, `SELECT value FROM loom_meta WHERE key = 'schema_version'`).Scan(&v); err != nil || v != SchemaVersion {
		t.Fatalf("schema version after Open: %d (%v), want %d", v, err, SchemaVersion)
	}
	ev := func(path string) journal.Event {
		return journal.Event{Path: path, Kind: journal.StepCompleted, Name: path, Data: json.RawMessage(`{}`)}
	}
	appends := []journal.Append{
		{ExecutionID: "r", Token: 7, ExpectedSeq: 1, Events: []journal.Event{ev("b"), ev("a")}},
		{ExecutionID: "s", Token: 8, Events: []journal.Event{ev("a"), ev("b")}},
	}
	ops := make([]*op, len(appends))
	for i := range appends {
		p := newAppendArgs(&appends[i])
		ops[i] = &op{app: &p}
		ops[i].Ctx = ctx
	}
	w := &writer{pool: j.pool, now: time.Now, max: len(ops)}
	if bad, err := w.try(ops); err != nil {
		t.Fatalf("the batch failed at op %d: %v", bad, err)
	}
	if !errors.Is(ops[0].Err, journal.ErrConflict) || ops[1].Err != nil || ops[1].app.last != 2 {
		t.Fatalf("outcomes: %v (want ErrConflict); %v, last %d (want 2)", ops[0].Err, ops[1].Err, ops[1].app.last)
	}
	for id, n := range map[string]int{"r": 1, "s": 2} {
		if evs, err := j.Events(ctx, id, 0); err != nil || len(evs) != n {
			t.Errorf("%s has %d events (%v), want %d", id, len(evs), err, n)
		}
	}
	if e, err := j.Get(ctx, "r"); err != nil || e.LastSeq != 1 {
		t.Errorf("the refused append's record: %+v, %v", e, err)
	}
}

// TestMigrateV11: a journal at schema 10 with a held execution opens at
// schema 11: executions' new pages are half empty, leases have no foreign
// key, and the held execution appends, finishes, releases and is pruned
// (its lease deleted before its record). It needs LOOM_POSTGRES_DSN.
func TestMigrateV11(t *testing.T) {
	ctx := t.Context()
	schema, dsn := pgtest.Schema(t, "loommig")
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	steps := append([]string{`CREATE TABLE loom_meta (key text PRIMARY KEY, value bigint NOT NULL)`}, migrations[:10]...)
	steps = append(steps,
		`INSERT INTO loom_meta (key, value) VALUES ('schema_version', 10)`,
		`INSERT INTO executions (id, workflow, version, state, root_id, parent_path, definition_hash, created_at, updated_at)
			VALUES ('r', 'wf', 1, 'RUNNING', 'r', '', 'h', '2026-11-30T00:00:00.000000000Z', '2026-11-30T00:00:00.000000000Z')`,
		`INSERT INTO leases (root_id, token, holder_id, holder_host, holder_pid, expires)
			VALUES ('r', 7, 'a', 'host', 1, '2999-01-01T00:00:00.000000000Z')`)
	for _, s := range steps {
		if _, err := c.Exec(ctx, s); err != nil {
			t.Fatalf("building schema 10: %s: %v", s, err)
		}
	}
	j, err := Open(ctx, pgtest.DSN(t), WithSchema(schema), WithMaxConns(2))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	var (
		v       int64
		options []string
		fks     int
	)
	if err := c.QueryRow(ctx, `SELECT value FROM loom_meta WHERE key = 'schema_version'`).Scan(&v); err != nil || v != SchemaVersion {
		t.Fatalf("schema version after Open: %d (%v), want %d", v, err, SchemaVersion)
	}
	if err := c.QueryRow(ctx, `SELECT reloptions FROM pg_class WHERE oid = 'executions'::regclass`).Scan(&options); err != nil || !slices.Contains(options, "fillfactor=50") {
		t.Errorf("executions' options: %v (%v), want fillfactor=50", options, err)
	}
	if err := c.QueryRow(ctx, `SELECT count(*) FROM pg_constraint WHERE conrelid = 'leases'::regclass AND contype = 'f'`).Scan(&fks); err != nil || fks != 0 {
		t.Errorf("leases has %d foreign keys (%v), want none", fks, err)
	}
	completed := journal.Completed
	if _, err := j.Append(ctx, journal.Append{ExecutionID: "r", Token: 7, Release: true,
		Events: []journal.Event{{Kind: journal.ExecutionFinished, Name: "COMPLETED", Data: json.RawMessage(`{"state":"COMPLETED"}`)}},
		Update: &journal.Update{State: &completed}}); err != nil {
		t.Fatal(err)
	}
	res, err := j.Prune(ctx, journal.PruneRequest{FinishedBefore: time.Now().Add(time.Hour)})
	if err != nil || res.Roots != 1 {
		t.Fatalf("prune: %+v, %v; want the finished root", res, err)
	}
	if _, err := j.Get(ctx, "r"); !errors.Is(err, journal.ErrNotFound) {
		t.Errorf("the pruned record: %v, want ErrNotFound", err)
	}
}
