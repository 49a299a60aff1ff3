package journal

import "time"

// Due reports whether execution e is due at t, given the current lease of
// its root (the zero Lease when there is none): a WAITING or PAUSED
// execution whose WakeAt (a timer, a pause deadline, the workflow timeout)
// has come, or a RUNNING one whose runner is gone (no lease, or one expired
// at t). It is the one definition of "due": Filter.Due selects exactly
// these in every backend (the SQL backends say it in their WHERE clause,
// and the conformance suite holds them to this function).
func Due(e *Execution, rootLease Lease, t time.Time) bool {
	switch e.State {
	case Waiting, Paused:
		return !e.WakeAt.IsZero() && !e.WakeAt.After(t)
	case Running:
		return rootLease.Token == 0 || !rootLease.Expires.After(t)
	}
	return false
}
