// Package loomtest runs workflow test files (NAME.test.yaml): cases that
// start a workflow in an in-memory journal with mocked task results, a fixed
// clock and a seeded random source, resume its pauses, and check what came
// out. `loom test` is a thin command over it.
package loomtest
