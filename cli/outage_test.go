//go:build linux

package cli_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fillWorkflow journals about 4 MB: 40 steps of 100 KB outputs.
const fillWorkflow = `name: fill
steps:
  - id: parts
    for:
      items: ${ 1..40 }
      steps:
        - task: echo
          with: ${ repeat("x", 100000) }
output: ${ len(steps.parts.output) }
`

// TestDiskFull: a journal that fills its disk mid-run stops the run with
// exit 5 and the sentence saying the execution is intact; once there is
// room again, resume completes it with the right output (issue #11
// defect 7). The disk is a small tmpfs, which needs root.
func TestDiskFull(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("a full disk is a small tmpfs, and mounting one needs root")
	}
	dir := t.TempDir()
	mnt := filepath.Join(dir, "disk")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", mnt).Run() })
	bin := buildBinary(t, "github.com/loomwork/loom/cmd/loom", dir)
	if err := os.WriteFile(filepath.Join(dir, "fill.yaml"), []byte(fillWorkflow), 0o644); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(mnt, "loom.db")
	r := runIn(t, dir, bin, "run", "fill.yaml", "--id", "f1", "--db", db)
	if r.code != 5 {
		t.Fatalf("run on a full disk: exit %d, want 5\nstderr: %s", r.code, r.stderr)
	}
	want := "loom run: the journal is unavailable: "
	if !strings.HasPrefix(r.stderr, want) || !strings.Contains(r.stderr, "database or disk is full") ||
		!strings.HasSuffix(r.stderr, "; the execution is intact, resume it when the journal is back: `loom resume f1 --db "+db+"`\n") {
		t.Errorf("stderr:\n%s", r.stderr)
	}
	if r := runIn(t, dir, bin, "status", "f1", "--db", db); r.code != 0 || !strings.Contains(r.stdout, "RUNNING") {
		t.Errorf("status after the outage: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	if out, err := exec.Command("mount", "-o", "remount,size=64m", mnt).CombinedOutput(); err != nil {
		t.Fatalf("remount larger: %v: %s", err, out)
	}
	r = runIn(t, dir, bin, "resume", "f1", "--db", db)
	if r.code != 0 || strings.TrimSpace(r.stdout) != "40" {
		t.Fatalf("resume once there is room: exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
	}
	if r := runIn(t, dir, bin, "replay", "f1", "--db", db); r.code != 0 {
		t.Errorf("replay: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
}

// TestPostgresOutage: the PostgreSQL server stops in the middle of a run
// (a step of the workflow stops it); the run ends with exit 5 and the
// outage sentence; once the server is started again, resume completes the
// execution with the right output and it replays. The test starts its own
// server (scripts/postgres-for-tests.sh), so stopping it disturbs nothing
// else; without PostgreSQL's binaries it is skipped.
func TestPostgresOutage(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("needs bash for scripts/postgres-for-tests.sh")
	}
	pgdir, err := os.MkdirTemp("", "loom-pg-outage-")
	if err != nil {
		t.Fatal(err)
	}
	// The server runs as the postgres user when we are root: it must reach
	// its directory.
	if err := os.Chmod(pgdir, 0o755); err != nil {
		t.Fatal(err)
	}
	script, _ := filepath.Abs("../scripts/postgres-for-tests.sh")
	start := func() string {
		out, err := exec.Command("bash", script, pgdir).Output()
		if err != nil {
			t.Skipf("cannot start a PostgreSQL server for the outage: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	stop := fmt.Sprintf("pg_ctl -D %s -m immediate stop", pgdir)
	if os.Getuid() == 0 {
		stop = fmt.Sprintf("su postgres -s /bin/sh -c 'PATH=%s:$PATH %s'", pgBinDir(), stop)
	} else {
		stop = fmt.Sprintf("PATH=%s:$PATH %s", pgBinDir(), stop)
	}
	dsn := start()
	t.Cleanup(func() {
		_ = exec.Command("sh", "-c", stop).Run()
		os.RemoveAll(pgdir)
	})
	dir := t.TempDir()
	bin := buildBinary(t, "github.com/loomwork/loom/cmd/loom", dir)
	wf := `name: outage
steps:
  - id: before
    task: echo
    with: 1
  - id: stop
    task: exec
    with:
      # Stops the server once (a rerun after the outage finds the marker).
      command: [sh, -c, '[ -f stopped ] || { touch stopped; sh -c "$STOP" >/dev/null 2>&1; }; echo 2']
      env: {STOP: ` + strconv.Quote(stop) + `}
      dir: ` + strconv.Quote(dir) + `
  - id: after
    task: echo
    with: 3
output: ${ steps.before.output + steps.stop.output + steps.after.output }
`
	if err := os.WriteFile(filepath.Join(dir, "outage.yaml"), []byte(wf), 0o644); err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("outage-%d", time.Now().UnixNano())
	r := runIn(t, dir, bin, "run", "outage.yaml", "--id", id, "--db", dsn)
	if r.code != 5 {
		t.Fatalf("run while the server stops: exit %d, want 5\nstderr: %s", r.code, r.stderr)
	}
	if !strings.HasPrefix(r.stderr, "loom run: the journal is unavailable: ") ||
		!strings.Contains(r.stderr, "; the execution is intact, resume it when the journal is back: `loom resume "+id+" --db ") {
		t.Errorf("stderr:\n%s", r.stderr)
	}
	dsn = start()
	r = runIn(t, dir, bin, "resume", id, "--db", dsn)
	if r.code != 0 || strings.TrimSpace(r.stdout) != "6" {
		t.Fatalf("resume once the server is back: exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
	}
	if r := runIn(t, dir, bin, "replay", id, "--db", dsn); r.code != 0 {
		t.Errorf("replay: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
}

// pgBinDir is where PostgreSQL's server programs are.
func pgBinDir() string {
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		return strings.TrimSpace(string(out))
	}
	m, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Strings(m)
	if len(m) == 0 {
		return ""
	}
	return m[len(m)-1]
}
