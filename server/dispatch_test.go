package server

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v5"

	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal"
)

// journaledStart starts workflow hello as id through the API while this
// process claims nothing (it drains until the test calls undrain), so the
// execution waits for a worker, RUNNING with no event and no holder.
func (h *harness) journaledStart(id string) {
	h.t.Helper()
	h.srv.draining.Store(true)
	if st, _, rec := h.do("POST", "/v1/executions", `{"workflow": "hello", "input": {"name": "Ada"}, "id": "`+id+`"}`); st != 201 || rec["state"] != "RUNNING" {
		h.t.Fatalf("start of %s: %d %v", id, st, rec)
	}
}

// undrain lets the dispatcher claim again.
func (h *harness) undrain() { h.srv.draining.Store(false) }

// poll makes the dispatcher look for work, and waits until a pass that
// began after the call has ended (one already under way, woken by a drive
// that just ended, may have read the journal before the test moved the
// clock).
func (h *harness) poll() {
	h.t.Helper()
	for len(h.polled) > 0 { // room for the signal waited for
		<-h.polled
	}
	begun := h.srv.passes.Load()
	h.srv.wake()
	for <-h.polled <= begun {
	}
}

func (h *harness) waitingOn(id string) []any {
	h.t.Helper()
	st, _, rec := h.do("GET", "/v1/executions/"+id, "")
	if st != 200 {
		h.t.Fatalf("GET %s: %d %v", id, st, rec)
	}
	w, _ := rec["waiting_on"].([]any)
	return w
}

// TestCrashLoopBackoff: an execution whose drivers die three times in a
// row with no new journal event is crash-looping. The dispatcher leaves
// it alone for a minute, waiting_on says until when, then takes it over
// (counted in loom_crash_loops_total) and, here, completes it.
func TestCrashLoopBackoff(t *testing.T) {
	h := newHarness(t)
	h.journaledStart("cl")
	ctx := context.Background()
	// A process of another host claims it and dies, three times over.
	other := journal.Holder{ID: "elsewhere", Host: "other-host", PID: 7, Node: "other-boot/pid:[1]"}
	for i, want := range []journal.ClaimReason{journal.ClaimStart, journal.ClaimTakeover, journal.ClaimTakeover, journal.ClaimTakeover} {
		res, err := h.j.Claim(ctx, journal.ClaimRequest{Holder: other, TTL: time.Second, Limit: 1})
		if err != nil || len(res.Claims) != 1 || res.Claims[0].Reason != want {
			t.Fatalf("claim %d: %+v, %v", i, res, err)
		}
		h.clock.Advance(2 * time.Second) // its lease expires
	}
	h.undrain()
	h.poll()
	w := h.waitingOn("cl")
	if len(w) != 1 || w[0].(map[string]any)["kind"] != "crash_loop" ||
		!strings.HasPrefix(w[0].(map[string]any)["detail"].(string), "crash-looping: taken over 3 times with no new journal event; claimable again at ") {
		t.Fatalf("waiting_on of a crash-looping execution: %v", w)
	}
	if m := h.metricsText(); !strings.Contains(m, "loom_crash_loops_total 0\n") {
		t.Fatalf("before its takeover, loom_crash_loops_total is not 0")
	}
	h.clock.Advance(time.Minute)
	h.poll()
	h.srv.driveGroup.Wait()
	st, _, rec := h.do("GET", "/v1/executions/cl", "")
	if st != 200 || rec["state"] != "COMPLETED" || rec["takeovers"] != 4.0 {
		t.Fatalf("after its back-off: %d %v", st, rec)
	}
	if m := h.metricsText(); !strings.Contains(m, "loom_crash_loops_total 1\n") {
		t.Errorf("loom_crash_loops_total does not count the takeover of a crash-looping execution")
	}
}

// TestSameNodeDeadHolderTakenOverAtOnce: the dispatcher takes over at once
// the live lease of a process of its own host and PID namespace that no
// longer exists; a holder with the same hostname in another PID namespace
// (a container) is left to its lease's expiry.
func TestSameNodeDeadHolderTakenOverAtOnce(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	dead := interpreter.LocalHolder("dead")
	dead.PID = gone.Process.Pid
	contained := dead
	contained.ID, contained.Node = "contained", dead.Node+"-container"
	for id, holder := range map[string]journal.Holder{"here": dead, "there": contained} {
		h.journaledStart(id)
		if _, err := h.j.Acquire(ctx, id, holder, time.Hour, 0); err != nil {
			t.Fatal(err)
		}
	}
	if dead.Node == "" {
		t.Skip("this system names no node (boot and PID namespace): leases wait for their expiry")
	}
	h.undrain()
	h.poll()
	h.srv.driveGroup.Wait()
	st, _, rec := h.do("GET", "/v1/executions/here", "")
	if st != 200 || rec["state"] != "COMPLETED" || rec["takeovers"] != 1.0 {
		t.Fatalf("the execution of a dead holder of this node: %d %v", st, rec)
	}
	h.poll()
	w := h.waitingOn("there")
	if len(w) != 1 || w[0].(map[string]any)["kind"] != "running" {
		t.Fatalf("the execution of a holder in another PID namespace: waiting_on %v", w)
	}
}

