package server

import "testing"

// eventData returns the data of execution id's first event of kind at
// path, read over HTTP.
func (h *harness) eventData(id, kind, path string) map[string]any {
	h.t.Helper()
	st, _, body := h.do("GET", "/v1/executions/"+id+"/events", "", h.auth...)
	if st != 200 {
		h.t.Fatalf("events of %s: %d %v", id, st, body)
	}
	for _, e := range body["events"].([]any) {
		ev := e.(map[string]any)
		if ev["kind"] == kind && ev["path"] == path {
			d, _ := ev["data"].(map[string]any)
			return d
		}
	}
	h.t.Fatalf("execution %s has no %s event at %q: %v", id, kind, path, body)
	return nil
}

// TestResumeIdempotencyKey: the key and the actor are journaled with the
// resume; a repeat with the same key gets 200 and the record, with
// another key or none 409 not_paused.
func TestResumeIdempotencyKey(t *testing.T) {
	h := newHarness(t)
	if st, _, rec := h.do("POST", "/v1/executions", `{"workflow": "approval", "id": "a1"}`); st != 201 {
		t.Fatalf("start: %d %v", st, rec)
	}
	h.settle("a1")
	resume := func(hdr ...string) (int, map[string]any) {
		st, _, rec := h.do("POST", "/v1/executions/a1/resume?wait=60s&until=finished", `{"payload": {"approved": true}}`, hdr...)
		return st, rec
	}
	if st, rec := resume("Idempotency-Key", "k-1"); st != 200 || rec["state"] != "COMPLETED" {
		t.Fatalf("resume: %d %v", st, rec)
	}
	if st, rec := resume("Idempotency-Key", "k-1"); st != 200 || rec["state"] != "COMPLETED" || rec["id"] != "a1" {
		t.Errorf("repeated resume with its key: %d %v", st, rec)
	}
	st, rec := resume("Idempotency-Key", "k-2")
	wantError(t, "a resume with another key", st, rec, 409, "not_paused")
	st, rec = resume()
	wantError(t, "a resume without a key", st, rec, 409, "not_paused")
	st, rec = resume("Idempotency-Key", "has space")
	wantError(t, "a key with a space", st, rec, 400, "bad_request")
	d := h.eventData("a1", "step.completed", "approve")
	if d["by"] != "local" || d["idempotency_key"] != "k-1" {
		t.Errorf("the resume's event data = %v, want by local and key k-1", d)
	}
}

// TestActorsJournaled: the token that resumes, or cancels, is named in
// the event's data.
func TestActorsJournaled(t *testing.T) {
	opTok, toks := operateToken(t)
	h := newHarness(t, func(c *Config) { c.Tokens = toks })
	h.auth = []string{"Authorization", "Bearer " + opTok}
	if st, _, rec := h.do("POST", "/v1/executions", `{"workflow": "approval", "id": "a1"}`, h.auth...); st != 201 {
		t.Fatalf("start: %d %v", st, rec)
	}
	h.settle("a1")
	if st, _, rec := h.do("POST", "/v1/executions/a1/resume", `{"payload": {"approved": false}}`, h.auth...); st != 200 {
		t.Fatalf("resume: %d %v", st, rec)
	}
	if d := h.eventData("a1", "step.completed", "approve"); d["by"] != "ops" || d["idempotency_key"] != nil {
		t.Errorf("the resume's event data = %v, want by ops and no key", d)
	}
	if st, _, rec := h.do("POST", "/v1/executions", `{"workflow": "saga", "id": "s1"}`, h.auth...); st != 201 {
		t.Fatalf("start: %d %v", st, rec)
	}
	<-h.blocked
	if st, _, rec := h.do("POST", "/v1/executions/s1/cancel", ``, h.auth...); st != 202 {
		t.Fatalf("cancel: %d %v", st, rec)
	}
	<-h.undone
	close(h.undo)
	if rec := h.settle("s1"); rec["state"] != "CANCELLED" {
		t.Fatalf("after the cancel: %v", rec)
	}
	if d := h.eventData("s1", "cancel.requested", ""); d["by"] != "ops" {
		t.Errorf("the cancel's event data = %v, want by ops", d)
	}
}

