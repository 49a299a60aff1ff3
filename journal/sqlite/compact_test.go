package sqlite

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loomwork/loom/journal"
)

// TestCutStarted: a step event's data is stored without its started_at
// only where it reads back byte for byte.
func TestCutStarted(t *testing.T) {
	at := time.Date(2026, 11, 30, 1, 2, 3, 456789000, time.UTC)
	for _, c := range []struct {
		data string
		cut  bool
	}{
		{`{"output":1,"started_at":"2026-11-30T01:02:03.4Z"}`, true},
		{`{"output":{"a":"b"},"started_at":"2026-11-30T01:02:03.000000001Z"}`, true},
		{`{"output":null,"started_at":"2026-11-30T01:02:03Z"}`, true},
		{`{"error":{"type":"E","message":"m"},"started_at":"2026-11-30T01:02:02.999999999Z"}`, true},
		{`{"output":1,"started_at":"2026-11-30T02:02:03.4+01:00"}`, false},     // not as Encode renders it
		{`{"output":1,"started_at":"2026-11-30T01:02:03.400Z"}`, false},        // trailing zeros
		{`{"output":1,"started_at":"2026-11-30T01:02:03.4Z","by":"x"}`, false}, // not last
		{`{"output":{"started_at":"2026-11-30T01:02:03.4Z"}}`, false},          // not the top level's
		{`{"output":"x,\"started_at\":\"2026-11-30T01:02:03.4Z\"}"}`, false},   // inside a string
		{`{"output":1,"started_at":"3000-01-01T00:00:00Z"}`, false},            // past 2262
		{`{"output":1,"started_at":"not a time"}`, false},
		{`{"output":1}`, false},
		{`1`, false},
	} {
		rest, before, ok := cutStarted([]byte(c.data), at)
		if ok != c.cut {
			t.Errorf("%s: cut %v, want %v", c.data, ok, c.cut)
			continue
		}
		if !ok {
			continue
		}
		if !json.Valid(rest) || strings.Contains(string(rest), "started_at") {
			t.Errorf("%s: stored as %s", c.data, rest)
		}
		if got := restoreStarted(rest[:len(rest)-1:len(rest)-1], at, before); string(got) != c.data {
			t.Errorf("%s: reads back as %s", c.data, got)
		}
	}
}

// TestTimeValue: record and lease times read back exact, past 2262 too,
// and sort as times.
func TestTimeValue(t *testing.T) {
	times := []time.Time{
		time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC).Add(-time.Nanosecond),
		time.Date(2025, 3, 4, 5, 6, 7, 891011121, time.FixedZone("X", 3600)),
		time.Date(2262, 4, 11, 23, 47, 15, 0, time.UTC), // the last whole second an int64 holds
		time.Date(2262, 4, 11, 23, 47, 16, 0, time.UTC),
		time.Date(2999, 1, 1, 0, 0, 0, 5, time.UTC),
	}
	for i, tm := range times {
		got, err := storedTime{timeValue(tm)}.time()
		if err != nil || !got.Equal(tm) || got.Location() != time.UTC {
			t.Errorf("%v: reads back as %v, %v", tm, got, err)
		}
		if i > 0 && !sortsBefore(t, timeValue(times[i-1]), timeValue(tm)) {
			t.Errorf("%v does not sort before %v", times[i-1], tm)
		}
	}
}

