//go:build unix

package interpreter

import (
	"os"
	"syscall"

	"github.com/loomwork/loom/journal"
)

// holderDead reports whether a lease holder is a process of this host that
// no longer exists, so its lease can be taken over at once.
func holderDead(self, h journal.Holder) bool {
	if h.Host != self.Host || h.PID <= 0 || h.PID == os.Getpid() {
		return false
	}
	return syscall.Kill(h.PID, 0) == syscall.ESRCH
}
