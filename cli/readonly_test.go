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

// TestReadOnlyJournalFile: with the journal's file read-only in a writable
// directory, the read commands work and a run exits 5 having changed
// nothing. As root a permission does not stop a write, so the file is
// bind-mounted read-only over itself.
func TestReadOnlyJournalFile(t *testing.T) {
	dir := t.TempDir()
	db := newJournal(t, dir)
	if os.Getuid() == 0 {
		if out, err := exec.Command("mount", "--bind", db, db).CombinedOutput(); err != nil {
			t.Skipf("running as root without the right to bind-mount, so a read-only file cannot be made: %v: %s", err, out)
		}
		t.Cleanup(func() { _ = exec.Command("umount", db).Run() })
		if out, err := exec.Command("mount", "-o", "remount,ro,bind", db).CombinedOutput(); err != nil {
			t.Fatalf("remount the file read-only: %v: %s", err, out)
		}
	} else if err := os.Chmod(db, 0o444); err != nil {
		t.Fatal(err)
	}
	if f, err := os.OpenFile(db, os.O_WRONLY, 0); err == nil {
		f.Close()
		t.Fatal("the journal file is writable")
	}
	for _, args := range readCommands {
		if code, _, se := loom(t, db, args...); code != 0 {
			t.Errorf("loom %s on a read-only journal file: exit %d: %s", strings.Join(args, " "), code, se)
		}
	}
	code, _, se := loom(t, db, "run", filepath.Join(dir, "wf.yaml"), "--id", "r2")
	if want := "loom run: the journal is unavailable: journal: create r2: attempt to write a readonly database; nothing was changed; try again when it is back\n"; code != 5 || se != want {
		t.Errorf("run on a read-only journal file: exit %d\n%s\nwant exit 5\n%s", code, se, want)
	}
}

// holdWriteLock takes the write lock of the SQLite journal db on a
// connection of its own, as another process would, until the test ends.
func holdWriteLock(t *testing.T, db string) {
	t.Helper()
	other, err := sql.Open("sqlite3", "file:"+db+"?_journal_mode=WAL")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	conn, err := other.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = conn.ExecContext(context.Background(), "ROLLBACK") })
}

// TestReadWhileLocked: the read commands do not wait for the write lock
// another process holds (they took 5 s and failed "database is locked").
func TestReadWhileLocked(t *testing.T) {
	db := newJournal(t, t.TempDir())
	holdWriteLock(t, db)
	for _, args := range readCommands {
		if code, _, se := loom(t, db, args...); code != 0 {
			t.Errorf("loom %s while another process holds the write lock: exit %d: %s", strings.Join(args, " "), code, se)
		}
	}
}

// TestWriteWhileLocked: a command that writes while another process holds
// the write lock past $LOOM_LOCK_WAIT is an outage (exit 5) saying so,
// with nothing changed; it used to fail "begin migration: database is
// locked" although no migration was due.
func TestWriteWhileLocked(t *testing.T) {
	db := newJournal(t, t.TempDir())
	wf := filepath.Join(filepath.Dir(db), "wf.yaml")
	if err := os.WriteFile(filepath.Join(filepath.Dir(db), "p.yaml"), []byte("name: p\nsteps:\n  - id: p\n    pause: go\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, se := loom(t, db, "run", filepath.Join(filepath.Dir(db), "p.yaml"), "--id", "p1"); code != 3 {
		t.Fatalf("run p.yaml: exit %d: %s", code, se)
	}
	holdWriteLock(t, db)
	env := func(k string) string {
		if k == "LOOM_LOCK_WAIT" {
			return "50ms"
		}
		return ""
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", wf, "--id", "r2"}, "loom run: the journal is unavailable: another process has held its write lock for 50ms (database is locked); nothing was changed; try again when it is back\n"},
		{[]string{"resume", "p1", "--pause", "go"}, "loom resume: the journal is unavailable: another process has held its write lock for 50ms (database is locked); nothing was changed; try again when it is back\n"},
		{[]string{"cancel", "p1"}, "loom cancel: the journal is unavailable: another process has held its write lock for 50ms (database is locked); nothing was changed; try again when it is back\n"},
	} {
		var so, se bytes.Buffer
		code := cli.Run(builtins.Standard(), append(c.args, "--db", db), nil, &so, &se, env)
		if code != 5 || se.String() != c.want {
			t.Errorf("loom %s while another process holds the write lock: exit %d\n%s\nwant exit 5\n%s", strings.Join(c.args, " "), code, se.String(), c.want)
		}
	}
	for _, args := range readCommands {
		if code, _, se := loom(t, db, args...); code != 0 {
			t.Errorf("loom %s after the refused writes: exit %d: %s", strings.Join(args, " "), code, se)
		}
	}
	if code, so, _ := loom(t, db, "status", "p1", "--json"); code != 0 || !strings.Contains(so, `"state":"PAUSED"`) {
		t.Errorf("p1 after the refused resume and cancel: %d %s", code, so)
	}
}
