package server

import (
	"context"
	"testing"
	"time"

	"github.com/loomwork/loom/internal/pgtest"
	"github.com/loomwork/loom/journal/postgres"
)

// TestHintWakesAnotherProcess: on PostgreSQL, a start journaled by a
// process that does not drive it (draining here) wakes another process
// with a free slot through LISTEN/NOTIFY, long before its next poll: the
// processes' clocks are fake and never move, so only the hint can wake it.
func TestHintWakesAnotherProcess(t *testing.T) {
	_, dsn := pgtest.Schema(t, "hints")
	ctx := context.Background()
	onPG := func(c *Config) {
		j, err := postgres.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { j.Close() })
		c.Journal = j
	}
	a := newHarness(t, onPG)
	b := newHarness(t, onPG)
	<-b.listening
	b.poll() // its first pass, before the start, is over
	a.srv.draining.Store(true)
	if st, _, rec := a.do("POST", "/v1/executions", `{"workflow": "hello", "input": {"name": "Ada"}, "id": "hinted"}`); st != 201 || rec["state"] != "RUNNING" {
		t.Fatalf("start on a: %d %v", st, rec)
	}
	done := make(chan map[string]any, 1)
	go func() {
		_, _, rec := b.do("GET", "/v1/executions/hinted?wait=60s&until=finished", "")
		done <- rec
	}()
	select {
	case rec := <-done:
		if rec["state"] != "COMPLETED" {
			t.Fatalf("hinted execution on b: %v", rec)
		}
	case <-time.After(30 * time.Second): // a guard against a hang, not a wait
		t.Fatal("the start's hint never woke the other process")
	}
}
