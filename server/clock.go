package server

import "time"

// Clock is the dispatcher's time: when it polls, when a timer is due. Tests
// inject one they advance by hand, so nothing waits on the wall clock.
type Clock interface {
	Now() time.Time
	// After delivers once d has passed on this clock.
	After(d time.Duration) <-chan time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
