package sqlite

import (
	"context"
	"errors"
	"fmt"

	"github.com/loomwork/loom/journal"
	sqlite3 "github.com/mattn/go-sqlite3"
)

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

// classify sorts a read's error: SQLite's corruption codes are damage, its
// full, I/O and lock codes unavailability, anything else as it is.
func classify(id string, err error) error { return unavailable(corrupt(id, err)) }

// CheckIntegrity implements journal.IntegrityChecker with SQLite's
// integrity check (every page, index and constraint) and a check that
// every event belongs to an execution.
func (j *Journal) CheckIntegrity(ctx context.Context) ([]string, error) {
	if err := j.readable(ctx); err != nil {
		return nil, err
	}
	var probs []string
	rows, err := j.rdb.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return nil, classify("", err)
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return probs, classify("", err)
		}
		if s != "ok" {
			probs = append(probs, s)
		}
	}
	if err := rows.Err(); err != nil {
		return probs, classify("", err)
	}
	var orphans int
	if err := j.rdb.QueryRowContext(ctx, `SELECT count(*) FROM events v WHERE NOT EXISTS (SELECT 1 FROM executions e WHERE e.ek = v.ek)`).Scan(&orphans); err != nil {
		return probs, classify("", err)
	}
	if orphans > 0 {
		probs = append(probs, fmt.Sprintf("%d events belong to no execution", orphans))
	}
	return probs, nil
}
