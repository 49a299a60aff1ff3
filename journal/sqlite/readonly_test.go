package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/sqlite"
)

// TestOpenReadOnly: a read-only journal reads what a writer wrote, refuses
// every write with ErrReadOnly, and refuses a schema it would have to
// migrate.
func TestOpenReadOnly(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "loom.db")
	w := open(t, path)
	if err := w.Create(ctx, &journal.Execution{ID: "e1", Workflow: "wf", Version: 1, State: journal.Running}); err != nil {
		t.Fatal(err)
	}
	r, err := sqlite.OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if rec, err := r.Get(ctx, "e1"); err != nil || rec.Workflow != "wf" {
		t.Fatalf("Get: %v, %v", rec, err)
	}
	if err := r.Create(ctx, &journal.Execution{ID: "e2", Workflow: "wf", Version: 1, State: journal.Running}); !errors.Is(err, journal.ErrReadOnly) {
		t.Errorf("Create on a read-only journal: %v", err)
	}
	if _, err := r.Append(ctx, journal.Append{ExecutionID: "e1", Events: []journal.Event{{Kind: journal.StepCompleted}}}); !errors.Is(err, journal.ErrReadOnly) {
		t.Errorf("Append on a read-only journal: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}

	if _, err := sqlite.OpenReadOnly(filepath.Join(t.TempDir(), "absent.db")); err == nil {
		t.Error("OpenReadOnly of an absent file succeeded")
	}
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if _, err := db.Exec("PRAGMA user_version = 1"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = sqlite.OpenReadOnly(path)
	if err == nil || !strings.Contains(err.Error(), "database schema version 1 is older than this build of Loom's") {
		t.Errorf("OpenReadOnly of an old schema: %v", err)
	}
}
