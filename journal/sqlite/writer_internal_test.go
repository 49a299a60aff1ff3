package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loomwork/loom/journal"
)

func TestMigrationsMatchVersion(t *testing.T) {
	if len(migrations) != SchemaVersion {
		t.Fatalf("%d migrations, SchemaVersion %d", len(migrations), SchemaVersion)
	}
}

// TestPragmas reads the settings back from the writer's own connection and
// from a reader's: durability depends on the connection that commits.
func TestPragmas(t *testing.T) {
	j, err := Open(filepath.Join(t.TempDir(), "loom.db"), WithBusyTimeout(1234*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	type settings struct {
		mode                     string
		sync, fk, busy, qo, ckpt int
	}
	read := func(q func(string) interface{ Scan(...any) error }) (s settings, err error) {
		err = errors.Join(
			q("PRAGMA journal_mode").Scan(&s.mode),
			q("PRAGMA synchronous").Scan(&s.sync),
			q("PRAGMA foreign_keys").Scan(&s.fk),
			q("PRAGMA busy_timeout").Scan(&s.busy),
			q("PRAGMA query_only").Scan(&s.qo),
			q("PRAGMA wal_autocheckpoint").Scan(&s.ckpt),
		)
		return s, err
	}
	var ws settings
	err = j.submit(t.Context(), &op{run: func(w *writer) (err error) {
		ws, err = read(func(p string) interface{ Scan(...any) error } { return w.conn.QueryRowContext(context.Background(), p) })
		return err
	}})
	if err != nil {
		t.Fatal(err)
	}
	if want := (settings{"wal", 2, 1, 1234, 0, walCheckpointPages}); ws != want {
		t.Errorf("writer: %+v, want %+v", ws, want)
	}
	rs, err := read(func(p string) interface{ Scan(...any) error } { return j.rdb.QueryRow(p) })
	if err != nil {
		t.Fatal(err)
	}
	if want := (settings{"wal", 2, 1, 1234, 1, 1000}); rs != want { // readers commit nothing
		t.Errorf("reader: %+v, want %+v", rs, want)
	}
}

// hold blocks the writer inside a transaction until the returned func is
// called, so that what is queued meanwhile forms one batch.
func hold(t *testing.T, j *Journal) (release func()) {
	entered, gate := make(chan struct{}), make(chan struct{})
	go func() {
		_ = j.submit(context.Background(), &op{run: func(*writer) error {
			close(entered)
			<-gate
			return nil
		}})
	}()
	<-entered
	return func() { close(gate) }
}

func waitQueued(t *testing.T, j *Journal, n int) {
	for deadline := time.Now().Add(10 * time.Second); j.queue.Len() < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d ops queued, want %d", j.queue.Len(), n)
		}
	}
}

