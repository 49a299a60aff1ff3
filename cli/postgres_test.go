package cli_test

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/loomwork/loom/internal/pgtest"

	"github.com/loomwork/loom/builtins"
	"github.com/loomwork/loom/cli"
)

// TestPostgresJournal runs a pause → resume flow with the journal in
// PostgreSQL (--db postgres://…), in a fresh schema. It needs
// LOOM_POSTGRES_DSN (.ci/run starts a server).
func TestPostgresJournal(t *testing.T) {
	_, db := pgtest.Schema(t, "loomcli")

	dir := t.TempDir()
	wf := dir + "/approve.yaml"
	if err := os.WriteFile(wf, []byte(`name: approve
steps:
  - id: ok
    pause: decide
    schema: {type: boolean}
output: '${ steps.ok.output ? "approved" : "rejected" }'
`), 0o644); err != nil {
		t.Fatal(err)
	}
	loom := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := cli.Run(builtins.Standard(), args, strings.NewReader(""), &out, &errb, func(string) string { return "" })
		return code, out.String(), errb.String()
	}
	if code, _, stderr := loom("run", wf, "--id", "pg-1", "--db", db); code != 3 {
		t.Fatalf("run: exit %d, want 3 (paused)\n%s", code, stderr)
	}
	if code, out, stderr := loom("resume", "pg-1", "--input", "true", "--db", db); code != 0 || out != "\"approved\"\n" {
		t.Fatalf("resume: exit %d, stdout %q\n%s", code, out, stderr)
	}
	if code, out, stderr := loom("status", "pg-1", "--db", db, "--json"); code != 0 || !strings.Contains(out, `"COMPLETED"`) {
		t.Fatalf("status: exit %d, stdout %q\n%s", code, out, stderr)
	}
	if code, _, stderr := loom("replay", "pg-1", "--db", db); code != 0 {
		t.Fatalf("replay: exit %d\n%s", code, stderr)
	}
}
