package postgres

import (
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/loomwork/loom/internal/pgtest"
	"github.com/loomwork/loom/journal/journaltest"
)

// TestMigrateV12: a journal written at schema 11 (two queued starts, and
// a later root that has an event and no lease) opens at schema 12, whose
// begun is generated from the records' last seqs: a claim finds the
// released root (a resume) ahead of the older starts, and a start that
// then begins leaves the queue for the running roots. It needs
// LOOM_POSTGRES_DSN.
func TestMigrateV12(t *testing.T) {
	ctx := t.Context()
	schema, dsn := pgtest.Schema(t, "loommig")
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	steps := append([]string{`CREATE TABLE loom_meta (key text PRIMARY KEY, value bigint NOT NULL)`}, migrations[:11]...)
	steps = append(steps,
		`INSERT INTO loom_meta (key, value) VALUES ('schema_version', 11)`,
		`INSERT INTO executions (id, workflow, version, state, root_id, parent_path, definition_hash, created_at, updated_at)
			VALUES ('old-1', 'wf', 1, 'RUNNING', 'old-1', '', 'h', '2026-11-30T00:00:01.000000000Z', '2026-11-30T00:00:01.000000000Z'),
			('old-2', 'wf', 1, 'RUNNING', 'old-2', '', 'h', '2026-11-30T00:00:02.000000000Z', '2026-11-30T00:00:02.000000000Z'),
			('resumed', 'wf', 1, 'RUNNING', 'resumed', '', 'h', '2026-11-30T00:00:03.000000000Z', '2026-11-30T00:00:03.000000000Z')`,
		`INSERT INTO leases (root_id, token, holder_id, holder_host, holder_pid, expires)
			VALUES ('resumed', 7, 'a', 'host', 1, '2999-01-01T00:00:00.000000000Z')`,
		`SELECT loom_append('resumed', 7, 0, '2026-11-30T00:00:04.000000000Z', ARRAY['a'], ARRAY['step.completed'], ARRAY['a'],
			ARRAY[0], ARRAY['{}'], ARRAY[NULL]::text[], NULL, NULL, NULL, false, NULL, false, NULL, true)`)
	for _, s := range steps {
		if _, err := c.Exec(ctx, s); err != nil {
			t.Fatalf("building schema 11: %s: %v", s, err)
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
	journaltest.ClaimsAfterUpgrade(t, j)
}
