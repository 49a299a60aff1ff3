// Package bench holds Loom's end-to-end benchmarks (go test -bench ./bench):
// engine throughput on the durable SQLite journal, per-step interpreter
// overhead, and replay speed. Each reports its figure beside a baseline
// measured in the same run, as a ratio; none asserts a time.
package bench
