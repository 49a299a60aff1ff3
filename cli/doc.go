// Package cli is the loom command set as a library: flag parsing, printing
// and exit codes over any task registry, so a team builds its own loom with
// its Go tasks in five lines (cli.Main(reg)); cmd/loom is that over the
// standard tasks.
package cli
