package builtins_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/loomwork/loom/builtins"
)

func ExampleStandard() {
	tasks := builtins.Standard(builtins.WithStderr(os.Stdout))
	fmt.Println(tasks.TaskNames())

	echo, _ := tasks.LookupTask("echo")
	out, _ := echo(context.Background(), json.RawMessage(`{"order": 42}`))
	fmt.Println(out)

	log, _ := tasks.LookupTask("log")
	_, _ = log(context.Background(), json.RawMessage(`{"message": "order 42 approved", "level": "warn"}`))

	_, err := log(context.Background(), json.RawMessage(`{"message": "x", "level": "loud"}`))
	fmt.Printf("%s: %v\n", err.(interface{ ErrorType() string }).ErrorType(), err)
	// Output:
	// [echo exec http log]
	// map[order:42]
	// [warn] order 42 approved
	// InvalidInput: log: `level` must be one of debug, info, warn, error, not "loud"
}
