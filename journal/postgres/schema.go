package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// SchemaVersion is the schema version this package writes and understands:
// len(migrations). It is stored in loom_meta.
const SchemaVersion = 12

// migrations[i] brings the schema from version i to version i+1. Append new
// ones; never edit a shipped one.
var migrations = []string{schemaV1, schemaV2, schemaV3, schemaV4, schemaV5, schemaV6, schemaV7, schemaV8, schemaV9, schemaV10, schemaV11, schemaV12}

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

// schemaV2 adds loom_append, an Append in one statement, so that the writer
// can send a whole batch of appends in one round trip (a pgx.Batch) instead
// of several round trips per append. It returns o_code 0 and the new last
// seq, or refuses, having written nothing: 1 no such execution, 2 fenced
// (the token is not the root's current one), 3 the expected seq is not the
// last (o_last), 4 an event repeats a recorded (path, kind, ordinal).
//
// It locks the execution's row and then its root's (Acquire takes that lock
// exclusively), so a lease taken by another process cannot slip in between
// the token check and the commit; in READ COMMITTED each statement reads
// after the locks before it are held. A duplicate event key does not fail
// the insert, which skips the row; the events inserted are deleted again.
const schemaV2 = `
CREATE FUNCTION loom_append(
	p_id text, p_token bigint, p_expected bigint, p_now text,
	p_paths text[], p_kinds text[], p_names text[], p_ordinals integer[], p_data text[], p_times text[],
	p_state text, p_output text, p_error text, p_set_pauses boolean, p_pauses text,
	p_set_wake boolean, p_wake text, p_release boolean,
	OUT o_code integer, OUT o_last bigint)
LANGUAGE plpgsql AS $$
DECLARE
	v_root  text;
	v_token bigint;
	v_n     integer := coalesce(cardinality(p_paths), 0);
	v_rows  integer;
BEGIN
	SELECT e.root_id, e.last_seq INTO v_root, o_last FROM executions e WHERE e.id = p_id FOR NO KEY UPDATE;
	IF NOT FOUND THEN
		o_code := 1;
		RETURN;
	END IF;
	PERFORM 1 FROM executions r WHERE r.id = v_root FOR SHARE;
	SELECT l.token INTO v_token FROM leases l WHERE l.root_id = v_root;
	IF v_token IS NULL OR v_token <> p_token THEN
		o_code := 2;
		RETURN;
	END IF;
	IF o_last <> p_expected THEN
		o_code := 3;
		RETURN;
	END IF;
	IF v_n > 0 THEN
		INSERT INTO events (execution_id, seq, path, kind, name, ordinal, data, time)
			SELECT p_id, o_last + u.i, u.a_path, u.a_kind, u.a_name, u.a_ordinal, u.a_data, coalesce(u.a_time, p_now)
			FROM unnest(p_paths, p_kinds, p_names, p_ordinals, p_data, p_times)
				WITH ORDINALITY AS u(a_path, a_kind, a_name, a_ordinal, a_data, a_time, i)
			ON CONFLICT (execution_id, path, kind, ordinal) DO NOTHING;
		GET DIAGNOSTICS v_rows = ROW_COUNT;
		IF v_rows <> v_n THEN
			DELETE FROM events ev WHERE ev.execution_id = p_id AND ev.seq > o_last;
			o_code := 4;
			RETURN;
		END IF;
		o_last := o_last + v_n;
	END IF;
	UPDATE executions e SET last_seq = o_last, updated_at = p_now,
		state   = coalesce(p_state, e.state),
		output  = coalesce(p_output, e.output),
		error   = coalesce(p_error, e.error),
		pauses  = CASE WHEN p_set_pauses THEN p_pauses ELSE e.pauses END,
		wake_at = CASE WHEN p_set_wake THEN p_wake ELSE e.wake_at END
		WHERE e.id = p_id;
	IF p_release THEN
		DELETE FROM leases l WHERE l.root_id = v_root AND l.token = p_token;
	END IF;
	o_code := 0;
END
$$;
`

