package interpreter_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loomwork/loom/clock"
	"github.com/loomwork/loom/definition"
	"github.com/loomwork/loom/internal/pgtest"
	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/memory"
	"github.com/loomwork/loom/journal/postgres"
	"github.com/loomwork/loom/journal/sqlite"
)

// world is one engine over an in-memory journal with test tasks that count
// their calls.
type world struct {
	t     *testing.T
	cat   *definition.Catalog
	reg   *interpreter.Registry
	j     journal.Journal
	eng   *interpreter.Engine
	mu    sync.Mutex
	calls map[string]int
	flaky atomic.Int64 // failures left for the "flaky" task
	gate  chan struct{}
	// started receives the name of each blocking task as it starts.
	started chan string
	log     []string
	clk     *clock.Fake // set by newFakeWorld
}

// t0 is when a fake world's clock starts.
var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

// newFakeWorld is newWorld with one fake clock for the engine and the
// journal: timers, deadlines and leases move only when the test says.
func newFakeWorld(t *testing.T, src string, opts ...interpreter.Option) *world {
	clk := clock.NewFake(t0)
	w := newWorldOn(t, src, testJournal(t, clk.Now), append([]interpreter.Option{interpreter.WithClock(clk)}, opts...)...)
	w.clk = clk
	return w
}

// ticking advances the fake clock by step whenever at least n timers are
// pending (the engine's lease renewer is one), until the returned stop is
// called: the timers a drive waits on fire without the test sleeping.
func (w *world) ticking(n int, step time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for w.clk.Waiters(ctx, n) == nil {
			w.clk.Advance(step)
		}
	}()
	return func() { cancel(); <-done }
}

func newWorld(t *testing.T, src string, opts ...interpreter.Option) *world {
	t.Helper()
	return newWorldOn(t, src, testJournal(t, nil), opts...)
}

// backendEnv names the journal backend the engine's tests run on: memory
// (the default), sqlite or postgres. TestEngineOnEveryBackend runs this
// package's tests again with it set to each of the others.
const backendEnv = "LOOM_TEST_JOURNAL"

// testJournal is a fresh, empty journal of the backend under test, on the
// clock now (nil: the system's), closed when t ends.
func testJournal(t *testing.T, now func() time.Time) journal.Journal {
	t.Helper()
	var j journal.Journal
	var err error
	switch b := os.Getenv(backendEnv); b {
	case "", "memory":
		var opts []memory.Option
		if now != nil {
			opts = append(opts, memory.WithClock(now))
		}
		return memory.New(opts...)
	case "sqlite":
		var opts []sqlite.Option
		if now != nil {
			opts = append(opts, sqlite.WithClock(now))
		}
		j, err = sqlite.Open(filepath.Join(t.TempDir(), "journal.db"), opts...)
	case "postgres":
		schema, _ := pgtest.Schema(t, "interp")
		opts := []postgres.Option{postgres.WithSchema(schema), postgres.WithMaxConns(4)}
		if now != nil {
			opts = append(opts, postgres.WithClock(now))
		}
		j, err = postgres.Open(context.Background(), pgtest.DSN(t), opts...)
	default:
		t.Fatalf("%s=%s: not a journal backend (memory, sqlite, postgres)", backendEnv, b)
	}
	if err != nil {
		t.Fatalf("open the %s journal: %v", os.Getenv(backendEnv), err)
	}
	t.Cleanup(func() {
		if err := j.Close(); err != nil {
			t.Errorf("close the journal: %v", err)
		}
	})
	return j
}

// leasesOnTheFakeClock skips t on PostgreSQL, which sets and judges lease
// expiry by the database server's clock (see postgres.WithClock): a test
// that expires a lease by advancing a fake clock cannot run there.
func leasesOnTheFakeClock(t *testing.T) {
	if leasesOnTheServersClock() {
		t.Skip("PostgreSQL judges lease expiry by the server's clock, not the fake one")
	}
}

// leasesOnTheServersClock reports whether the backend under test judges
// lease expiry by its own clock (PostgreSQL).
func leasesOnTheServersClock() bool { return os.Getenv(backendEnv) == "postgres" }

// TestEngineOnEveryBackend runs this package's tests (the engine's own,
// beyond the conformance suite of journal/journaltest) on SQLite, and on
// PostgreSQL when $LOOM_POSTGRES_DSN names a server; the plain run is the
// memory backend's.
func TestEngineOnEveryBackend(t *testing.T) {
	if os.Getenv(backendEnv) != "" {
		t.Skip("this run is already one backend's")
	}
	if testing.Short() {
		t.Skip("-short: the memory backend's run only")
	}
	for _, b := range []string{"sqlite", "postgres"} {
		t.Run(b, func(t *testing.T) {
			t.Parallel()
			if b == "postgres" {
				pgtest.DSN(t)
			}
			args := []string{"-test.run=^Test", "-test.skip=^TestEngineOnEveryBackend$", "-test.count=1"}
			if deadline, ok := t.Deadline(); ok {
				args = append(args, "-test.timeout="+time.Until(deadline).Round(time.Second).String())
			}
			cmd := exec.Command(os.Args[0], args...)
			cmd.Env = append(os.Environ(), backendEnv+"="+b)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("the engine's tests fail on %s: %v\n%s", b, err, out)
			}
		})
	}
}

