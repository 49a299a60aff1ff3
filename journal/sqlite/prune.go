package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"

	"github.com/loomwork/loom/journal"
)

// pruneQuery picks finished roots whose whole tree is finished. It has no
// ORDER BY: the scan stops at the limit, and the rows a batch deletes are
// gone from the next batch's scan.
const pruneQuery = `SELECT id FROM executions e
	WHERE root IS NULL AND state IN (%s) AND updated_at < ?
	AND NOT EXISTS (SELECT 1 FROM executions c WHERE c.root = e.id
		AND c.state NOT IN ('COMPLETED', 'FAILED', 'CANCELLED'))
	LIMIT ?`

// Prune implements journal.Journal: one op of the group-commit writer, so
// appends of running executions queue behind one short batch at most.
func (j *Journal) Prune(ctx context.Context, r journal.PruneRequest) (journal.PruneResult, error) {
	var res journal.PruneResult
	err := j.submit(ctx, &op{run: func(w *writer) (err error) {
		res, err = w.prune(r)
		return err
	}})
	return res, err
}

func (w *writer) prune(r journal.PruneRequest) (journal.PruneResult, error) {
	var res journal.PruneResult // run may be called again: count from zero
	ctx := context.Background()
	states := r.PruneStates()
	args := make([]any, 0, len(states)+2)
	for _, st := range states {
		args = append(args, string(st))
	}
	args = append(args, timeValue(r.FinishedBefore), r.PruneLimit())
	q := fmt.Sprintf(pruneQuery, strings.TrimSuffix(strings.Repeat("?, ", len(states)), ", "))
	rows, err := w.conn.QueryContext(ctx, q, args...)
	if err != nil {
		return res, fmt.Errorf("journal: prune: %w", err)
	}
	var roots []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return res, fmt.Errorf("journal: prune: %w", err)
		}
		roots = append(roots, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return res, fmt.Errorf("journal: prune: %w", err)
	}
	// The definitions the batch's trees pinned: those no execution uses
	// once they are gone are deleted with them.
	// (A tree is its root, id = ?1, and the records whose root is ?1.)
	keys := map[int64]bool{}
	for _, id := range roots {
		rows, err := w.conn.QueryContext(ctx, `SELECT DISTINCT dk FROM executions WHERE (id = ?1 OR root = ?1) AND dk IS NOT NULL`, id)
		if err != nil {
			return res, fmt.Errorf("journal: prune %s: %w", id, err)
		}
		for rows.Next() {
			var h int64
			if err := rows.Scan(&h); err != nil {
				rows.Close()
				return res, fmt.Errorf("journal: prune %s: %w", id, err)
			}
			keys[h] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return res, fmt.Errorf("journal: prune %s: %w", id, err)
		}
	}
	for _, id := range roots {
		for _, s := range []struct {
			sql string
			n   *int
		}{
			{`DELETE FROM events WHERE ek IN (SELECT ek FROM executions WHERE id = ?1 OR root = ?1)`, &res.Events},
			{`DELETE FROM leases WHERE root_id = ?`, nil},
			{`DELETE FROM executions WHERE id = ?1 OR root = ?1`, &res.Executions},
		} {
			out, err := w.conn.ExecContext(ctx, s.sql, id)
			if err != nil {
				return res, fmt.Errorf("journal: prune %s: %w", id, err)
			}
			if s.n != nil {
				n, _ := out.RowsAffected()
				*s.n += int(n)
			}
		}
		res.Roots++
	}
	for k := range keys {
		out, err := w.conn.ExecContext(ctx, `DELETE FROM definitions WHERE dk = ?1
			AND NOT EXISTS (SELECT 1 FROM executions WHERE dk = ?1)`, k)
		if err != nil {
			return res, fmt.Errorf("journal: prune a definition: %w", err)
		}
		n, _ := out.RowsAffected()
		res.Definitions += int(n)
	}
	return res, nil
}

// Vacuum rebuilds the journal file at path so the space pruned rows held
// goes back to the file system: SQLite reuses freed pages by itself but
// never shrinks the file. It opens its own connection and holds the write
// lock for the whole copy, so writers elsewhere wait (up to their busy
// timeout) or fail: run it when the journal is quiet. It returns the file's
// size before and after.
func Vacuum(ctx context.Context, path string) (before, after int64, err error) {
	if before, err = fileSize(path); err != nil {
		return 0, 0, err
	}
	dsn := "file:" + strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path) + "?_busy_timeout=30000"
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return 0, 0, fmt.Errorf("sqlite journal %s: %w", path, err)
	}
	defer db.Close()
	if err := checkVersion(ctx, db); err != nil {
		return 0, 0, fmt.Errorf("sqlite journal %s: %w", path, err)
	}
	if _, err := db.ExecContext(ctx, "VACUUM"); err != nil {
		return 0, 0, fmt.Errorf("sqlite journal %s: vacuum: %w", path, err)
	}
	// Fold the WAL back into the file, so the size read next is the
	// file's.
	if _, err := db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return 0, 0, fmt.Errorf("sqlite journal %s: checkpoint: %w", path, err)
	}
	after, err = fileSize(path)
	return before, after, err
}

func fileSize(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}