// schemaV3 adds what the service needs (SPEC §6): a start's labels (a JSON
// object of strings, as text) and actor, the durable cancel request a
// dispatcher claims first, and the count of takeovers.
const schemaV3 = `
ALTER TABLE executions ADD COLUMN labels text;
ALTER TABLE executions ADD COLUMN started_by text NOT NULL DEFAULT '';
ALTER TABLE executions ADD COLUMN cancel_requested boolean NOT NULL DEFAULT false;
ALTER TABLE executions ADD COLUMN takeovers integer NOT NULL DEFAULT 0;
`

// schemaV4 indexes the paused records by when they paused (their
// updated_at), so the inbox, the open pauses oldest first (List with
// OldestUpdated and State Paused), reads a page, not every paused record.
// The index is partial: records in other states cost it nothing on write.
const schemaV4 = `
CREATE INDEX executions_paused ON executions (state, updated_at, id) WHERE state = 'PAUSED';
`

// schemaV5 adds the schedules' slots (docs/schedules.md): one row per
// scheduled workflow, its latest decided slot. Claiming a slot moves the
// row forward only (an upsert, which serializes on the key), so two
// processes never both decide one slot.
const schemaV5 = `
CREATE TABLE schedule_slots (
	workflow     text COLLATE "C" PRIMARY KEY,
	at           text COLLATE "C" NOT NULL,
	execution_id text NOT NULL,
	skipped      text NOT NULL,
	decided_at   text NOT NULL
);
`

// schemaV6 adds what the service's dispatch needs (SPEC §6): the node
// (boot and PID namespace) of a lease's holder, so a dead holder on this
// node is taken over at once; a root's takeovers since its tree last
// journaled an event (stalled), the tree's event count at the last
// takeover (stall_mark) and, once it crash-loops, when a takeover may
// claim it again; and the heartbeats of the serve processes (workers).
const schemaV6 = `
ALTER TABLE leases ADD COLUMN holder_node text NOT NULL DEFAULT '';
ALTER TABLE executions ADD COLUMN stalled integer NOT NULL DEFAULT 0;
ALTER TABLE executions ADD COLUMN stall_mark bigint NOT NULL DEFAULT 0;
ALTER TABLE executions ADD COLUMN crash_loop_until text COLLATE "C";
CREATE TABLE workers (
	id          text COLLATE "C" PRIMARY KEY,
	host        text NOT NULL,
	pid         integer NOT NULL,
	node        text NOT NULL,
	version     text NOT NULL,
	started_at  text NOT NULL,
	seen_at     text COLLATE "C" NOT NULL,
	draining    boolean NOT NULL,
	concurrency integer NOT NULL,
	in_use      integer NOT NULL,
	tasks       text NOT NULL
);
`

