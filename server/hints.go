package server

import (
	"context"
	"errors"

	"github.com/loomwork/loom/journal"
)

// hint makes work claimable now: this process's dispatcher looks at once,
// and on a journal with journal.Hints (PostgreSQL's NOTIFY) so do the
// other processes with a free slot. Hints are coalesced: a burst of starts
// sends one or two.
func (s *Server) hint() {
	s.wake()
	if s.hints != nil {
		select {
		case s.hintOut <- struct{}{}:
		default:
		}
	}
}

// sendHints sends the hints hint asked for until ctx is done. A hint that
// fails is lost: the other processes find the work at their next poll.
func (s *Server) sendHints(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.hintOut:
			if err := s.hints.Hint(ctx); err != nil && ctx.Err() == nil {
				s.log.Debug("hint not sent; the other processes find the work at their next poll", "error", err)
			}
		}
	}
}

// listenHints wakes the dispatcher for the other processes' hints while
// it has a free slot and is not draining, until ctx is done. Its own
// connection is opened again after it fails (the database restarted, say),
// with the same growing wait as failed claims; meanwhile, and behind a
// pooler that cannot LISTEN, the polls alone find the work.
func (s *Server) listenHints(ctx context.Context) {
	failures := 0
	for {
		ch, err := s.hints.ListenHints(ctx)
		if err == nil {
			failures = 0
			if s.testListening != nil {
				s.testListening()
			}
			for range ch {
				if !s.draining.Load() && len(s.slots) < cap(s.slots) {
					s.wake()
				}
			}
		}
		if ctx.Err() != nil {
			return
		}
		failures++
		wait := jitter(retryWait(s.cfg.PollInterval, failures))
		if err == nil {
			err = errListenLost
		}
		s.log.Warn("not listening for other processes' hints; the polls still find the work", "error", err, "retry_in", wait.Round(1e6).String())
		tc, stop := s.timer(wait)
		select {
		case <-ctx.Done():
			stop()
			return
		case <-tc:
		}
	}
}

// errListenLost: the LISTEN connection ended.
var errListenLost = errors.New("the LISTEN connection was lost")

// hintsOf is the journal's Hints, or nil.
func hintsOf(j journal.Journal) journal.Hints {
	if h, ok := journal.HintsOf(j); ok {
		return h
	}
	return nil
}
