// Package sqlite is the embedded, durable journal.Journal: one SQLite file in
// WAL mode with synchronous=FULL, written by a single connection that groups
// concurrent writes into one transaction, and read through a pool of
// connections that see every committed write.
//
// The file is meant to be read with the sqlite3 shell: tables executions,
// events, definitions, inputs, leases and counters; JSON documents (event data,
// input, output, error, pauses) are TEXT. To stay small as it grows (a
// finished 3-step execution takes ~0.8 KB), the records' and leases' times
// are Unix nanoseconds (a time past 2262 is RFC 3339 text), an event names
// its execution by the record's integer ek and keeps its time as Unix
// nanoseconds, its kind as a small code and the started_at that ends a step
// event's data as nanoseconds before its time (started), a root's record
// leaves root NULL (root_id is computed), and a pinned definition is stored
// once in definitions, named by its key dk. An input over 1 KiB is kept in
// inputs (with its CRC-32C), out of the record that every commit to its
// execution rewrites (input_aside is 1; input is NULL). The view
// events_shown puts the events back into text. For example:
//
//	sqlite3 loom.db "SELECT seq, path, kind, name, data, time FROM events_shown WHERE execution = 'ID' ORDER BY seq"
//
// The schema version is PRAGMA user_version (SchemaVersion); Open migrates
// older files and refuses newer ones.
package sqlite