// schemaV7 adds loom_append_batch: the appends of one writer batch in one
// call with set-based statements, where loom_append (schemaV2), called once
// per append, ran five statements and a foreign-key check per append. Its
// arguments are columns: p_ids .. p_releases one element per append (the
// ids distinct: the writer sends an execution's second append of a batch
// in a later call), p_owners .. p_times one per event (p_owners the
// 1-based index of its append, p_nums its place in that append). It returns
// each append's code and last seq as loom_append does.
//
// It locks the executions' rows and their roots' in one statement, in id
// order (FOR NO KEY UPDATE: the roots' need only exclude Acquire's FOR
// UPDATE, as loom_append's FOR SHARE does, but one statement takes one
// mode); the tokens and last seqs are read after the locks are held (in
// READ COMMITTED each statement of the function reads after the locks
// before it), so a lease taken by another process cannot slip in between
// the check and the commit. The arrays are joined (unnest), never searched
// (= ANY), which would cost a pass over the array per row. An
// append whose events repeat a recorded (path, kind, ordinal) has its
// inserted events deleted again and gets code 4; the others go on.
//
// events' foreign key to executions goes: every event is inserted here or
// by loom_append, under the lock of an execution row just read, and Prune
// deletes events first; its check cost a lookup per event.
const schemaV7 = `
ALTER TABLE events DROP CONSTRAINT events_execution_id_fkey;
CREATE FUNCTION loom_append_batch(
	p_now text,
	p_ids text[], p_tokens bigint[], p_expected bigint[], p_counts integer[],
	p_states text[], p_outputs text[], p_errors text[], p_set_pauses boolean[], p_pauses text[],
	p_set_wakes boolean[], p_wakes text[], p_releases boolean[],
	p_owners integer[], p_nums integer[], p_paths text[], p_kinds text[], p_names text[], p_ordinals integer[],
	p_data text[], p_times text[],
	OUT o_codes integer[], OUT o_lasts bigint[])
LANGUAGE plpgsql AS $$
DECLARE
	v_expected bigint;
	v_inserted bigint;
	v_bad      integer[];
	v_i        integer;
BEGIN
	PERFORM 1 FROM executions e
		WHERE e.id IN (SELECT a.a_id FROM unnest(p_ids) AS a(a_id)
			UNION SELECT x.root_id FROM unnest(p_ids) AS a(a_id) JOIN executions x ON x.id = a.a_id)
		ORDER BY e.id FOR NO KEY UPDATE;
	SELECT array_agg(c.code ORDER BY c.i), array_agg(c.last ORDER BY c.i), coalesce(sum(c.n) FILTER (WHERE c.code = 0), 0)
		INTO o_codes, o_lasts, v_expected
		FROM (SELECT a.i, a.a_n AS n, coalesce(e.last_seq, 0) AS last,
				CASE WHEN e.id IS NULL THEN 1
					WHEN l.token IS NULL OR l.token <> a.a_token THEN 2
					WHEN e.last_seq <> a.a_expected THEN 3
					ELSE 0 END AS code
			FROM unnest(p_ids, p_tokens, p_expected, p_counts) WITH ORDINALITY AS a(a_id, a_token, a_expected, a_n, i)
			LEFT JOIN executions e ON e.id = a.a_id
			LEFT JOIN leases l ON l.root_id = e.root_id) c;
	IF v_expected > 0 THEN
		WITH ins AS (
			INSERT INTO events (execution_id, seq, path, kind, name, ordinal, data, time)
			SELECT a.a_id, a.a_last + v.a_num, v.a_path, v.a_kind, v.a_name, v.a_ordinal, v.a_data, coalesce(v.a_time, p_now)
			FROM unnest(p_owners, p_nums, p_paths, p_kinds, p_names, p_ordinals, p_data, p_times)
				AS v(a_owner, a_num, a_path, a_kind, a_name, a_ordinal, a_data, a_time)
			JOIN unnest(p_ids, o_codes, o_lasts) WITH ORDINALITY AS a(a_id, a_code, a_last, i) ON a.i = v.a_owner
			WHERE a.a_code = 0
			ON CONFLICT (execution_id, path, kind, ordinal) DO NOTHING
			RETURNING 1)
		SELECT count(*) INTO v_inserted FROM ins;
		IF v_inserted <> v_expected THEN
			-- Some event repeated a recorded key (rare): find whose, by
			-- the rows inserted after each append's last seq.
			SELECT array_agg(a.i) INTO v_bad
				FROM unnest(p_ids, o_codes, o_lasts, p_counts) WITH ORDINALITY AS a(a_id, a_code, a_last, a_n, i)
				WHERE a.a_code = 0 AND a.a_n <> (SELECT count(*) FROM events ev WHERE ev.execution_id = a.a_id AND ev.seq > a.a_last);
			FOREACH v_i IN ARRAY v_bad LOOP
				DELETE FROM events ev WHERE ev.execution_id = p_ids[v_i] AND ev.seq > o_lasts[v_i];
				o_codes[v_i] := 4;
			END LOOP;
		END IF;
	END IF;
	UPDATE executions e SET last_seq = a.a_last + a.a_n, updated_at = p_now,
		state   = coalesce(a.a_state, e.state),
		output  = coalesce(a.a_output, e.output),
		error   = coalesce(a.a_error, e.error),
		pauses  = CASE WHEN a.a_set_pauses THEN a.a_pauses ELSE e.pauses END,
		wake_at = CASE WHEN a.a_set_wake THEN a.a_wake ELSE e.wake_at END
		FROM unnest(p_ids, o_codes, o_lasts, p_counts, p_states, p_outputs, p_errors, p_set_pauses, p_pauses, p_set_wakes, p_wakes)
			AS a(a_id, a_code, a_last, a_n, a_state, a_output, a_error, a_set_pauses, a_pauses, a_set_wake, a_wake)
		WHERE e.id = a.a_id AND a.a_code = 0;
	IF true = ANY (p_releases) THEN
		DELETE FROM leases l
			USING unnest(p_ids, o_codes, p_tokens, p_releases) AS a(a_id, a_code, a_token, a_release), executions e
			WHERE a.a_code = 0 AND a.a_release AND e.id = a.a_id AND l.root_id = e.root_id AND l.token = a.a_token;
	END IF;
	SELECT array_agg(CASE WHEN a.a_code = 0 THEN a.a_last + a.a_n ELSE a.a_last END ORDER BY a.i) INTO o_lasts
		FROM unnest(o_codes, o_lasts, p_counts) WITH ORDINALITY AS a(a_code, a_last, a_n, i);
END
$$;
`

