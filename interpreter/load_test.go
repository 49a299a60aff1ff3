package interpreter_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/loomwork/loom/builtins"
	"github.com/loomwork/loom/interpreter"
)

// Loading through interpreter.Load checks task names and the standard
// tasks' input schemas, also through a registry built from
// builtins.Standard() (#8, defect 6).
func TestLoadChecksTasksAgainstTheRegistry(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	reg := interpreter.NewRegistry(builtins.Standard())
	interpreter.Register(reg, "mine", func(ctx context.Context, in any) (any, error) { return in, nil })
	for _, c := range []struct{ name, src, want string }{
		{"typo.yaml", "name: w\nsteps:\n  - task: mien\n", filepath.Join(dir, "typo.yaml") + `:3:11: unknown task "mien"; did you mean "mine"?`},
		{"badinput.yaml", "name: w\nsteps:\n  - task: http\n    with: {urll: 'https://example.com'}\n", filepath.Join(dir, "badinput.yaml") + `:4:11: input of task "http" does not match its schema: missing properties: 'url'`},
	} {
		_, err := interpreter.Load(write(c.name, c.src), reg)
		if err == nil {
			t.Errorf("%s loaded", c.name)
			continue
		}
		if c.want != "" && err.Error() != c.want {
			t.Errorf("%s: %v\nwant %s", c.name, err, c.want)
		}
	}
	if _, err := interpreter.Load(write("ok.yaml", "name: w\nsteps:\n  - task: mine\n  - task: http\n    with: {url: 'https://example.com'}\n"), reg); err != nil {
		t.Errorf("a valid catalog does not load: %v", err)
	}
	if len(reg.TaskInputSchema("http")) == 0 {
		t.Error("the registry lost http's input schema")
	}
	interpreter.Register(reg, "http", func(ctx context.Context, in any) (any, error) { return nil, nil })
	if reg.TaskInputSchema("http") != nil {
		t.Error("a task registered again keeps the schema of the one it replaced")
	}
}