// TestBatchIsolatesRefusals queues good and refused appends into one batch:
// each refusal leaves nothing written (an append refused on its second
// event takes its first back out), the rest commit together, and an append
// sees the seqs of appends before it in the same batch.
func TestBatchIsolatesRefusals(t *testing.T) {
	ctx := t.Context()
	j, err := Open(filepath.Join(t.TempDir(), "loom.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	for _, id := range []string{"a", "b"} {
		if err := j.Create(ctx, &journal.Execution{ID: id, Workflow: "wf", State: journal.Running}); err != nil {
			t.Fatal(err)
		}
	}
	la, _ := j.Acquire(ctx, "a", journal.Holder{ID: "x"}, time.Hour, 0)
	lb, _ := j.Acquire(ctx, "b", journal.Holder{ID: "x"}, time.Hour, 0)
	evs := func(path string) []journal.Event {
		return []journal.Event{{Path: path, Kind: journal.StepCompleted, Name: "set", Data: json.RawMessage(`{"output":null}`)}}
	}
	appends := []struct {
		a    journal.Append
		seq  int64
		want error
	}{
		{journal.Append{ExecutionID: "a", Token: la.Token, ExpectedSeq: 0, Events: evs("1")}, 1, nil},
		{journal.Append{ExecutionID: "a", Token: la.Token, ExpectedSeq: 0, Events: evs("x")}, 0, journal.ErrConflict},
		{journal.Append{ExecutionID: "a", Token: la.Token, ExpectedSeq: 1, Events: evs("2")}, 2, nil}, // sees the first, uncommitted
		{journal.Append{ExecutionID: "b", Token: la.Token, ExpectedSeq: 0, Events: evs("1")}, 0, journal.ErrFenced},
		{journal.Append{ExecutionID: "nope", Token: la.Token, Events: evs("1")}, 0, journal.ErrNotFound},
		{journal.Append{ExecutionID: "a", Token: la.Token, ExpectedSeq: 2, Events: append(evs("3"), evs("2")...)}, 0, journal.ErrConflict}, // second event duplicates: all of it rolls back
		{journal.Append{ExecutionID: "b", Token: lb.Token, ExpectedSeq: 0, Events: evs("1"), Update: &journal.Update{State: ptr(journal.Completed)}}, 1, nil},
		{journal.Append{ExecutionID: "a", Token: la.Token, ExpectedSeq: 2, Events: evs("3")}, 3, nil},
	}
	release := hold(t, j)
	before := j.Stats()
	type result struct {
		seq int64
		err error
	}
	results := make([]chan result, len(appends))
	for i, c := range appends {
		results[i] = make(chan result, 1)
		go func() {
			seq, err := j.Append(ctx, c.a)
			results[i] <- result{seq, err}
		}()
		waitQueued(t, j, i+1) // keep the queue in this order
	}
	release()
	for i, c := range appends {
		r := <-results[i]
		if !errors.Is(r.err, c.want) || (c.want == nil && r.err != nil) || r.seq != c.seq {
			t.Errorf("append %d: seq %d, err %v; want %d, %v", i, r.seq, r.err, c.seq, c.want)
		}
	}
	after := j.Stats()
	// The held op's commit, then one for the whole queue.
	if got := after.Commits - before.Commits; got != 2 {
		t.Errorf("%d commits, want 2", got)
	}
	if got := after.Appends - before.Appends; got != 4 {
		t.Errorf("%d successful appends counted, want 4", got)
	}
	a, _ := j.Events(ctx, "a", 0)
	if len(a) != 3 || a[0].Path != "1" || a[1].Path != "2" || a[2].Path != "3" {
		t.Errorf("a's events: %+v", a)
	}
	if e, _ := j.Get(ctx, "b"); e.State != journal.Completed {
		t.Errorf("b's state %s", e.State)
	}
}

// TestBatchDropsFailedOp: an op that fails with an error other than a
// refusal, after writing, is taken out of the batch; the transaction is
// rolled back and the others run again and commit, without its write.
func TestBatchDropsFailedOp(t *testing.T) {
	ctx := t.Context()
	j, err := Open(filepath.Join(t.TempDir(), "loom.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if err := j.Create(ctx, &journal.Execution{ID: "a", Workflow: "wf", State: journal.Running}); err != nil {
		t.Fatal(err)
	}
	l, _ := j.Acquire(ctx, "a", journal.Holder{ID: "x"}, time.Hour, 0)
	ev := func(path string) []journal.Event {
		return []journal.Event{{Path: path, Kind: journal.Builtin, Name: "now"}}
	}
	boom := errors.New("boom")
	release := hold(t, j)
	before := j.Stats()
	errs := make([]chan error, 3)
	for i := range errs {
		errs[i] = make(chan error, 1)
	}
	go func() {
		_, err := j.Append(ctx, journal.Append{ExecutionID: "a", Token: l.Token, ExpectedSeq: 0, Events: ev("1")})
		errs[0] <- err
	}()
	waitQueued(t, j, 1)
	go func() {
		errs[1] <- j.submit(ctx, &op{run: func(w *writer) error {
			if err := w.create(&journal.Execution{ID: "ghost", Workflow: "wf", State: journal.Running}); err != nil {
				return err
			}
			return boom
		}})
	}()
	waitQueued(t, j, 2)
	go func() {
		_, err := j.Append(ctx, journal.Append{ExecutionID: "a", Token: l.Token, ExpectedSeq: 1, Events: ev("2")})
		errs[2] <- err
	}()
	waitQueued(t, j, 3)
	release()
	for i, want := range []error{nil, boom, nil} {
		if err := <-errs[i]; !errors.Is(err, want) || (want == nil && err != nil) {
			t.Errorf("op %d: %v, want %v", i, err, want)
		}
	}
	if got := j.Stats().Commits - before.Commits; got != 2 {
		t.Errorf("%d commits, want 2", got)
	}
	if _, err := j.Get(ctx, "ghost"); !errors.Is(err, journal.ErrNotFound) {
		t.Errorf("the failed op's write: %v", err)
	}
	if evs, _ := j.Events(ctx, "a", 0); len(evs) != 2 || evs[0].Path != "1" || evs[1].Path != "2" {
		t.Errorf("events: %+v", evs)
	}
}

// TestCancelWhileQueued: a caller that gives up while its write is queued
// gets its context's error, and the write never happens.
func TestCancelWhileQueued(t *testing.T) {
	ctx := t.Context()
	j, err := Open(filepath.Join(t.TempDir(), "loom.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if err := j.Create(ctx, &journal.Execution{ID: "a", Workflow: "wf", State: journal.Running}); err != nil {
		t.Fatal(err)
	}
	l, _ := j.Acquire(ctx, "a", journal.Holder{ID: "x"}, time.Hour, 0)

	release := hold(t, j)
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := j.Append(cctx, journal.Append{ExecutionID: "a", Token: l.Token, Events: []journal.Event{{Path: "p", Kind: journal.Builtin, Name: "now"}}})
		done <- err
	}()
	waitQueued(t, j, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Append cancelled while queued: %v", err)
	}
	release()
	// The next write goes through; the abandoned one left nothing.
	if seq, err := j.Append(ctx, journal.Append{ExecutionID: "a", Token: l.Token, Events: []journal.Event{{Path: "q", Kind: journal.Builtin, Name: "now"}}}); err != nil || seq != 1 {
		t.Fatalf("next Append: %d, %v", seq, err)
	}
	if evs, _ := j.Events(ctx, "a", 0); len(evs) != 1 || evs[0].Path != "q" {
		t.Fatalf("events: %+v", evs)
	}
}

func ptr[T any](v T) *T { return &v }

// TestUnfencedOpForgetsFences: a write that is not one of the fence-keeping
// ops (here, a raw lease delete) makes the writer read fences afresh.
func TestUnfencedOpForgetsFences(t *testing.T) {
	ctx := t.Context()
	j, err := Open(filepath.Join(t.TempDir(), "loom.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	l, err := j.CreateHeld(ctx, &journal.Execution{ID: "a", Workflow: "wf", State: journal.Running}, journal.Holder{ID: "x"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ev := []journal.Event{{Path: "p", Kind: journal.Builtin, Name: "now"}}
	if _, err := j.Append(ctx, journal.Append{ExecutionID: "a", Token: l.Token, Events: ev}); err != nil {
		t.Fatal(err)
	}
	if err := j.submit(ctx, &op{run: func(w *writer) error {
		_, err := w.conn.ExecContext(ctx, `DELETE FROM leases WHERE root_id = 'a'`)
		return err
	}}); err != nil {
		t.Fatal(err)
	}
	ev[0].Ordinal = 1
	if _, err := j.Append(ctx, journal.Append{ExecutionID: "a", Token: l.Token, ExpectedSeq: 1, Events: ev}); !errors.Is(err, journal.ErrFenced) {
		t.Fatalf("append after the lease was deleted: %v", err)
	}
}

// TestMigrateV3: a journal written at schema 2 (definitions on every
// record, events keyed by text id with text times) opens at schema 3 with
// every record, definition and event as it was, and takes appends after.
func TestMigrateV3(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "loom.db")
	db, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for v, m := range migrations[:2] {
		if err := m(ctx, conn); err != nil {
			t.Fatalf("migration %d: %v", v+1, err)
		}
	}
	def := []byte("name: wf\nsteps: []\n")
	sum := sha256.Sum256(def)
	hash := hex.EncodeToString(sum[:])
	for _, q := range []string{
		`PRAGMA user_version = 2`,
		`INSERT INTO executions (id, workflow, version, state, root_id, parent_path, definition, definition_hash, created_at, updated_at, last_seq)
			VALUES ('root', 'wf', 1, 'RUNNING', 'root', '', '` + string(def) + `', '` + hash + `', '2025-01-02T03:04:05.000000001Z', '2025-01-02T03:04:05.000000001Z', 2)`,
		`INSERT INTO executions (id, workflow, version, state, parent_id, root_id, parent_path, definition, definition_hash, created_at, updated_at)
			VALUES ('kid', 'wf', 1, 'COMPLETED', 'root', 'root', 'a', '` + string(def) + `', '` + hash + `', '2025-01-02T03:04:06.000000000Z', '2025-01-02T03:04:06.000000000Z')`,
		`INSERT INTO executions (id, workflow, version, state, root_id, parent_path, definition, definition_hash, created_at, updated_at)
			VALUES ('odd', 'wf', 1, 'FAILED', 'odd', '', 'name: odd', 'not-its-hash', '2025-01-02T03:04:07.000000000Z', '2025-01-02T03:04:07.000000000Z')`,
		`INSERT INTO events (execution_id, seq, path, kind, name, ordinal, data, time)
			VALUES ('root', 1, 'a', 'child.started', 'call:wf', 0, '{"id":"kid"}', '2025-01-02T03:04:05.123456789Z'),
			       ('root', 2, 'b', 'builtin', 'now', 0, NULL, '2024-12-31T23:59:59.999999999Z')`,
		`INSERT INTO leases (root_id, token, holder_id, holder_host, holder_pid, expires) VALUES ('root', 7, 'h', 'host', 1, '2999-01-01T00:00:00.000000000Z')`,
		`UPDATE counters SET value = 7`,
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	conn.Close()
	db.Close()

	j, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	for _, c := range []struct{ id, def string }{{"root", string(def)}, {"kid", string(def)}, {"odd", "name: odd"}} {
		e, err := j.Get(ctx, c.id)
		if err != nil || string(e.Definition) != c.def {
			t.Errorf("Get(%s): definition %q, %v; want %q", c.id, e.Definition, err, c.def)
		}
	}
	var defs, inline int
	if err := j.rdb.QueryRow(`SELECT (SELECT count(*) FROM definitions), (SELECT count(*) FROM executions WHERE definition IS NOT NULL)`).Scan(&defs, &inline); err != nil || defs != 1 || inline != 1 {
		t.Errorf("%d definitions stored, %d inline (%v); want 1 and 1 (the one whose hash is not its own)", defs, inline, err)
	}
	evs, err := j.Events(ctx, "root", 0)
	if err != nil || len(evs) != 2 {
		t.Fatalf("events: %+v, %v", evs, err)
	}
	if want := time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.UTC); !evs[0].Time.Equal(want) || evs[0].Path != "a" || string(evs[0].Data) != `{"id":"kid"}` {
		t.Errorf("event 1: %+v", evs[0])
	}
	if want := time.Date(2024, 12, 31, 23, 59, 59, 999999999, time.UTC); !evs[1].Time.Equal(want) || evs[1].Data != nil {
		t.Errorf("event 2: %+v", evs[1])
	}
	if seq, err := j.Append(ctx, journal.Append{ExecutionID: "root", Token: 7, ExpectedSeq: 2, Events: []journal.Event{{Path: "c", Kind: journal.Builtin, Name: "now"}}}); err != nil || seq != 3 {
		t.Fatalf("append after migration: %d, %v", seq, err)
	}
	if _, err := j.Append(ctx, journal.Append{ExecutionID: "root", Token: 7, ExpectedSeq: 3, Events: []journal.Event{{Path: "a", Kind: journal.ChildStarted, Name: "call:wf"}}}); !errors.Is(err, journal.ErrConflict) {
		t.Fatalf("a migrated event key is still unique: %v", err)
	}
	if err := j.Create(ctx, &journal.Execution{ID: "new", Workflow: "wf", State: journal.Running, Definition: def, DefinitionHash: hash}); err != nil {
		t.Fatal(err)
	}
	var ekRoot, ekNew int64
	if err := j.rdb.QueryRow(`SELECT (SELECT ek FROM executions WHERE id = 'root'), (SELECT ek FROM executions WHERE id = 'new')`).Scan(&ekRoot, &ekNew); err != nil || ekNew <= ekRoot {
		t.Errorf("execution keys: root %d, new %d (%v); want new after root", ekRoot, ekNew, err)
	}
	if err := j.rdb.QueryRow(`SELECT count(*) FROM definitions`).Scan(&defs); err != nil || defs != 1 {
		t.Errorf("%d definitions after a new execution of the same one (%v), want 1", defs, err)
	}
}

// TestMigrateV6: a journal written at schema 5 (every input on its record)
// opens at schema 6 with the inputs longer than inputInlineMax moved to
// inputs and every input read back as it was; appends, prune and a
// read-only open work after, and a lost inputs row reads as damage.
func TestMigrateV6(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "loom.db")
	db, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for v, m := range migrations[:5] {
		if err := m(ctx, conn); err != nil {
			t.Fatalf("migration %d: %v", v+1, err)
		}
	}
	big := `{"items":[` + strings.Repeat(`"item",`, inputInlineMax/7) + `"last"]}`
	small := `{"items":["item"]}`
	for _, q := range []string{
		`PRAGMA user_version = 5`,
		`INSERT INTO executions (id, workflow, version, state, root_id, parent_path, input, definition_hash, created_at, updated_at, last_seq, ek)
			VALUES ('big', 'wf', 1, 'RUNNING', 'big', '', '` + big + `', 'h', '2025-01-02T03:04:05.000000001Z', '2025-01-02T03:04:05.000000001Z', 1, 1)`,
		`INSERT INTO executions (id, workflow, version, state, root_id, parent_path, input, definition_hash, created_at, updated_at, ek)
			VALUES ('small', 'wf', 1, 'COMPLETED', 'small', '', '` + small + `', 'h', '2025-01-02T03:04:06.000000000Z', '2025-01-02T03:04:06.000000000Z', 2)`,
		`INSERT INTO executions (id, workflow, version, state, root_id, parent_path, definition_hash, created_at, updated_at, ek)
			VALUES ('none', 'wf', 1, 'COMPLETED', 'none', '', 'h', '2025-01-02T03:04:07.000000000Z', '2025-01-02T03:04:07.000000000Z', 3)`,
		`INSERT INTO events (ek, seq, path, kind, name, ordinal, data, time) VALUES (1, 1, 'a', 'step.completed', 'echo', 0, '1', 0)`,
		`INSERT INTO leases (root_id, token, holder_id, holder_host, holder_pid, expires) VALUES ('big', 7, 'h', 'host', 1, '2999-01-01T00:00:00.000000000Z')`,
		`UPDATE counters SET value = 7`,
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	conn.Close()
	db.Close()

	j, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	inputs := map[string]string{"big": big, "small": small, "none": ""}
	check := func(j *Journal, when string) {
		t.Helper()
		for id, want := range inputs {
			if e, err := j.Get(ctx, id); err != nil || string(e.Input) != want {
				t.Errorf("%s: Get(%s): input %.40q, %v; want %.40q", when, id, e.Input, err, want)
			}
		}
	}
	check(j, "after the migration")
	var aside, inline int
	if err := j.rdb.QueryRow(`SELECT (SELECT count(*) FROM inputs), (SELECT count(*) FROM executions WHERE input IS NOT NULL)`).Scan(&aside, &inline); err != nil || aside != 1 || inline != 1 {
		t.Errorf("%d inputs aside, %d inline (%v); want 1 (big) and 1 (small)", aside, inline, err)
	}
	if seq, err := j.Append(ctx, journal.Append{ExecutionID: "big", Token: 7, ExpectedSeq: 1, Events: []journal.Event{{Path: "b", Kind: journal.StepCompleted}}}); err != nil || seq != 2 {
		t.Fatalf("append after migration: %d, %v", seq, err)
	}
	if err := j.Create(ctx, &journal.Execution{ID: "new", Workflow: "wf", State: journal.Running, Input: json.RawMessage(big)}); err != nil {
		t.Fatal(err)
	}
	inputs["new"] = big
	check(j, "after an append and a create")

	ro, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	check(ro, "read-only")
	ro.Close()

	// An inputs row lost (foreign keys are off on this connection, as they
	// are for whatever damaged the file) is reported, not read as no input.
	raw, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`DELETE FROM inputs WHERE execution = (SELECT ek FROM executions WHERE id = 'new')`); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Get(ctx, "new"); !errors.Is(err, journal.ErrDamaged) || !strings.Contains(err.Error(), "its input is missing") {
		t.Errorf("Get of a record whose input is lost: %v; want ErrDamaged, its input is missing", err)
	}
	list, err := j.List(ctx, journal.Filter{})
	var bad *journal.DamagedRowsError
	if !errors.As(err, &bad) || len(bad.Rows) != 1 || len(list) != 3 {
		t.Errorf("List with one lost input: %d records, %v; want 3 and the damaged one named", len(list), err)
	}
}

// TestMigrateV8: a journal written at schema 7, with a cancel requested
// before the upgrade, opens at schema 8: that request is still there (by
// no one known), a new request stores its requester, and a start's trace
// context is stored and read back, also read-only.
func TestMigrateV8(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "loom.db")
	db, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for v, m := range migrations[:7] {
		if err := m(ctx, conn); err != nil {
			t.Fatalf("migration %d: %v", v+1, err)
		}
	}
	for _, q := range []string{
		`PRAGMA user_version = 7`,
		`INSERT INTO executions (id, workflow, version, state, root_id, parent_path, definition_hash, created_at, updated_at, ek, cancel_requested)
			VALUES ('asked', 'wf', 1, 'PAUSED', 'asked', '', 'h', '2025-01-02T03:04:05.000000001Z', '2025-01-02T03:04:05.000000001Z', 1, 1)`,
		`INSERT INTO executions (id, workflow, version, state, root_id, parent_path, definition_hash, created_at, updated_at, ek)
			VALUES ('quiet', 'wf', 1, 'PAUSED', 'quiet', '', 'h', '2025-01-02T03:04:06.000000000Z', '2025-01-02T03:04:06.000000000Z', 2)`,
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	conn.Close()
	db.Close()

	j, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	var v int
	if err := j.rdb.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil || v != SchemaVersion {
		t.Fatalf("user_version after Open: %d (%v), want %d", v, err, SchemaVersion)
	}
	if e, err := j.Get(ctx, "asked"); err != nil || !e.CancelRequested || e.CancelRequestedBy != "" || e.TraceParent != "" {
		t.Fatalf("a request made before the upgrade: %+v, %v", e, err)
	}
	if e, err := j.RequestCancel(ctx, "quiet", "ops"); err != nil || !e.CancelRequested || e.CancelRequestedBy != "ops" {
		t.Fatalf("a request after the upgrade: %+v, %v", e, err)
	}
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	if err := j.Create(ctx, &journal.Execution{ID: "new", Workflow: "wf", Version: 1, State: journal.Running, TraceParent: tp}); err != nil {
		t.Fatal(err)
	}
	ro, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	for _, r := range []*Journal{j, ro} {
		if e, err := r.Get(ctx, "new"); err != nil || e.TraceParent != tp {
			t.Errorf("a start's trace context after the upgrade: %+v, %v", e, err)
		}
		if e, err := r.Get(ctx, "quiet"); err != nil || e.CancelRequestedBy != "ops" {
			t.Errorf("the requester after the upgrade: %+v, %v", e, err)
		}
	}
}

// TestSeqsOfABatch: the records appended to in one transaction get their
// last sequence and update time at its end (flushSeqs), each its own, a
// time past 2262 (stored as text) too; a record the batch did not append
// to keeps its own.
func TestSeqsOfABatch(t *testing.T) {
	ctx := t.Context()
	for _, now := range []time.Time{
		time.Date(2026, 11, 30, 4, 5, 6, 7, time.UTC),
		time.Date(2300, 1, 2, 3, 4, 5, 6, time.UTC),
	} {
		j, err := Open(filepath.Join(t.TempDir(), "loom.db"), WithClock(func() time.Time { return now }))
		if err != nil {
			t.Fatal(err)
		}
		tokens := map[string]int64{}
		for _, id := range []string{"a", "b", "c", "d"} {
			l, err := j.CreateHeld(ctx, &journal.Execution{ID: id, Workflow: "wf", State: journal.Running, CreatedAt: now.Add(-time.Hour), UpdatedAt: now.Add(-time.Hour)},
				journal.Holder{ID: "x"}, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			tokens[id] = l.Token
		}
		appends := []journal.Append{
			{ExecutionID: "a", Events: []journal.Event{{Path: "1", Kind: journal.StepCompleted}}},
			{ExecutionID: "c", Events: []journal.Event{{Path: "1", Kind: journal.StepCompleted}, {Path: "2", Kind: journal.StepCompleted}}},
			{ExecutionID: "b", Events: []journal.Event{{Path: "1", Kind: journal.StepCompleted}}},
			{ExecutionID: "c", ExpectedSeq: 2, Events: []journal.Event{{Path: "3", Kind: journal.StepCompleted}}},
		}
		release := hold(t, j)
		errs := make(chan error, len(appends))
		for i, a := range appends {
			a.Token = tokens[a.ExecutionID]
			go func() { _, err := j.Append(ctx, a); errs <- err }()
			waitQueued(t, j, i+1)
		}
		release()
		for range appends {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		for id, want := range map[string]int64{"a": 1, "b": 1, "c": 3, "d": 0} {
			e, err := j.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			at := now
			if want == 0 {
				at = now.Add(-time.Hour)
			}
			if e.LastSeq != want || !e.UpdatedAt.Equal(at) {
				t.Errorf("%s: %s: last seq %d, updated %s; want %d, %s", now, id, e.LastSeq, e.UpdatedAt, want, at)
			}
		}
		j.Close()
	}
}
