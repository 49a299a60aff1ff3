//go:build linux

package cli_test

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loomwork/loom/builtins"
	"github.com/loomwork/loom/cli"
)

// loom runs one command line in process against the journal db.
func loom(t *testing.T, db string, args ...string) (int, string, string) {
	t.Helper()
	var so, se bytes.Buffer
	code := cli.Run(builtins.Standard(), append(args, "--db", db), nil, &so, &se, func(string) string { return "" })
	return code, so.String(), se.String()
}

// readCommands are the commands that only read the journal.
var readCommands = [][]string{{"list"}, {"status", "r1"}, {"show", "r1"}, {"replay", "r1"}}

// newJournal runs a workflow to completion as execution r1 in a new
// journal in dir.
func newJournal(t *testing.T, dir string) string {
	t.Helper()
	wf := filepath.Join(dir, "wf.yaml")
	if err := os.WriteFile(wf, []byte("name: e\nsteps:\n  - task: echo\n    with: hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "j.db")
	if code, _, se := loom(t, db, "run", wf, "--id", "r1"); code != 0 {
		t.Fatalf("run: exit %d: %s", code, se)
	}
	return db
}

// TestReadOnlyJournal: list, status, show and replay work on a journal in
// a read-only directory (SPEC §5; issue #11 defect 6). As root a permission
// does not stop a write, so the directory is a tmpfs remounted read-only.
func TestReadOnlyJournal(t *testing.T) {
	dir := t.TempDir()
	if os.Getuid() == 0 {
		mnt := filepath.Join(dir, "mnt")
		if err := os.Mkdir(mnt, 0o755); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt).CombinedOutput(); err != nil {
			t.Skipf("running as root without the right to mount a tmpfs, so a read-only directory cannot be made: %v: %s", err, out)
		}
		t.Cleanup(func() { _ = exec.Command("umount", mnt).Run() })
		dir = mnt
	}
	db := newJournal(t, dir)
	if os.Getuid() == 0 {
		if out, err := exec.Command("mount", "-o", "remount,ro", dir).CombinedOutput(); err != nil {
			t.Fatalf("remount read-only: %v: %s", err, out)
		}
	} else {
		if err := os.Chmod(db, 0o444); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Chmod(dir, 0o755) })
	}
	if err := os.WriteFile(filepath.Join(dir, "probe"), nil, 0o644); err == nil {
		t.Fatal("the directory is writable")
	}
	for _, args := range readCommands {
		if code, _, se := loom(t, db, args...); code != 0 {
			t.Errorf("loom %s in a read-only directory: exit %d: %s", strings.Join(args, " "), code, se)
		}
	}
	if code, so, _ := loom(t, db, "status", "r1", "--json"); code != 0 || !strings.Contains(so, `"state":"COMPLETED"`) {
		t.Errorf("status: %d %s", code, so)
	}
}

// TestReadWhileLocked: the read commands do not wait for the write lock
// another process holds (they took 5 s and failed "database is locked").
func TestReadWhileLocked(t *testing.T) {
	db := newJournal(t, t.TempDir())
	other, err := sql.Open("sqlite3", "file:"+db+"?_journal_mode=WAL")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(context.Background(), "ROLLBACK")
	for _, args := range readCommands {
		if code, _, se := loom(t, db, args...); code != 0 {
			t.Errorf("loom %s while another process holds the write lock: exit %d: %s", strings.Join(args, " "), code, se)
		}
	}
}
