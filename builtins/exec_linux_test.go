package builtins_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestExecDiesWithLoom kills (SIGKILL) a process that runs an exec task and
// checks that the command dies too: a killed Loom leaves no command running
// on to write a side effect after its step moved to another process.
func TestExecDiesWithLoom(t *testing.T) {
	if pidFile := os.Getenv("LOOM_TEST_EXEC_PARENT"); pidFile != "" {
		// The child process: run a command that would outlive us.
		_, err := sh(t, context.Background(), `echo $$ > '`+pidFile+`.tmp'; mv '`+pidFile+`.tmp' '`+pidFile+`'; while :; do sleep 1; done`, nil)
		t.Fatalf("the command returned: %v", err)
	}
	pidFile := filepath.Join(t.TempDir(), "pid")
	parent := exec.Command(os.Args[0], "-test.run=^TestExecDiesWithLoom$", "-test.count=1")
	parent.Env = append(os.Environ(), "LOOM_TEST_EXEC_PARENT="+pidFile)
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	defer parent.Process.Kill()
	var pid int
	for start := time.Now(); pid <= 0; time.Sleep(10 * time.Millisecond) {
		if b, err := os.ReadFile(pidFile); err == nil {
			pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		if time.Since(start) > 20*time.Second {
			t.Fatal("the command never started")
		}
	}
	if err := parent.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	parent.Wait()
	for start := time.Now(); alive(pid); time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the command %d outlived its killed Loom process", pid)
		}
	}
}
