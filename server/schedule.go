package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"

	"github.com/loomwork/loom/definition"
	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal"
)

// maxScheduleWait bounds how long the scheduler sleeps between passes, so
// a slot another process decided, or an execution that finished, is seen
// within it even when no slot falls due.
const maxScheduleWait = time.Minute

// maxCatchUpPass bounds the slots one pass starts for one workflow with
// catch_up: all; the next pass, at once, takes the next ones.
const maxCatchUpPass = 100

// maxSlotScan bounds how many slots of a cron expression a pass steps
// through to find the latest due one after a long downtime (a
// minute-by-minute cron over two years).
const maxSlotScan = 1 << 20

// ScheduledBy is the started_by of an execution a schedule started.
const ScheduledBy = "schedule"

// SlotExecutionID is the id of the execution a schedule's slot starts:
// the workflow and the slot's time (tick:2026-11-29T10:00:00Z), so that
// every process names it alike and a person can tell which slot it was.
// A workflow name too long for an id (128 bytes) is cut and keeps a hash
// of the whole.
func SlotExecutionID(workflow string, at time.Time) string {
	if len(workflow) > 100 {
		sum := sha256.Sum256([]byte(workflow))
		workflow = workflow[:90] + "-" + hex.EncodeToString(sum[:4])
	}
	return workflow + ":" + at.UTC().Format(time.RFC3339)
}

// scheduler fires the catalog's schedules (docs/schedules.md). Each slot
// is decided once for every process on the journal by ClaimSlot, which
// journals it together with the execution it starts; the dispatcher then
// claims that execution like any new one.
type scheduler struct {
	s *Server
	// seen is when this process first saw each schedule with no slot
	// journaled: its first slot is the first one after that (less
	// LateGrace), never a backfill from the epoch.
	seen map[string]time.Time
}

// scheduled lists the catalog's workflows that have a schedule.
func (s *Server) scheduled() []*definition.Workflow {
	var out []*definition.Workflow
	for _, name := range s.cfg.Catalog.Names() {
		if wf := s.cfg.Catalog.Workflow(name); wf.Schedule != nil {
			out = append(out, wf)
		}
	}
	return out
}

// runSchedules fires schedules until ctx is done; it returns at once when
// the catalog has none.
func (s *Server) runSchedules(ctx context.Context) {
	wfs := s.scheduled()
	if len(wfs) == 0 {
		return
	}
	sc := &scheduler{s: s, seen: map[string]time.Time{}}
	for {
		at := s.clock.Now()
		next := sc.pass(ctx, wfs)
		wait := maxScheduleWait
		if d := next.Sub(s.clock.Now()); !next.IsZero() && d < wait {
			wait = max(d, 0)
		}
		tc, stop := s.timer(wait)
		if s.testScheduled != nil {
			s.testScheduled(at) // after the timer is set: a test may move the clock now
		}
		select {
		case <-ctx.Done():
			stop()
			return
		case <-tc:
		}
	}
}

// pass decides every due slot it can and returns when the next one falls
// due (or when to look again for a slot held by overlap: queue).
func (sc *scheduler) pass(ctx context.Context, wfs []*definition.Workflow) time.Time {
	s := sc.s
	if s.draining.Load() {
		return time.Time{} // another process fires them
	}
	slots, err := s.j.ScheduleSlots(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.metrics.journalErrs.Inc()
			s.log.Error("reading the schedules' slots failed", "error", err)
		}
		return s.clock.Now().Add(s.cfg.PollInterval)
	}
	last := map[string]journal.ScheduleSlot{}
	for _, sl := range slots {
		last[sl.Workflow] = sl
	}
	var next time.Time
	for _, wf := range wfs {
		if ctx.Err() != nil {
			return next
		}
		n := sc.fire(ctx, wf, last[wf.Name])
		if !n.IsZero() && (next.IsZero() || n.Before(next)) {
			next = n
		}
	}
	return next
}

// fire decides the due slots of one workflow, given its latest journaled
// slot (zero if none), and returns when to look at it again.
func (sc *scheduler) fire(ctx context.Context, wf *definition.Workflow, last journal.ScheduleSlot) time.Time {
	s, sch := sc.s, wf.Schedule
	now := s.clock.Now()
	from := last.At
	if from.IsZero() {
		first, ok := sc.seen[wf.Name]
		if !ok {
			first = now.Add(-definition.LateGrace)
			sc.seen[wf.Name] = first
		}
		from = first
	}
	due, latest := dueSlots(sch, from, now)
	if latest.IsZero() {
		return sch.Next(maxTime(from, now))
	}
	switch sch.CatchUp {
	case definition.CatchUpLatest:
		due = []time.Time{latest}
	case definition.CatchUpNone:
		if now.Sub(latest) > definition.LateGrace {
			// Every due slot is late: journal the latest as missed, so no
			// process looks at them again.
			sc.decide(ctx, wf, latest, last.ExecutionID, journal.SlotMissed)
			return sch.Next(now)
		}
		var onTime []time.Time
		for _, at := range due {
			if now.Sub(at) <= definition.LateGrace {
				onTime = append(onTime, at)
			}
		}
		due = onTime
	}
	prev := last.ExecutionID
	for _, at := range due {
		if sch.Overlap != definition.OverlapAllow && sc.open(ctx, prev) {
			if sch.Overlap == definition.OverlapQueue {
				// Held until prev finishes: look again at the next poll.
				return now.Add(s.cfg.PollInterval)
			}
			if !sc.decide(ctx, wf, at, prev, journal.SlotOverlap) {
				return now.Add(s.cfg.PollInterval) // another process decided it, or the journal failed: read again
			}
			continue
		}
		id, ok := sc.start(ctx, wf, at)
		if !ok {
			return now.Add(s.cfg.PollInterval)
		}
		prev = id
	}
	if len(due) == maxCatchUpPass {
		return now // more to catch up on
	}
	return sch.Next(now)
}

