package interpreter

import (
	"os"
	"strings"
)

// localNodeOf names this boot of the kernel (its random boot id) and the
// PID namespace this process runs in (the namespace's inode, as
// "pid:[4026531836]"): two processes with the same node see the same PIDs.
// "" when either cannot be read (a sandbox without /proc).
func localNodeOf() string {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	ns, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(boot)) + "/" + ns
}
