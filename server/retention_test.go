package server

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/loomwork/loom/clock"
	"github.com/loomwork/loom/definition"
	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/sqlite"
)

type retained struct {
	at  time.Time
	res journal.PruneResult
}

// TestRetentionPrunesContinuously: with Retention 24h the service deletes
// finished roots (with their children and events) once they finished a day
// ago, pass after pass as time goes on, in batches; open executions and
// recent ones stay.
func TestRetentionPrunesContinuously(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	fake := clock.NewFake(t0)
	j, err := sqlite.Open(filepath.Join(t.TempDir(), "loom.db"), sqlite.WithClock(fake.Now))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	ctx := context.Background()
	create := func(id, root string, st journal.State, finished time.Time) {
		t.Helper()
		e := &journal.Execution{ID: id, RootID: root, Workflow: "wf", Version: 1, State: st, CreatedAt: finished, UpdatedAt: finished}
		if root != id {
			e.ParentID, e.ParentPath = root, "call"
		}
		if err := j.Create(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	// 45 roots finished at t0 (more than two batches), one with a child;
	// one finished 20 h later; one still open since long before.
	for i := range 45 {
		create(fmt.Sprintf("old-%02d", i), fmt.Sprintf("old-%02d", i), journal.Completed, t0)
	}
	create("old-00-child", "old-00", journal.Completed, t0)
	create("later", "later", journal.Failed, t0.Add(20*time.Hour))
	create("open", "open", journal.Paused, t0.Add(-72*time.Hour))

	cat, err := definition.Parse("wf.yaml", []byte("name: wf\nsteps:\n  - set: {x: 1}\n"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{Catalog: cat, Tasks: interpreter.NewRegistry(), Journal: j, Clock: fake, Retention: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	passes := make(chan retained, 100)
	srv.testRetained = func(at time.Time, res journal.PruneResult) { passes <- retained{at, res} }
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { srv.Run(runCtx); close(done) }()
	defer func() { cancel(); <-done; srv.Close() }()

	// wait returns the first pass that began at or after at.
	wait := func(at time.Time) journal.PruneResult {
		t.Helper()
		timeout := time.After(time.Minute)
		for {
			select {
			case p := <-passes:
				if !p.at.Before(at) {
					return p.res
				}
			case <-timeout:
				t.Fatalf("no retention pass at %s", at)
			}
		}
	}
	exists := func(id string) bool {
		_, err := j.Get(ctx, id)
		if err != nil && !errors.Is(err, journal.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}

	if res := wait(t0); res.Roots != 0 {
		t.Errorf("the first pass, nothing a day old yet, pruned %+v", res)
	}
	fake.Advance(25 * time.Hour) // old-* are a day old, later is 5 h old
	if res := wait(fake.Now()); res != (journal.PruneResult{Roots: 45, Executions: 46, Events: 0}) {
		t.Errorf("pass at +25h pruned %+v, want the 45 old roots and the child", res)
	}
	for _, id := range []string{"old-00", "old-00-child", "old-44"} {
		if exists(id) {
			t.Errorf("%s survived its retention", id)
		}
	}
	if !exists("later") || !exists("open") {
		t.Error("a recent or an open execution was pruned")
	}
	fake.Advance(20 * time.Hour) // later is now a day old too
	if res := wait(fake.Now()); res.Roots != 1 || exists("later") {
		t.Errorf("pass at +45h pruned %+v; later exists: %v", res, exists("later"))
	}
	if !exists("open") {
		t.Error("the open execution was pruned")
	}
}
