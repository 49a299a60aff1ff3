package server

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/loomwork/loom/definition"
	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal"
)

// maxClaim bounds one claim query (SPEC §6): a process never takes more
// than its free slots, and never more than 32 at once.
const maxClaim = 32

// missingTaskRetry is how long a process leaves alone an execution whose
// pinned definition names a task it does not register.
const missingTaskRetry = 60 * time.Second

// cancelCheck is how often a process re-reads the roots it drives for a
// cancel request made through another process.
const cancelCheck = 500 * time.Millisecond

// Run is the dispatcher: until ctx is done (or Drain), it claims what is
// claimable (SPEC §6 order) while it has free slots, and drives each claim
// on its own goroutine. It polls every PollInterval ±20 %, sooner when a
// start, resume, cancel or freed slot pokes it, or when the journal says a
// timer falls due. Beside it run the catalog's schedules (schedule.go),
// the retention (retention.go), the reads of the gauges (metrics.go)
// and the heartbeats (workers.go).
// It returns when ctx is done.
func (s *Server) Run(ctx context.Context) error {
	go s.watchCancels(ctx)
	go s.runSchedules(ctx)
	go s.runRetention(ctx)
	go s.runGauges(ctx)
	if s.hints != nil {
		go s.sendHints(ctx)
		go s.listenHints(ctx)
	}
	beats := make(chan struct{})
	go func() {
		s.runHeartbeats(ctx)
		close(beats)
	}()
	failures := 0
	for {
		pass := s.passes.Add(1)
		next, err := s.pass(ctx)
		wait := jitter(s.cfg.PollInterval)
		if err != nil {
			failures++
			wait = jitter(retryWait(s.cfg.PollInterval, failures))
			s.claimErr.Store(&claimFailure{err: err, failures: failures, retry: wait.Round(time.Millisecond)})
		} else {
			failures = 0
			s.claimErr.Store(nil)
		}
		if s.testPolled != nil {
			s.testPolled(pass)
		}
		if !next.IsZero() {
			if d := next.Sub(s.clock.Now()); d < wait {
				wait = max(d, 0)
			}
		}
		tc, stop := s.timer(wait)
		select {
		case <-ctx.Done():
			stop()
			<-beats // its row is deleted before the journal may close
			return nil
		case <-s.poke:
		case <-tc:
		}
		stop()
	}
}

// claimFailure is a dispatcher pass whose claim failed (the journal is
// unavailable, say), for /readyz.
type claimFailure struct {
	err      error
	failures int           // in a row
	retry    time.Duration // until the next try
}

// maxRetryWait caps retryWait.
const maxRetryWait = 30 * time.Second

// retryWait is how long the dispatcher waits after its claims failed
// failures times in a row: the poll interval, doubled for each failure
// after the first, up to maxRetryWait. An outage is retried without
// hammering a journal that is struggling, and the first retry is as soon
// as a normal poll.
func retryWait(poll time.Duration, failures int) time.Duration {
	w := poll
	for i := 1; i < failures && w < maxRetryWait; i++ {
		w *= 2
	}
	return min(w, max(maxRetryWait, poll))
}

// jitter spreads d by ±20 %, so processes started together do not poll in
// step.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// pass claims as much as the free slots allow, and returns when the next
// known timer falls due (zero if none), or why a claim failed.
func (s *Server) pass(ctx context.Context) (time.Time, error) {
	var next time.Time
	for !s.draining.Load() && ctx.Err() == nil {
		free := cap(s.slots) - len(s.slots)
		if free <= 0 {
			return next, nil
		}
		n := min(free, maxClaim)
		// Gone: a holder of this node that no longer exists is taken over
		// at once (the same test the CLI's engine makes).
		res, err := s.j.Claim(ctx, journal.ClaimRequest{Holder: s.holder, TTL: s.cfg.LeaseTTL, Limit: n, Exclude: s.excluded(),
			Gone: interpreter.HolderGone})
		if err != nil {
			if ctx.Err() == nil {
				s.metrics.journalErrs.Inc()
				s.log.Error("claim failed", "error", err)
				return next, err
			}
			return next, nil
		}
		next = res.NextWake
		for _, c := range res.Claims {
			s.metrics.claims.WithLabelValues(string(c.Reason)).Inc()
			if c.Stalled >= journal.CrashLoopTakeovers {
				s.CountCrashLoop()
				s.log.Warn("execution is crash-looping: taken over again with no new journal event; after this drive it waits before the next takeover",
					"execution_id", c.Lease.RootID, "takeovers_without_progress", c.Stalled,
					"backoff", journal.CrashLoopBackoff(c.Stalled).String())
			}
			select {
			case s.slots <- struct{}{}:
				s.startDrive(c)
			default:
				// A start over HTTP took the slot meanwhile: leave the
				// execution for the next pass (or another process).
				_ = s.j.Release(context.WithoutCancel(ctx), c.Lease)
			}
		}
		if len(res.Claims) < n {
			return next, nil
		}
	}
	return next, nil
}

// excluded lists the roots this process must not claim now, forgetting
// those whose time has come.
func (s *Server) excluded() []string {
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for id, until := range s.exclude {
		if now.Before(until) {
			out = append(out, id)
		} else {
			delete(s.exclude, id)
			delete(s.missFrom, id)
		}
	}
	return out
}

