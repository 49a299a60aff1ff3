//go:build !unix

package interpreter

import "github.com/loomwork/loom/journal"

// holderDead reports whether a lease holder is known to be dead. Without a
// portable way to probe another process (Windows, Plan 9, wasm), it never
// is: a dead runner's lease is taken over when it expires.
func holderDead(self, h journal.Holder) bool { return false }
