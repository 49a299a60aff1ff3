package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/internal/groupcommit"
)

// OpenReadOnly opens the journal in the file at path for reading only: it
// never writes to the file, never migrates it and takes no lock, so it works
// in a read-only directory, on a read-only file and while another process
// holds the write lock. Every write method fails with journal.ErrReadOnly.
// The file must exist and have this package's SchemaVersion: an older
// schema is upgraded only by a journal opened with Open.
func OpenReadOnly(path string, opts ...Option) (*Journal, error) {
	o := options{busyTimeout: DefaultBusyTimeout, maxBatch: 1, readConns: 4, now: time.Now}
	for _, fn := range opts {
		fn(&o)
	}
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite journal: %q: need a file path", path)
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("sqlite journal %s: %w", path, err)
	}
	base := "file:" + strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path) +
		fmt.Sprintf("?mode=ro&_query_only=1&_busy_timeout=%d", o.busyTimeout.Milliseconds())
	// A WAL database is read through its -shm index, which a reader must be
	// able to create when it is absent. Where it cannot (a read-only
	// directory after the last writer closed cleanly, so nothing is in the
	// WAL), the file is read as immutable: nobody can be writing it.
	var firstErr error
	for _, dsn := range []string{base, base + "&immutable=1"} {
		db, err := sql.Open("sqlite3", dsn)
		if err == nil {
			err = corrupt("", checkVersion(context.Background(), db))
		}
		if err == nil {
			db.SetMaxOpenConns(o.readConns)
			db.SetMaxIdleConns(o.readConns)
			q := groupcommit.NewQueue[*op](1, journal.ErrClosed)
			go q.Run(1, func([]*op) {}) // submit refuses every write; Close waits for Run
			return &Journal{opts: o, rdb: db, queue: q}, nil
		}
		if db != nil {
			db.Close()
		}
		if firstErr == nil {
			firstErr = err
		}
		var ve *versionError
		if errors.As(err, &ve) || errors.Is(err, ErrUninitialized) || errors.Is(err, journal.ErrDamaged) {
			break
		}
	}
	return nil, fmt.Errorf("sqlite journal %s: %w", path, firstErr)
}

// ErrUninitialized is returned by OpenReadOnly for a file that holds no
// journal yet (a writer created it and died before its schema was written):
// for a reader it is an empty journal.
var ErrUninitialized = errors.New("the file holds no journal yet")

// versionError is a file whose schema this package cannot read without
// migrating it (or at all).
type versionError struct{ have int }

func (e *versionError) Error() string {
	if e.have > SchemaVersion {
		return fmt.Sprintf("database schema version %d is newer than this build of Loom knows (%d): upgrade Loom to open it", e.have, SchemaVersion)
	}
	return fmt.Sprintf("database schema version %d is older than this build of Loom's (%d), and a read does not upgrade it: run a command that writes (loom resume --due) once to upgrade it", e.have, SchemaVersion)
}

func checkVersion(ctx context.Context, db *sql.DB) error {
	var v int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("read user_version: %w", err)
	}
	if v == 0 {
		return ErrUninitialized
	}
	if v != SchemaVersion {
		return &versionError{have: v}
	}
	return nil
}
