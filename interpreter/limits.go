package interpreter

import (
	"errors"
	"fmt"

	"github.com/loomwork/loom/definition"
)

// DefaultMapItems is the most items one map step may run unless the engine
// or the step sets another limit: a map is refused before it starts rather
// than journal a million items.
const DefaultMapItems = 100_000

// Limits bound what an execution may do (SPEC §5); a zero field takes its
// default. A run that goes past one fails its step with LimitExceeded.
type Limits struct {
	// Expr bounds what one evaluation of an expression may build and do.
	Expr definition.Limits
	// MapItems is the most items one map step may run (default
	// DefaultMapItems). A step's max_items can lower it, not raise it.
	MapItems int
}

// WithLimits sets the engine's limits.
func WithLimits(l Limits) Option { return func(e *Engine) { e.limits = l } }

// mapItemLimit is the item limit of map step with its own max (0: none).
func (e *Engine) mapItemLimit(step int) (n int, source string) {
	n, source = DefaultMapItems, "the engine's map item limit"
	if e.limits.MapItems > 0 {
		n = e.limits.MapItems
	}
	if step > 0 && step < n {
		n, source = step, "the step's max_items"
	}
	return n, source
}

// limitError turns an evaluation refused by a definition.Limits into the
// step's LimitExceeded error; other errors are not.
func limitError(err error, path, what string) (*Error, bool) {
	var le *definition.LimitError
	if !errors.As(err, &le) {
		return nil, false
	}
	return &Error{Type: "LimitExceeded", Message: fmt.Sprintf("%s: %v", what, err), Step: path,
		Data: map[string]any{"limit": "expr-" + le.Limit, "max": le.Max}}, true
}
