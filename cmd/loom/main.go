package main

import (
	"os"

	"github.com/loomwork/loom/builtins"
	"github.com/loomwork/loom/cli"
)

func main() { os.Exit(cli.Main(builtins.Standard())) }