// schemaV8 lets the update of a record by an append be a heap-only tuple
// (HOT) update, which writes no index entry: PostgreSQL makes one only if
// no column an index reads changes, and every append sets updated_at,
// which executions_paused (schemaV4) keyed. That index now keys paused_at,
// generated as updated_at while the record is PAUSED and NULL otherwise,
// so it holds the same order for the same rows (List of PAUSED records
// oldest first sorts by it) and stays NULL while a record runs. A HOT
// update also needs room on the record's page: fillfactor 70 leaves 30% of
// each new page free, room for the updates of the records created together
// and running together (1,000 × 10 in bench PostgresThroughput: 81% of the
// updates HOT at 70, 45% at 90).
const schemaV8 = `
ALTER TABLE executions ADD COLUMN paused_at text COLLATE "C"
	GENERATED ALWAYS AS (CASE WHEN state = 'PAUSED' THEN updated_at END) STORED;
DROP INDEX executions_paused;
CREATE INDEX executions_paused ON executions (paused_at, id) WHERE state = 'PAUSED';
ALTER TABLE executions SET (fillfactor = 70);
`

// schemaV9 keeps two facts of the service (SPEC §6) in the journal rather
// than in the memory of the process that was asked: who requested a
// root's cancel, so that whichever process carries the cancel out
// journals that actor, and the W3C traceparent of the request that
// started a root, so that whichever process drives it first parents its
// drive to it and later drives link to it.
const schemaV9 = `
ALTER TABLE executions ADD COLUMN cancel_requested_by text NOT NULL DEFAULT '';
ALTER TABLE executions ADD COLUMN trace_parent text NOT NULL DEFAULT '';
`

