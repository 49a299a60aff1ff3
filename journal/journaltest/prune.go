package journaltest

import (
	"errors"
	"testing"
	"time"

	"github.com/loomwork/loom/journal"
)

// testPrune: Prune deletes finished roots older than the cutoff with their
// children, events and leases, in batches of at most Limit roots, by
// state; it never touches an open execution or a tree that holds one, nor
// one that finished after the cutoff; a pruned id can be used again.
func testPrune(t *testing.T, s *suite) {
	long := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	completed := journal.Completed

	// r1 and its child finish now, with events and a held lease.
	l := s.root("r1")
	s.create(&journal.Execution{ID: "r1c", RootID: "r1", ParentID: "r1", ParentPath: "call"})
	s.append(journal.Append{ExecutionID: "r1c", Token: l.Token, Events: []journal.Event{step("a", 1), step("b", 2)},
		Update: &journal.Update{State: &completed}})
	s.append(journal.Append{ExecutionID: "r1", Token: l.Token, Events: []journal.Event{step("a", 1), step("b", 2), step("c", 3)},
		Update: &journal.Update{State: &completed}})
	// Finished long ago, in two other states.
	s.create(&journal.Execution{ID: "r2", State: journal.Failed, CreatedAt: long, UpdatedAt: long})
	s.create(&journal.Execution{ID: "r3", State: journal.Cancelled, CreatedAt: long, UpdatedAt: long})
	// Never pruned: open; a finished root with an open child; finished
	// after the cutoff.
	s.create(&journal.Execution{ID: "open", State: journal.Paused, CreatedAt: long, UpdatedAt: long})
	s.create(&journal.Execution{ID: "m", State: journal.Completed, CreatedAt: long, UpdatedAt: long})
	s.create(&journal.Execution{ID: "mc", RootID: "m", ParentID: "m", State: journal.Paused, CreatedAt: long, UpdatedAt: long})
	future := time.Now().Add(24 * time.Hour)
	s.create(&journal.Execution{ID: "f", State: journal.Completed, CreatedAt: long, UpdatedAt: future})

	cutoff := time.Now().Add(time.Hour)
	res, err := s.j.Prune(s.ctx, journal.PruneRequest{FinishedBefore: cutoff, States: []journal.State{journal.Failed, journal.Running}})
	if err != nil {
		t.Fatalf("Prune(FAILED): %v", err)
	}
	if res != (journal.PruneResult{Roots: 1, Executions: 1, Events: 0}) {
		t.Errorf("Prune(FAILED) = %+v, want 1 root, 1 execution, 0 events", res)
	}
	if _, err := s.j.Get(s.ctx, "r2"); !errors.Is(err, journal.ErrNotFound) {
		t.Errorf("Get(r2) after its prune: %v, want ErrNotFound", err)
	}

	var total journal.PruneResult
	for calls := 1; ; calls++ {
		res, err := s.j.Prune(s.ctx, journal.PruneRequest{FinishedBefore: cutoff, Limit: 1})
		if err != nil {
			t.Fatalf("Prune: %v", err)
		}
		if res.Roots > 1 {
			t.Fatalf("Prune with Limit 1 pruned %d roots", res.Roots)
		}
		if res.Roots == 0 {
			break
		}
		total.Add(res)
		if calls > 10 {
			t.Fatal("Prune keeps pruning")
		}
	}
	if total != (journal.PruneResult{Roots: 2, Executions: 3, Events: 5}) {
		t.Errorf("pruned %+v, want 2 roots (r1, r3), 3 executions, 5 events", total)
	}
	for _, id := range []string{"r1", "r1c", "r3"} {
		if _, err := s.j.Get(s.ctx, id); !errors.Is(err, journal.ErrNotFound) {
			t.Errorf("Get(%s) after the prune: %v, want ErrNotFound", id, err)
		}
		if _, err := s.j.Events(s.ctx, id, 0); !errors.Is(err, journal.ErrNotFound) {
			t.Errorf("Events(%s) after the prune: %v, want ErrNotFound", id, err)
		}
	}
	for _, id := range []string{"open", "m", "mc", "f"} {
		s.get(id)
	}
	if l, err := s.j.LeaseOf(s.ctx, "r1"); err != nil || l != (journal.Lease{}) {
		t.Errorf("LeaseOf(r1) after the prune = %+v, %v; want none", l, err)
	}
	// The id is free again, and its new lease works.
	l2 := s.root("r1")
	s.append(journal.Append{ExecutionID: "r1", Token: l2.Token, Events: []journal.Event{step("a", 1)}})
	if evs := s.events("r1", 0); len(evs) != 1 {
		t.Errorf("the new r1 has %d events, want 1", len(evs))
	}
}
