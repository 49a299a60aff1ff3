package server

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loomwork/loom/builtins"
	"github.com/loomwork/loom/clock"
	"github.com/loomwork/loom/definition"
	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal"
)

// TestRerunAPI reruns a FAILED execution over the API: the new one reuses
// the step that succeeded, runs the failed one live, and links to the old
// one; what `loom rerun` refuses is refused with its code.
func TestRerunAPI(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	var fetched atomic.Int32
	h := newHarness(t, func(c *Config) {
		reg := interpreter.NewRegistry(builtins.Standard())
		interpreter.Register(reg, "fetch", func(ctx context.Context, in string) (string, error) {
			fetched.Add(1)
			return "fetched " + in, nil
		})
		interpreter.Register(reg, "charge", func(ctx context.Context, in string) (string, error) {
			if down.Load() {
				return "", errors.New("the bank is down")
			}
			return "charged " + in, nil
		})
		cat, err := definition.Parse("flows.yaml", []byte(`name: order
input: {type: object, properties: {n: {type: integer}}, required: [n]}
steps:
  - id: fetch
    task: fetch
    with: "n${input.n}"
  - id: charge
    task: charge
    with: ${steps.fetch.output}
output: ${steps.charge.output}
`), definition.WithTasks(reg))
		if err != nil {
			t.Fatal(err)
		}
		c.Catalog, c.Tasks = cat, reg
	})
	st, _, rec := h.do("POST", "/v1/executions?wait=60s&until=finished", `{"workflow": "order", "input": {"n": 7}, "id": "o1"}`)
	if st != 201 || rec["state"] != "FAILED" {
		t.Fatalf("start: %d %v", st, rec)
	}
	down.Store(false)

	st, hdr, rec := h.do("POST", "/v1/executions/o1/rerun?wait=60s&until=finished", `{"id": "o2"}`)
	if st != 201 || rec["id"] != "o2" || rec["state"] != "COMPLETED" || rec["output"] != "charged fetched n7" || hdr.Get("Location") != "/v1/executions/o2" {
		t.Fatalf("rerun: %d %v (Location %q)", st, rec, hdr.Get("Location"))
	}
	if n := fetched.Load(); n != 1 {
		t.Errorf("fetch ran %d times; the rerun must reuse its outcome", n)
	}
	evs, err := h.j.Events(context.Background(), "o2", 0)
	if err != nil || len(evs) == 0 || evs[0].Kind != journal.RerunOf {
		t.Fatalf("o2's journal does not begin with rerun.of: %v %v", evs, err)
	}
	if link, err := journal.DecodeData[journal.RerunOfData](evs[0]); err != nil || link.ExecutionID != "o1" || link.From != "charge" {
		t.Errorf("rerun.of = %+v, %v; want o1 from charge", link, err)
	}

	// The same request again (a client's retry) answers the same rerun.
	st, hdr, rec = h.do("POST", "/v1/executions/o1/rerun", `{"id": "o2"}`)
	if st != 200 || rec["id"] != "o2" || rec["state"] != "COMPLETED" {
		t.Fatalf("the rerun again: %d %v", st, rec)
	}

	// A new input, from the first step: everything runs live.
	st, _, rec = h.do("POST", "/v1/executions/o1/rerun?wait=60s&until=finished", `{"from": "fetch", "input": {"n": 8}}`)
	if st != 201 || rec["state"] != "COMPLETED" || rec["output"] != "charged fetched n8" || fetched.Load() != 2 {
		t.Fatalf("rerun from fetch with a new input: %d %v (fetch ran %d times)", st, rec, fetched.Load())
	}

	for _, c := range []struct {
		what, path, body string
		status           int
		code, message    string
	}{
		{"a COMPLETED execution", "/v1/executions/o2/rerun", ``, 409, "not_rerunnable",
			"not rerunnable: execution o2 is COMPLETED; only FAILED and CANCELLED executions are rerun"},
		{"a path never reached", "/v1/executions/o1/rerun", `{"from": "nosuch"}`, 400, "invalid_from",
			`not rerunnable: the journal has nothing at "nosuch": that step never ran`},
		{"an id taken by another rerun", "/v1/executions/o1/rerun", `{"id": "o2", "from": "fetch"}`, 409, "execution_exists", ""},
		{"an id taken by a start", "/v1/executions/o1/rerun", `{"id": "o1"}`, 409, "execution_exists", ""},
		{"a bad input", "/v1/executions/o1/rerun", `{"input": {}}`, 400, "invalid_input", ""},
		{"a bad id", "/v1/executions/o1/rerun", `{"id": "a b"}`, 400, "bad_request",
			`id "a b" is not usable: it holds " " at byte 2; an execution id is 1 to 128 letters, digits, '-', '_', '.' and ':', and not '.' or '..'`},
		{"no such execution", "/v1/executions/nosuch/rerun", ``, 404, "not_found", ""},
	} {
		st, _, body := h.do("POST", c.path, c.body)
		wantError(t, c.what, st, body, c.status, c.code)
		if e, _ := body["error"].(map[string]any); c.message != "" && e["message"] != c.message {
			t.Errorf("%s: message %q, want %q", c.what, e["message"], c.message)
		}
	}
}

