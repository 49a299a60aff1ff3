package examples_test

import (
	"os"
	"strings"
	"testing"

	"github.com/loomwork/loom/builtins"
	"github.com/loomwork/loom/cli"
)

// TestLoomTest runs `loom test examples/`: every example's NAME.test.yaml
// (each example has one) passes, in memory, with the stock binary's tasks.
func TestLoomTest(t *testing.T) {
	for _, f := range exampleFiles(t) {
		stem := strings.TrimSuffix(strings.TrimSuffix(f, ".yaml"), ".yml")
		if _, err := os.Stat("examples/" + stem + ".test.yaml"); err != nil {
			t.Errorf("examples/%s has no test file: add examples/%s.test.yaml (see docs/testing.md)", f, stem)
		}
	}
	var stdout, stderr strings.Builder
	code := cli.Run(builtins.Standard(builtins.WithStderr(&stderr)), []string{"test", "examples"}, strings.NewReader(""), &stdout, &stderr, func(string) string { return "" })
	if code != 0 {
		t.Fatalf("loom test examples exited %d\n%s%s", code, stdout.String(), stderr.String())
	}
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		if !strings.HasPrefix(line, "ok  \t") {
			t.Errorf("unexpected line in loom test's report: %q", line)
		}
	}
}
