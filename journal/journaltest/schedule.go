package journaltest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/loomwork/loom/journal"
)

// testScheduleSlots: ClaimSlot decides each slot of a workflow once and
// only moves forward; a started slot and its execution are written
// together or not at all; of concurrent claims of one slot exactly one
// wins and creates its execution.
func testScheduleSlots(t *testing.T, s *suite) {
	t0 := time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)
	exec := func(id string) *journal.Execution {
		return &journal.Execution{ID: id, Workflow: "nightly", Version: 1, State: journal.Running}
	}
	claim := func(sl journal.ScheduleSlot, e *journal.Execution) bool {
		t.Helper()
		ok, err := s.j.ClaimSlot(s.ctx, sl, e)
		if err != nil {
			t.Fatalf("ClaimSlot(%s at %s): %v", sl.Workflow, sl.At.Format(time.RFC3339), err)
		}
		return ok
	}
	if got, err := s.j.ScheduleSlots(s.ctx); err != nil || len(got) != 0 {
		t.Fatalf("ScheduleSlots of a new journal = %v, %v; want none", got, err)
	}
	if !claim(journal.ScheduleSlot{Workflow: "nightly", At: t0, ExecutionID: "n1"}, exec("n1")) {
		t.Fatal("the first claim of a slot was refused")
	}
	if e := s.get("n1"); e.Workflow != "nightly" || e.State != journal.Running || e.RootID != "n1" {
		t.Errorf("the slot's execution = %+v", e)
	}
	// The same slot again, and an earlier one: nothing is written.
	if claim(journal.ScheduleSlot{Workflow: "nightly", At: t0, ExecutionID: "n1b"}, exec("n1b")) {
		t.Error("a slot was claimed twice")
	}
	if claim(journal.ScheduleSlot{Workflow: "nightly", At: t0.Add(-time.Hour), ExecutionID: "n0"}, exec("n0")) {
		t.Error("a slot before the latest one was claimed")
	}
	for _, id := range []string{"n1b", "n0"} {
		if _, err := s.j.Get(s.ctx, id); !errors.Is(err, journal.ErrNotFound) {
			t.Errorf("Get(%s) after a refused claim: %v, want ErrNotFound", id, err)
		}
	}
	// A skipped slot names the execution before it.
	if !claim(journal.ScheduleSlot{Workflow: "nightly", At: t0.Add(time.Hour), ExecutionID: "n1", Skipped: journal.SlotOverlap}, nil) {
		t.Error("a skipped slot was refused")
	}
	// A started slot whose id is taken writes nothing: not the slot either.
	_, err := s.j.ClaimSlot(s.ctx, journal.ScheduleSlot{Workflow: "nightly", At: t0.Add(2 * time.Hour), ExecutionID: "n1"}, exec("n1"))
	if !errors.Is(err, journal.ErrExists) {
		t.Errorf("ClaimSlot with a taken id: %v, want ErrExists", err)
	}
	if !claim(journal.ScheduleSlot{Workflow: "hourly", At: t0, ExecutionID: "h1"}, &journal.Execution{ID: "h1", Workflow: "hourly", Version: 1, State: journal.Running}) {
		t.Error("another workflow's slot at the same time was refused")
	}
	got, err := s.j.ScheduleSlots(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []journal.ScheduleSlot{
		{Workflow: "hourly", At: t0, ExecutionID: "h1"},
		{Workflow: "nightly", At: t0.Add(time.Hour), ExecutionID: "n1", Skipped: journal.SlotOverlap},
	}
	if len(got) != len(want) {
		t.Fatalf("ScheduleSlots = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].DecidedAt.IsZero() {
			t.Errorf("slot %d has no DecidedAt", i)
		}
		got[i].DecidedAt = time.Time{}
		if !got[i].At.Equal(want[i].At) {
			t.Errorf("slot %d at %v, want %v", i, got[i].At, want[i].At)
		}
		got[i].At = want[i].At
		if got[i] != want[i] {
			t.Errorf("slot %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	// Refused before anything is written.
	for _, bad := range []struct {
		sl journal.ScheduleSlot
		e  *journal.Execution
	}{
		{journal.ScheduleSlot{At: t0.Add(5 * time.Hour), ExecutionID: "x", Skipped: journal.SlotMissed}, nil},
		{journal.ScheduleSlot{Workflow: "nightly", ExecutionID: "x", Skipped: journal.SlotMissed}, nil},
		{journal.ScheduleSlot{Workflow: "nightly", At: t0.Add(5 * time.Hour), ExecutionID: "x"}, nil},
		{journal.ScheduleSlot{Workflow: "nightly", At: t0.Add(5 * time.Hour), ExecutionID: "y"}, exec("x")},
	} {
		if ok, err := s.j.ClaimSlot(s.ctx, bad.sl, bad.e); err == nil || ok {
			t.Errorf("ClaimSlot(%+v) = %v, %v; want an error", bad.sl, ok, err)
		}
	}

	// Concurrent claims of one slot: one wins, one execution exists.
	at := t0.Add(24 * time.Hour)
	var wg sync.WaitGroup
	wins := make(chan string, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("race-%d", i)
			ok, err := s.j.ClaimSlot(s.ctx, journal.ScheduleSlot{Workflow: "race", At: at, ExecutionID: id},
				&journal.Execution{ID: id, Workflow: "race", Version: 1, State: journal.Running})
			if err != nil {
				t.Errorf("ClaimSlot(%s): %v", id, err)
			}
			if ok {
				wins <- id
			}
		}()
	}
	wg.Wait()
	close(wins)
	var winners []string
	for id := range wins {
		winners = append(winners, id)
	}
	if len(winners) != 1 {
		t.Fatalf("%d claims of one slot won: %v", len(winners), winners)
	}
	list, err := s.j.List(s.ctx, journal.Filter{Workflow: "race"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != winners[0] {
		t.Errorf("executions of the raced slot: %d (want only %s)", len(list), winners[0])
	}
}
