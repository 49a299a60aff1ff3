package journaltest

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/loomwork/loom/journal"
)

// testCrashLoop: a root taken over CrashLoopTakeovers times while its
// tree journals nothing waits out its back-off before another takeover;
// an event anywhere in the tree (a child's) ends the loop, and a cancel
// request is claimed whatever the back-off.
func testCrashLoop(t *testing.T, s *suite) {
	s.create(&journal.Execution{ID: "loop"})
	s.create(&journal.Execution{ID: "loop-kid", ParentID: "loop", RootID: "loop"})
	// Every lease lasts a nanosecond: each holder "dies" at once.
	s.acquire("loop", runnerB, time.Nanosecond)
	claim := func() []journal.Claim {
		t.Helper()
		res, err := s.j.Claim(s.ctx, journal.ClaimRequest{Holder: runnerA, TTL: time.Nanosecond, Limit: 10})
		if err != nil {
			t.Fatalf("Claim: %v", err)
		}
		return res.Claims
	}
	takeovers := func(from int) journal.Lease {
		t.Helper()
		var l journal.Lease
		for want := from; want < journal.CrashLoopTakeovers+1; want++ {
			cs := claim()
			if len(cs) != 1 || cs[0].Reason != journal.ClaimTakeover || cs[0].Stalled != want {
				t.Fatalf("takeover with %d stalled: claims %+v", want, cs)
			}
			l = cs[0].Lease
		}
		return l
	}
	before := time.Now()
	l := takeovers(1)
	rec := s.get("loop")
	if rec.StalledTakeovers != journal.CrashLoopTakeovers || rec.Takeovers != journal.CrashLoopTakeovers {
		t.Fatalf("after %d takeovers: stalled %d, takeovers %d", journal.CrashLoopTakeovers, rec.StalledTakeovers, rec.Takeovers)
	}
	// The journal's clock may be a database server's: allow it some skew.
	if lo, hi := before.Add(time.Minute-5*time.Second), time.Now().Add(time.Minute+5*time.Second); rec.CrashLoopUntil.Before(lo) || rec.CrashLoopUntil.After(hi) {
		t.Fatalf("CrashLoopUntil = %v, want about a minute after %v", rec.CrashLoopUntil, before)
	}
	if cs := claim(); len(cs) != 0 {
		t.Fatalf("a crash-looping root was claimed before its back-off: %+v", cs)
	}
	// The child journals an event: the tree moved, the loop is over.
	s.append(journal.Append{ExecutionID: "loop-kid", Token: l.Token, Events: []journal.Event{step("k", 1)}})
	cs := claim()
	if len(cs) != 1 || cs[0].Reason != journal.ClaimTakeover || cs[0].Stalled != 1 {
		t.Fatalf("takeover after progress: %+v", cs)
	}
	if rec := s.get("loop"); rec.StalledTakeovers != 1 || !rec.CrashLoopUntil.IsZero() {
		t.Fatalf("after progress: stalled %d, until %v", rec.StalledTakeovers, rec.CrashLoopUntil)
	}
	takeovers(2)
	if cs := claim(); len(cs) != 0 {
		t.Fatalf("a crash-looping root was claimed before its back-off: %+v", cs)
	}
	if _, err := s.j.RequestCancel(s.ctx, "loop", ""); err != nil {
		t.Fatal(err)
	}
	if cs := claim(); len(cs) != 1 || cs[0].Reason != journal.ClaimCancel {
		t.Fatalf("a cancel of a crash-looping root: claims %+v", cs)
	}
}