// startDrive drives a claimed (or just started) root on its own goroutine;
// the slot is taken already and is given back when the drive ends.
func (s *Server) startDrive(c journal.Claim) {
	ctx, cancel := context.WithCancel(s.workCtx)
	d := &driveState{root: c.Lease.RootID, cancel: cancel}
	// A drive that carries a cancel out is not stopped by it.
	d.cancelling.Store(c.Reason == journal.ClaimCancel)
	s.mu.Lock()
	s.drives[d] = struct{}{}
	s.mu.Unlock()
	s.driveGroup.Add(1)
	go func() {
		defer func() {
			cancel()
			s.mu.Lock()
			delete(s.drives, d)
			s.mu.Unlock()
			<-s.slots
			s.driveGroup.Done()
			s.wake()
		}()
		s.driveClaim(ctx, d, c)
	}()
}

// driveClaim drives one claimed root: its cancel if one was requested,
// else whatever is due. The drive runs under the claim's lease
// (interpreter.WithLease: a live lease is refused to everyone, its holder
// included), renews it and releases it, even when it returns without
// driving (a finished execution); the claim's lease is released here only
// when the engine is never called. (Releasing it again cost every drive
// one more commit to wait for before its slot was free.)
func (s *Server) driveClaim(ctx context.Context, d *driveState, c journal.Claim) {
	id := c.Lease.RootID
	log := s.log.With("execution_id", id, "reason", string(c.Reason))
	released := func() {}
	engineReleases := false
	defer func() {
		if !engineReleases {
			if err := s.j.Release(context.WithoutCancel(ctx), c.Lease); err != nil && !errors.Is(err, journal.ErrFenced) {
				log.Error("cannot release the claim's lease", "error", err)
			}
		}
		released()
	}()
	rec, err := s.j.Get(ctx, id)
	if err != nil {
		log.Error("cannot read a claimed execution", "error", err)
		return
	}
	log = log.With("workflow", rec.Workflow)
	if c.Reason == journal.ClaimTimer && !rec.WakeAt.IsZero() {
		s.metrics.timerLag.Observe(max(s.clock.Now().Sub(rec.WakeAt), 0).Seconds())
	}
	if miss := s.missingTasks(rec); miss != "" {
		s.mu.Lock()
		s.exclude[id] = s.clock.Now().Add(missingTaskRetry)
		s.missFrom[id] = "its definition uses " + miss + ", which process " + s.holder.Host + " (pid " + strconv.Itoa(s.holder.PID) + ") does not register"
		s.mu.Unlock()
		log.Warn("left a claimed execution alone: this process lacks a task it uses", "tasks", miss)
		released = s.hint // once released, a process that has the task may take it
		return
	}
	ctx, endSpan := s.tracing.driveSpan(ctx, rec, rec)
	defer func() { endSpan(err) }()
	engineReleases = true
	if rec.CancelRequested {
		d.cancelling.Store(true)
		_, err = s.drive.Cancel(ctx, id, interpreter.WithLease(c.Lease))
		if errors.Is(err, interpreter.ErrFinished) {
			err = nil
		}
	} else {
		_, err = s.drive.Resume(ctx, id, nil, interpreter.OnlyDue(), interpreter.WithLease(c.Lease))
	}
	switch {
	case d.cancelled.Load():
		log.Info("drive stopped for a cancel request")
	case errors.Is(err, journal.ErrFenced):
		s.metrics.leasesLost.Inc()
		log.Warn("lease lost: another process took the execution over", "error", err)
	case err != nil && ctx.Err() == nil:
		log.Error("drive failed", "error", err)
	}
	s.countFinished(ctx, rec)
}

// missingTasks names the tasks rec's pinned definition uses that this
// process does not register ("" when it has them all). The answer is kept
// per definition hash.
func (s *Server) missingTasks(rec *journal.Execution) string {
	s.mu.Lock()
	miss, ok := s.missing[rec.DefinitionHash]
	s.mu.Unlock()
	if ok {
		return miss
	}
	if _, err := definition.Parse("pinned", rec.Definition, definition.WithTasks(s.cfg.Tasks)); err != nil {
		var list definition.ErrorList
		if errors.As(err, &list) {
			var names []string
			for _, e := range list {
				if strings.Contains(e.Error(), "task") {
					names = append(names, e.Error())
				}
			}
			miss = strings.Join(names, "; ")
		}
	}
	s.mu.Lock()
	s.missing[rec.DefinitionHash] = miss
	s.mu.Unlock()
	return miss
}

// watchCancels re-reads the roots this process drives and stops the drives
// of those with a cancel request made elsewhere; the dispatcher then claims
// them first and runs the cancel.
func (s *Server) watchCancels(ctx context.Context) {
	for {
		tc, stop := s.timer(cancelCheck)
		select {
		case <-ctx.Done():
			stop()
			return
		case <-tc:
		}
		s.mu.Lock()
		roots := map[string]bool{}
		for d := range s.drives {
			roots[d.root] = true
		}
		s.mu.Unlock()
		for root := range roots {
			rec, err := s.j.Get(ctx, root)
			if err != nil {
				continue
			}
			s.j.ok()
			if rec.CancelRequested {
				s.stopDrives(root)
			}
		}
	}
}

// stopDrives cancels this process's drives of root, for a cancel request:
// in-flight tasks' contexts are cancelled, the engine writes nothing for
// them and releases the lease, and the next claim carries the cancel out.
func (s *Server) stopDrives(root string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for d := range s.drives {
		if d.root == root && !d.cancelling.Load() && !d.cancelled.Swap(true) {
			d.cancel()
		}
	}
}

// countFinished counts an execution a drive took to a final state.
func (s *Server) countFinished(ctx context.Context, before *journal.Execution) {
	if before.State.Finished() {
		return
	}
	after, err := s.j.Get(context.WithoutCancel(ctx), before.ID)
	if err == nil && after.State.Finished() {
		s.metrics.finished.WithLabelValues(after.Workflow, string(after.State)).Inc()
	}
}
