//go:build unix && !linux

package builtins

import "syscall"

// dieWithParent has no portable equivalent outside Linux: a command of a
// Loom process killed with SIGKILL runs on (docs/tasks.md says so).
func dieWithParent(*syscall.SysProcAttr) {}

func lockThread() func() { return func() {} }
