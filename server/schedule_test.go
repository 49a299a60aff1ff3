package server

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loomwork/loom/builtins"
	"github.com/loomwork/loom/clock"
	"github.com/loomwork/loom/definition"
	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/sqlite"
)

const scheduleCatalog = `name: tick
input:
  type: object
  required: [region]
schedule:
  every: 10m
  overlap: allow
  catch_up: all
  input: {region: eu}
steps:
  - id: note
    task: note
    with: "${ input.region }"
`

// syncLog is a log buffer several goroutines write.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// scheduleRig is one SQLite journal file and a fake clock that several
// servers ("processes", each with its own handle on the file) share.
type scheduleRig struct {
	t     *testing.T
	clock *clock.Fake
	db    string
	cat   *definition.Catalog
	reg   *interpreter.Registry
	log   *syncLog
}

func newScheduleRig(t *testing.T, src string, start time.Time) *scheduleRig {
	reg := interpreter.NewRegistry(builtins.Standard())
	interpreter.Register(reg, "note", func(ctx context.Context, in string) (string, error) { return in, nil })
	cat, err := definition.Parse("flows.yaml", []byte(src), definition.WithTasks(reg))
	if err != nil {
		t.Fatal(err)
	}
	return &scheduleRig{t: t, clock: clock.NewFake(start), db: filepath.Join(t.TempDir(), "loom.db"), cat: cat, reg: reg, log: &syncLog{}}
}

func (r *scheduleRig) open() journal.Journal {
	j, err := sqlite.Open(r.db, sqlite.WithClock(r.clock.Now))
	if err != nil {
		r.t.Fatal(err)
	}
	return j
}

// proc is one running server: its dispatcher and scheduler.
type schedProc struct {
	srv    *Server
	passes chan time.Time
	stop   func()
}

func (r *scheduleRig) start() *schedProc {
	j := r.open()
	srv, err := New(Config{Catalog: r.cat, Tasks: r.reg, Journal: j, Clock: r.clock, Concurrency: 4,
		Logger: slog.New(slog.NewTextHandler(r.log, nil))})
	if err != nil {
		r.t.Fatal(err)
	}
	p := &schedProc{srv: srv, passes: make(chan time.Time, 100)}
	srv.testScheduled = func(at time.Time) { p.passes <- at }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Run(ctx); close(done) }()
	var once sync.Once
	p.stop = func() {
		once.Do(func() {
			cancel()
			<-done
			srv.Close()
			j.Close()
		})
	}
	r.t.Cleanup(p.stop)
	return p
}

// passed waits until p has run a scheduler pass at or after at (and set
// its next wait).
func (p *schedProc) passed(t *testing.T, at time.Time) {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		select {
		case got := <-p.passes:
			if !got.Before(at) {
				return
			}
		case <-timeout:
			t.Fatalf("no scheduler pass at %s", at.Format(time.RFC3339))
		}
	}
}

// advance moves the clock and waits for a pass of every running process.
func (r *scheduleRig) advance(d time.Duration, procs ...*schedProc) {
	r.t.Helper()
	r.clock.Advance(d)
	for _, p := range procs {
		p.passed(r.t, r.clock.Now())
	}
}

var startedRE = regexp.MustCompile(`msg="schedule started an execution" workflow=(\S+) slot=(\S+)`)

// starts lists the slots the log says were started, in order, with
// repeats.
func (r *scheduleRig) starts() []string {
	var out []string
	for _, m := range startedRE.FindAllStringSubmatch(r.log.String(), -1) {
		out = append(out, m[1]+":"+m[2])
	}
	return out
}

func slotIDs(wf string, from time.Time, n int, every time.Duration) []string {
	var out []string
	for i := range n {
		out = append(out, SlotExecutionID(wf, from.Add(time.Duration(i)*every)))
	}
	return out
}

