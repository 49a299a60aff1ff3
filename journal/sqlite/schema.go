package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/loomwork/loom/journal"
)

// migrations[i] brings the schema from version i to version i+1 (the
// database's PRAGMA user_version). Append new ones; never edit a shipped one.
var migrations = []func(ctx context.Context, c *sql.Conn) error{
	migrateV1,
	migrateV2,
	migrateV3,
	migrateV4,
	migrateV5,
	migrateV6,
	migrateV7,
	migrateV8,
	migrateCompact,
	migrateV10,
}

// SchemaVersion is the user_version this package writes and understands:
// len(migrations).
const SchemaVersion = 10

// Times are TEXT, RFC 3339 in UTC with exactly nine fractional digits, so
// they read well in the sqlite3 shell and sort as text. JSON documents are
// TEXT checked by json_valid.
const schemaV1 = `
CREATE TABLE executions (
	id              TEXT PRIMARY KEY,
	workflow        TEXT NOT NULL,
	version         INTEGER NOT NULL,
	state           TEXT NOT NULL,
	parent_id       TEXT,              -- NULL for a root
	root_id         TEXT NOT NULL,
	parent_path     TEXT NOT NULL,
	input           TEXT CHECK (input IS NULL OR json_valid(input)),
	output          TEXT CHECK (output IS NULL OR json_valid(output)),
	error           TEXT CHECK (error IS NULL OR json_valid(error)),
	pauses          TEXT CHECK (pauses IS NULL OR json_valid(pauses)),
	definition      TEXT,
	definition_hash TEXT NOT NULL,
	wake_at         TEXT,              -- NULL unless a timer is due
	created_at      TEXT NOT NULL,
	updated_at      TEXT NOT NULL,
	last_seq        INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX executions_created ON executions (created_at, id);
CREATE INDEX executions_state ON executions (state, wake_at);
CREATE INDEX executions_workflow ON executions (workflow, created_at);
CREATE INDEX executions_parent ON executions (parent_id);
CREATE INDEX executions_root ON executions (root_id);

CREATE TABLE events (
	execution_id TEXT NOT NULL REFERENCES executions (id),
	seq          INTEGER NOT NULL,
	path         TEXT NOT NULL,
	kind         TEXT NOT NULL,
	name         TEXT NOT NULL,
	ordinal      INTEGER NOT NULL,
	data         TEXT CHECK (data IS NULL OR json_valid(data)),
	time         TEXT NOT NULL,
	PRIMARY KEY (execution_id, seq)
) STRICT, WITHOUT ROWID;
CREATE UNIQUE INDEX events_key ON events (execution_id, path, kind, ordinal);

CREATE TABLE leases (
	root_id     TEXT PRIMARY KEY REFERENCES executions (id),
	token       INTEGER NOT NULL,
	holder_id   TEXT NOT NULL,
	holder_host TEXT NOT NULL,
	holder_pid  INTEGER NOT NULL,
	expires     TEXT NOT NULL
) STRICT;

-- counters holds 'lease_token', the last fencing token handed out: tokens
-- grow across all roots and survive released leases, so none is reused.
CREATE TABLE counters (
	name  TEXT PRIMARY KEY,
	value INTEGER NOT NULL
) STRICT;
INSERT INTO counters (name, value) VALUES ('lease_token', 0);
`

func migrateV1(ctx context.Context, c *sql.Conn) error {
	_, err := c.ExecContext(ctx, schemaV1)
	return err
}

// schemaV2 adds what the service needs (SPEC §6): a start's labels (a JSON
// object of strings) and actor, the durable cancel request a dispatcher
// claims first, and the count of takeovers.
const schemaV2 = `
ALTER TABLE executions ADD COLUMN labels TEXT CHECK (labels IS NULL OR json_valid(labels));
ALTER TABLE executions ADD COLUMN started_by TEXT NOT NULL DEFAULT '';
ALTER TABLE executions ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
ALTER TABLE executions ADD COLUMN takeovers INTEGER NOT NULL DEFAULT 0;
`

func migrateV2(ctx context.Context, c *sql.Conn) error {
	_, err := c.ExecContext(ctx, schemaV2)
	return err
}

