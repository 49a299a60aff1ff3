package cli_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loomwork/loom/internal/pgtest"

	"github.com/loomwork/loom/builtins"
	"github.com/loomwork/loom/cli"
)

// neverStoredWF carries one value four ways: a write-only input field, a
// secret in a failing http step's URL, the same secret in a failing exec
// step's stderr, and a log line.
const neverStoredWF = `name: carry
input:
  type: object
  required: [password]
  properties: {password: {type: string, writeOnly: true}}
steps:
  - try:
      - id: call
        task: http
        with: {url: "http://127.0.0.1:1/v1/orders?token=${ secret('api_token') }&pw=${ input.password }", timeout: 5s}
    catch: {steps: [{task: log, with: {message: "http failed: ${ err.message }"}}]}
  - id: run
    task: exec
    with:
      command: [/bin/sh, -c, 'echo "login with $TOKEN / $PW refused" >&2; exit 7']
      env: {TOKEN: "${ secret('api_token') }", PW: "${ input.password }"}
`

// TestSecretsNeverStored runs neverStoredWF with encryption on, on SQLite
// and (with $LOOM_POSTGRES_DSN) PostgreSQL, and greps the SQLite files and
// a pg_dump for the value: zero hits (SPEC §2 secret(), issue #11).
func TestSecretsNeverStored(t *testing.T) {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	value := "sv-" + hex.EncodeToString(b)
	t.Setenv("LOOM_SECRET_API_TOKEN", value)
	dir := t.TempDir()
	wf := filepath.Join(dir, "carry.yaml")
	key := filepath.Join(dir, "loom.key")
	if err := os.WriteFile(wf, []byte(neverStoredWF), 0o644); err != nil {
		t.Fatal(err)
	}
	loom := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := cli.Run(builtins.Standard(), args, strings.NewReader(""), &out, &errb, func(string) string { return "" })
		return code, out.String(), errb.String()
	}
	code, out, _ := loom("key", "new")
	if code != 0 {
		t.Fatal("loom key new failed")
	}
	if err := os.WriteFile(key, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	input := `{"password": "` + value + `"}`

	// runAndCheck runs the workflow on db and checks what loom printed.
	runAndCheck := func(t *testing.T, db, id string) {
		t.Helper()
		// Without a key the write-only input is refused.
		if code, _, stderr := loom("run", wf, "--id", id+"-nokey", "--db", db, "--input", input); code != 2 || !strings.Contains(stderr, "writeOnly, which Loom stores only encrypted") {
			t.Fatalf("run without a key: exit %d\n%s", code, stderr)
		}
		code, stdout, stderr := loom("run", wf, "--id", id, "--db", db, "--key-file", key, "--input", input, "--json")
		if code != 1 || !strings.Contains(stdout, `"ExecFailed"`) {
			t.Fatalf("run: exit %d\n%s\n%s", code, stdout, stderr)
		}
		printed := stdout + stderr
		for _, args := range [][]string{{"status", id}, {"status", id, "--json"}, {"show", id}, {"show", id, "--json"}, {"list", "--json"}} {
			_, o, e := loom(append(args, "--db", db, "--key-file", key)...)
			printed += o + e
		}
		if n := strings.Count(printed, value); n != 0 {
			t.Errorf("loom printed the value %d times:\n%s", n, printed)
		}
		if !strings.Contains(printed, "token=***") || !strings.Contains(printed, `login with *** / *** refused`) || !strings.Contains(printed, `"password":"***"`) {
			t.Errorf("the masked values are not where they should be:\n%s", printed)
		}
		if code, _, stderr := loom("replay", id, "--db", db, "--key-file", key); code != 0 {
			t.Errorf("replay: exit %d\n%s", code, stderr)
		}
	}

	t.Run("sqlite", func(t *testing.T) {
		db := filepath.Join(dir, "journal", "loom.db")
		runAndCheck(t, db, "sq-1")
		files, _ := filepath.Glob(db + "*")
		hits, size, ids := 0, 0, 0
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			size += len(data)
			hits += bytes.Count(data, []byte(value))
			ids += bytes.Count(data, []byte("sq-1"))
		}
		if ids == 0 {
			t.Fatalf("the files %v do not even hold the execution id: the grep reads nothing", files)
		}
		t.Logf("grep of the SQLite files (%d files, %d bytes) for the value: %d hits", len(files), size, hits)
		if hits != 0 {
			t.Errorf("the SQLite files hold the value %d times", hits)
		}
	})

	t.Run("postgres", func(t *testing.T) {
		if _, err := exec.LookPath("pg_dump"); err != nil {
			t.Skip("pg_dump is not on PATH")
		}
		schema, db := pgtest.Schema(t, "loomsecrets")
		runAndCheck(t, db, "pg-1")
		dump := pgtest.Dump(t, schema)
		if !bytes.Contains(dump, []byte("pg-1")) {
			t.Fatalf("the dump does not hold the execution: %.300s", dump)
		}
		hits := bytes.Count(dump, []byte(value))
		t.Logf("grep of pg_dump --schema=%s (%d bytes) for the value: %d hits", schema, len(dump), hits)
		if hits != 0 {
			t.Errorf("the PostgreSQL dump holds the value %d times", hits)
		}
	})
}
