// Package interpreter runs checked workflow definitions against a journal:
// the task registry, the Engine (Run, Resume, Cancel, Replay) and the
// deterministic replay that makes an execution survive pauses, crashes and
// moves between machines. docs/design.md describes how.
//
// A program registers its tasks, loads its workflows with Load (which
// checks them against those tasks, as `loom validate` does), opens a
// journal and runs:
//
//	reg := interpreter.NewRegistry(builtins.Standard())
//	interpreter.Register(reg, "greet", greet)
//	cat, err := interpreter.Load("workflows/", reg)
//	j, err := sqlite.Open("loom.db")
//	eng := interpreter.New(cat, reg, j)
//	ex, err := eng.Run(ctx, "hello", input)
//
// See ExampleLoad.
package interpreter
