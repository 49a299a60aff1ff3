package cli_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/loomwork/loom/builtins"
	"github.com/loomwork/loom/cli"
)

// TestPostgresJournal runs a pause → resume flow with the journal in
// PostgreSQL (--db postgres://…), in a fresh schema. It needs
// LOOM_POSTGRES_DSN (.ci/run starts a server).
func TestPostgresJournal(t *testing.T) {
	dsn := os.Getenv("LOOM_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("LOOM_POSTGRES_DSN is not set: start a server with scripts/postgres-for-tests.sh")
	}
	ctx := context.Background()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "loomcli_" + hex.EncodeToString(b)
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE") })
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	db := dsn + sep + "search_path=" + schema

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
