// Package builtins holds what every Loom binary ships: the journaled
// expression functions (now, uuid4, randint, randrange, choice, random) and
// the standard tasks (echo, log, exec, http). It imports no Loom package.
//
// The functions (Funcs) compute a value only when their Recorder has none
// recorded, from a Clock and a Random the caller supplies, so a replay
// returns the recorded values without touching the world.
//
// Standard returns the tasks as a *TaskSet, which satisfies
// interpreter.Tasks and definition's task check with methods over standard
// types only, and gives each task's input JSON Schema (TaskInputSchema).
// Task errors are *TaskError values, matched by their ErrorType method.
//
// Decisions where SPEC §5 is silent:
//
//   - exec starts the command with a clean environment: PATH, HOME, LANG
//     and TZ where Loom has them, then the step's `env` (which may override
//     them). Nothing else of Loom's environment passes, so neither $LOOM_DB
//     (a DSN may hold a password) nor a $LOOM_SECRET_* value reaches a
//     command unless the step names it. The program itself is looked up in
//     Loom's PATH.
//   - exec writes `input` to stdin as one line of JSON; without `input` stdin
//     is empty. Empty stdout is the output "". Stdout is capped at 16 MiB;
//     the stderr in ExecFailed's data is its last 4 KiB. A command that
//     cannot start fails with ExecFailed and exit_code -1, as does one ended
//     by a signal. Cancelling kills the command's process group; children
//     it leaves running after a normal exit are not killed, but the step
//     waits for their open pipes at most two seconds. Argv items, `env` and
//     `headers` values may be numbers or booleans, written as their JSON text.
//   - http sends the context's IdempotencyKey as an Idempotency-Key header
//     unless the step sets one; a non-string body is sent as JSON with
//     Content-Type application/json unless the step sets a Content-Type; a
//     string body is sent as it is, with no Content-Type added. The response
//     body is parsed when its media type is application/json or ends in
//     +json (and it parses), else it is text. The body kept is capped at 16
//     MiB. Its `timeout` passing fails with Timeout, no response with
//     HTTPRequestFailed. URLs in messages hide any password.
//   - log writes "[level] message" and one newline; a message that is not a
//     string is written as JSON.
//   - When the step's own deadline passes, exec and http fail with Timeout;
//     when the context is cancelled they return an error wrapping
//     context.Canceled, which the interpreter reports itself.
package builtins