// TestScheduleOnceAcrossProcessesAndRestart: two serve processes on one
// journal fire every slot of a 10-minute schedule exactly once; one stops
// and starts again; both stop for half an hour and catch_up: all starts
// the three missed slots when one comes back.
func TestScheduleOnceAcrossProcessesAndRestart(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 10, 0, 30, 0, time.UTC)
	r := newScheduleRig(t, scheduleCatalog, t0)
	a, b := r.start(), r.start()
	// A schedule seen for the first time fires a slot less than a minute
	// old (10:00), not the ones before it.
	a.passed(t, t0)
	b.passed(t, t0)
	for range 3 { // 10:10, 10:20, 10:30
		r.advance(10*time.Minute, a, b)
	}
	a.stop()
	r.advance(10*time.Minute, b) // 10:40, b alone
	a = r.start()                // a restarts
	a.passed(t, r.clock.Now())
	r.advance(10*time.Minute, a, b) // 10:50
	a.stop()
	b.stop()
	r.clock.Advance(30 * time.Minute) // 11:00, 11:10, 11:20 with nobody running
	c := r.start()
	c.passed(t, r.clock.Now())

	want := slotIDs("tick", t0.Truncate(10*time.Minute), 9, 10*time.Minute)
	got := r.starts()
	if !slices.Equal(got, want) {
		t.Errorf("slots started (in order, with repeats):\n%v\nwant each once:\n%v", got, want)
	}
	j := r.open()
	defer j.Close()
	list, err := j.List(context.Background(), journal.Filter{Workflow: "tick"})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range list {
		ids = append(ids, e.ID)
		if e.StartedBy != ScheduledBy || string(e.Input) != `{"region":"eu"}` {
			t.Errorf("%s: started_by %q, input %s", e.ID, e.StartedBy, e.Input)
		}
	}
	slices.Sort(ids)
	if !slices.Equal(ids, want) {
		t.Errorf("executions: %v, want %v", ids, want)
	}
}

// policyRig runs single scheduler passes (no loop, no dispatcher) against
// a journal, so a test decides which executions are open.
type policyRig struct {
	t     *testing.T
	clock *clock.Fake
	j     journal.Journal
	srv   *Server
	sc    *scheduler
	wfs   []*definition.Workflow
}

func newPolicyRig(t *testing.T, schedule string, start time.Time) *policyRig {
	r := newScheduleRig(t, "name: job\nschedule: "+schedule+"\nsteps:\n  - set: {x: 1}\n", start)
	j := r.open()
	t.Cleanup(func() { j.Close() })
	srv, err := New(Config{Catalog: r.cat, Tasks: r.reg, Journal: j, Clock: r.clock})
	if err != nil {
		t.Fatal(err)
	}
	return &policyRig{t: t, clock: r.clock, j: j, srv: srv, sc: &scheduler{s: srv, seen: map[string]time.Time{}}, wfs: srv.scheduled()}
}

// pass runs one scheduler pass at the clock's time.
func (p *policyRig) pass() { p.sc.pass(context.Background(), p.wfs) }

// ids lists the executions of job, oldest slot first.
func (p *policyRig) ids() []string {
	list, err := p.j.List(context.Background(), journal.Filter{Workflow: "job"})
	if err != nil {
		p.t.Fatal(err)
	}
	var out []string
	for _, e := range list {
		out = append(out, e.ID)
	}
	slices.Sort(out)
	return out
}

// finish completes execution id, as a drive would.
func (p *policyRig) finish(id string) {
	ctx := context.Background()
	l, err := p.j.Acquire(ctx, id, journal.Holder{ID: "test", Host: "h", PID: 1}, time.Minute, 0)
	if err != nil {
		p.t.Fatal(err)
	}
	done := journal.Completed
	if _, err := p.j.Append(ctx, journal.Append{ExecutionID: id, Token: l.Token, Update: &journal.Update{State: &done}, Release: true}); err != nil {
		p.t.Fatal(err)
	}
}

func (p *policyRig) lastSlot() journal.ScheduleSlot {
	slots, err := p.j.ScheduleSlots(context.Background())
	if err != nil || len(slots) != 1 {
		p.t.Fatalf("ScheduleSlots = %v, %v", slots, err)
	}
	return slots[0]
}

func slotJSON(s journal.ScheduleSlot) string {
	b, _ := json.Marshal(map[string]string{"at": s.At.Format("15:04"), "execution": s.ExecutionID, "skipped": string(s.Skipped)})
	return string(b)
}