// TestCancelActorAcrossProcesses: the cancel's requester is journaled
// with the request, so the process that carries the cancel out journals
// that actor even when another process accepted the cancel: here a
// (draining, with tokens) accepts the start and the cancel, and b drives
// both.
func TestCancelActorAcrossProcesses(t *testing.T) {
	opTok, toks := operateToken(t)
	a := newHarness(t, func(c *Config) { c.Tokens = toks })
	a.auth = []string{"Authorization", "Bearer " + opTok}
	b := newHarness(t, func(c *Config) { c.Journal = a.j })
	a.srv.draining.Store(true) // a journals, b drives
	if st, _, rec := a.do("POST", "/v1/executions", `{"workflow": "approval", "id": "x1"}`, a.auth...); st != 201 {
		t.Fatalf("start on a: %d %v", st, rec)
	}
	b.poll()
	if rec := b.settle("x1"); rec["state"] != "PAUSED" {
		t.Fatalf("x1 on b: %v", rec)
	}
	if st, _, rec := a.do("POST", "/v1/executions/x1/cancel", ``, a.auth...); st != 202 {
		t.Fatalf("cancel on a: %d %v", st, rec)
	}
	b.poll()
	if st, _, rec := b.do("GET", "/v1/executions/x1?wait=60s&until=finished", ""); st != 200 || rec["state"] != "CANCELLED" {
		t.Fatalf("x1 after the cancel: %d %v", st, rec)
	}
	if d := b.eventData("x1", "cancel.requested", ""); d["by"] != "ops" {
		t.Errorf("the cancel carried out by b journaled %v, want by ops (who asked a)", d)
	}
}

// TestMaxBacklog: while more executions than --max-backlog wait for a
// worker (by the last read of the gauges), a start is refused with 503
// backlog_full and Retry-After; a retried start of an existing id, a
// resume and a cancel are not.
func TestMaxBacklog(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Concurrency = 1; c.MaxBacklog = 1 })
	<-h.gauged
	if st, _, rec := h.do("POST", "/v1/executions", `{"workflow": "approval", "id": "a1"}`); st != 201 {
		t.Fatalf("start: %d %v", st, rec)
	}
	h.settle("a1")
	h.srv.driveGroup.Wait()
	if st, _, rec := h.do("POST", "/v1/executions", `{"workflow": "saga", "id": "s1"}`); st != 201 {
		t.Fatalf("start: %d %v", st, rec)
	}
	<-h.blocked // the only slot is taken: what starts next waits
	for _, id := range []string{"w1", "w2"} {
		if st, _, rec := h.do("POST", "/v1/executions", `{"workflow": "hello", "input": {"name": "x"}, "id": "`+id+`"}`); st != 201 {
			t.Fatalf("start %s: %d %v", id, st, rec)
		}
	}
	h.clock.Advance(gaugeEvery)
	<-h.gauged // two wait, more than 1
	st, hdr, rec := h.do("POST", "/v1/executions", `{"workflow": "hello", "input": {"name": "x"}, "id": "w3"}`)
	wantError(t, "a start over the backlog", st, rec, 503, "backlog_full")
	if hdr.Get("Retry-After") != "15" {
		t.Errorf("backlog_full Retry-After = %q, want 15", hdr.Get("Retry-After"))
	}
	if st, _, rec := h.do("POST", "/v1/executions", `{"workflow": "hello", "input": {"name": "x"}, "id": "w1"}`); st != 200 {
		t.Errorf("a retried start over the backlog: %d %v", st, rec)
	}
	if st, _, rec := h.do("POST", "/v1/executions/a1/resume", `{"payload": {"approved": true}}`); st != 200 {
		t.Errorf("a resume over the backlog: %d %v", st, rec)
	}
	if st, _, rec := h.do("POST", "/v1/executions/w2/cancel", ``); st != 202 && st != 200 {
		t.Errorf("a cancel over the backlog: %d %v", st, rec)
	}
}
