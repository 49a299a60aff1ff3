// Package crashtest is Loom's crash trials: a campaign that runs a workflow
// of exec tasks, map items, a call, builtins, a pause and a sleep through the
// real loom binary, kills it (kill -9) at seeded random moments while it runs
// and while several recoverers resume it at once, continues it, and checks
// that it completed with the right output, replays, ran no task after its
// result was committed, and left nothing unfinished. cmd/loom-crashtest runs
// a campaign; CI runs one on SQLite and one on PostgreSQL.
package crashtest
