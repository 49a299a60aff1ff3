package sqlite

import (
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/journaltest"
)

// TestMigrateV10: a journal written at schema 9 opens at schema 10 with
// begun set on the records that have events, so a claim finds a released
// unfinished root (a resume) ahead of the older queued starts, and a
// start it then begins leaves the queue.
func TestMigrateV10(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "loom.db")
	j, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().UTC().Add(-time.Hour)
	for i, id := range []string{"old-1", "old-2", "resumed"} {
		if err := j.Create(ctx, &journal.Execution{ID: id, Workflow: "w", Version: 1, State: journal.Running, DefinitionHash: "h",
			CreatedAt: base.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	me := journal.Holder{ID: "me", Host: "h", PID: 1}
	l, err := j.Acquire(ctx, "resumed", me, time.Hour, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Append(ctx, journal.Append{ExecutionID: "resumed", Token: l.Token, Release: true,
		Events: []journal.Event{{Path: "s0", Kind: journal.StepCompleted, Name: "task:echo", Data: []byte(`{"output":1}`)}}}); err != nil {
		t.Fatal(err)
	}
	j.Close()

	// Back to schema 9's shape: no begun, none of its indexes.
	db, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`DROP INDEX executions_queued`, `DROP INDEX executions_inflight`, `DROP INDEX executions_cancels`,
		`ALTER TABLE executions DROP COLUMN begun`, `PRAGMA user_version = 9`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	if j, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	var v int
	if err := j.rdb.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil || v != SchemaVersion {
		t.Fatalf("user_version after Open: %d (%v), want %d", v, err, SchemaVersion)
	}
	journaltest.ClaimsAfterUpgrade(t, j)
	var begun int
	if err := j.rdb.QueryRow(`SELECT begun FROM executions WHERE id = 'old-2'`).Scan(&begun); err != nil || begun != 0 {
		t.Fatalf("old-2 begun = %d (%v), want 0", begun, err)
	}
}

// TestClaimKeepsFences: a claim keeps the writer's fence cache (the
// appends after it read nothing) and keeps it true: the lease it takes
// over fences the old holder's next append.
func TestClaimKeepsFences(t *testing.T) {
	ctx := t.Context()
	j, err := Open(filepath.Join(t.TempDir(), "loom.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	x, y := journal.Holder{ID: "x"}, journal.Holder{ID: "y"}
	lb, err := j.CreateHeld(ctx, &journal.Execution{ID: "b", Workflow: "wf", State: journal.Running}, x, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ev := func(ordinal int) []journal.Event {
		return []journal.Event{{Path: "p", Kind: journal.Builtin, Name: "now", Ordinal: ordinal}}
	}
	if _, err := j.Append(ctx, journal.Append{ExecutionID: "b", Token: lb.Token, Events: ev(0)}); err != nil {
		t.Fatal(err)
	}
	la, err := j.CreateHeld(ctx, &journal.Execution{ID: "a", Workflow: "wf", State: journal.Running}, x, time.Nanosecond)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Append(ctx, journal.Append{ExecutionID: "a", Token: la.Token, Events: ev(0)}); err != nil {
		t.Fatal(err)
	}
	res, err := j.Claim(ctx, journal.ClaimRequest{Holder: y, TTL: time.Hour, Limit: 10})
	if err != nil || len(res.Claims) != 1 || res.Claims[0].Lease.RootID != "a" || res.Claims[0].Reason != journal.ClaimTakeover {
		t.Fatalf("claim: %+v, %v; want a taken over", res, err)
	}
	var cached bool
	var token int64
	if err := j.submit(ctx, &op{fenced: true, run: func(w *writer) error {
		_, cached = w.execs["b"]
		token = w.tokens["a"]
		return nil
	}}); err != nil {
		t.Fatal(err)
	}
	if !cached || token != res.Claims[0].Lease.Token {
		t.Fatalf("after the claim: b cached %v, a's cached token %d; want true, %d", cached, token, res.Claims[0].Lease.Token)
	}
	if _, err := j.Append(ctx, journal.Append{ExecutionID: "a", Token: la.Token, ExpectedSeq: 1, Events: ev(1)}); !errors.Is(err, journal.ErrFenced) {
		t.Fatalf("the old holder's append after the takeover: %v, want ErrFenced", err)
	}
	if _, err := j.Append(ctx, journal.Append{ExecutionID: "b", Token: lb.Token, ExpectedSeq: 1, Events: ev(1)}); err != nil {
		t.Fatalf("b's holder's append: %v", err)
	}
}