// testClaimGoneHolder: a live lease whose holder runs on the claimer's
// node and is gone is taken over at once; Gone is never asked about a
// holder on another node, nor about the claimer's own process.
func testClaimGoneHolder(t *testing.T, s *suite) {
	dead := journal.Holder{ID: "dead", Host: "h", PID: 303, Node: "boot-1/pid-1"}
	live := journal.Holder{ID: "live", Host: "h", PID: 304, Node: "boot-1/pid-1"}
	far := journal.Holder{ID: "far", Host: "h", PID: 303, Node: "boot-1/pid-2"}
	me := journal.Holder{ID: "me", Host: "h", PID: 305, Node: "boot-1/pid-1"}
	mine := journal.Holder{ID: "mine-before", Host: "h", PID: 305, Node: "boot-1/pid-1"}
	for id, h := range map[string]journal.Holder{"g-dead": dead, "g-live": live, "g-far": far, "g-mine": mine} {
		s.create(&journal.Execution{ID: id})
		s.acquire(id, h, time.Hour)
	}
	var asked []string
	gone := func(h journal.Holder) bool {
		asked = append(asked, h.ID)
		return h.ID == "dead" || h.ID == "far" || h.ID == "mine-before"
	}
	claim := func(h journal.Holder, gone func(journal.Holder) bool) []journal.Claim {
		t.Helper()
		res, err := s.j.Claim(s.ctx, journal.ClaimRequest{Holder: h, TTL: time.Hour, Limit: 10, Gone: gone})
		if err != nil {
			t.Fatalf("Claim: %v", err)
		}
		return res.Claims
	}
	if cs := claim(me, nil); len(cs) != 0 {
		t.Fatalf("claims without Gone: %+v", cs)
	}
	if cs := claim(journal.Holder{ID: "nowhere", PID: 306}, gone); len(cs) != 0 || len(asked) != 0 {
		t.Fatalf("a claimer of no known node: claims %+v, asked about %v", cs, asked)
	}
	cs := claim(me, gone)
	if len(cs) != 1 || cs[0].Lease.RootID != "g-dead" || cs[0].Reason != journal.ClaimTakeover || cs[0].Stalled != 1 {
		t.Fatalf("claims = %+v, want g-dead taken over", cs)
	}
	if slices.Sort(asked); !slices.Equal(asked, []string{"dead", "live"}) {
		t.Errorf("Gone was asked about %v, want dead and live", asked)
	}
	if rec := s.get("g-dead"); rec.Takeovers != 1 {
		t.Errorf("takeovers of g-dead = %d", rec.Takeovers)
	}
	if l, _ := s.j.LeaseOf(s.ctx, "g-dead"); l.Holder != me {
		t.Errorf("lease of g-dead held by %+v, want %+v", l.Holder, me)
	}
}

// testWorkers: heartbeats replace a process's row; Workers lists the
// recent ones by ID; ForgetWorker deletes one.
func testWorkers(t *testing.T, s *suite) {
	started := time.Date(2026, 1, 2, 3, 4, 5, 600000000, time.UTC)
	w1 := journal.Worker{ID: "w1", Host: "h1", PID: 11, Node: "n", Version: "v1", StartedAt: started,
		Concurrency: 64, InUse: 3, Tasks: []string{"exec", "echo"}}
	w2 := journal.Worker{ID: "w2", Host: "h2", PID: 22, Version: "v2", StartedAt: started, Concurrency: 8}
	before := time.Now()
	for _, w := range []journal.Worker{w2, w1} {
		if err := s.j.Heartbeat(s.ctx, w); err != nil {
			t.Fatalf("Heartbeat(%s): %v", w.ID, err)
		}
	}
	list := func(within time.Duration) []journal.Worker {
		t.Helper()
		ws, err := s.j.Workers(s.ctx, within)
		if err != nil {
			t.Fatalf("Workers: %v", err)
		}
		return ws
	}
	ws := list(30 * time.Second)
	if len(ws) != 2 || ws[0].ID != "w1" || ws[1].ID != "w2" {
		t.Fatalf("Workers = %+v", ws)
	}
	got := ws[0]
	if got.SeenAt.Before(before.Add(-5*time.Second)) || got.SeenAt.After(time.Now().Add(5*time.Second)) {
		t.Errorf("SeenAt = %v, not the time of the heartbeat", got.SeenAt)
	}
	got.SeenAt = time.Time{}
	want := w1
	want.Tasks = []string{"echo", "exec"}
	if a, _ := json.Marshal(got); string(a) != mustJSON(want) {
		t.Errorf("worker = %s, want %s", a, mustJSON(want))
	}
	if ws[1].Tasks == nil || len(ws[1].Tasks) != 0 {
		t.Errorf("tasks of a worker with none = %#v, want empty", ws[1].Tasks)
	}
	w1.Draining, w1.InUse = true, 0
	if err := s.j.Heartbeat(s.ctx, w1); err != nil {
		t.Fatal(err)
	}
	if ws := list(30 * time.Second); len(ws) != 2 || !ws[0].Draining || ws[0].InUse != 0 {
		t.Fatalf("after a second heartbeat: %+v", ws)
	}
	if err := s.j.ForgetWorker(s.ctx, "w2"); err != nil {
		t.Fatal(err)
	}
	if ws := list(30 * time.Second); len(ws) != 1 || ws[0].ID != "w1" {
		t.Fatalf("after ForgetWorker(w2): %+v", ws)
	}
	if ws := list(-time.Hour); len(ws) != 0 {
		t.Fatalf("workers seen in the future: %+v", ws)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