// schemaV3 makes a journal that grows compact (issue #14): each pinned
// definition is stored once, in definitions, keyed by its SHA-256 (an
// execution's definition column stays NULL when its definition_hash is
// that hash; a record whose hash is something else keeps its text inline);
// and events name their execution by a small integer (executions.ek, given
// in creation order, so the events of recent executions sit together at
// the end of the table) and their time as Unix nanoseconds, instead of a
// 36-byte id and 30 bytes of text on every event and index entry.
const schemaV3 = `
CREATE TABLE definitions (
	hash TEXT PRIMARY KEY,
	body TEXT NOT NULL
) STRICT, WITHOUT ROWID;

ALTER TABLE executions ADD COLUMN ek INTEGER;
UPDATE executions SET ek = rowid;
CREATE UNIQUE INDEX executions_ek ON executions (ek);

CREATE TABLE events_v3 (
	ek      INTEGER NOT NULL REFERENCES executions (ek),
	seq     INTEGER NOT NULL,
	path    TEXT NOT NULL,
	kind    TEXT NOT NULL,
	name    TEXT NOT NULL,
	ordinal INTEGER NOT NULL,
	data    TEXT CHECK (data IS NULL OR json_valid(data)),
	time    INTEGER NOT NULL, -- Unix nanoseconds
	PRIMARY KEY (ek, seq)
) STRICT, WITHOUT ROWID;
INSERT INTO events_v3 (ek, seq, path, kind, name, ordinal, data, time)
	SELECT x.ek, e.seq, e.path, e.kind, e.name, e.ordinal, e.data,
		CAST(strftime('%s', substr(e.time, 1, 19)) AS INTEGER) * 1000000000 + CAST(substr(e.time, 21, 9) AS INTEGER)
	FROM events e JOIN executions x ON x.id = e.execution_id;
DROP TABLE events;
ALTER TABLE events_v3 RENAME TO events;
CREATE UNIQUE INDEX events_key ON events (ek, path, kind, ordinal);
`

