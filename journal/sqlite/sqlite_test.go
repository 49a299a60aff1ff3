package sqlite_test

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/journaltest"
	"github.com/loomwork/loom/journal/sqlite"
)

func TestConformance(t *testing.T) {
	journaltest.Run(t, func(t *testing.T) journal.Journal { return open(t, filepath.Join(t.TempDir(), "loom.db")) })
}

func open(t testing.TB, path string, opts ...sqlite.Option) *sqlite.Journal {
	t.Helper()
	j, err := sqlite.Open(path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestReopenKeepsData(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "loom.db")
	j := open(t, path)
	if err := j.Create(ctx, &journal.Execution{ID: "r", Workflow: "wf", Version: 2, State: journal.Running, Input: json.RawMessage(`{"a":[1,2]}`), Definition: []byte("name: wf\n")}); err != nil {
		t.Fatal(err)
	}
	l, err := j.Acquire(ctx, "r", journal.Holder{ID: "a", Host: "h", PID: 1}, time.Hour, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Append(ctx, journal.Append{ExecutionID: "r", Token: l.Token, Events: []journal.Event{
		{Path: "s", Kind: journal.StepCompleted, Name: "task:t", Data: json.RawMessage(`{"output":"x"}`)},
	}, Update: &journal.Update{State: ptr(journal.Paused)}}); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	j = open(t, path)
	defer j.Close()
	e, err := j.Get(ctx, "r")
	if err != nil || e.State != journal.Paused || string(e.Input) != `{"a":[1,2]}` || string(e.Definition) != "name: wf\n" || e.Version != 2 {
		t.Fatalf("after reopen: %+v, %v", e, err)
	}
	evs, err := j.Events(ctx, "r", 0)
	if err != nil || len(evs) != 1 || string(evs[0].Data) != `{"output":"x"}` {
		t.Fatalf("after reopen: events %+v, %v", evs, err)
	}
	got, err := j.LeaseOf(ctx, "r")
	if err != nil || got.Token != l.Token || got.Holder != l.Holder || !got.Expires.Equal(l.Expires) {
		t.Fatalf("after reopen: lease %+v, %v; want %+v", got, err, l)
	}
	// The token counter survives too: the old holder's token is fenced.
	l2, err := j.Acquire(ctx, "r", journal.Holder{ID: "b"}, time.Hour, l.Token)
	if err != nil || l2.Token <= l.Token {
		t.Fatalf("takeover after reopen: %+v, %v", l2, err)
	}
	if _, err := j.Append(ctx, journal.Append{ExecutionID: "r", Token: l.Token, ExpectedSeq: 1}); !errors.Is(err, journal.ErrFenced) {
		t.Fatalf("stale token after reopen: %v", err)
	}
}

func TestSchemaVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "loom.db")
	open(t, path).Close()
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int
	if err := db.QueryRow("PRAGMA user_version").Scan(&v); err != nil || v != sqlite.SchemaVersion {
		t.Fatalf("user_version = %d, %v; want %d", v, err, sqlite.SchemaVersion)
	}
	// Opening again migrates nothing and keeps the version.
	open(t, path).Close()
	if err := db.QueryRow("PRAGMA user_version").Scan(&v); err != nil || v != sqlite.SchemaVersion {
		t.Fatalf("user_version after reopen = %d, %v", v, err)
	}

	if _, err := db.Exec(fmt.Sprintf("PRAGMA user_version = %d", sqlite.SchemaVersion+1)); err != nil {
		t.Fatal(err)
	}
	_, err = sqlite.Open(path)
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open of a newer schema: %v, want a refusal naming the newer version", err)
	}
	t.Log(err)
}

func TestOpenRefusesNonFile(t *testing.T) {
	for _, p := range []string{"", ":memory:", "file::memory:?cache=shared"} {
		if j, err := sqlite.Open(p); err == nil {
			j.Close()
			t.Errorf("Open(%q) succeeded", p)
		}
	}
}

