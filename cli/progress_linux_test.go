package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/loomwork/loom/builtins"
)

// openPTY returns the two ends of a new pseudo-terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Skipf("unlockpt: %v", e)
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		t.Skipf("ptsname: %v", e)
	}
	slave, err = os.OpenFile("/dev/pts/"+itoa(int(n)), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("open pts: %v", err)
	}
	return master, slave
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// TestProgressOnTerminal: with stderr on a terminal, a long map shows its
// items done / total and failures; the output on stdout is unchanged.
func TestProgressOnTerminal(t *testing.T) {
	master, slave := openPTY(t)
	defer master.Close()
	if !isTerminal(slave) {
		t.Fatal("a pts is a terminal")
	}
	dir := t.TempDir()
	wf := filepath.Join(dir, "wf.yaml")
	err := os.WriteFile(wf, []byte(`name: many
steps:
  - id: items
    map:
      items: ${ [1, 2, 3, 4, 5, 6, 7, 8] }
      concurrency: 1
      tolerate: 2
      task: exec
      with: {command: [sh, -c, 'sleep 0.15; test "$(cat)" != 3'], input: "${ item }"}
  - task: echo
    with: ok
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	screen := make(chan string)
	go func() {
		b, _ := io.ReadAll(master) // ends with EIO once the slave is closed
		screen <- string(b)
	}()
	var stdout bytes.Buffer
	code := run(context.Background(), builtins.Standard(), "loom", []string{"run", wf, "--db", filepath.Join(dir, "j.db")},
		nil, &stdout, slave, func(string) string { return "" }, false)
	slave.Close()
	out := <-screen
	if code != 0 || stdout.String() != "\"ok\"\n" {
		t.Fatalf("exit %d, stdout %q, terminal %q", code, stdout.String(), out)
	}
	for _, want := range []string{"\x1b[K", "items: ", "/8 done, 1 failed", "completed"} {
		if !strings.Contains(out, want) {
			t.Errorf("terminal output %q lacks %q", out, want)
		}
	}

	// A single long task: the step being run and its seconds.
	long := filepath.Join(dir, "long.yaml")
	if err := os.WriteFile(long, []byte("name: long\nsteps:\n  - id: build\n    task: exec\n    with: {command: [sleep, '1.2']}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	master3, slave3 := openPTY(t)
	defer master3.Close()
	go func() {
		b, _ := io.ReadAll(master3)
		screen <- string(b)
	}()
	stdout.Reset()
	code = run(context.Background(), builtins.Standard(), "loom", []string{"run", long, "--db", filepath.Join(dir, "j.db")},
		nil, &stdout, slave3, func(string) string { return "" }, false)
	slave3.Close()
	if out := <-screen; code != 0 || !strings.Contains(out, "\x1b[Krunning build (task) ") {
		t.Errorf("long task: exit %d, terminal %q", code, out)
	}

	// --quiet: no progress, no status.
	master2, slave2 := openPTY(t)
	defer master2.Close()
	go func() {
		b, _ := io.ReadAll(master2)
		screen <- string(b)
	}()
	stdout.Reset()
	code = run(context.Background(), builtins.Standard(), "loom", []string{"run", wf, "--quiet", "--db", filepath.Join(dir, "j.db")},
		nil, &stdout, slave2, func(string) string { return "" }, false)
	slave2.Close()
	if out := <-screen; code != 0 || out != "" {
		t.Errorf("--quiet: exit %d, terminal %q", code, out)
	}
}
