package main

import (
	"context"
	"fmt"
	"os"

	"github.com/loomwork/loom/builtins"
	"github.com/loomwork/loom/cli"
	"github.com/loomwork/loom/interpreter"
)

// Greeting is the input of the greet task.
type Greeting struct {
	Name string `json:"name"`
}

func main() {
	reg := interpreter.NewRegistry(builtins.Standard())
	interpreter.Register(reg, "greet", func(ctx context.Context, in Greeting) (string, error) {
		if in.Name == "" {
			return "", interpreter.Errorf("NoName", "greet needs a name")
		}
		return fmt.Sprintf("Hello, %s!", in.Name), nil
	})
	os.Exit(cli.Main(reg))
}
