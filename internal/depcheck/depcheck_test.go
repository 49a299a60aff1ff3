// Package depcheck keeps Loom's package graph as docs/design.md draws it.
package depcheck

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/loomwork/loom"

// allowed lists, for each package, the Loom packages it may import
// (directly or not). Leaves import none.
var allowed = map[string][]string{
	"schemas":                      {},
	"docs":                         {},
	"duration":                     {},
	"builtins":                     {"duration"},
	"clock":                        {},
	"journal":                      {},
	"journal/memory":               {"journal"},
	"journal/sealed":               {"journal"},
	"secrets":                      {},
	"journal/sqlite":               {"journal", "journal/internal/groupcommit", "journal/internal/listsql", "journal/internal/timetext"},
	"journal/postgres":             {"journal", "journal/internal/groupcommit", "journal/internal/listsql", "journal/internal/timetext"},
	"journal/internal/groupcommit": {"journal"},
	"journal/internal/timetext":    {},
	"journal/internal/listsql":     {"journal", "journal/internal/timetext"},
	"journal/journaltest":          {"journal"},
	"definition":                   {"schemas", "builtins", "secrets", "duration"},
	"interpreter":                  {"definition", "journal", "builtins", "schemas", "clock", "secrets", "duration"},
	"loomtest":                     {"definition", "journal", "journal/memory", "interpreter", "builtins", "schemas", "clock", "secrets", "duration"},
	"console":                      {},
	// server must not import a journal backend: an embedding program
	// chooses one.
	"server": {"interpreter", "definition", "journal", "builtins", "schemas", "clock", "secrets", "console", "duration"},
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

// thirdParty lists modules outside the standard library that only some
// Loom packages may import directly: the cron parser stays behind
// definition.Schedule, so the rest of Loom asks Next and nothing else;
// OpenTelemetry stays in server (the engine shows its steps through
// interpreter.Telemetry, the http task takes headers through a context).
var thirdParty = map[string][]string{
	"github.com/robfig/cron/v3": {"definition"},
}

func init() {
	for _, p := range []string{"attribute", "codes", "exporters/otlp/otlptrace/otlptracehttp", "propagation",
		"sdk/resource", "sdk/trace", "trace", "trace/noop"} {
		thirdParty["go.opentelemetry.io/otel/"+p] = []string{"server"}
	}
}

func TestThirdPartyImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, module+"/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg := strings.TrimPrefix(f[0], module+"/")
		for _, imp := range f[1:] {
			ok, listed := thirdParty[imp]
			if listed && !slices.Contains(ok, pkg) {
				t.Errorf("%s imports %s, which only %v may (docs/design.md)", pkg, imp, ok)
			}
		}
	}
}
