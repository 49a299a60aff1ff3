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

// withHeldLease runs fn under a lease already taken.
func (e *Engine) withHeldLease(ctx context.Context, l journal.Lease, fn func(ctx context.Context, d *drive) (*Execution, error)) (*Execution, error) {
	var token atomic.Int64
	token.Store(l.Token)
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var lost atomic.Bool
	stop := make(chan struct{})
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		for {
			t := e.clock.NewTimer(e.leaseTTL / 3)
			select {
			case <-stop:
				t.Stop()
				return
			case <-t.C():
				nl, err := e.j.Renew(context.Background(), l, e.leaseTTL)
				if err != nil {
					if errors.Is(err, journal.ErrFenced) {
						lost.Store(true)
						cancel()
						return
					}
					continue
				}
				l = nl
			}
		}
	}()
	var once sync.Once
	stopRenew := func() {
		once.Do(func() {
			close(stop)
			<-renewed
		})
	}
	d := &drive{eng: e, live: true, token: token.Load, stopRenew: stopRenew}
	ex, err := fn(dctx, d)
	stopRenew()
	if !d.released {
		if rerr := e.j.Release(context.Background(), l); rerr != nil && err == nil && !lost.Load() && !errors.Is(rerr, journal.ErrFenced) {
			err = rerr
		}
	}
	if lost.Load() {
		// Whatever the cancelled drive met last (a cancelled read, say),
		// the cause is the lost lease.
		ex, err = nil, journal.ErrFenced
	}
	return ex, err
}
