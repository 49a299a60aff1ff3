// Command loom is the stock Loom binary: the whole command set of package
// cli over the standard tasks of package builtins. main.go is the one line
// that joins them; a team's own binary is the same line over its registry
// (see examples/custom-cli).
package main