// TestRecordHolder: a RUNNING record names the process that holds its
// root's lease (host, pid, lease expiry), with gone decided by the server
// (interpreter.HolderGone, the one check `loom status` uses): true for a
// dead process of this node, false for a process elsewhere; null when no
// one holds it. Each record matches openapi.json's Record.
func TestRecordHolder(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	dead := interpreter.LocalHolder("dead")
	dead.PID = gone.Process.Pid
	if dead.Node == "" {
		t.Skip("this system names no node (boot and PID namespace): no holder is known to be gone")
	}
	far := journal.Holder{ID: "far", Host: "elsewhere", PID: 4242, Node: "another-node"}
	h.journaledStart("free")
	for id, holder := range map[string]journal.Holder{"dead": dead, "far": far} {
		h.journaledStart(id)
		if _, err := h.j.Acquire(ctx, id, holder, time.Hour, 0); err != nil {
			t.Fatal(err)
		}
	}
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	if err := c.AddResource("openapi.json", bytes.NewReader(openAPI)); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("openapi.json#/components/schemas/Record")
	if err != nil {
		t.Fatal(err)
	}
	expires := h.clock.Now().Add(time.Hour)
	for id, want := range map[string]*Holder{
		"free": nil,
		"dead": {Host: dead.Host, PID: dead.PID, Expires: expires, Gone: true},
		"far":  {Host: "elsewhere", PID: 4242, Expires: expires},
	} {
		st, _, raw := h.raw("GET", "/v1/executions/"+id, "")
		var v any
		if err := json.Unmarshal(raw, &v); st != 200 || err != nil {
			t.Fatalf("GET %s: %d %s", id, st, raw)
		}
		if err := sch.Validate(v); err != nil {
			t.Errorf("%s: the record does not match openapi.json: %v\n%s", id, err, raw)
		}
		var rec Record
		if err := json.Unmarshal(raw, &rec); err != nil {
			t.Fatal(err)
		}
		got := rec.Holder
		switch {
		case want == nil && got != nil:
			t.Errorf("%s: holder %+v, want null", id, got)
		case want != nil && (got == nil || got.Host != want.Host || got.PID != want.PID || !got.Expires.Equal(want.Expires) || got.Gone != want.Gone):
			t.Errorf("%s: holder %+v, want %+v", id, got, want)
		}
	}
}

// TestWorkers: each serve process journals a heartbeat; GET /v1/workers
// lists those seen in the last 30 s (draining shown at once), and
// waiting_on names a task that no live process registers.
func TestWorkers(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	workers := func() []Worker {
		t.Helper()
		st, _, raw := h.raw("GET", "/v1/workers", "")
		var out struct{ Workers []Worker }
		if err := json.Unmarshal(raw, &out); st != 200 || err != nil {
			t.Fatalf("GET /v1/workers: %d %s", st, raw)
		}
		return out.Workers
	}
	// until polls the dispatcher (no sleeping) until the list satisfies ok.
	until := func(what string, ok func([]Worker) bool) []Worker {
		t.Helper()
		for range 200 {
			if ws := workers(); ok(ws) {
				return ws
			}
			h.poll()
		}
		t.Fatalf("GET /v1/workers never showed %s: %+v", what, workers())
		return nil
	}
	// Another process, whose heartbeats stop.
	if err := h.j.Heartbeat(ctx, journal.Worker{ID: "ghost", Host: "elsewhere", PID: 9, Version: "v0", Concurrency: 2, Tasks: []string{"echo"}}); err != nil {
		t.Fatal(err)
	}
	ws := until("both processes", func(ws []Worker) bool { return len(ws) == 2 })
	me := ws[slices.IndexFunc(ws, func(w Worker) bool { return w.ID == h.srv.Holder().ID })]
	if me.PID != os.Getpid() || me.Host != h.srv.Holder().Host || me.Version != "devel" || me.Concurrency != 4 || me.InUse != 0 ||
		me.Draining || !slices.Contains(me.Tasks, "record") || !slices.IsSorted(me.Tasks) || me.StartedAt.IsZero() {
		t.Errorf("this process: %+v", me)
	}
	// A definition using a task no live process registers.
	if err := h.j.Create(ctx, &journal.Execution{ID: "lonely", Workflow: "lonely", Version: 1, State: journal.Running,
		Definition: []byte("name: lonely\nsteps:\n  - task: nowhere_task\n  - task: echo\n    with: x\n"), DefinitionHash: "lonely-hash"}); err != nil {
		t.Fatal(err)
	}
	h.poll()
	h.srv.driveGroup.Wait() // the claim found the task missing
	var details []string
	for _, w := range h.waitingOn("lonely") {
		details = append(details, w.(map[string]any)["detail"].(string))
	}
	if !slices.Contains(details, "no live serve process registers task nowhere_task that its definition uses") {
		t.Errorf("waiting_on of an execution no process can drive: %q", details)
	}
	// 31 s later only this process has journaled a heartbeat since.
	h.clock.Advance(31 * time.Second)
	until("this process alone", func(ws []Worker) bool { return len(ws) == 1 && ws[0].ID == me.ID })
	dctx, cancel := context.WithCancel(ctx)
	cancel()
	_ = h.srv.Drain(dctx)
	until("this process draining", func(ws []Worker) bool { return len(ws) == 1 && ws[0].Draining })
}

