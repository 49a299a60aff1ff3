package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// SchemaVersion is the schema version this package writes and understands:
// len(migrations). It is stored in loom_meta.
const SchemaVersion = 1

// migrations[i] brings the schema from version i to version i+1. Append new
// ones; never edit a shipped one.
var migrations = []string{schemaV1}

// Text columns that are compared or ordered use the "C" collation, so that
// order is byte order (as Go's strings.Compare) whatever the database's
// locale. Times are text: RFC 3339 UTC with exactly nine fractional digits.
const schemaV1 = `
CREATE TABLE executions (
	id              text COLLATE "C" PRIMARY KEY,
	workflow        text NOT NULL,
	version         integer NOT NULL,
	state           text NOT NULL,
	parent_id       text COLLATE "C",          -- NULL for a root
	root_id         text COLLATE "C" NOT NULL,
	parent_path     text NOT NULL,
	input           text,
	output          text,
	error           text,
	pauses          text,
	definition      bytea,
	definition_hash text NOT NULL,
	wake_at         text COLLATE "C",          -- NULL unless a timer is due
	created_at      text COLLATE "C" NOT NULL,
	updated_at      text COLLATE "C" NOT NULL,
	last_seq        bigint NOT NULL DEFAULT 0
);
CREATE INDEX executions_created ON executions (created_at, id);
CREATE INDEX executions_state ON executions (state, wake_at);
CREATE INDEX executions_workflow ON executions (workflow, created_at);
CREATE INDEX executions_parent ON executions (parent_id);
CREATE INDEX executions_root ON executions (root_id);

CREATE TABLE events (
	execution_id text COLLATE "C" NOT NULL REFERENCES executions (id),
	seq          bigint NOT NULL,
	path         text NOT NULL,
	kind         text NOT NULL,
	name         text NOT NULL,
	ordinal      integer NOT NULL,
	data         text,
	time         text COLLATE "C" NOT NULL,
	PRIMARY KEY (execution_id, seq)
);
CREATE UNIQUE INDEX events_key ON events (execution_id, path, kind, ordinal);

CREATE TABLE leases (
	root_id     text COLLATE "C" PRIMARY KEY REFERENCES executions (id),
	token       bigint NOT NULL,
	holder_id   text NOT NULL,
	holder_host text NOT NULL,
	holder_pid  integer NOT NULL,
	expires     text COLLATE "C" NOT NULL
);

-- Fencing tokens: a sequence is never rolled back, so no token is reused.
CREATE SEQUENCE lease_tokens;
`

// migrate brings the schema to SchemaVersion in one transaction, under an
// advisory lock so that two processes opening a new database at once do not
// both create it.
func migrate(ctx context.Context, tx pgx.Tx, schema string) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('loom journal ' || coalesce(nullif($1, ''), current_schema())))`, schema); err != nil {
		return fmt.Errorf("lock for migration: %w", err)
	}
	if schema != "" {
		if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{schema}.Sanitize()); err != nil {
			return fmt.Errorf("create schema %s: %w", schema, err)
		}
		if _, err := tx.Exec(ctx, `SET LOCAL search_path TO `+pgx.Identifier{schema}.Sanitize()); err != nil {
			return fmt.Errorf("set search_path: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS loom_meta (key text PRIMARY KEY, value bigint NOT NULL)`); err != nil {
		return fmt.Errorf("create loom_meta: %w", err)
	}
	var v int64
	switch err := tx.QueryRow(ctx, `SELECT value FROM loom_meta WHERE key = 'schema_version'`).Scan(&v); {
	case err == pgx.ErrNoRows:
		v = 0
	case err != nil:
		return fmt.Errorf("read schema version: %w", err)
	}
	if v > SchemaVersion {
		return fmt.Errorf("database schema version %d is newer than this build of Loom knows (%d): upgrade Loom to open it", v, SchemaVersion)
	}
	for ; v < SchemaVersion; v++ {
		if _, err := tx.Exec(ctx, migrations[v]); err != nil {
			return fmt.Errorf("migrate schema %d → %d: %w", v, v+1, err)
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO loom_meta (key, value) VALUES ('schema_version', $1)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, v); err != nil {
		return fmt.Errorf("set schema version %d: %w", v, err)
	}
	return nil
}