// TestSchedulesAPI lists a catalog's schedules with their next fire times
// in the schedule's zone, then the slot a process decided.
func TestSchedulesAPI(t *testing.T) {
	start := time.Date(2026, 11, 29, 8, 30, 0, 0, time.UTC)
	h := newHarness(t, func(c *Config) {
		reg := interpreter.NewRegistry(builtins.Standard())
		cat, err := definition.Parse("flows.yaml", []byte(`name: nightly
schedule: {cron: "0 3 * * *", timezone: Europe/Paris}
steps:
  - id: a
    task: echo
    with: x
---
name: plain
steps:
  - id: a
    task: echo
    with: x
`), definition.WithTasks(reg))
		if err != nil {
			t.Fatal(err)
		}
		c.Catalog, c.Tasks = cat, reg
		c.Clock = clock.NewFake(start)
	})
	st, _, raw := h.raw("GET", "/v1/schedules?next=2", "")
	want := `{"schedules":[{"workflow":"nightly","schedule":"0 3 * * * (Europe/Paris)","cron":"0 3 * * *","timezone":"Europe/Paris","overlap":"skip","catch_up":"latest","last":null,"due":false,"next":["2026-11-30T03:00:00+01:00","2026-12-01T03:00:00+01:00"]}]}`
	if st != 200 || strings.TrimSpace(string(raw)) != want {
		t.Fatalf("GET /v1/schedules?next=2: %d\n got %s\nwant %s", st, raw, want)
	}
	at := time.Date(2026, 11, 29, 2, 0, 0, 0, time.UTC)
	if ok, err := h.j.ClaimSlot(context.Background(), journal.ScheduleSlot{Workflow: "nightly", At: at, Skipped: journal.SlotOverlap}, nil); !ok || err != nil {
		t.Fatalf("ClaimSlot: %v %v", ok, err)
	}
	st, _, raw = h.raw("GET", "/v1/schedules", "")
	want = `{"schedules":[{"workflow":"nightly","schedule":"0 3 * * * (Europe/Paris)","cron":"0 3 * * *","timezone":"Europe/Paris","overlap":"skip","catch_up":"latest","last":{"at":"2026-11-29T03:00:00+01:00","skipped":"overlap","decided_at":"2026-11-29T09:30:00+01:00"},"due":false,"next":["2026-11-30T03:00:00+01:00"]}]}`
	if st != 200 || strings.TrimSpace(string(raw)) != want {
		t.Fatalf("GET /v1/schedules after a slot: %d\n got %s\nwant %s", st, raw, want)
	}
	var body map[string]any
	st, _, body = h.do("GET", "/v1/schedules?next=0", "")
	wantError(t, "next=0", st, body, 400, "bad_request")
}
