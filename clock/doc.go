// Package clock is the engine's only source of time: Now, timers and
// context deadlines. The interpreter reads time through a Clock so that
// sleeps, pause deadlines, workflow timeouts, retry waits and lease renewal
// can be tested by advancing a Fake instead of sleeping.
package clock
