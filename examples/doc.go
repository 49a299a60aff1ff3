// Package examples holds Loom's example workflows (the *.yaml files here)
// and the tests that run every one of them through the real CLI and check
// its output, state and exit code. It has no code of its own; README.md
// lists what each example shows.
package examples
