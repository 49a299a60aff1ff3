//go:build unix

package cli_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildBinary builds a main package of the module into dir.
func buildBinary(t *testing.T, pkg, dir string) string {
	t.Helper()
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

type result struct {
	code           int
	stdout, stderr string
}

// runIn runs bin with args in dir, with LOOM_DB unset.
func runIn(t *testing.T, dir, bin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LOOM_DB=")
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	r := result{stdout: so.String(), stderr: se.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("%s %v: %v", bin, args, err)
	}
	return r
}

const slowWorkflow = `name: slow
steps:
  - id: before
    task: exec
    with: {command: [sh, -c, 'echo before >> runs.log; echo 1']}
  - id: slow
    task: exec
    with:
      command: [sh, -c, 'if [ -e slow.log ]; then echo again >> slow.log; echo "\"done\""; else echo first > slow.log; sleep 60; fi']
  - task: echo
    with: "${ steps.slow.output }"
`

// TestResumeAfterKill runs the real binary, kills it with SIGKILL while a
// task runs, and resumes: the dead runner's lease is taken over at once,
// the finished step is not run again, the interrupted one is (at least
// once), and the execution completes.
func TestResumeAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the loom binary")
	}
	bin := buildBinary(t, "github.com/loomwork/loom/cmd/loom", t.TempDir())
	t.Run("kill", func(t *testing.T) { testKill(t, bin) })
	t.Run("interrupt", func(t *testing.T) { testInterrupt(t, bin) })
}

// startSlow starts `loom run` of slowWorkflow in its own process group and
// returns once its slow step runs.
func startSlow(t *testing.T, bin, dir, id string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "slow.yaml"), []byte(slowWorkflow), 0o644); err != nil {
		t.Fatal(err)
	}
	run := exec.Command(bin, "run", "slow.yaml", "--id", id)
	run.Dir = dir
	run.Env = append(os.Environ(), "LOOM_DB=")
	run.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // so a kill takes its sh too
	var runErr bytes.Buffer
	run.Stderr = &runErr
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, "slow.log")); err == nil {
			return run, &runErr
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(-run.Process.Pid, syscall.SIGKILL)
			_ = run.Wait()
			t.Fatalf("the slow step never started; stderr:\n%s", runErr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testKill(t *testing.T, bin string) {
	dir := t.TempDir()
	run, _ := startSlow(t, bin, dir, "k1")

	// A second runner is refused while the first lives, and runs nothing.
	r := runIn(t, dir, bin, "resume", "k1")
	if r.code != 4 || !strings.Contains(r.stderr, "held by another runner") || r.stdout != "" {
		t.Fatalf("resume while running: exit %d, stdout %q, stderr %q; want exit 4 busy", r.code, r.stdout, r.stderr)
	}

	if err := syscall.Kill(-run.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = run.Wait()

	r = runIn(t, dir, bin, "status", "k1", "--json")
	var rec struct{ State string }
	if err := json.Unmarshal([]byte(r.stdout), &rec); err != nil || rec.State != "RUNNING" {
		t.Fatalf("status after kill: %v %+v (exit %d, %s)", err, rec, r.code, r.stderr)
	}

	r = runIn(t, dir, bin, "resume", "k1")
	if r.code != 0 || r.stdout != "\"done\"\n" {
		t.Fatalf("resume after kill: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	for file, want := range map[string]string{"runs.log": "before\n", "slow.log": "first\nagain\n"} {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", file, b, err, want)
		}
	}
	if r := runIn(t, dir, bin, "replay", "k1"); r.code != 0 {
		t.Errorf("replay after the crash and resume: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
}

// testInterrupt: Ctrl-C stops the run cleanly, exit 3, with the command
// that continues it; the execution stays RUNNING and resumes at once.
func testInterrupt(t *testing.T, bin string) {
	dir := t.TempDir()
	run, stderr := startSlow(t, bin, dir, "i1")
	if err := run.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := run.Wait()
	_ = syscall.Kill(-run.Process.Pid, syscall.SIGKILL) // the sh, if it outlived loom
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("interrupted run: %v; want exit 3; stderr:\n%s", err, stderr)
	}
	if want := "loom run: interrupted; execution i1 is still RUNNING and `loom resume i1` continues it\n"; stderr.String() != want {
		t.Errorf("interrupted run: stderr %q, want %q", stderr, want)
	}
	r := runIn(t, dir, bin, "resume", "i1", "--quiet")
	if r.code != 0 || r.stdout != "\"done\"\n" {
		t.Fatalf("resume after interrupt: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// TestCustomCLI builds examples/custom-cli, a loom binary with its own
// task, and runs the workflow beside it.
func TestCustomCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the example binary")
	}
	bin := buildBinary(t, "github.com/loomwork/loom/examples/custom-cli", t.TempDir())
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join("..", "examples", "custom-cli", "_workflows", "greet.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "greet.yaml"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := runIn(t, dir, bin, "validate", "greet.yaml"); r.code != 0 || r.stderr != "" {
		t.Fatalf("validate: exit %d: %s", r.code, r.stderr)
	}
	r := runIn(t, dir, bin, "run", "greet.yaml", "--input", `{"name": "Ada"}`)
	if want := `{"greeting":"Hello, Ada!","loud":"HELLO, ADA!"}` + "\n"; r.code != 0 || r.stdout != want {
		t.Fatalf("run: exit %d, stdout %q, stderr %q; want %q", r.code, r.stdout, r.stderr, want)
	}
	r = runIn(t, dir, bin, "run", "greet.yaml", "--input", `{"name": ""}`)
	if r.code != 1 || !strings.Contains(r.stderr, "NoName at step hello: greet needs a name") {
		t.Fatalf("failing run: exit %d, stderr %q", r.code, r.stderr)
	}
}
