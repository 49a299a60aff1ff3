package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/loomwork/loom/internal/pgtest"
	"github.com/loomwork/loom/journal"
)

// TestMigrationsMatchVersion: SchemaVersion is the number of migrations.
func TestMigrationsMatchVersion(t *testing.T) {
	if len(migrations) != SchemaVersion {
		t.Fatalf("%d migrations, SchemaVersion %d", len(migrations), SchemaVersion)
	}
}

// TestMigrateAppendBatch: a journal written at the schema before
// loom_append_batch (an execution held, two events appended through
// loom_append) opens at SchemaVersion and appends through the new
// function after the old events: the next seq, the old lease's fencing,
// the old events' keys still unique.
func TestMigrateAppendBatch(t *testing.T) {
	ctx := t.Context()
	schema, dsn := pgtest.Schema(t, "loomtest")
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	const old = 6 // the schema before loom_append_batch (schemaV7)
	steps := []string{`CREATE TABLE loom_meta (key text PRIMARY KEY, value bigint NOT NULL)`}
	steps = append(steps, migrations[:old]...)
	steps = append(steps,
		`INSERT INTO loom_meta VALUES ('schema_version', `+strconv.Itoa(old)+`)`,
		`INSERT INTO executions (id, workflow, version, state, root_id, parent_path, definition_hash, created_at, updated_at)
			VALUES ('r', 'wf', 1, 'RUNNING', 'r', '', 'h', '2026-11-30T00:00:00.000000000Z', '2026-11-30T00:00:00.000000000Z')`,
		`INSERT INTO leases (root_id, token, holder_id, holder_host, holder_pid, expires)
			VALUES ('r', nextval('lease_tokens'), 'a', 'host', 1, '2999-01-01T00:00:00.000000000Z')`)
	for _, s := range steps {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("building schema %d: %v", old, err)
		}
	}
	var token int64
	if err := conn.QueryRow(ctx, `SELECT token FROM leases WHERE root_id = 'r'`).Scan(&token); err != nil {
		t.Fatal(err)
	}
	var code, last int64
	if err := conn.QueryRow(ctx, `SELECT o_code, o_last FROM loom_append('r', $1, 0, '2026-11-30T00:00:01.000000000Z',
		ARRAY['a', 'b'], ARRAY[$2, $2], ARRAY['a', 'b'], ARRAY[0, 0], ARRAY['{}', '{}'], ARRAY[NULL, NULL]::text[],
		NULL, NULL, NULL, false, NULL, false, NULL, false)`, token, string(journal.StepCompleted)).Scan(&code, &last); err != nil || code != 0 || last != 2 {
		t.Fatalf("loom_append at schema %d: code %d, last %d, %v", old, code, last, err)
	}

	j, err := Open(ctx, pgtest.DSN(t), WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	var v int64
	if err := conn.QueryRow(ctx, `SELECT value FROM loom_meta WHERE key = 'schema_version'`).Scan(&v); err != nil || v != SchemaVersion {
		t.Fatalf("schema version after Open: %d (%v), want %d", v, err, SchemaVersion)
	}
	ev := func(path string) journal.Event {
		return journal.Event{Path: path, Kind: journal.StepCompleted, Name: path, Data: json.RawMessage(`{"output":1}`)}
	}
	if seq, err := j.Append(ctx, journal.Append{ExecutionID: "r", Token: token, ExpectedSeq: 2, Events: []journal.Event{ev("c")}}); err != nil || seq != 3 {
		t.Fatalf("append after migration: %d, %v, want 3", seq, err)
	}
	if _, err := j.Append(ctx, journal.Append{ExecutionID: "r", Token: token, ExpectedSeq: 3, Events: []journal.Event{ev("a")}}); !errors.Is(err, journal.ErrConflict) {
		t.Fatalf("append repeating a migrated event's key: %v, want ErrConflict", err)
	}
	if _, err := j.Append(ctx, journal.Append{ExecutionID: "r", Token: token + 1, ExpectedSeq: 3, Events: []journal.Event{ev("d")}}); !errors.Is(err, journal.ErrFenced) {
		t.Fatalf("append with another token: %v, want ErrFenced", err)
	}
	if _, err := j.Acquire(ctx, "r", journal.Holder{ID: "b"}, time.Minute, token); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Append(ctx, journal.Append{ExecutionID: "r", Token: token, ExpectedSeq: 3, Events: []journal.Event{ev("d")}}); !errors.Is(err, journal.ErrFenced) {
		t.Fatalf("append with the migrated lease's token after a takeover: %v, want ErrFenced", err)
	}
	evs, err := j.Events(context.Background(), "r", 0)
	if err != nil || len(evs) != 3 || evs[2].Path != "c" || evs[2].Seq != 3 {
		t.Fatalf("events after migration: %+v, %v", evs, err)
	}
}

// TestPausedInboxReadsItsIndex: the open pauses oldest first (List of
// PAUSED records by OldestUpdated, after a cursor) are read from
// executions_paused in its order, with no sort, and an append that leaves
// a record RUNNING updates it without writing an index entry (a HOT
// update: no indexed column changed).
func TestPausedInboxReadsItsIndex(t *testing.T) {
	ctx := t.Context()
	schema, dsn := pgtest.Schema(t, "loomtest")
	j, err := Open(ctx, pgtest.DSN(t), WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	l, err := j.CreateHeld(ctx, &journal.Execution{ID: "r", Workflow: "wf", Version: 1, State: journal.Running}, journal.Holder{ID: "a"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for seq := range int64(3) {
		if _, err := j.Append(ctx, journal.Append{ExecutionID: "r", Token: l.Token, ExpectedSeq: seq,
			Events: []journal.Event{{Path: strconv.Itoa(int(seq)), Kind: journal.StepCompleted, Data: json.RawMessage(`{}`)}}}); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// The next append, sent by hand in a transaction of this connection,
	// whose own counts of updated rows are exact.
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	p := newAppendArgs(&journal.Append{ExecutionID: "r", Token: l.Token, ExpectedSeq: 3,
		Events: []journal.Event{{Path: "3", Kind: journal.StepCompleted, Data: json.RawMessage(`{}`)}}})
	ops := []*op{{app: &p}}
	b := &pgx.Batch{}
	(&writer{now: time.Now}).queueAppends(b, ops)
	br := tx.SendBatch(ctx, b)
	if err := appendsResult(br, ops); err != nil || ops[0].Err != nil || p.last != 4 {
		t.Fatalf("append by hand: last %d, %v, %v", p.last, err, ops[0].Err)
	}
	if err := br.Close(); err != nil {
		t.Fatal(err)
	}
	var updates, hot int64
	if err := tx.QueryRow(ctx, `SELECT pg_stat_get_xact_tuples_updated('executions'::regclass),
		pg_stat_get_xact_tuples_hot_updated('executions'::regclass)`).Scan(&updates, &hot); err != nil {
		t.Fatal(err)
	}
	if updates != 1 || hot != 1 {
		t.Errorf("an append updated %d records, %d of them HOT; want 1 and 1", updates, hot)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	cursor := journal.OldestUpdated.CursorAt(&journal.Execution{ID: "a", UpdatedAt: time.Now()})
	q, args, err := listQuery(journal.Filter{State: journal.Paused, Order: journal.OldestUpdated, After: cursor, Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `SET enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, "EXPLAIN "+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(plan, "\n")
	if !strings.Contains(text, "executions_paused") || strings.Contains(text, "Sort") {
		t.Errorf("the paused inbox's plan:\n%s\nwant a scan of executions_paused in its order", text)
	}
}
