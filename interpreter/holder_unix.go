//go:build unix

package interpreter

import (
	"syscall"

	"github.com/loomwork/loom/journal"
)

// holderDead reports whether a lease holder is another process of self's
// node that no longer exists, so its lease can be taken over at once. A
// hostname alone is not enough: containers share hostnames, and a PID
// means something only inside one PID namespace.
func holderDead(self, h journal.Holder) bool {
	if !journal.SameNode(self, h) || h.PID <= 0 {
		return false
	}
	return syscall.Kill(h.PID, 0) == syscall.ESRCH
}
