package journaltest

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/loomwork/loom/journal"
)

// testGauges checks the cluster-wide counts: roots RUNNING with no live
// lease wait for a worker; open pauses count on their root by workflow.
func testGauges(t *testing.T, s *suite) {
	g, err := s.j.Gauges(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if g.Backlog != 0 || !g.BacklogSince.IsZero() || len(g.PausesOpen) != 0 {
		t.Fatalf("Gauges of an empty journal = %+v", g)
	}
	s.create(&journal.Execution{ID: "waits"})
	held := s.root("held")
	s.create(&journal.Execution{ID: "child", ParentID: "held", RootID: "held"})
	pauses := func(names ...string) json.RawMessage {
		var ps []map[string]string
		for _, n := range names {
			ps = append(ps, map[string]string{"name": n, "path": n})
		}
		b, _ := json.Marshal(ps)
		return b
	}
	s.create(&journal.Execution{ID: "p1", Workflow: "approve", State: journal.Paused, Pauses: pauses("a", "b")})
	s.create(&journal.Execution{ID: "p2", Workflow: "approve", State: journal.Paused, Pauses: pauses("c")})
	s.create(&journal.Execution{ID: "p3", Workflow: "other", State: journal.Paused, Pauses: pauses("d")})
	s.create(&journal.Execution{ID: "pc", Workflow: "sub", State: journal.Paused, ParentID: "p3", RootID: "p3", Pauses: pauses("d")})
	s.create(&journal.Execution{ID: "done", State: journal.Completed})
	g, err = s.j.Gauges(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"approve": 3, "other": 1}
	if g.Backlog != 1 || !g.BacklogSince.Equal(s.get("waits").UpdatedAt) || !reflect.DeepEqual(g.PausesOpen, want) {
		t.Errorf("Gauges = %+v, want backlog 1 since %s and pauses %v", g, s.get("waits").UpdatedAt, want)
	}
	// A released lease leaves its root waiting for a worker again.
	if err := s.j.Release(s.ctx, held); err != nil {
		t.Fatal(err)
	}
	if g, err = s.j.Gauges(s.ctx); err != nil || g.Backlog != 2 {
		t.Errorf("Gauges after a release = %+v, %v; want backlog 2", g, err)
	}
}

// testWatchCommits checks that the writer reports each commit once it is
// made.
func testWatchCommits(t *testing.T, s *suite) {
	commits := make(chan journal.Commit, 100)
	s.j.WatchCommits(func(c journal.Commit) { commits <- c })
	s.create(&journal.Execution{ID: "r"})
	select {
	case c := <-commits:
		if c.Writes < 1 || c.Duration < 0 {
			t.Errorf("commit = %+v", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no commit reported within 10s of a Create")
	}
	s.j.WatchCommits(nil) // stops without a report
}
