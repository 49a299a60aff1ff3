package interpreter

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/loomwork/loom/journal"
)

// withLease takes the lease of a root execution (taking over at once a lease
// whose holder is a dead process on this host), keeps it renewed while fn
// runs, and releases it after.
func (e *Engine) withLease(ctx context.Context, rootID string, fn func(ctx context.Context, d *drive) (*Execution, error)) (*Execution, error) {
	l, err := e.j.Acquire(ctx, rootID, e.holder, e.leaseTTL, 0)
	var busy *journal.BusyError
	if errors.As(err, &busy) && holderDead(e.holder, busy.Lease.Holder) {
		l, err = e.j.Acquire(ctx, rootID, e.holder, e.leaseTTL, busy.Lease.Token)
	}
	if err != nil {
		return nil, err
	}
	return e.withHeldLease(ctx, l, fn)
}

// withHeldLease runs fn under a lease already taken, kept renewed by the
// engine's renewer while fn runs.
func (e *Engine) withHeldLease(ctx context.Context, l journal.Lease, fn func(ctx context.Context, d *drive) (*Execution, error)) (*Execution, error) {
	var token atomic.Int64
	token.Store(l.Token)
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	h := &heldLease{l: l, cancel: cancel}
	e.renew.add(e, h)
	var once sync.Once
	stopRenew := func() { once.Do(func() { e.renew.remove(h) }) }
	d := &drive{eng: e, live: true, token: token.Load, stopRenew: stopRenew}
	ex, err := fn(dctx, d)
	stopRenew()
	if !d.released {
		if rerr := e.j.Release(context.Background(), h.l); rerr != nil && err == nil && !h.lost && !errors.Is(rerr, journal.ErrFenced) {
			err = rerr
		}
	}
	if h.lost {
		// Whatever the cancelled drive met last (a cancelled read, say),
		// the cause is the lost lease.
		ex, err = nil, journal.ErrFenced
	}
	return ex, err
}

// renewer keeps the leases of an engine's live drives: one goroutine, while
// any is held, renews them all every third of the lease's ttl, and exits
// when none is. A drive (an execution waiting in a task, say) holds no
// goroutine or timer of its own for its lease.
type renewer struct {
	mu   sync.Mutex
	held map[*heldLease]struct{}
	// idle is closed when held becomes empty, and done when the loop it
	// belongs to has stopped its timer and returned.
	idle, done chan struct{}
}

// heldLease is one drive's lease while the renewer keeps it.
type heldLease struct {
	mu      sync.Mutex // held while a renewal of it is written
	l       journal.Lease
	stopped bool // no more renewals: the drive is over or lost the lease
	lost    bool // a renewal was fenced: another runner took the lease
	cancel  context.CancelFunc
}

func (r *renewer) add(e *Engine, h *heldLease) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.held == nil {
		r.held = map[*heldLease]struct{}{}
	}
	r.held[h] = struct{}{}
	if len(r.held) == 1 {
		r.idle, r.done = make(chan struct{}), make(chan struct{})
		go r.loop(e, r.idle, r.done)
	}
}

// remove stops renewing h. When it returns no renewal of h is being
// written and, if h was the last lease, the loop has stopped its timer.
func (r *renewer) remove(h *heldLease) {
	r.mu.Lock()
	delete(r.held, h)
	var done chan struct{}
	if len(r.held) == 0 && r.idle != nil {
		close(r.idle)
		done, r.idle, r.done = r.done, nil, nil
	}
	r.mu.Unlock()
	h.mu.Lock()
	h.stopped = true
	h.mu.Unlock()
	if done != nil {
		<-done
	}
}

func (r *renewer) loop(e *Engine, idle, done chan struct{}) {
	defer close(done)
	for {
		select {
		case <-idle: // the last lease went while renewals were written
			return
		default:
		}
		t := e.clock.NewTimer(e.leaseTTL / 3)
		select {
		case <-idle:
			t.Stop()
			return
		case <-t.C():
		}
		r.mu.Lock()
		hs := make([]*heldLease, 0, len(r.held))
		for h := range r.held {
			hs = append(hs, h)
		}
		r.mu.Unlock()
		// Concurrent renewals share the journal's commits; the next
		// timer is set only once they are written.
		var wg sync.WaitGroup
		for _, h := range hs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				h.renew(e)
			}()
		}
		wg.Wait()
	}
}

// renew extends h's lease; a fenced renewal (another runner took it)
// cancels the drive, another error is retried at the next turn.
func (h *heldLease) renew(e *Engine) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return
	}
	nl, err := e.j.Renew(context.Background(), h.l, e.leaseTTL)
	switch {
	case err == nil:
		h.l = nl
	case errors.Is(err, journal.ErrFenced):
		h.lost, h.stopped = true, true
		h.cancel()
	}
}
