package builtins

import (
	"runtime"
	"syscall"
)

// dieWithParent asks the kernel to SIGKILL the command when Loom dies, so a
// process killed with SIGKILL (which can cancel nothing) leaves no command
// running on to write a side effect after its step was handed to another
// process. The kernel sends it when the *thread* that started the command
// exits, so execTask keeps its goroutine on one thread (lockThread) until
// the command has been waited for: otherwise the Go runtime could retire
// that thread and kill a healthy command.
func dieWithParent(attr *syscall.SysProcAttr) { attr.Pdeathsig = syscall.SIGKILL }

// lockThread pins the calling goroutine to its thread for dieWithParent; the
// returned func releases it.
func lockThread() func() {
	runtime.LockOSThread()
	return runtime.UnlockOSThread
}
