package interpreter

import (
	"os"
	"sync"

	"github.com/loomwork/loom/journal"
)

// LocalHolder is this process as a lease holder named id: its host, PID
// and node (the boot and PID namespace it runs in), so that another
// process of the same node can tell, once it is gone, that its leases may
// be taken over at once.
func LocalHolder(id string) journal.Holder {
	host, _ := os.Hostname()
	return journal.Holder{ID: id, Host: host, PID: os.Getpid(), Node: localNode()}
}

// localNode is this process's node, read once (localNodeOf, per system).
var localNode = sync.OnceValue(localNodeOf)

// HolderGone reports whether h is a process of this node (host and PID
// namespace) that no longer exists: its lease is taken over at once, and
// `loom status` says so. Where another process cannot be probed, or the
// node is unknown, it is never gone: its lease is taken over when it
// expires.
func HolderGone(h journal.Holder) bool {
	return holderDead(LocalHolder(""), h)
}
