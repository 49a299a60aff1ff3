//go:build !unix

package builtins

import "os/exec"

// killGroup keeps exec.CommandContext's default on systems without process
// groups: cancellation kills the command itself.
func killGroup(*exec.Cmd) {}

func lockThread() func() { return func() {} }
