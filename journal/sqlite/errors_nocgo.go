//go:build !cgo

package sqlite

import "time"

// Without cgo go-sqlite3 is a stub whose every call fails before SQLite
// runs, so there is no SQLite error to classify.

func corrupt(_ string, err error) error { return err }

func unavailable(err error) error { return err }

func isSQLiteError(error) bool { return false }

func lockHeld(err error, _ time.Duration) error { return err }
