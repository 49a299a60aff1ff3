// Package depcheck keeps Loom's package graph as docs/design.md draws it.
package depcheck

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/loomwork/loom"

// allowed lists, for each package, the Loom packages it may import
// (directly or not). Leaves import none.
var allowed = map[string][]string{
	"schemas":                      {},
	"docs":                         {},
	"builtins":                     {},
	"clock":                        {},
	"journal":                      {},
	"journal/memory":               {"journal"},
	"journal/sealed":               {"journal"},
	"secrets":                      {},
	"journal/sqlite":               {"journal", "journal/internal/groupcommit", "journal/internal/listsql", "journal/internal/timetext"},
	"journal/postgres":             {"journal", "journal/internal/groupcommit", "journal/internal/listsql", "journal/internal/timetext"},
	"journal/internal/groupcommit": {},
	"journal/internal/timetext":    {},
	"journal/internal/listsql":     {"journal"},
	"journal/journaltest":          {"journal"},
	"definition":                   {"schemas", "builtins", "secrets"},
	"interpreter":                  {"definition", "journal", "builtins", "schemas", "clock", "secrets"},
	"loomtest":                     {"definition", "journal", "journal/memory", "interpreter", "builtins", "schemas", "clock", "secrets"},
	"console":                      {},
	// server must not import a journal backend: an embedding program
	// chooses one.
	"server": {"interpreter", "definition", "journal", "builtins", "schemas", "clock", "secrets", "console"},
}

func TestPackageGraph(t *testing.T) {
	for pkg, ok := range allowed {
		out, err := exec.Command("go", "list", "-deps", module+"/"+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		permitted := map[string]bool{module + "/" + pkg: true}
		for _, p := range ok {
			permitted[module+"/"+p] = true
		}
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasPrefix(dep, module+"/") && !permitted[dep] {
				t.Errorf("%s imports %s, which docs/design.md does not allow", pkg, strings.TrimPrefix(dep, module+"/"))
			}
		}
	}
}
