//go:build cgo

package sqlite

import (
	"errors"
	"fmt"
	"time"

	"github.com/loomwork/loom/journal"
	sqlite3 "github.com/mattn/go-sqlite3"
)

// SQLite's error codes exist only in a cgo build: errors_nocgo.go is their
// stand-in, so a CGO_ENABLED=0 build compiles and the CLI can say at start
// that it needs cgo instead of failing to build.

// corrupt turns SQLite's reports of a damaged file (a malformed page, a
// file that is not a database) into journal.ErrDamaged for execution id
// ("" for the database), and returns any other error as it is.
func corrupt(id string, err error) error {
	var se sqlite3.Error
	if errors.As(err, &se) && (se.Code == sqlite3.ErrCorrupt || se.Code == sqlite3.ErrNotADB) {
		return journal.Damaged(id, err)
	}
	return err
}

// unavailable marks SQLite's errors that mean the file cannot be written or
// read now (disk full, an I/O error, the file or its directory made
// read-only, a lock held past the busy timeout) as journal.ErrUnavailable.
func unavailable(err error) error {
	var se sqlite3.Error
	if errors.As(err, &se) && !errors.Is(err, journal.ErrUnavailable) {
		switch se.Code {
		case sqlite3.ErrFull, sqlite3.ErrIoErr, sqlite3.ErrReadonly, sqlite3.ErrCantOpen, sqlite3.ErrBusy, sqlite3.ErrLocked, sqlite3.ErrProtocol, sqlite3.ErrNoLFS:
			return &journal.UnavailableError{Err: err}
		}
	}
	return err
}

// isSQLiteError reports whether err is an error SQLite itself returned.
func isSQLiteError(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se)
}

// lockHeld says what SQLite's "database is locked" means when a write or a
// migration gave up waiting for the write lock: another process held it for
// the whole busy timeout (wait). It is an outage, like a full disk.
func lockHeld(err error, wait time.Duration) error {
	var se sqlite3.Error
	if errors.As(err, &se) && (se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked) {
		return &journal.UnavailableError{Err: fmt.Errorf("another process has held its write lock for %s (%w)", wait, err)}
	}
	return err
}
