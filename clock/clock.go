package clock

import (
	"context"
	"errors"
	"time"
)

// Clock reads the time and makes timers. Implementations are safe for
// concurrent use.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// NewTimer returns a timer that fires once d has passed (at once for
	// d ≤ 0).
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer of a Clock.
type Timer interface {
	// C receives the time once the timer fires.
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it did.
	Stop() bool
}

// System is the real clock.
type System struct{}

// Now returns time.Now().
func (System) Now() time.Time { return time.Now() }

// NewTimer returns a time.Timer.
func (System) NewTimer(d time.Duration) Timer { return sysTimer{time.NewTimer(d)} }

type sysTimer struct{ t *time.Timer }

func (s sysTimer) C() <-chan time.Time { return s.t.C }
func (s sysTimer) Stop() bool          { return s.t.Stop() }

// WithDeadline is context.WithDeadline on c: the context is done once c
// reaches t, and Expired reports it. On the System clock it is exactly
// context.WithDeadline.
func WithDeadline(parent context.Context, c Clock, t time.Time) (context.Context, context.CancelFunc) {
	if _, ok := c.(System); ok {
		return context.WithDeadline(parent, t)
	}
	ctx, cancel := context.WithCancelCause(parent)
	timer := c.NewTimer(t.Sub(c.Now()))
	go func() {
		select {
		case <-timer.C():
			cancel(context.DeadlineExceeded)
		case <-ctx.Done():
			timer.Stop()
		}
	}()
	return ctx, func() { cancel(context.Canceled) }
}

// WithTimeout is WithDeadline(parent, c, c.Now().Add(d)).
func WithTimeout(parent context.Context, c Clock, d time.Duration) (context.Context, context.CancelFunc) {
	return WithDeadline(parent, c, c.Now().Add(d))
}

// Expired reports whether ctx ended because its deadline (on any clock)
// passed.
func Expired(ctx context.Context) bool {
	return ctx.Err() != nil && errors.Is(context.Cause(ctx), context.DeadlineExceeded)
}

// Sleep waits until d has passed on c or ctx is done; it returns ctx's
// error in the second case.
func Sleep(ctx context.Context, c Clock, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := c.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
