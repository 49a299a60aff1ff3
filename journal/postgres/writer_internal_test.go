package postgres

import (
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/loomwork/loom/internal/pgtest"
	"github.com/loomwork/loom/journal"
)

// TestAppendBatchOutcomes: one transaction of appends with every outcome,
// sent as loom_append_batch calls: each append gets its own (accepted, or
// refused as fenced, out of sequence, repeating a key, or of no such
// execution) and a refused one writes nothing; an execution's second
// append of the batch follows its first; a child's append is fenced by its
// root's lease; a release gives the lease up; and with isolate set (one
// append a call) every outcome is the same.
func TestAppendBatchOutcomes(t *testing.T) {
	for _, isolate := range []bool{false, true} {
		t.Run(map[bool]string{false: "grouped", true: "isolated"}[isolate], func(t *testing.T) {
			testAppendBatchOutcomes(t, isolate)
		})
	}
}

func testAppendBatchOutcomes(t *testing.T, isolate bool) {
	ctx := t.Context()
	schema, _ := pgtest.Schema(t, "loomtest")
	j, err := Open(ctx, pgtest.DSN(t), WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	h := journal.Holder{ID: "a"}
	tokens := map[string]int64{}
	for _, id := range []string{"ok", "fenced", "behind", "dup", "done"} {
		l, err := j.CreateHeld(ctx, &journal.Execution{ID: id, Workflow: "wf", Version: 1, State: journal.Running}, h, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		tokens[id] = l.Token
	}
	if err := j.Create(ctx, &journal.Execution{ID: "child", Workflow: "wf", Version: 1, State: journal.Running, ParentID: "ok", RootID: "ok", ParentPath: "c"}); err != nil {
		t.Fatal(err)
	}
	ev := func(path string) journal.Event {
		return journal.Event{Path: path, Kind: journal.StepCompleted, Name: path, Data: json.RawMessage(`{"output":1}`)}
	}
	if _, err := j.Append(ctx, journal.Append{ExecutionID: "dup", Token: tokens["dup"], Events: []journal.Event{ev("x")}}); err != nil {
		t.Fatal(err)
	}
	completed := journal.Completed
	appends := []journal.Append{
		{ExecutionID: "ok", Token: tokens["ok"], Events: []journal.Event{ev("a"), ev("b")}},
		{ExecutionID: "fenced", Token: tokens["fenced"] + 100, Events: []journal.Event{ev("a")}},
		{ExecutionID: "behind", Token: tokens["behind"], ExpectedSeq: 5, Events: []journal.Event{ev("a")}},
		{ExecutionID: "dup", Token: tokens["dup"], ExpectedSeq: 1, Events: []journal.Event{ev("y"), ev("x")}},
		{ExecutionID: "none", Token: 1, Events: []journal.Event{ev("a")}},
		{ExecutionID: "child", Token: tokens["ok"], Events: []journal.Event{ev("a")}},
		{ExecutionID: "ok", Token: tokens["ok"], ExpectedSeq: 2, Events: []journal.Event{ev("c")}},
		{ExecutionID: "done", Token: tokens["done"], Release: true, Events: []journal.Event{ev("a")},
			Update: &journal.Update{State: &completed, Output: json.RawMessage(`{"x":1}`)}},
	}
	want := []struct {
		last int64
		err  error
	}{{2, nil}, {0, journal.ErrFenced}, {0, journal.ErrConflict}, {0, journal.ErrConflict}, {0, journal.ErrNotFound}, {1, nil}, {3, nil}, {1, nil}}
	ops := make([]*op, len(appends))
	for i := range appends {
		p := newAppendArgs(&appends[i])
		ops[i] = &op{app: &p}
		ops[i].Ctx = ctx // a ticket run by hand (try), not through the queue
	}
	// A writer of its own: the journal's belongs to its goroutine.
	w := &writer{pool: j.pool, now: time.Now, max: len(ops), isolate: isolate}
	if bad, err := w.try(ops); err != nil {
		t.Fatalf("the batch failed at op %d: %v", bad, err)
	}
	for i, o := range ops {
		if !errors.Is(o.Err, want[i].err) || (o.Err == nil && o.app.last != want[i].last) {
			t.Errorf("append %d to %s: last %d, error %v; want last %d, error %v", i, appends[i].ExecutionID, o.app.last, o.Err, want[i].last, want[i].err)
		}
	}
	counts := map[string]int{"ok": 3, "fenced": 0, "behind": 0, "dup": 1, "child": 1, "done": 1}
	for id, n := range counts {
		if evs, err := j.Events(ctx, id, 0); err != nil || len(evs) != n {
			t.Errorf("%s has %d events (%v), want %d", id, len(evs), err, n)
		}
	}
	if e, err := j.Get(ctx, "done"); err != nil || e.State != journal.Completed || string(e.Output) != `{"x":1}` || e.LastSeq != 1 {
		t.Errorf("the released execution's record: %+v, %v", e, err)
	}
	if l, err := j.LeaseOf(ctx, "done"); err != nil || l.Token != 0 {
		t.Errorf("the released lease: %+v, %v", l, err)
	}
	if l, err := j.LeaseOf(ctx, "ok"); err != nil || l.Token != tokens["ok"] {
		t.Errorf("a lease not released: %+v, %v", l, err)
	}
}

// TestAppendBatchAccepted: calls of appends that are all accepted (a
// root's, its child's, one that finishes its record and releases its
// lease, and the root's second append, in a second call:
// loom_append_batch's first path) write each as a call of one would; a child's append with a token that is not its root's lease is
// refused (fenced) and writes nothing, while the others of its call go on.
func TestAppendBatchAccepted(t *testing.T) {
	ctx := t.Context()
	schema, _ := pgtest.Schema(t, "loomtest")
	j, err := Open(ctx, pgtest.DSN(t), WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	h := journal.Holder{ID: "a"}
	tokens := map[string]int64{}
	for _, id := range []string{"p", "q"} {
		l, err := j.CreateHeld(ctx, &journal.Execution{ID: id, Workflow: "wf", Version: 1, State: journal.Running}, h, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		tokens[id] = l.Token
	}
	for _, c := range []string{"pc", "qc"} {
		if err := j.Create(ctx, &journal.Execution{ID: c, Workflow: "wf", Version: 1, State: journal.Running, ParentID: c[:1], RootID: c[:1], ParentPath: "c"}); err != nil {
			t.Fatal(err)
		}
	}
	ev := func(path string) journal.Event {
		return journal.Event{Path: path, Kind: journal.StepCompleted, Name: path, Data: json.RawMessage(`{"output":1}`)}
	}
	completed := journal.Completed
	run := func(appends []journal.Append) []*op {
		ops := make([]*op, len(appends))
		for i := range appends {
			p := newAppendArgs(&appends[i])
			ops[i] = &op{app: &p}
			ops[i].Ctx = ctx
		}
		w := &writer{pool: j.pool, now: time.Now, max: len(ops)}
		if bad, err := w.try(ops); err != nil {
			t.Fatalf("the batch failed at op %d: %v", bad, err)
		}
		return ops
	}
	ops := run([]journal.Append{
		{ExecutionID: "p", Token: tokens["p"], Events: []journal.Event{ev("a")}},
		{ExecutionID: "pc", Token: tokens["p"], Events: []journal.Event{ev("x")}},
		{ExecutionID: "q", Token: tokens["q"], Release: true, Events: []journal.Event{ev("a")},
			Update: &journal.Update{State: &completed, Output: json.RawMessage(`7`)}},
		{ExecutionID: "p", Token: tokens["p"], ExpectedSeq: 1, Events: []journal.Event{ev("b")}}, // a second call
	})
	for i, want := range []int64{1, 1, 1, 2} {
		if ops[i].Err != nil || ops[i].app.last != want {
			t.Errorf("append %d: last %d, %v; want %d", i, ops[i].app.last, ops[i].Err, want)
		}
	}
	if e, err := j.Get(ctx, "q"); err != nil || e.State != journal.Completed || string(e.Output) != `7` || e.LastSeq != 1 {
		t.Errorf("the finished record: %+v, %v", e, err)
	}
	if l, err := j.LeaseOf(ctx, "q"); err != nil || l.Token != 0 {
		t.Errorf("the released lease: %+v, %v", l, err)
	}
	if evs, err := j.Events(ctx, "p", 0); err != nil || len(evs) != 2 || evs[1].Seq != 2 || evs[1].Path != "b" {
		t.Errorf("p's events: %+v, %v", evs, err)
	}

	ops = run([]journal.Append{
		{ExecutionID: "p", Token: tokens["p"], ExpectedSeq: 2, Events: []journal.Event{ev("c")}},
		{ExecutionID: "qc", Token: tokens["q"], Events: []journal.Event{ev("x")}},
	})
	if ops[0].Err != nil || ops[0].app.last != 3 || !errors.Is(ops[1].Err, journal.ErrFenced) {
		t.Errorf("outcomes: last %d, %v (want 3, nil); %v (want ErrFenced)", ops[0].app.last, ops[0].Err, ops[1].Err)
	}
	if e, err := j.Get(ctx, "qc"); err != nil || e.LastSeq != 0 {
		t.Errorf("the fenced child's record: %+v, %v", e, err)
	}
}

// TestCreatesHeldGrouped: creates held in one transaction, sent as one
// multi-row statement (and, with isolate set, one statement each): each
// new id gets its record and a lease of its own token; an id already
// recorded, or created twice in the batch, is refused (ErrExists) the
// second time, having written nothing.
func TestCreatesHeldGrouped(t *testing.T) {
	for _, isolate := range []bool{false, true} {
		t.Run(map[bool]string{false: "grouped", true: "isolated"}[isolate], func(t *testing.T) {
			ctx := t.Context()
			schema, _ := pgtest.Schema(t, "loomtest")
			j, err := Open(ctx, pgtest.DSN(t), WithSchema(schema))
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			if err := j.Create(ctx, &journal.Execution{ID: "x", Workflow: "old", Version: 1, State: journal.Running}); err != nil {
				t.Fatal(err)
			}
			ids := []string{"a", "b", "x", "a"}
			ops := make([]*op, len(ids))
			for i, id := range ids {
				e := &journal.Execution{ID: id, Workflow: "wf" + strconv.Itoa(i), Version: 1, State: journal.Running, Input: json.RawMessage(`{"n":1}`),
					Labels: map[string]string{"k": id}}
				ops[i] = &op{held: &heldArgs{row: newExecRow(e), h: journal.Holder{ID: "h" + id, Host: "host", PID: 7, Node: "n"}, ttl: time.Minute}}
				ops[i].Ctx = ctx
			}
			w := &writer{pool: j.pool, now: time.Now, max: len(ops), isolate: isolate}
			if bad, err := w.try(ops); err != nil {
				t.Fatalf("the batch failed at op %d: %v", bad, err)
			}
			for i, want := range []error{nil, nil, journal.ErrExists, journal.ErrExists} {
				if !errors.Is(ops[i].Err, want) {
					t.Errorf("create %d of %s: %v, want %v", i, ids[i], ops[i].Err, want)
				}
			}
			for i := range 2 {
				got := ops[i].held.lease
				l, err := j.LeaseOf(ctx, ids[i])
				if err != nil || l != got || l.Token == 0 || l.Holder.ID != "h"+ids[i] {
					t.Errorf("%s's lease: %+v (%v); CreateHeld said %+v", ids[i], l, err, got)
				}
				if e, err := j.Get(ctx, ids[i]); err != nil || e.Workflow != "wf"+strconv.Itoa(i) || e.Labels["k"] != ids[i] || string(e.Input) != `{"n":1}` {
					t.Errorf("%s's record: %+v, %v", ids[i], e, err)
				}
			}
			if ops[0].held.lease.Token == ops[1].held.lease.Token {
				t.Errorf("two leases with token %d", ops[0].held.lease.Token)
			}
			if e, err := j.Get(ctx, "x"); err != nil || e.Workflow != "old" {
				t.Errorf("the record created before: %+v, %v", e, err)
			}
			if l, err := j.LeaseOf(ctx, "x"); err != nil || l.Token != 0 {
				t.Errorf("a refused create left a lease: %+v, %v", l, err)
			}
		})
	}
}
