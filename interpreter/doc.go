// Package interpreter runs checked workflow definitions against a journal:
// the task registry, the Engine (Run, Resume, Cancel, Replay) and the
// deterministic replay that makes an execution survive pauses, crashes and
// moves between machines. docs/design.md describes how.
package interpreter
