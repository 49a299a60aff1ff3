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
// LimitExceeded, exit 1, and the process grows less than 80 MB past the
// peak of a one-step run of the same binary (issue #11, defect 1: it
// reached 23.9 GB before the limits). The baseline is measured in the same
// run, so what the binary links (OpenTelemetry added some 4 MB at start-up)
// and the machine's load move the bar less.
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
	base := filepath.Join(dir, "base.yaml")
	if err := os.WriteFile(base, []byte("name: base\nsteps:\n  - set: {s: \"x\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// run runs a workflow and returns its exit error, output and peak RSS.
	run := func(path, db string) (error, string, int64) {
		cmd := exec.Command(bin, "run", path, "--db", filepath.Join(dir, db))
		cmd.Env = append(os.Environ(), "LOOM_DB=", "LOOM_LIMITS=")
		out, err := cmd.CombinedOutput()
		ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		if !ok {
			t.Skip("no rusage on this platform")
		}
		return err, strings.TrimSpace(string(out)), ru.Maxrss * 1024 // kilobytes on Linux
	}
	err, out, floor := run(base, "b.db")
	if err != nil {
		t.Fatalf("the one-step run: %v\n%s", err, out)
	}
	err, out, peak := run(wf, "j.db")
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 {
		t.Fatalf("want exit 1, got %v:\n%s", err, out)
	}
	if !strings.Contains(out, "LimitExceeded") {
		t.Errorf("the error does not say LimitExceeded:\n%s", out)
	}
	t.Logf("peak RSS of `loom run doubling.yaml`: %.1f MB, of a one-step run %.1f MB; stderr: %s", float64(peak)/1e6, float64(floor)/1e6, out)
	if peak-floor >= 80e6 {
		t.Errorf("peak RSS %.1f MB, %.1f MB past a one-step run's; want less than 80 MB past it", float64(peak)/1e6, float64(peak-floor)/1e6)
	}
}
