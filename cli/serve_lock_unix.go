//go:build unix

package cli

import (
	"errors"
	"os"
	"syscall"
)

// lockServe takes an exclusive advisory lock (flock) on the SQLite journal
// at path, so that one `loom serve` serves a file (SPEC §6). The kernel
// drops it when the process ends, however it ends: a killed server never
// blocks its restart. It is flock, not the fcntl locks SQLite takes, so
// the CLI's commands use the file beside the server. held is false when
// another process has the lock.
func lockServe(path string) (release func(), held bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, err
	}
	// Closing f would drop SQLite's own fcntl locks on the file in this
	// process (POSIX ties them to the process, not the descriptor): it is
	// closed only after the journal is.
	return func() { f.Close() }, true, nil
}
