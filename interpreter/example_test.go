package interpreter_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/loomwork/loom/builtins"
	"github.com/loomwork/loom/definition"
	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal/memory"
)

type Greeting struct {
	Name string `json:"name"`
}

// Load is the way in: the workflows at a path (a file or a directory),
// checked against the registry's tasks. A task name the registry lacks, or
// an input its task's schema refuses, is a problem at its file:line:col.
func ExampleLoad() {
	dir, _ := os.MkdirTemp("", "loom-example")
	defer os.RemoveAll(dir)
	_ = os.WriteFile(filepath.Join(dir, "hello.yaml"), []byte(`name: hello
steps:
  - id: g
    task: greet
    with: {name: "${ input }"}
  - task: gret
`), 0o644)
	reg := interpreter.NewRegistry(builtins.Standard())
	interpreter.Register(reg, "greet", func(ctx context.Context, in Greeting) (string, error) {
		return "hello, " + in.Name, nil
	})
	_, err := interpreter.Load(dir, reg)
	fmt.Println(strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), ""))

	_ = os.WriteFile(filepath.Join(dir, "hello.yaml"), []byte(`name: hello
steps:
  - task: greet
    with: {name: "${ input }"}
`), 0o644)
	cat, _ := interpreter.Load(dir, reg)
	eng := interpreter.New(cat, reg, memory.New())
	ex, _ := eng.Run(context.Background(), "hello", "Ada")
	fmt.Println(ex.State, ex.Output)
	// Output:
	// hello.yaml:6:11: unknown task "gret"; did you mean "greet"?
	// COMPLETED hello, Ada
}

func ExampleRegister() {
	reg := interpreter.NewRegistry()
	// The step's `with` value is decoded into Greeting; the string comes back as the step's output.
	interpreter.Register(reg, "greet", func(ctx context.Context, in Greeting) (string, error) {
		if in.Name == "" {
			return "", interpreter.Errorf("NoName", "nobody to greet")
		}
		return "hello, " + in.Name, nil
	})
	cat, _ := definition.Parse("hello.yaml", []byte(`
name: hello
steps:
  - id: greet
    task: greet
    with: {name: "${ input.who }"}
`))
	eng := interpreter.New(cat, reg, memory.New())
	ex, _ := eng.Run(context.Background(), "hello", map[string]any{"who": "Ada"})
	fmt.Println(ex.State, ex.Output)
	// Output: COMPLETED hello, Ada
}

func ExampleEngine_Run() {
	cat, _ := definition.Parse("pipeline.yaml", []byte(`
name: pipeline
steps:
  - set: {n: "${ input * 2 }"}
  - set: {n: "${ vars.n + 3 }"}
output: '${ vars.n ** 2 }'
`))
	eng := interpreter.New(cat, interpreter.NewRegistry(), memory.New())
	ex, err := eng.Run(context.Background(), "pipeline", 5)
	if err != nil {
		fmt.Println("refused:", err)
		return
	}
	fmt.Println(ex.State, ex.Output)
	// Output: COMPLETED 169
}

func ExampleEngine_Resume() {
	cat, _ := definition.Parse("approval.yaml", []byte(`
name: approval
steps:
  - id: decision
    pause: wait_for_approval
    schema: {type: object, required: [approved], properties: {approved: {type: boolean}}}
output: '${ steps.decision.output.approved ? "approved" : "rejected" }'
`))
	eng := interpreter.New(cat, interpreter.NewRegistry(), memory.New())
	ex, _ := eng.Run(context.Background(), "approval", nil)
	fmt.Println(ex.State, ex.Pauses[0].Name)

	_, err := eng.Resume(context.Background(), ex.ID, map[string]any{"approved": "yes"})
	fmt.Println("refused:", strings.Contains(err.Error(), "does not match the schema"))

	ex, _ = eng.Resume(context.Background(), ex.ID, map[string]any{"approved": true})
	fmt.Println(ex.State, ex.Output)
	// Output:
	// PAUSED wait_for_approval
	// refused: true
	// COMPLETED approved
}
