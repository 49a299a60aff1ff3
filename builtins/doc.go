// Package builtins holds what every Loom binary ships: the journaled
// expression functions (now, uuid4, randint, randrange, choice, random) and
// the standard tasks (echo, log, exec, http). It imports no Loom package.
package builtins
