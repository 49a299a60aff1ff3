//go:build !unix

package cli

// lockServe has no portable advisory lock to take here: two servers on
// one SQLite file are then kept apart by the leases alone.
func lockServe(path string) (release func(), held bool, err error) {
	return func() {}, true, nil
}
