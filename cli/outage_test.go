//go:build linux

package cli_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
