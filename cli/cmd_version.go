package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/loomwork/loom/journal/postgres"
	"github.com/loomwork/loom/journal/sqlite"
)

func init() {
	register(&command{name: "version", usage: "version [--json]", minArgs: 0, maxArgs: 0, local: true,
		summary: "print this binary's version and its journal schema versions",
		help: `Prints the version of the module this binary was built from (a release tag,
or the commit for a build from a checkout), the Go version, and the journal
schema versions it reads and writes (SQLite and PostgreSQL): a journal
written by a newer schema is refused. "loom --version" prints the same.`,
		flags: []flagSpec{flagJSON}, run: (*app).version})
}

// versionInfo is what loom version prints.
type versionInfo struct {
	Version       string         `json:"version"`
	Go            string         `json:"go"`
	JournalSchema map[string]int `json:"journal_schema"`
}

// buildVersion is the module version from the build info: the tag of a
// `go install …@vX`, else the VCS commit of a build from a checkout (with
// "+dirty" for uncommitted changes), else "(devel)".
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	v := bi.Main.Version
	if v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		return "(devel) " + rev + dirty
	}
	return "(devel)"
}

func (a *app) version() error {
	info := versionInfo{Version: buildVersion(), Go: runtime.Version(),
		JournalSchema: map[string]int{"sqlite": sqlite.SchemaVersion, "postgres": postgres.SchemaVersion}}
	if a.p.has("json") {
		return a.printJSON(info)
	}
	fmt.Fprintf(a.stdout, "%s %s (%s)\njournal schema: sqlite %d, postgres %d\n", a.prog(), info.Version, info.Go,
		info.JournalSchema["sqlite"], info.JournalSchema["postgres"])
	return nil
}
