package server

import (
	"context"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

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

// poll makes the dispatcher look for work, and waits until it has.
func (h *harness) poll() {
	h.t.Helper()
	for len(h.polled) > 0 {
		<-h.polled
	}
	h.srv.wake()
	<-h.polled
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

func (h *harness) metricsText() string {
	h.t.Helper()
	resp, err := http.Get(h.http.URL + "/metrics")
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
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
