// Command loom runs durable YAML workflows: validate, run, resume, status,
// list, show, replay, cancel and schema, over the standard tasks (echo,
// log, exec, http). `loom help` lists the commands.
package main

import (
	"os"

	"github.com/loomwork/loom/builtins"
	"github.com/loomwork/loom/cli"
)

func main() { os.Exit(cli.Main(builtins.Standard())) }
