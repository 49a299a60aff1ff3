// Package sqlite is the embedded, durable journal.Journal: one SQLite file in
// WAL mode with synchronous=FULL, written by a single connection that groups
// concurrent writes into one transaction, and read through a pool of
// connections that see every committed write.
//
// The file is meant to be read with the sqlite3 shell: tables executions,
// events, definitions, inputs, leases and counters; JSON documents (event data,
// input, output, error, pauses) are TEXT, and the records' times are RFC
// 3339 UTC text with nine fractional digits. To stay small as it grows, an
// event names its execution by the record's integer ek and keeps its time
// as Unix nanoseconds, and a pinned definition is stored once in
// definitions under its SHA-256. An input over 1 KiB is kept in inputs
// (with its CRC-32C), out of the record that every commit to its execution
// rewrites (input_aside is 1; input is NULL). For example:
//
//	sqlite3 loom.db "SELECT seq, path, kind, name, data, datetime(time / 1e9, 'unixepoch')
//		FROM events WHERE ek = (SELECT ek FROM executions WHERE id = 'ID') ORDER BY seq"
//
// The schema version is PRAGMA user_version (SchemaVersion); Open migrates
// older files and refuses newer ones.
package sqlite
