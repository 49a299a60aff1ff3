package builtins

import (
	"time"
)

// Recorder journals the values of builtin calls. The interpreter gives each
// evaluation site (a step path) its own Recorder, which counts calls so that
// the n-th call at a path is matched with the n-th recorded value.
type Recorder interface {
	// Record returns the recorded value of the next call of name at this
	// site; when none is recorded it calls fresh, records its result
	// (normalised to a JSON value: a time becomes its RFC 3339 string) and
	// returns the normalised value. Callers decode the normalised value, so
	// the first run and a replay see identical results.
	Record(name string, fresh func() (any, error)) (any, error)
}

// Clock reads the current time. Tests inject fakes that fail when called.
type Clock interface {
	Now() time.Time
}

// Random is a source of random bits. Tests inject fakes that fail when called.
type Random interface {
	Uint64() uint64
}