func TestScheduleOverlapAndCatchUp(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 9, 59, 0, 0, time.UTC) // the first slot is 10:00
	id := func(hhmm string) string { return "job:2026-11-29T" + hhmm + ":00Z" }
	for _, tc := range []struct {
		name, schedule string
		// steps: "+D" advances the clock by D and runs a pass; "finish
		// ID" completes an execution.
		steps    []string
		wantIDs  []string
		wantLast string
	}{
		{"skip journals the slots the open execution overlaps", `{every: 10m}`,
			[]string{"+1m", "+10m", "+10m", "finish " + id("10:00"), "+10m"},
			[]string{id("10:00"), id("10:30")},
			`{"at":"10:30","execution":"job:2026-11-29T10:30:00Z","skipped":""}`},
		{"queue holds the latest slot until the open one finishes", `{every: 10m, overlap: queue}`,
			[]string{"+1m", "+10m", "+10m", "finish " + id("10:00"), "+1m"},
			[]string{id("10:00"), id("10:20")},
			`{"at":"10:20","execution":"job:2026-11-29T10:20:00Z","skipped":""}`},
		{"queue with catch_up all starts each held slot in turn", `{every: 10m, overlap: queue, catch_up: all}`,
			[]string{"+1m", "+10m", "+10m", "finish " + id("10:00"), "+1m", "finish " + id("10:10"), "+1m"},
			[]string{id("10:00"), id("10:10"), id("10:20")},
			`{"at":"10:20","execution":"job:2026-11-29T10:20:00Z","skipped":""}`},
		{"allow starts every slot", `{every: 10m, overlap: allow}`,
			[]string{"+1m", "+10m", "+10m"},
			[]string{id("10:00"), id("10:10"), id("10:20")},
			`{"at":"10:20","execution":"job:2026-11-29T10:20:00Z","skipped":""}`},
		{"after downtime, latest starts only the latest missed slot", `{cron: "*/10 * * * *", overlap: allow}`,
			[]string{"+1m", "+35m"},
			[]string{id("10:00"), id("10:30")},
			`{"at":"10:30","execution":"job:2026-11-29T10:30:00Z","skipped":""}`},
		{"after downtime, all starts every missed slot in order", `{cron: "*/10 * * * *", overlap: allow, catch_up: all}`,
			[]string{"+1m", "+35m"},
			[]string{id("10:00"), id("10:10"), id("10:20"), id("10:30")},
			`{"at":"10:30","execution":"job:2026-11-29T10:30:00Z","skipped":""}`},
		{"after downtime, none journals them missed and waits for the next", `{every: 10m, overlap: allow, catch_up: none}`,
			[]string{"+1m", "+35m", "+5m"},
			[]string{id("10:00"), id("10:40")},
			`{"at":"10:40","execution":"job:2026-11-29T10:40:00Z","skipped":""}`},
		{"none still starts a slot less than a minute late", `{every: 10m, catch_up: none}`,
			[]string{"+1m", "finish " + id("10:00"), "+10m30s"},
			[]string{id("10:00"), id("10:10")},
			`{"at":"10:10","execution":"job:2026-11-29T10:10:00Z","skipped":""}`},
		{"skip with catch_up all: the first missed slot starts, the rest are skipped", `{every: 10m, catch_up: all}`,
			[]string{"+1m", "finish " + id("10:00"), "+25m"},
			[]string{id("10:00"), id("10:10")},
			`{"at":"10:20","execution":"job:2026-11-29T10:10:00Z","skipped":"overlap"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPolicyRig(t, tc.schedule, t0)
			p.pass() // first sight
			for _, st := range tc.steps {
				if rest, ok := strings.CutPrefix(st, "finish "); ok {
					p.finish(rest)
					continue
				}
				d, err := time.ParseDuration(st[1:])
				if err != nil {
					t.Fatal(err)
				}
				p.clock.Advance(d)
				p.pass()
			}
			if got := p.ids(); !slices.Equal(got, tc.wantIDs) {
				t.Errorf("executions %v, want %v", got, tc.wantIDs)
			}
			if got := slotJSON(p.lastSlot()); got != tc.wantLast {
				t.Errorf("last slot %s, want %s", got, tc.wantLast)
			}
		})
	}
}