func newWorldOn(t *testing.T, src string, j journal.Journal, opts ...interpreter.Option) *world {
	t.Helper()
	w := &world{t: t, calls: map[string]int{}, j: j, gate: make(chan struct{}), started: make(chan string, 64)}
	w.reg = interpreter.NewRegistry()
	count := func(name string) {
		w.mu.Lock()
		w.calls[name]++
		w.mu.Unlock()
	}
	interpreter.Register(w.reg, "echo", func(ctx context.Context, in any) (any, error) {
		count("echo")
		return in, nil
	})
	interpreter.Register(w.reg, "add", func(ctx context.Context, in struct{ A, B int }) (int, error) {
		count("add")
		return in.A + in.B, nil
	})
	interpreter.Register(w.reg, "fail", func(ctx context.Context, in struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	}) (any, error) {
		count("fail")
		return nil, interpreter.Errorf(in.Type, "%s", in.Message)
	})
	interpreter.Register(w.reg, "flaky", func(ctx context.Context, in any) (string, error) {
		count("flaky")
		if w.flaky.Add(-1) >= 0 {
			return "", interpreter.Errorf("Flaky", "not yet")
		}
		return "ok", nil
	})
	interpreter.Register(w.reg, "slow", func(ctx context.Context, in struct{ MS int }) (string, error) {
		count("slow")
		select {
		case w.started <- "slow":
		default:
		}
		// Slow until cancelled, or until the test opens the gate.
		select {
		case <-w.gate:
			return "slept", nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	})
	interpreter.Register(w.reg, "record", func(ctx context.Context, in string) (string, error) {
		count("record")
		w.mu.Lock()
		w.log = append(w.log, in)
		w.mu.Unlock()
		return in, nil
	})
	interpreter.Register(w.reg, "boom", func(ctx context.Context, in any) (any, error) {
		panic("kaboom")
	})
	interpreter.Register(w.reg, "key", func(ctx context.Context, in any) (string, error) {
		count("key")
		return interpreter.IdempotencyKey(ctx), nil
	})
	w.cat = mustParse(t, src)
	w.eng = interpreter.New(w.cat, w.reg, w.j, opts...)
	return w
}

func mustParse(t *testing.T, src string) *definition.Catalog {
	t.Helper()
	cat, err := definition.Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("definition does not load:\n%v", err)
	}
	return cat
}

func (w *world) count(name string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.calls[name]
}

func (w *world) run(name string, input any) *interpreter.Execution {
	w.t.Helper()
	ex, err := w.eng.Run(context.Background(), name, input)
	if err != nil {
		w.t.Fatalf("Run(%s): %v", name, err)
	}
	return ex
}

func (w *world) resume(id string, payload any) *interpreter.Execution {
	w.t.Helper()
	ex, err := w.eng.Resume(context.Background(), id, payload)
	if err != nil {
		w.t.Fatalf("Resume(%s): %v", id, err)
	}
	return ex
}

// replayEngine is an engine on the same journal whose clock, random source
// and every task fail the test when called: a replay must touch nothing.
func (w *world) replayEngine() *interpreter.Engine {
	reg := interpreter.NewRegistry()
	for _, n := range w.reg.TaskNames() {
		name := n
		reg.Add(name, func(ctx context.Context, in json.RawMessage) (any, error) {
			w.t.Errorf("task %s called during replay", name)
			return nil, errors.New("called during replay")
		})
	}
	return interpreter.New(w.cat, reg, w.j, interpreter.WithClock(failClock{w.t}), interpreter.WithRandom(failRandom{w.t}))
}

type failClock struct{ t *testing.T }

func (c failClock) Now() time.Time {
	c.t.Error("clock read during replay")
	return time.Time{}
}

func (c failClock) NewTimer(time.Duration) clock.Timer {
	c.t.Error("timer set during replay")
	return clock.NewFake(time.Time{}).NewTimer(0)
}

type failRandom struct{ t *testing.T }

func (r failRandom) Uint64() uint64 {
	r.t.Error("random source read during replay")
	return 0
}

func js(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("<%v>", err)
	}
	return string(b)
}

func wantState(t *testing.T, ex *interpreter.Execution, st journal.State) {
	t.Helper()
	if ex.State != st {
		t.Fatalf("state = %s, want %s (error: %v, output: %s)", ex.State, st, ex.Error, js(ex.Output))
	}
}

func wantOutput(t *testing.T, ex *interpreter.Execution, want string) {
	t.Helper()
	wantState(t, ex, journal.Completed)
	if got := js(ex.Output); got != want {
		t.Fatalf("output = %s, want %s", got, want)
	}
}

func wantError(t *testing.T, ex *interpreter.Execution, typ, step, msgPart string) {
	t.Helper()
	wantState(t, ex, journal.Failed)
	if ex.Error == nil || ex.Error.Type != typ || ex.Error.Step != step || !strings.Contains(ex.Error.Message, msgPart) {
		t.Fatalf("error = %+v, want type %s at %q containing %q", ex.Error, typ, step, msgPart)
	}
}

// wantReplay replays ex with no world access and checks it matches.
func (w *world) wantReplay(id string) {
	w.t.Helper()
	res, err := w.replayEngine().Replay(context.Background(), id)
	if err != nil {
		w.t.Fatalf("Replay: %v", err)
	}
	if !res.Match {
		w.t.Fatalf("replay does not match: %v", res.Diff)
	}
}