// sortsBefore asks SQLite whether a < b.
func sortsBefore(t *testing.T, a, b any) bool {
	db, err := sql.Open("sqlite3", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var lt bool
	if err := db.QueryRow(`SELECT ? < ?`, a, b).Scan(&lt); err != nil {
		t.Fatal(err)
	}
	return lt
}

// TestMigrateCompact: a journal written at schema 8 (text times and kinds,
// a root's id repeated as its root, definitions named by hash, started_at
// in the events' data) opens at schema 9 with every record, lease and
// event reading back as it was written, and with lists, due times,
// appends, prune and a read-only open working on it.
func TestMigrateCompact(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "loom.db")
	db, err := sql.Open("sqlite3", "file:"+path+"?_foreign_keys=1")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for v, m := range migrations[:8] {
		if err := m(ctx, conn); err != nil {
			t.Fatalf("migration %d: %v", v+1, err)
		}
	}
	def := "name: wf\nsteps: []\n"
	sum := sha256.Sum256([]byte(def))
	hash := hex.EncodeToString(sum[:])
	big := `{"items":[` + strings.Repeat(`"item",`, inputInlineMax/7) + `"last"]}`
	for _, q := range []string{
		`PRAGMA user_version = 8`,
		`INSERT INTO definitions (hash, body) VALUES ('` + hash + `', '` + def + `')`,
		`INSERT INTO executions (ek, id, workflow, version, state, root_id, parent_path, definition_hash, created_at, updated_at, last_seq,
			labels, started_by, stalled, stall_mark, crash_loop_until, cancel_requested, cancel_requested_by, trace_parent)
			VALUES (1, 'r', 'wf', 1, 'RUNNING', 'r', '', '` + hash + `', '2025-01-02T03:04:05.000000001Z', '2025-01-02T03:04:06.000000002Z', 3,
			'{"team":"a"}', 'ann', 1, 2, '2025-01-02T03:05:00.000000000Z', 1, 'bob', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01')`,
		`INSERT INTO executions (ek, id, workflow, version, state, parent_id, root_id, parent_path, definition_hash, output, created_at, updated_at, last_seq)
			VALUES (2, 'k', 'wf', 1, 'COMPLETED', 'r', 'r', 'call', '` + hash + `', '"kid"', '2025-01-02T03:04:07.000000000Z', '2025-01-02T03:04:08.000000000Z', 1)`,
		`INSERT INTO executions (ek, id, workflow, version, state, root_id, parent_path, definition, definition_hash, error, created_at, updated_at)
			VALUES (3, 'odd', 'wf', 1, 'FAILED', 'odd', '', 'name: odd', 'not-its-hash', '{"type":"Boom"}', '2025-01-02T03:04:09.000000000Z', '2025-01-02T03:04:09.000000000Z')`,
		`INSERT INTO executions (ek, id, workflow, version, state, root_id, parent_path, definition_hash, input_aside, pauses, wake_at, created_at, updated_at)
			VALUES (4, 'p', 'wf', 1, 'PAUSED', 'p', '', '` + hash + `', 1, '[{"path":"x"}]', '2030-01-01T00:00:00.000000005Z', '2025-01-02T03:04:10.000000000Z', '2025-01-02T03:04:11.000000000Z')`,
		`INSERT INTO inputs (execution, body, sum) VALUES (4, '` + big + `', ` + strconv.FormatInt(inputSum([]byte(big)), 10) + `)`,
		`INSERT INTO executions (ek, id, workflow, version, state, root_id, parent_path, definition_hash, wake_at, created_at, updated_at)
			VALUES (5, 'far', 'wf', 1, 'WAITING', 'far', '', '` + hash + `', '2999-01-01T00:00:00.000000000Z', '2025-01-02T03:04:12.000000000Z', '2025-01-02T03:04:12.000000000Z')`,
		`INSERT INTO events (ek, seq, path, kind, name, ordinal, data, time) VALUES
			(1, 1, 'a', 'step.completed', 'task:echo', 0, '{"output":1,"started_at":"2025-01-02T03:04:05.5Z"}', 1735787045600000000),
			(1, 2, 'b', 'step.failed', 'task:echo', 0, '{"error":{"type":"E"},"started_at":"2025-01-02T04:04:05+01:00"}', 1735787046000000000),
			(1, 3, '', 'custom.kind', 'x', 2, NULL, 1735787047000000000),
			(2, 1, '', 'execution.finished', 'COMPLETED', 0, '{"state":"COMPLETED","output":"kid"}', 1735787048000000000)`,
		`INSERT INTO leases (root_id, token, holder_id, holder_host, holder_pid, holder_node, expires) VALUES ('r', 7, 'h', 'host', 1, 'n', '2999-01-01T00:00:00.000000000Z')`,
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
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm.UTC()
	}
	want := map[string]*journal.Execution{
		"r": {ID: "r", Workflow: "wf", Version: 1, State: journal.Running, RootID: "r", Definition: []byte(def), DefinitionHash: hash,
			CreatedAt: at("2025-01-02T03:04:05.000000001Z"), UpdatedAt: at("2025-01-02T03:04:06.000000002Z"), LastSeq: 3,
			Labels: map[string]string{"team": "a"}, StartedBy: "ann", StalledTakeovers: 1, CrashLoopUntil: at("2025-01-02T03:05:00Z"),
			CancelRequested: true, CancelRequestedBy: "bob", TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		"k": {ID: "k", Workflow: "wf", Version: 1, State: journal.Completed, ParentID: "r", RootID: "r", ParentPath: "call",
			Definition: []byte(def), DefinitionHash: hash, Output: json.RawMessage(`"kid"`),
			CreatedAt: at("2025-01-02T03:04:07Z"), UpdatedAt: at("2025-01-02T03:04:08Z"), LastSeq: 1},
		"odd": {ID: "odd", Workflow: "wf", Version: 1, State: journal.Failed, RootID: "odd", Definition: []byte("name: odd"), DefinitionHash: "not-its-hash",
			Error: json.RawMessage(`{"type":"Boom"}`), CreatedAt: at("2025-01-02T03:04:09Z"), UpdatedAt: at("2025-01-02T03:04:09Z")},
		"p": {ID: "p", Workflow: "wf", Version: 1, State: journal.Paused, RootID: "p", Definition: []byte(def), DefinitionHash: hash,
			Input: json.RawMessage(big), Pauses: json.RawMessage(`[{"path":"x"}]`), WakeAt: at("2030-01-01T00:00:00.000000005Z"),
			CreatedAt: at("2025-01-02T03:04:10Z"), UpdatedAt: at("2025-01-02T03:04:11Z")},
		"far": {ID: "far", Workflow: "wf", Version: 1, State: journal.Waiting, RootID: "far", Definition: []byte(def), DefinitionHash: hash,
			WakeAt: at("2999-01-01T00:00:00Z"), CreatedAt: at("2025-01-02T03:04:12Z"), UpdatedAt: at("2025-01-02T03:04:12Z")},
	}
	check := func(j *Journal, when string) {
		t.Helper()
		for id, w := range want {
			got, err := j.Get(ctx, id)
			if err != nil {
				t.Errorf("%s: Get(%s): %v", when, id, err)
				continue
			}
			if d := diffExecution(got, w); d != "" {
				t.Errorf("%s: Get(%s): %s", when, id, d)
			}
		}
		evs, err := j.Events(ctx, "r", 0)
		wantEvs := []journal.Event{
			{Seq: 1, Path: "a", Kind: journal.StepCompleted, Name: "task:echo", Data: json.RawMessage(`{"output":1,"started_at":"2025-01-02T03:04:05.5Z"}`), Time: time.Unix(0, 1735787045600000000).UTC()},
			{Seq: 2, Path: "b", Kind: journal.StepFailed, Name: "task:echo", Data: json.RawMessage(`{"error":{"type":"E"},"started_at":"2025-01-02T04:04:05+01:00"}`), Time: time.Unix(0, 1735787046000000000).UTC()},
			{Seq: 3, Path: "", Kind: "custom.kind", Name: "x", Ordinal: 2, Time: time.Unix(0, 1735787047000000000).UTC()},
		}
		if err != nil || !reflect.DeepEqual(evs, wantEvs) {
			t.Errorf("%s: events of r: %v\n%+v\nwant\n%+v", when, err, evs, wantEvs)
		}
		if l, err := j.LeaseOf(ctx, "r"); err != nil || l.Token != 7 || !l.Expires.Equal(at("2999-01-01T00:00:00Z")) || l.Holder.Node != "n" {
			t.Errorf("%s: lease of r: %+v, %v", when, l, err)
		}
		list, err := j.List(ctx, journal.Filter{})
		var ids []string
		for _, e := range list {
			ids = append(ids, e.ID)
		}
		if err != nil || strings.Join(ids, " ") != "far p odd k r" {
			t.Errorf("%s: list: %v, %v; want newest first", when, ids, err)
		}
		due, err := j.List(ctx, journal.Filter{Due: at("2031-01-01T00:00:00Z")})
		if err != nil || len(due) != 1 || due[0].ID != "p" {
			t.Errorf("%s: due in 2031: %v, %v; want p alone (r's lease is live, far wakes in 2999)", when, due, err)
		}
	}
	check(j, "after the migration")

	// The migrated data is compact: started_at cut where it reads back
	// exact, kinds coded, roots and definitions by key.
	var cut, coded, roots, byKey int
	if err := j.rdb.QueryRow(`SELECT (SELECT count(*) FROM events WHERE started IS NOT NULL),
		(SELECT count(*) FROM events WHERE typeof(kind) = 'integer'),
		(SELECT count(*) FROM executions WHERE root IS NULL),
		(SELECT count(*) FROM executions WHERE dk IS NOT NULL AND definition_hash IS NULL)`).Scan(&cut, &coded, &roots, &byKey); err != nil {
		t.Fatal(err)
	}
	if cut != 1 || coded != 3 || roots != 4 || byKey != 4 {
		t.Errorf("%d events with started cut (want 1), %d kinds coded (3), %d roots without root (4), %d definitions by key (4)", cut, coded, roots, byKey)
	}

	// Foreign keys are back on for the writer after the migration.
	var fk int
	if err := j.submit(ctx, &op{run: func(w *writer) error {
		return w.conn.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk)
	}}); err != nil || fk != 1 {
		t.Errorf("foreign_keys %d (%v) after the migration, want 1", fk, err)
	}

	// Writes after it.
	data := json.RawMessage(`{"output":2,"started_at":"2025-01-02T03:04:05.123456789Z"}`)
	if seq, err := j.Append(ctx, journal.Append{ExecutionID: "r", Token: 7, ExpectedSeq: 3, Events: []journal.Event{{Path: "c", Kind: journal.StepCompleted, Name: "task:echo", Data: data}}}); err != nil || seq != 4 {
		t.Fatalf("append after the migration: %d, %v", seq, err)
	}
	if evs, err := j.Events(ctx, "r", 3); err != nil || len(evs) != 1 || string(evs[0].Data) != string(data) {
		t.Errorf("the appended event: %+v, %v", evs, err)
	}
	if r, err := j.Get(ctx, "r"); err != nil || r.LastSeq != 4 {
		t.Errorf("r after the append: %+v, %v", r, err)
	} else {
		want["r"].LastSeq, want["r"].UpdatedAt = 4, r.UpdatedAt
	}
	res, err := j.Prune(ctx, journal.PruneRequest{FinishedBefore: at("2026-01-01T00:00:00Z"), States: []journal.State{journal.Failed}})
	if err != nil || res.Roots != 1 || res.Executions != 1 {
		t.Errorf("prune of odd: %+v, %v", res, err)
	}
	delete(want, "odd")
	if _, err := j.Get(ctx, "odd"); err == nil {
		t.Error("odd is still there after prune")
	}
	var defs int
	if err := j.rdb.QueryRow(`SELECT count(*) FROM definitions`).Scan(&defs); err != nil || defs != 1 {
		t.Errorf("%d definitions (%v), want 1: odd kept its own inline", defs, err)
	}
	if probs, err := j.CheckIntegrity(ctx); err != nil || len(probs) > 0 {
		t.Errorf("integrity after the migration: %v, %v", probs, err)
	}

	ro, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	for id, w := range want {
		if got, err := ro.Get(ctx, id); err != nil || diffExecution(got, w) != "" {
			t.Errorf("read-only: Get(%s): %v %s", id, err, diffExecution(got, w))
		}
	}
}

// diffExecution names the fields of got that differ from want.
func diffExecution(got, want *journal.Execution) string {
	if got == nil {
		return "no record"
	}
	var diff []string
	g, w := reflect.ValueOf(*got), reflect.ValueOf(*want)
	for i := range g.NumField() {
		gf, wf := g.Field(i).Interface(), w.Field(i).Interface()
		if gt, ok := gf.(time.Time); ok {
			if !gt.Equal(wf.(time.Time)) {
				diff = append(diff, g.Type().Field(i).Name+" "+gt.String()+", not "+wf.(time.Time).String())
			}
			continue
		}
		if !reflect.DeepEqual(gf, wf) {
			diff = append(diff, g.Type().Field(i).Name)
		}
	}
	return strings.Join(diff, "; ")
}