// schemaV10 makes loom_append_batch (schemaV7) cheaper in the common case,
// where every append of the call is accepted. It first updates the
// records, each only if its last seq is the one expected: the UPDATE
// locks each row and, in READ COMMITTED, judges it by its latest version,
// so the seq check and the lock are one statement; it then locks the
// roots of children (FOR SHARE, as loom_append) and reads the roots'
// lease tokens, after their rows are locked, so a lease taken by another
// process cannot slip in between the check and the commit; then it inserts
// the events with a plain INSERT (ON CONFLICT DO NOTHING made every event
// a speculative insertion: a look-up in events_key before the insert, and
// a second WAL record confirming it) and deletes the released leases.
// Any refusal (a record missing, not at the seq expected, fenced) raises,
// and so does an event repeating a recorded key (a unique violation): the
// block's subtransaction (one a call, not a row) is rolled back and the
// call runs loom_append_batch_checked: schemaV7's algorithm (every row
// locked in id order first, then each append judged and answered alone),
// whose events are inserted by a plain INSERT too, then, on a unique
// violation, with ON CONFLICT DO NOTHING to find whose repeated a key.
// Codes and last seqs are schemaV7's.
const schemaV10 = `
CREATE FUNCTION loom_append_batch_checked(
	p_now text,
	p_ids text[], p_tokens bigint[], p_expected bigint[], p_counts integer[],
	p_states text[], p_outputs text[], p_errors text[], p_set_pauses boolean[], p_pauses text[],
	p_set_wakes boolean[], p_wakes text[], p_releases boolean[],
	p_owners integer[], p_nums integer[], p_paths text[], p_kinds text[], p_names text[], p_ordinals integer[],
	p_data text[], p_times text[],
	OUT o_codes integer[], OUT o_lasts bigint[])
LANGUAGE plpgsql AS $$
DECLARE
	v_roots    text[];
	v_before   bigint[];
	v_expected bigint;
	v_inserted bigint;
	v_bad      integer[];
	v_i        integer;
BEGIN
	SELECT array_agg(x.root_id ORDER BY a.i), array_agg(x.last_seq ORDER BY a.i) INTO v_roots, v_before
		FROM unnest(p_ids) WITH ORDINALITY AS a(a_id, i)
		LEFT JOIN (SELECT e.id, e.root_id, e.last_seq FROM executions e WHERE e.id = ANY (p_ids)
			ORDER BY e.id FOR NO KEY UPDATE) x ON x.id = a.a_id;
	IF EXISTS (SELECT 1 FROM unnest(p_ids, v_roots) AS a(a_id, a_root) WHERE a.a_root <> a.a_id) THEN
		PERFORM 1 FROM executions r WHERE r.id = ANY (v_roots) AND NOT r.id = ANY (p_ids) ORDER BY r.id FOR SHARE;
	END IF;
	SELECT array_agg(c.code ORDER BY c.i), array_agg(CASE WHEN c.code = 0 THEN c.last + c.n ELSE c.last END ORDER BY c.i),
			coalesce(sum(c.n) FILTER (WHERE c.code = 0), 0)
		INTO o_codes, o_lasts, v_expected
		FROM (SELECT a.i, a.a_n AS n, coalesce(a.a_last, 0) AS last,
				CASE WHEN a.a_root IS NULL THEN 1
					WHEN l.token IS NULL OR l.token <> a.a_token THEN 2
					WHEN a.a_last <> a.a_expected THEN 3
					ELSE 0 END AS code
			FROM unnest(v_roots, v_before, p_tokens, p_expected, p_counts) WITH ORDINALITY
				AS a(a_root, a_last, a_token, a_expected, a_n, i)
			LEFT JOIN leases l ON l.root_id = a.a_root) c;
	IF v_expected > 0 THEN
		BEGIN
			INSERT INTO events (execution_id, seq, path, kind, name, ordinal, data, time)
			SELECT a.a_id, a.a_last + v.a_num, v.a_path, v.a_kind, v.a_name, v.a_ordinal, v.a_data, coalesce(v.a_time, p_now)
			FROM unnest(p_owners, p_nums, p_paths, p_kinds, p_names, p_ordinals, p_data, p_times)
				AS v(a_owner, a_num, a_path, a_kind, a_name, a_ordinal, a_data, a_time)
			JOIN unnest(p_ids, o_codes, v_before) WITH ORDINALITY AS a(a_id, a_code, a_last, i) ON a.i = v.a_owner
			WHERE a.a_code = 0;
		EXCEPTION WHEN unique_violation THEN
			WITH ins AS (
				INSERT INTO events (execution_id, seq, path, kind, name, ordinal, data, time)
				SELECT a.a_id, a.a_last + v.a_num, v.a_path, v.a_kind, v.a_name, v.a_ordinal, v.a_data, coalesce(v.a_time, p_now)
				FROM unnest(p_owners, p_nums, p_paths, p_kinds, p_names, p_ordinals, p_data, p_times)
					AS v(a_owner, a_num, a_path, a_kind, a_name, a_ordinal, a_data, a_time)
				JOIN unnest(p_ids, o_codes, v_before) WITH ORDINALITY AS a(a_id, a_code, a_last, i) ON a.i = v.a_owner
				WHERE a.a_code = 0
				ON CONFLICT (execution_id, path, kind, ordinal) DO NOTHING
				RETURNING 1)
			SELECT count(*) INTO v_inserted FROM ins;
			-- Find whose events repeated a key, by the rows inserted after
			-- each append's last seq.
			SELECT array_agg(a.i) INTO v_bad
				FROM unnest(p_ids, o_codes, v_before, p_counts) WITH ORDINALITY AS a(a_id, a_code, a_last, a_n, i)
				WHERE a.a_code = 0 AND a.a_n <> (SELECT count(*) FROM events ev WHERE ev.execution_id = a.a_id AND ev.seq > a.a_last);
			FOREACH v_i IN ARRAY coalesce(v_bad, '{}') LOOP
				DELETE FROM events ev WHERE ev.execution_id = p_ids[v_i] AND ev.seq > v_before[v_i];
				o_codes[v_i] := 4;
				o_lasts[v_i] := v_before[v_i];
			END LOOP;
		END;
	END IF;
	UPDATE executions e SET last_seq = a.a_last, updated_at = p_now,
		state   = coalesce(a.a_state, e.state),
		output  = coalesce(a.a_output, e.output),
		error   = coalesce(a.a_error, e.error),
		pauses  = CASE WHEN a.a_set_pauses THEN a.a_pauses ELSE e.pauses END,
		wake_at = CASE WHEN a.a_set_wake THEN a.a_wake ELSE e.wake_at END
		FROM unnest(p_ids, o_codes, o_lasts, p_states, p_outputs, p_errors, p_set_pauses, p_pauses, p_set_wakes, p_wakes)
			AS a(a_id, a_code, a_last, a_state, a_output, a_error, a_set_pauses, a_pauses, a_set_wake, a_wake)
		WHERE e.id = a.a_id AND a.a_code = 0;
	IF true = ANY (p_releases) THEN
		DELETE FROM leases l USING unnest(v_roots, o_codes, p_tokens, p_releases) AS a(a_root, a_code, a_token, a_release)
			WHERE a.a_code = 0 AND a.a_release AND l.root_id = a.a_root AND l.token = a.a_token;
	END IF;
END
$$;

CREATE OR REPLACE FUNCTION loom_append_batch(
	p_now text,
	p_ids text[], p_tokens bigint[], p_expected bigint[], p_counts integer[],
	p_states text[], p_outputs text[], p_errors text[], p_set_pauses boolean[], p_pauses text[],
	p_set_wakes boolean[], p_wakes text[], p_releases boolean[],
	p_owners integer[], p_nums integer[], p_paths text[], p_kinds text[], p_names text[], p_ordinals integer[],
	p_data text[], p_times text[],
	OUT o_codes integer[], OUT o_lasts bigint[])
LANGUAGE plpgsql AS $$
DECLARE
	v_roots text[];
	v_n     bigint;
BEGIN
	BEGIN
		WITH u AS (
			UPDATE executions e SET last_seq = e.last_seq + a.a_n, updated_at = p_now,
				state   = coalesce(a.a_state, e.state),
				output  = coalesce(a.a_output, e.output),
				error   = coalesce(a.a_error, e.error),
				pauses  = CASE WHEN a.a_set_pauses THEN a.a_pauses ELSE e.pauses END,
				wake_at = CASE WHEN a.a_set_wake THEN a.a_wake ELSE e.wake_at END
			FROM unnest(p_ids, p_expected, p_counts, p_states, p_outputs, p_errors, p_set_pauses, p_pauses, p_set_wakes, p_wakes)
				WITH ORDINALITY AS a(a_id, a_expected, a_n, a_state, a_output, a_error, a_set_pauses, a_pauses, a_set_wake, a_wake, i)
			WHERE e.id = a.a_id AND e.last_seq = a.a_expected
			RETURNING a.i, e.root_id, e.last_seq)
		SELECT array_agg(u.root_id ORDER BY u.i), array_agg(u.last_seq ORDER BY u.i), count(*) INTO v_roots, o_lasts, v_n FROM u;
		IF v_n <> cardinality(p_ids) THEN
			RAISE EXCEPTION 'an append is refused';
		END IF;
		IF EXISTS (SELECT 1 FROM unnest(p_ids, v_roots) AS a(a_id, a_root) WHERE a.a_root <> a.a_id) THEN
			PERFORM 1 FROM executions r WHERE r.id = ANY (v_roots) AND NOT r.id = ANY (p_ids) ORDER BY r.id FOR SHARE;
		END IF;
		IF EXISTS (SELECT 1 FROM unnest(v_roots, p_tokens) AS a(a_root, a_token)
				LEFT JOIN leases l ON l.root_id = a.a_root WHERE l.token IS DISTINCT FROM a.a_token) THEN
			RAISE EXCEPTION 'an append is fenced';
		END IF;
		INSERT INTO events (execution_id, seq, path, kind, name, ordinal, data, time)
		SELECT a.a_id, a.a_last - a.a_n + v.a_num, v.a_path, v.a_kind, v.a_name, v.a_ordinal, v.a_data, coalesce(v.a_time, p_now)
		FROM unnest(p_owners, p_nums, p_paths, p_kinds, p_names, p_ordinals, p_data, p_times)
			AS v(a_owner, a_num, a_path, a_kind, a_name, a_ordinal, a_data, a_time)
		JOIN unnest(p_ids, o_lasts, p_counts) WITH ORDINALITY AS a(a_id, a_last, a_n, i) ON a.i = v.a_owner;
		IF true = ANY (p_releases) THEN
			DELETE FROM leases l USING unnest(v_roots, p_tokens, p_releases) AS a(a_root, a_token, a_release)
				WHERE a.a_release AND l.root_id = a.a_root AND l.token = a.a_token;
		END IF;
		o_codes := array_fill(0, ARRAY[cardinality(p_ids)]);
	EXCEPTION WHEN raise_exception OR unique_violation THEN
		SELECT c.o_codes, c.o_lasts INTO o_codes, o_lasts FROM loom_append_batch_checked(p_now, p_ids, p_tokens, p_expected,
			p_counts, p_states, p_outputs, p_errors, p_set_pauses, p_pauses, p_set_wakes, p_wakes, p_releases,
			p_owners, p_nums, p_paths, p_kinds, p_names, p_ordinals, p_data, p_times) c;
	END;
END
$$;
`

