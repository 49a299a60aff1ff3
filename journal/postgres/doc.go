// Package postgres is a journal.Journal in a PostgreSQL database, through
// github.com/jackc/pgx/v5 and its connection pool.
//
// Writes (Create, CreateHeld, Append and the lease methods) are queued to one
// writer goroutine per Journal that runs as many queued writes as are waiting
// in one transaction and acknowledges each caller after the commit, so
// concurrent appends share commits as they do in journal/sqlite. Reads go
// through the pool and see every acknowledged write. synchronous_commit is
// left on: an acknowledged write is durable.
//
// The tables live in the schema named by WithSchema (created if absent) or,
// without it, in the connection's current schema: executions, events,
// leases, the sequence lease_tokens (fencing tokens, never reused), the
// function loom_append (an Append in one statement, so that a batch of
// appends costs one round trip) and loom_meta, whose row 'schema_version'
// is SchemaVersion. Open creates or
// migrates the schema and refuses one newer than it knows.
//
// JSON documents are stored as text, exactly as given, and times as text in
// RFC 3339 UTC with nine fractional digits (timestamptz keeps microseconds
// only); compared with the "C" collation, text order is time order. For
// example:
//
//	psql "$DSN" -c "SELECT seq, path, kind, name, data FROM loom.events WHERE execution_id = 'ID' ORDER BY seq"
package postgres