func TestClosed(t *testing.T) {
	j := open(t, filepath.Join(t.TempDir(), "loom.db"))
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	ctx := t.Context()
	if err := j.Create(ctx, &journal.Execution{ID: "x"}); !errors.Is(err, journal.ErrClosed) {
		t.Errorf("Create after Close: %v", err)
	}
	if _, err := j.Get(ctx, "x"); !errors.Is(err, journal.ErrClosed) {
		t.Errorf("Get after Close: %v", err)
	}
}

// TestGroupedCommits drives many executions at once and checks that the
// writer shared commits among them.
func TestGroupedCommits(t *testing.T) {
	const execs, steps = 200, 5
	ctx := t.Context()
	j := open(t, filepath.Join(t.TempDir(), "loom.db"))
	defer j.Close()
	leases := setupExecutions(t, j, "g", execs)
	before := j.Stats()
	var wg sync.WaitGroup
	for i := range execs {
		wg.Go(func() {
			var seq int64
			for k := range steps {
				var err error
				seq, err = j.Append(ctx, journal.Append{ExecutionID: fmt.Sprintf("g%d", i), Token: leases[i].Token, ExpectedSeq: seq,
					Events: []journal.Event{{Path: fmt.Sprintf("s%d", k), Kind: journal.StepCompleted, Name: "task:t", Data: json.RawMessage(`{"output":1}`)}}})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	s := j.Stats()
	appends, commits := s.Appends-before.Appends, s.Commits-before.Commits
	t.Logf("%d appends in %d commits (largest batch %d)", appends, commits, s.LargestBatch)
	if appends != execs*steps || s.Events-before.Events != execs*steps {
		t.Fatalf("Stats counted %d appends, %d events; want %d", appends, s.Events-before.Events, execs*steps)
	}
	if commits >= appends {
		t.Fatalf("%d commits for %d concurrent appends: nothing was grouped", commits, appends)
	}
}

// setupExecutions creates n root executions prefix0.. and takes their leases.
func setupExecutions(t testing.TB, j journal.Journal, prefix string, n int) []journal.Lease {
	t.Helper()
	ctx := context.Background()
	leases := make([]journal.Lease, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("%s%d", prefix, i)
			if err := j.Create(ctx, &journal.Execution{ID: id, Workflow: "ten_steps", Version: 1, State: journal.Running, Input: json.RawMessage(`{"n":1}`)}); err != nil {
				errs <- err
				return
			}
			l, err := j.Acquire(ctx, id, journal.Holder{ID: "bench", Host: "localhost", PID: os.Getpid()}, time.Hour, 0)
			if err != nil {
				errs <- err
				return
			}
			leases[i] = l
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return leases
}

func ptr[T any](v T) *T { return &v }

// TestCrashDurability: a child process appends from many goroutines and
// reports every acknowledged append; it is SIGKILLed mid-stream, and every
// acknowledged event must be in the file when it is opened again.
func TestCrashDurability(t *testing.T) {
	if path := os.Getenv("LOOM_JOURNAL_CRASH_CHILD"); path != "" {
		crashChild(path)
		return
	}
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	path := filepath.Join(t.TempDir(), "loom.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashDurability$")
	cmd.Env = append(os.Environ(), "LOOM_JOURNAL_CRASH_CHILD="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]int64{}
	n, killed := 0, false
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		var id string
		var seq int64
		if _, err := fmt.Sscanf(sc.Text(), "ack %s %d", &id, &seq); err != nil {
			continue
		}
		acked[id] = max(acked[id], seq)
		if n++; n == 3000 && !killed {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child ended after %d acks: %v", n, err)
	}
	t.Logf("child killed after %d acknowledged appends (%d counted from the pipe) over %d executions", 3000, n, len(acked))

	j := open(t, path)
	defer j.Close()
	ctx := t.Context()
	for id, seq := range acked {
		evs, err := j.Events(ctx, id, 0)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if int64(len(evs)) < seq {
			t.Fatalf("%s: acknowledged up to seq %d, found %d events", id, seq, len(evs))
		}
		for i, e := range evs {
			if e.Seq != int64(i+1) || string(e.Data) != fmt.Sprintf(`{"output":%d}`, i+1) {
				t.Fatalf("%s: event %d = seq %d %s", id, i, e.Seq, e.Data)
			}
		}
	}
}

func crashChild(path string) {
	j, err := sqlite.Open(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			id := fmt.Sprintf("c%d", i)
			if err := j.Create(ctx, &journal.Execution{ID: id, Workflow: "crash", State: journal.Running}); err != nil {
				return
			}
			l, err := j.Acquire(ctx, id, journal.Holder{ID: "child"}, time.Hour, 0)
			if err != nil {
				return
			}
			for seq := int64(1); ctx.Err() == nil; seq++ {
				if _, err := j.Append(ctx, journal.Append{ExecutionID: id, Token: l.Token, ExpectedSeq: seq - 1,
					Events: []journal.Event{{Path: fmt.Sprintf("s%d", seq), Kind: journal.StepCompleted, Name: "task:t", Data: json.RawMessage(fmt.Sprintf(`{"output":%d}`, seq))}}}); err != nil {
					return
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "ack %s %d\n", id, seq)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	os.Exit(0)
}

// TestTwoHandlesShareFile stands for two processes on one file: leases,
// tokens and sequences are in the file, so each sees the other's commits.
func TestTwoHandlesShareFile(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "loom.db")
	j1, j2 := open(t, path), open(t, path)
	defer j1.Close()
	defer j2.Close()
	if err := j1.Create(ctx, &journal.Execution{ID: "r", Workflow: "wf", State: journal.Running}); err != nil {
		t.Fatal(err)
	}
	a, err := j2.Acquire(ctx, "r", journal.Holder{ID: "p2", Host: "h", PID: 2}, time.Hour, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = j1.Acquire(ctx, "r", journal.Holder{ID: "p1", Host: "h", PID: 1}, time.Hour, 0)
	var busy *journal.BusyError
	if !errors.As(err, &busy) || busy.Lease.Holder.PID != 2 {
		t.Fatalf("Acquire through the other handle: %v", err)
	}
	if _, err := j2.Append(ctx, journal.Append{ExecutionID: "r", Token: a.Token, Events: []journal.Event{{Path: "a", Kind: journal.Builtin, Name: "now"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := j1.Append(ctx, journal.Append{ExecutionID: "r", Token: a.Token, ExpectedSeq: 0, Events: []journal.Event{{Path: "b", Kind: journal.Builtin, Name: "now"}}}); !errors.Is(err, journal.ErrConflict) {
		t.Fatalf("stale append through the other handle: %v", err)
	}
	b, err := j1.Acquire(ctx, "r", journal.Holder{ID: "p1", Host: "h", PID: 1}, time.Hour, a.Token)
	if err != nil || b.Token <= a.Token {
		t.Fatalf("takeover through the other handle: %+v, %v", b, err)
	}
	if _, err := j2.Append(ctx, journal.Append{ExecutionID: "r", Token: a.Token, ExpectedSeq: 1}); !errors.Is(err, journal.ErrFenced) {
		t.Fatalf("fenced handle appended: %v", err)
	}
	if evs, err := j1.Events(ctx, "r", 0); err != nil || len(evs) != 1 {
		t.Fatalf("events seen by the other handle: %+v, %v", evs, err)
	}
}

// TestCachedFencesSeeOtherHandle: a handle that has appended (and so holds
// the execution's fence in its cache) still sees another handle's takeover
// and appends: the cache is dropped when another connection commits.
func TestCachedFencesSeeOtherHandle(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "loom.db")
	j1, j2 := open(t, path), open(t, path)
	defer j1.Close()
	defer j2.Close()
	l1, err := j1.CreateHeld(ctx, &journal.Execution{ID: "r", Workflow: "wf", State: journal.Running}, journal.Holder{ID: "p1", Host: "h", PID: 1}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ev := func(path string) []journal.Event {
		return []journal.Event{{Path: path, Kind: journal.Builtin, Name: "now"}}
	}
	if _, err := j1.Append(ctx, journal.Append{ExecutionID: "r", Token: l1.Token, Events: ev("a")}); err != nil {
		t.Fatal(err)
	}
	l2, err := j2.Acquire(ctx, "r", journal.Holder{ID: "p2", Host: "h", PID: 2}, time.Hour, l1.Token)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j1.Append(ctx, journal.Append{ExecutionID: "r", Token: l1.Token, ExpectedSeq: 1, Events: ev("b")}); !errors.Is(err, journal.ErrFenced) {
		t.Fatalf("append with the token taken over: %v", err)
	}
	if _, err := j2.Append(ctx, journal.Append{ExecutionID: "r", Token: l2.Token, ExpectedSeq: 1, Events: ev("c")}); err != nil {
		t.Fatal(err)
	}
	// j1 takes it back and must see seq 2, written by j2.
	l3, err := j1.Acquire(ctx, "r", journal.Holder{ID: "p1", Host: "h", PID: 1}, time.Hour, l2.Token)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j1.Append(ctx, journal.Append{ExecutionID: "r", Token: l3.Token, ExpectedSeq: 1, Events: ev("d")}); !errors.Is(err, journal.ErrConflict) {
		t.Fatalf("append after a stale seq: %v", err)
	}
	if seq, err := j1.Append(ctx, journal.Append{ExecutionID: "r", Token: l3.Token, ExpectedSeq: 2, Events: ev("d")}); err != nil || seq != 3 {
		t.Fatalf("append after the other handle's: %d, %v", seq, err)
	}
	if e, err := j2.Get(ctx, "r"); err != nil || e.LastSeq != 3 {
		t.Fatalf("record's last seq: %+v, %v", e, err)
	}
}

// TestEventsReadApart: the events one read returns share buffers for their
// data (journal/sqlite reads.go), each capped: appending to one event's data
// leaves the next one's as it was, and events with no data, with data cut
// at started_at and with data stored whole read back as written.
func TestEventsReadApart(t *testing.T) {
	j := open(t, filepath.Join(t.TempDir(), "loom.db"))
	ctx := context.Background()
	l, err := j.CreateHeld(ctx, &journal.Execution{ID: "x", Workflow: "w", State: journal.Running}, journal.Holder{ID: "h"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 30, 4, 0, 0, 123456789, time.UTC)
	want := []journal.Event{
		{Path: "a", Kind: journal.StepCompleted, Name: "task:echo", Data: json.RawMessage(`{"output":1,"started_at":"2026-11-30T03:59:59.5Z"}`), Time: at},
		{Path: "b", Kind: journal.Builtin, Name: "now", Time: at},
		{Path: "c", Kind: journal.StepCompleted, Name: "task:echo", Ordinal: 3, Data: json.RawMessage(`{"output":"x"}`), Time: at},
		{Path: "d", Kind: "custom.kind", Name: "n", Data: json.RawMessage(`[1,2]`), Time: at},
	}
	if _, err := j.Append(ctx, journal.Append{ExecutionID: "x", Token: l.Token, Events: want}); err != nil {
		t.Fatal(err)
	}
	got, err := j.Events(ctx, "x", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d events, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i].Data != nil {
			got[i].Data = append(got[i].Data, "garbage"...)
		}
	}
	for i, ev := range got {
		w := want[i]
		w.Seq = int64(i + 1)
		if w.Data != nil {
			w.Data = append(w.Data, "garbage"...)
		}
		if ev.Seq != w.Seq || ev.Path != w.Path || ev.Kind != w.Kind || ev.Name != w.Name || ev.Ordinal != w.Ordinal ||
			string(ev.Data) != string(w.Data) || (ev.Data == nil) != (w.Data == nil) || !ev.Time.Equal(w.Time) {
			t.Errorf("event %d reads back as %+v (data %s), want %+v (data %s)", i+1, ev, ev.Data, w, w.Data)
		}
	}
}