// schemaV11 leaves half of each new page of executions free (fillfactor 50,
// was 70 since schemaV8): an append's record update is heap-only (HOT)
// only if the new version fits on the record's page, and a batch updates
// about half the records of a page while their previous versions are
// still there, so at 70 a quarter of the updates did not fit and wrote an
// entry in each of the table's indexes (bench PostgresThroughput: 72% of
// the updates HOT at 70, 90% at 50; the rest are mostly the finishing
// updates, which change the indexed state). Records take up to ~40% more
// pages. And leases' foreign key to executions goes, as events' did
// (schemaV7): a lease is inserted only by Acquire, after locking and
// reading its root's row, or with its record in CreateHeld's statement,
// and Prune deletes leases before records; the check cost a look-up and a
// row lock (a WAL record) per create held.
const schemaV11 = `
ALTER TABLE executions SET (fillfactor = 50);
ALTER TABLE leases DROP CONSTRAINT leases_root_id_fkey;
`

// schemaV12 lets a claim read what it may take, not the backlog: it read
// every unfinished root and sorted them, so a claim behind 50,000 queued
// starts took ~190 ms (bench ClaimBacklog). begun is generated (last_seq >
// 0): it changes once, at a record's first append, so the appends after it
// stay heap-only updates (an index's predicate columns count as indexed,
// and last_seq itself must not be one). The indexes:
//   - executions_queued: the roots started and not yet begun, in the order
//     a claim takes starts (created_at, id), read up to the claim's limit;
//   - executions_inflight: the roots begun and running, which a claim
//     reads whole (as many as the drives under way and given up);
//   - executions_cancels: the unfinished records with a cancel requested.
const schemaV12 = `
ALTER TABLE executions ADD COLUMN begun boolean GENERATED ALWAYS AS (last_seq > 0) STORED;
CREATE INDEX executions_queued ON executions (created_at, id)
	WHERE parent_id IS NULL AND state = 'RUNNING' AND NOT begun;
CREATE INDEX executions_inflight ON executions (id)
	WHERE parent_id IS NULL AND state = 'RUNNING' AND begun;
CREATE INDEX executions_cancels ON executions (id)
	WHERE cancel_requested AND state IN ('RUNNING', 'WAITING', 'PAUSED');
`

// current reports whether the journal's schema is already SchemaVersion:
// then Open needs no migration, whose transaction takes a lock, runs DDL
// and writes loom_meta, a commit (and a WAL flush) for every `loom list`.
// Any error (no schema, no loom_meta yet) leaves it to migrate.
func current(ctx context.Context, pool *pgxpool.Pool) bool {
	var v int64
	err := pool.QueryRow(ctx, `SELECT value FROM loom_meta WHERE key = 'schema_version'`).Scan(&v)
	return err == nil && v == SchemaVersion
}

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
