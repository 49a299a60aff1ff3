//go:build unix

package builtins

import (
	"os/exec"
	"syscall"
)

// killGroup makes cancellation kill the command's whole process group, so a
// shell script's children die with it instead of holding its pipes open.
func killGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	dieWithParent(cmd.SysProcAttr)
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