func migrateV3(ctx context.Context, c *sql.Conn) error {
	if _, err := c.ExecContext(ctx, schemaV3); err != nil {
		return err
	}
	// Definitions move to their table where the stored hash is theirs.
	rows, err := c.QueryContext(ctx, `SELECT id, definition, definition_hash FROM executions WHERE definition IS NOT NULL`)
	if err != nil {
		return err
	}
	var move []string
	bodies := map[string]string{}
	for rows.Next() {
		var id, def, hash string
		if err := rows.Scan(&id, &def, &hash); err != nil {
			rows.Close()
			return err
		}
		if definitionKey([]byte(def), hash) {
			move, bodies[hash] = append(move, id), def
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for hash, body := range bodies {
		if _, err := c.ExecContext(ctx, `INSERT OR IGNORE INTO definitions (hash, body) VALUES (?, ?)`, hash, body); err != nil {
			return err
		}
	}
	for _, id := range move {
		if _, err := c.ExecContext(ctx, `UPDATE executions SET definition = NULL WHERE id = ?`, id); err != nil {
			return err
		}
	}
	return nil
}

// schemaV4 indexes the paused records by when they paused (their
// updated_at), so the inbox, the open pauses oldest first (List with
// OldestUpdated and State Paused), reads a page, not every paused record.
// The index is partial: records in other states, nearly all of them, cost
// it nothing on write. It leads with state, which it holds one value of,
// so that SQLite's planner, which takes the longest equality prefix first,
// prefers it to executions_state (state, wake_at) plus a sort.
const schemaV4 = `
CREATE INDEX executions_paused ON executions (state, updated_at, id) WHERE state = 'PAUSED';
`

// schemaV5 adds the schedules' slots (docs/schedules.md): one row per
// scheduled workflow, its latest decided slot. Claiming a slot moves the
// row forward only, so two processes never both decide one slot. And an
// index by definition hash, for Prune's sweep of unused definitions.
const schemaV5 = `
CREATE TABLE schedule_slots (
	workflow     TEXT PRIMARY KEY,
	at           TEXT NOT NULL,
	execution_id TEXT NOT NULL,
	skipped      TEXT NOT NULL,
	decided_at   TEXT NOT NULL
) STRICT;

-- Prune deletes a pinned definition once no execution uses it: this index
-- finds whether one does without a scan of the records.
CREATE INDEX executions_definition ON executions (definition_hash);
`

func migrateV4(ctx context.Context, c *sql.Conn) error {
	_, err := c.ExecContext(ctx, schemaV4)
	return err
}

func migrateV5(ctx context.Context, c *sql.Conn) error {
	_, err := c.ExecContext(ctx, schemaV5)
	return err
}

// schemaV6 keeps a large input out of the executions row (issue #11,
// defect 4). Every commit rewrites the row of each execution it appended to
// (last_seq, updated_at), and SQLite rewrites a row whole, reading and
// copying its overflow pages: with the input of a map over N items on the
// row, each of the map's ~N commits cost O(N). An input longer than
// inputInlineMax bytes now lives in inputs, written once, with its CRC-32C
// (sum), since SQLite checks no page's content and such an input spans
// several: a page of it lost or overwritten reads as damage, not as
// another input. The row keeps input NULL and input_aside 1, so a missing
// inputs row reads as damage too, not as an execution without input. A
// small input stays inline, where it costs less than the second row.
const schemaV6 = `
CREATE TABLE inputs (
	execution INTEGER PRIMARY KEY REFERENCES executions (ek) ON DELETE CASCADE,
	body      TEXT NOT NULL CHECK (json_valid(body)),
	sum       INTEGER NOT NULL
) STRICT;
ALTER TABLE executions ADD COLUMN input_aside INTEGER NOT NULL DEFAULT 0;
`

// inputInlineMax is the longest input (in bytes) kept on the executions
// row: well under a page, so the row never spills to overflow pages for it.
const inputInlineMax = 1024

// inputSum is the checksum stored with an input kept aside.
func inputSum(body []byte) int64 { return int64(crc32.Checksum(body, castagnoli)) }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func migrateV6(ctx context.Context, c *sql.Conn) error {
	if _, err := c.ExecContext(ctx, schemaV6); err != nil {
		return err
	}
	rows, err := c.QueryContext(ctx, `SELECT ek, input FROM executions WHERE length(CAST(input AS BLOB)) > ?`, inputInlineMax)
	if err != nil {
		return err
	}
	type aside struct {
		ek    int64
		input []byte
	}
	var move []aside
	for rows.Next() {
		var a aside
		if err := rows.Scan(&a.ek, &a.input); err != nil {
			rows.Close()
			return err
		}
		move = append(move, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, a := range move {
		if _, err := c.ExecContext(ctx, `INSERT INTO inputs (execution, body, sum) VALUES (?, ?, ?)`, a.ek, string(a.input), inputSum(a.input)); err != nil {
			return err
		}
		if _, err := c.ExecContext(ctx, `UPDATE executions SET input = NULL, input_aside = 1 WHERE ek = ?`, a.ek); err != nil {
			return err
		}
	}
	return nil
}

// schemaV7 adds what the service's dispatch needs (SPEC §6): the node
// (boot and PID namespace) of a lease's holder, so a dead holder on this
// node is taken over at once; a root's takeovers since its tree last
// journaled an event (stalled), the tree's event count at the last
// takeover (stall_mark) and, once it crash-loops, when a takeover may
// claim it again; and the heartbeats of the serve processes (workers).
const schemaV7 = `
ALTER TABLE leases ADD COLUMN holder_node TEXT NOT NULL DEFAULT '';
ALTER TABLE executions ADD COLUMN stalled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE executions ADD COLUMN stall_mark INTEGER NOT NULL DEFAULT 0;
ALTER TABLE executions ADD COLUMN crash_loop_until TEXT;
CREATE TABLE workers (
	id          TEXT PRIMARY KEY,
	host        TEXT NOT NULL,
	pid         INTEGER NOT NULL,
	node        TEXT NOT NULL,
	version     TEXT NOT NULL,
	started_at  TEXT NOT NULL,
	seen_at     TEXT NOT NULL,
	draining    INTEGER NOT NULL,
	concurrency INTEGER NOT NULL,
	in_use      INTEGER NOT NULL,
	tasks       TEXT NOT NULL CHECK (json_valid(tasks))
) STRICT;
`

func migrateV7(ctx context.Context, c *sql.Conn) error {
	_, err := c.ExecContext(ctx, schemaV7)
	return err
}

// schemaV8 keeps two facts of the service (SPEC §6) in the journal rather
// than in the memory of the process that was asked: who requested a
// root's cancel, so that whichever process carries the cancel out
// journals that actor, and the W3C traceparent of the request that
// started a root, so that whichever process drives it first parents its
// drive to it and later drives link to it.
const schemaV8 = `
ALTER TABLE executions ADD COLUMN cancel_requested_by TEXT NOT NULL DEFAULT '';
ALTER TABLE executions ADD COLUMN trace_parent TEXT NOT NULL DEFAULT '';
`

func migrateV8(ctx context.Context, c *sql.Conn) error {
	_, err := c.ExecContext(ctx, schemaV8)
	return err
}

// schemaCompact (schema 9) makes a finished execution take at most 1 KB
// (issue #14; it took ~1.4 KB at schema 7, measured page by page with the dbstat table:
// the events ~600 bytes, the record ~320, its indexes ~500). It rebuilds
// executions, leases, definitions and events:
//   - a record's key ek is its rowid (no index of its own), and its root is
//     stored only for a child (root; root_id is computed, coalesce(root,
//     id)), so a root's record and index entries no longer repeat its id;
//   - a pinned definition is named by its integer key dk (definitions'
//     rowid), not its 64-character hash, on the record and in the index
//     Prune uses (definition_hash stays for a definition kept inline);
//   - the times of records and leases are Unix nanoseconds (timeValue), as
//     the events' already were; the index of children is partial;
//   - an event's kind is a one-byte code (kindCodes) and the started_at
//     that ends a step event's data is cut into started (cutStarted).
//
// Foreign keys are off while it runs (migrate), as SQLite's procedure for
// rebuilding a table asks: dropping a parent table with them on would
// delete the inputs that cascade from it.
const schemaCompact = `
CREATE TABLE definitions_new (
	dk   INTEGER PRIMARY KEY,
	hash TEXT NOT NULL UNIQUE,
	body TEXT NOT NULL
) STRICT;
INSERT INTO definitions_new (hash, body) SELECT hash, body FROM definitions;
DROP TABLE definitions;
ALTER TABLE definitions_new RENAME TO definitions;

CREATE TABLE executions_new (
	ek               INTEGER PRIMARY KEY, -- events' key for it, in creation order
	id               TEXT NOT NULL UNIQUE,
	workflow         TEXT NOT NULL,
	version          INTEGER NOT NULL,
	state            TEXT NOT NULL,
	parent_id        TEXT,                -- NULL for a root
	root             TEXT,                -- NULL for a root
	root_id          TEXT GENERATED ALWAYS AS (coalesce(root, id)) VIRTUAL,
	parent_path      TEXT NOT NULL,
	input            TEXT CHECK (input IS NULL OR json_valid(input)),
	input_aside      INTEGER NOT NULL DEFAULT 0,
	output           TEXT CHECK (output IS NULL OR json_valid(output)),
	error            TEXT CHECK (error IS NULL OR json_valid(error)),
	pauses           TEXT CHECK (pauses IS NULL OR json_valid(pauses)),
	labels           TEXT CHECK (labels IS NULL OR json_valid(labels)),
	dk               INTEGER REFERENCES definitions (dk),
	definition       TEXT,                -- inline only when its hash is not its SHA-256
	definition_hash  TEXT,                -- NULL when dk names the definition
	wake_at          ANY,                 -- Unix nanoseconds (timeValue); NULL unless a timer is due
	created_at       ANY NOT NULL,
	updated_at       ANY NOT NULL,
	last_seq         INTEGER NOT NULL DEFAULT 0,
	started_by       TEXT NOT NULL DEFAULT '',
	cancel_requested INTEGER NOT NULL DEFAULT 0,
	takeovers        INTEGER NOT NULL DEFAULT 0,
	stalled          INTEGER NOT NULL DEFAULT 0,
	stall_mark       INTEGER NOT NULL DEFAULT 0,
	crash_loop_until ANY,
	cancel_requested_by TEXT NOT NULL DEFAULT '',
	trace_parent     TEXT NOT NULL DEFAULT ''
) STRICT;
INSERT INTO executions_new (ek, id, workflow, version, state, parent_id, root, parent_path,
	input, input_aside, output, error, pauses, labels, dk, definition, definition_hash,
	wake_at, created_at, updated_at, last_seq, started_by, cancel_requested, takeovers,
	stalled, stall_mark, crash_loop_until, cancel_requested_by, trace_parent)
SELECT x.ek, x.id, x.workflow, x.version, x.state, x.parent_id, nullif(x.root_id, x.id), x.parent_path,
	x.input, x.input_aside, x.output, x.error, x.pauses, x.labels,
	d.dk, x.definition, CASE WHEN d.dk IS NULL THEN x.definition_hash END,
	` + "%[1]s, %[2]s, %[3]s" + `, x.last_seq, x.started_by, x.cancel_requested, x.takeovers,
	x.stalled, x.stall_mark, ` + "%[4]s" + `, x.cancel_requested_by, x.trace_parent
FROM executions x LEFT JOIN definitions d ON x.definition IS NULL AND d.hash = x.definition_hash;

CREATE TABLE leases_new (
	root_id     TEXT PRIMARY KEY REFERENCES executions (id),
	token       INTEGER NOT NULL,
	holder_id   TEXT NOT NULL,
	holder_host TEXT NOT NULL,
	holder_pid  INTEGER NOT NULL,
	holder_node TEXT NOT NULL DEFAULT '',
	expires     ANY NOT NULL              -- Unix nanoseconds (timeValue)
) STRICT;
INSERT INTO leases_new (root_id, token, holder_id, holder_host, holder_pid, holder_node, expires)
	SELECT root_id, token, holder_id, holder_host, holder_pid, holder_node, ` + "%[5]s" + ` FROM leases;

CREATE TABLE events_new (
	ek      INTEGER NOT NULL REFERENCES executions (ek),
	seq     INTEGER NOT NULL,
	path    TEXT NOT NULL,
	kind    ANY NOT NULL,     -- kindCodes, or the text of a kind not listed there
	name    TEXT NOT NULL,
	ordinal INTEGER NOT NULL,
	data    TEXT CHECK (data IS NULL OR json_valid(data)),
	time    INTEGER NOT NULL, -- Unix nanoseconds
	started INTEGER,          -- data's started_at, cut out: nanoseconds before time
	PRIMARY KEY (ek, seq)
) STRICT, WITHOUT ROWID;
INSERT INTO events_new (ek, seq, path, kind, name, ordinal, data, time)
	SELECT ek, seq, path, ` + "%[6]s" + `, name, ordinal, data, time FROM events;

DROP TABLE events;
DROP TABLE leases;
DROP TABLE executions;
ALTER TABLE executions_new RENAME TO executions;
ALTER TABLE leases_new RENAME TO leases;
ALTER TABLE events_new RENAME TO events;

CREATE INDEX executions_created ON executions (created_at, id);
CREATE INDEX executions_state ON executions (state, wake_at);
CREATE INDEX executions_workflow ON executions (workflow, created_at);
CREATE INDEX executions_parent ON executions (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX executions_root ON executions (root) WHERE root IS NOT NULL;
CREATE INDEX executions_paused ON executions (state, updated_at, id) WHERE state = 'PAUSED';
CREATE INDEX executions_definition ON executions (dk);
CREATE UNIQUE INDEX events_key ON events (ek, path, kind, ordinal);

-- The events as text, for the sqlite3 shell (times to the millisecond).
CREATE VIEW events_shown AS SELECT x.id AS execution, v.seq, v.path, ` + "%[7]s" + ` AS kind, v.name, v.ordinal,
	CASE WHEN v.started IS NULL THEN v.data
		ELSE json_set(v.data, '$.started_at', strftime('%%Y-%%m-%%dT%%H:%%M:%%fZ', (v.time - v.started) / 1e9, 'unixepoch')) END AS data,
	strftime('%%Y-%%m-%%dT%%H:%%M:%%fZ', v.time / 1e9, 'unixepoch') AS time
	FROM events v JOIN executions x ON x.ek = v.ek;
`

func migrateCompact(ctx context.Context, c *sql.Conn) error {
	q := fmt.Sprintf(schemaCompact, timeNanos("x.wake_at"), timeNanos("x.created_at"), timeNanos("x.updated_at"),
		timeNanos("x.crash_loop_until"), timeNanos("expires"), kindCode("kind"), kindText("v.kind"))
	if _, err := c.ExecContext(ctx, q); err != nil {
		return err
	}
	return compactStarted(ctx, c)
}

// compactStarted cuts the started_at out of the step events written
// before schemaCompact (cutStarted), a batch of keys at a time.
func compactStarted(ctx context.Context, c *sql.Conn) error {
	type row struct {
		ek, seq, time, before int64
		data                  []byte
	}
	var ek, seq int64
	for {
		rows, err := c.QueryContext(ctx, `SELECT ek, seq, data, time FROM events
			WHERE (ek, seq) > (?, ?) AND kind IN (?, ?) AND data IS NOT NULL AND started IS NULL
			ORDER BY ek, seq LIMIT 10000`, ek, seq, kindCodes[journal.StepCompleted], kindCodes[journal.StepFailed])
		if err != nil {
			return err
		}
		var batch []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.ek, &r.seq, &r.data, &r.time); err != nil {
				rows.Close()
				return err
			}
			batch = append(batch, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		for _, r := range batch {
			rest, before, ok := cutStarted(r.data, time.Unix(0, r.time))
			if !ok {
				continue
			}
			if _, err := c.ExecContext(ctx, `UPDATE events SET data = ?, started = ? WHERE ek = ? AND seq = ?`, string(rest), before, r.ek, r.seq); err != nil {
				return err
			}
		}
		last := batch[len(batch)-1]
		ek, seq = last.ek, last.seq
	}
}

// definitionKey reports whether hash is def's SHA-256 (hex), so that def
// can be stored once under it.
func definitionKey(def []byte, hash string) bool {
	sum := sha256.Sum256(def)
	return len(def) > 0 && hash == hex.EncodeToString(sum[:])
}

// schemaV10 lets a claim read what it may take, not the backlog: before, it
// read every unfinished root (5.5 ms a claim in a serve with 2,000 queued
// starts, inside the writer's transaction, so every append waited on it).
// begun is set by the append that takes a record's last seq past 0 (the
// writer's updSeqBegun and updRecord), never by the other appends, so it
// changes once and the per-append update touches none of these indexes:
//   - executions_queued: the roots started and not yet begun, in the order
//     a claim takes starts (created_at, id), read up to the claim's limit;
//   - executions_inflight: the roots begun and running, which a claim
//     reads whole (resumes of released ones; they are as many as the
//     drives under way and the drives given up, not the backlog);
//   - executions_cancels: the unfinished records with a cancel requested.
const schemaV10 = `
ALTER TABLE executions ADD COLUMN begun INTEGER NOT NULL DEFAULT 0;
UPDATE executions SET begun = 1 WHERE last_seq > 0;
CREATE INDEX executions_queued ON executions (created_at, id)
	WHERE parent_id IS NULL AND state = 'RUNNING' AND NOT begun;
CREATE INDEX executions_inflight ON executions (id)
	WHERE parent_id IS NULL AND state = 'RUNNING' AND begun;
CREATE INDEX executions_cancels ON executions (id)
	WHERE cancel_requested AND state IN ('RUNNING', 'WAITING', 'PAUSED');
`

func migrateV10(ctx context.Context, c *sql.Conn) error {
	_, err := c.ExecContext(ctx, schemaV10)
	return err
}

// migrate brings the database to SchemaVersion in one IMMEDIATE transaction,
// so two processes opening a new file at once cannot both create it. A
// database already at SchemaVersion is not locked at all: opening it while
// another process holds the write lock succeeds, and only a write waits
// (wait, the busy timeout) for the lock.
func migrate(ctx context.Context, c *sql.Conn, wait time.Duration) (err error) {
	var v int
	if err := c.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("read user_version: %w", err)
	}
	if v == SchemaVersion {
		return nil
	}
	// Foreign keys off for the migrations that rebuild a table (SQLite's
	// procedure: https://sqlite.org/lang_altertable.html#otheralter); the
	// pragma is a no-op inside a transaction, so it goes first, and
	// foreign_key_check proves the result before COMMIT.
	if _, err := c.ExecContext(ctx, "PRAGMA foreign_keys = OFF"); err != nil {
		return fmt.Errorf("begin migration: %w", err)
	}
	defer func() {
		if _, ferr := c.ExecContext(context.Background(), "PRAGMA foreign_keys = ON"); ferr != nil && err == nil {
			err = fmt.Errorf("end migration: %w", ferr)
		}
	}()
	if _, err := c.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("begin migration: %w", lockHeld(err, wait))
	}
	defer func() {
		if err != nil {
			_, _ = c.ExecContext(context.Background(), "ROLLBACK")
		}
	}()
	// Read again under the lock: another process may have migrated it.
	if err := c.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("read user_version: %w", err)
	}
	if v > SchemaVersion {
		return fmt.Errorf("database schema version %d is newer than this build of Loom knows (%d): upgrade Loom to open it", v, SchemaVersion)
	}
	for ; v < SchemaVersion; v++ {
		if err := migrations[v](ctx, c); err != nil {
			return fmt.Errorf("migrate schema %d → %d: %w", v, v+1, err)
		}
		if _, err := c.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
			return fmt.Errorf("set user_version %d: %w", v+1, err)
		}
	}
	var bad int
	if err := c.QueryRowContext(ctx, "SELECT count(*) FROM pragma_foreign_key_check").Scan(&bad); err != nil {
		return fmt.Errorf("check foreign keys after migration: %w", err)
	}
	if bad > 0 {
		return fmt.Errorf("migration to schema %d: %d rows refer to rows that do not exist", SchemaVersion, bad)
	}
	if _, err := c.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("commit migration: %w", err)
	}
	return nil
}