// TestDrainStartsNoNewTask: once the process drains, the task in flight
// finishes and is committed, the drive starts no new task, and the drain
// ends as soon as nothing is in flight (long before --drain), releasing
// the execution for another process, RUNNING with its first step done.
func TestDrainStartsNoNewTask(t *testing.T) {
	h := newHarness(t)
	if st, _, rec := h.do("POST", "/v1/executions", `{"workflow": "drainme", "id": "d1"}`); st != 201 {
		t.Fatalf("start: %d %v", st, rec)
	}
	<-h.undone // the first task is in flight
	drained := make(chan error, 1)
	go func() { drained <- h.srv.Drain(context.Background()) }() // no deadline: only the gate can end it early
	for !h.srv.draining.Load() {
		runtime.Gosched()
	}
	h.undo <- struct{}{} // the task in flight finishes
	select {
	case err := <-drained:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second): // a guard against a hang, not a wait
		t.Fatal("the drain did not end once no task was in flight")
	}
	select {
	case in := <-h.records:
		t.Fatalf("a task started while draining: record(%s)", in)
	default:
	}
	st, _, rec := h.do("GET", "/v1/executions/d1", "")
	if st != 200 || rec["state"] != "RUNNING" || !h.hasEvent("d1", journal.StepCompleted) {
		t.Fatalf("after the drain: %d %v", st, rec)
	}
	if l, err := h.j.LeaseOf(context.Background(), "d1"); err != nil || l.Token != 0 {
		t.Fatalf("the drained execution's lease: %+v, %v", l, err)
	}
	evs, _ := h.j.Events(context.Background(), "d1", 0)
	for _, ev := range evs {
		if ev.Path == "second" {
			t.Fatalf("the second step was journaled while draining: %+v", ev)
		}
	}
}

// TestLongRetryDelayIsADurableTimer: a retry delay longer than the 5 s
// waited out in place frees the slot: the execution is WAITING until the
// next attempt, waiting_on says retry (path, attempt, until, the last
// error), and the dispatcher runs the attempt when it is due.
func TestLongRetryDelayIsADurableTimer(t *testing.T) {
	h := newHarness(t)
	if st, _, rec := h.do("POST", "/v1/executions", `{"workflow": "retrylater", "id": "r1"}`); st != 201 {
		t.Fatalf("start: %d %v", st, rec)
	}
	rec := h.settle("r1")
	h.srv.driveGroup.Wait()
	if rec["state"] != "WAITING" || rec["wake_at"] == nil || len(h.srv.slots) != 0 {
		t.Fatalf("after a failed attempt with a 30s retry delay: %v (slots in use %d)", rec, len(h.srv.slots))
	}
	w := h.waitingOn("r1")
	detail, _ := w[0].(map[string]any)["detail"].(string)
	if len(w) != 1 || w[0].(map[string]any)["kind"] != "retry" ||
		!strings.HasPrefix(detail, "retry of flaky: attempt 2 at ") || !strings.HasSuffix(detail, "; the last attempt failed: NotYet: the first attempt fails") {
		t.Fatalf("waiting_on of a retry: %v", w)
	}
	h.clock.Advance(31 * time.Second)
	h.poll()
	h.srv.driveGroup.Wait()
	if st, _, rec := h.do("GET", "/v1/executions/r1", ""); st != 200 || rec["state"] != "COMPLETED" || rec["output"] != "ok" {
		t.Fatalf("after the retry delay: %d %v", st, rec)
	}
}
