package cli_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestStringDoublingStaysSmall runs docs/limits.md's string-doubling loop
// in the real binary (built without the race detector, whose shadow memory
// would be counted) and reads the process's peak RSS from the kernel
// (getrusage's ru_maxrss): the refused evaluation fails the execution with
// LimitExceeded, exit 1, and the process stays under 100 MB (issue #11,
// defect 1: it reached 23.9 GB before the limits).
func TestStringDoublingStaysSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := buildBinary(t, "github.com/loomwork/loom/cmd/loom", dir)
	wf := filepath.Join(dir, "doubling.yaml")
	if err := os.WriteFile(wf, []byte(`name: doubling
steps:
  - set: {s: "x"}
  - for:
      while: ${ true }
      max_iterations: 100
      steps:
        - set: {s: "${ vars.s + vars.s }"}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", wf, "--db", filepath.Join(dir, "j.db"))
	cmd.Env = append(os.Environ(), "LOOM_DB=", "LOOM_LIMITS=")
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 {
		t.Fatalf("want exit 1, got %v:\n%s", err, out)
	}
	if !strings.Contains(string(out), "LimitExceeded") {
		t.Errorf("the error does not say LimitExceeded:\n%s", out)
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		t.Skip("no rusage on this platform")
	}
	peak := ru.Maxrss * 1024 // kilobytes on Linux
	t.Logf("peak RSS of `loom run doubling.yaml`: %.1f MB; stderr: %s", float64(peak)/1e6, strings.TrimSpace(string(out)))
	if peak >= 100e6 {
		t.Errorf("peak RSS %.1f MB, want under 100 MB", float64(peak)/1e6)
	}
}
