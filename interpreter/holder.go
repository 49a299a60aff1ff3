package interpreter

import (
	"os"

	"github.com/loomwork/loom/journal"
)

// HolderGone reports whether h is a process of this host that no longer
// exists: its lease is taken over at once, and `loom status` says so.
// Where another process cannot be probed (holder_other.go) it is never
// gone.
func HolderGone(h journal.Holder) bool {
	host, _ := os.Hostname()
	return holderDead(journal.Holder{Host: host}, h)
}