// dueSlots returns the slots of sch in (from, now], oldest first (at most
// maxCatchUpPass of them), and the latest of them (zero if none).
func dueSlots(sch *definition.Schedule, from, now time.Time) (due []time.Time, latest time.Time) {
	for at, i := sch.Next(from), 0; !at.IsZero() && !at.After(now) && i < maxSlotScan; at, i = sch.Next(at), i+1 {
		if len(due) < maxCatchUpPass {
			due = append(due, at)
		}
		latest = at
		if sch.Every > 0 && len(due) == maxCatchUpPass {
			// Multiples of Every: the latest is arithmetic, no need to step.
			latest = sch.Next(now.Add(-sch.Every))
			break
		}
	}
	return due, latest
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// open reports whether the execution a schedule started before is still
// open. One that cannot be read counts as open: a slot skipped or held by
// mistake is better than two executions where the policy allows one.
func (sc *scheduler) open(ctx context.Context, id string) bool {
	if id == "" {
		return false
	}
	rec, err := sc.s.j.Get(ctx, id)
	switch {
	case errors.Is(err, journal.ErrNotFound):
		return false // pruned, so finished long ago
	case err != nil:
		sc.s.log.Error("reading the schedule's previous execution failed", "execution", id, "error", err)
		return true
	}
	return !rec.State.Finished()
}

// decide journals a slot that starts nothing; false if another process
// decided it first or the journal failed.
func (sc *scheduler) decide(ctx context.Context, wf *definition.Workflow, at time.Time, prev string, why journal.SlotSkipped) bool {
	ok, err := sc.s.j.ClaimSlot(ctx, journal.ScheduleSlot{Workflow: wf.Name, At: at, ExecutionID: prev, Skipped: why}, nil)
	if err != nil {
		sc.s.log.Error("journaling a schedule slot failed", "workflow", wf.Name, "slot", at, "error", err)
		return false
	}
	if ok {
		sc.s.log.Info("schedule slot skipped", "workflow", wf.Name, "slot", at.UTC().Format(time.RFC3339), "reason", string(why), "previous", prev)
	}
	return ok
}

// start journals a slot with the execution it starts, and wakes the
// dispatcher to claim it. ok is false if another process decided the slot
// first or the journal failed.
func (sc *scheduler) start(ctx context.Context, wf *definition.Workflow, at time.Time) (id string, ok bool) {
	s := sc.s
	id = SlotExecutionID(wf.Name, at)
	in, err := interpreter.CheckInput(wf, wf.Schedule.Input)
	var rec *journal.Execution
	if err == nil {
		rec, err = s.newRecord(wf, id, in, nil, ScheduledBy)
	}
	if err != nil {
		// The definition checked the input at load; this is a bug, not a
		// slot to retry forever.
		s.log.Error("a schedule's execution cannot be built", "workflow", wf.Name, "error", err)
		sc.decide(ctx, wf, at, "", journal.SlotMissed)
		return "", false
	}
	ok, err = s.j.ClaimSlot(ctx, journal.ScheduleSlot{Workflow: wf.Name, At: at, ExecutionID: id}, rec)
	switch {
	case errors.Is(err, journal.ErrExists):
		s.log.Error("a schedule slot's execution id is taken by another execution: the slot starts nothing", "workflow", wf.Name, "execution", id)
		sc.decide(ctx, wf, at, "", journal.SlotIDTaken)
		return "", false
	case err != nil:
		if ctx.Err() == nil {
			s.metrics.journalErrs.Inc()
			s.log.Error("starting a scheduled execution failed", "workflow", wf.Name, "slot", at, "error", err)
		}
		return "", false
	case !ok:
		return "", false
	}
	s.metrics.started.WithLabelValues(wf.Name).Inc()
	s.log.Info("schedule started an execution", "workflow", wf.Name, "slot", at.UTC().Format(time.RFC3339), "execution", id)
	s.hint()
	return id, true
}
