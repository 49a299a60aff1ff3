package definition

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
)

// Limits bound what one evaluation of an expression (or of a step's value:
// its `with`, `set`, a template) may do, so that a hostile or mistaken
// definition cannot exhaust the host's memory or hang the engine. A zero
// field takes its default (DefaultLimits).
type Limits struct {
	// Value is the largest value, in bytes of its JSON form (roughly), that
	// one operation may build: a string from `+`, a template or a builtin,
	// a list or a map.
	Value int
	// Total is the sum of the sizes of every value one evaluation builds.
	Total int
	// Ops is the number of predicate calls, let values and range elements
	// one evaluation may go through.
	Ops int
}

// DefaultLimits are the limits when none are set. A value is capped at the
// size of an input or a resume payload (2 MiB, as Temporal's payloads), an
// evaluation at eight of them.
var DefaultLimits = Limits{Value: 2 << 20, Total: 16 << 20, Ops: 1_000_000}

// orDefault returns l with every zero field set to its default.
func (l Limits) orDefault() Limits {
	if l.Value <= 0 {
		l.Value = DefaultLimits.Value
	}
	if l.Total <= 0 {
		l.Total = DefaultLimits.Total
	}
	if l.Ops <= 0 {
		l.Ops = DefaultLimits.Ops
	}
	return l
}

// LimitError is an evaluation refused by one of its Limits. It matches
// ErrExprLimit with errors.Is.
type LimitError struct {
	// Limit names the limit: "value", "total" or "ops" (the Limits field,
	// lower case), as the CLI's --limit flag spells them with "expr-".
	Limit string
	// Max is the limit; Got what the evaluation needed, 0 when it stopped
	// measuring past the limit.
	Max, Got int
	// What says what went over, e.g. "a string".
	What string
}

func (e *LimitError) Error() string {
	switch e.Limit {
	case "ops":
		return fmt.Sprintf("%s goes past the limit of %d operations per evaluation (expr-ops)", e.What, e.Max)
	case "total":
		return fmt.Sprintf("the values built by this evaluation reach %s, past the limit of %s per evaluation (expr-total)", FormatSize(e.Got), FormatSize(e.Max))
	}
	if e.Got == 0 {
		return fmt.Sprintf("%s larger than the limit of %s per value (expr-value)", e.What, FormatSize(e.Max))
	}
	return fmt.Sprintf("%s of %s goes past the limit of %s per value (expr-value)", e.What, FormatSize(e.Got), FormatSize(e.Max))
}

// Is makes a LimitError match ErrExprLimit.
func (e *LimitError) Is(target error) bool { return target == ErrExprLimit }

// FormatSize renders a size for a person: "2 MiB", "1.5 KiB", "312 bytes".
func FormatSize(n int) string {
	const k = 1024
	switch {
	case n >= k*k*k:
		return trimUnit(float64(n)/(k*k*k), "GiB")
	case n >= k*k:
		return trimUnit(float64(n)/(k*k), "MiB")
	case n >= k:
		return trimUnit(float64(n)/k, "KiB")
	}
	if n == 1 {
		return "1 byte"
	}
	return fmt.Sprintf("%d bytes", n)
}

func trimUnit(f float64, unit string) string {
	s := strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.1f", f), "0"), ".")
	return s + " " + unit
}

// evaluation is the budget of one evaluation: what it has spent so far.
type evaluation struct {
	lim   Limits
	ops   int
	total int
	// scratch: the environment is the caller's to change (EvalScratch),
	// the private functions are bound in it rather than in a copy.
	scratch bool
}

// tick counts one operation (a predicate call or a let value) and checks
// the value it produced.
func (ev *evaluation) tick(v any) (any, error) {
	ev.ops++
	if ev.ops > ev.lim.Ops {
		return nil, &LimitError{Limit: "ops", Max: ev.lim.Ops, Got: ev.ops, What: "this evaluation"}
	}
	return ev.built(v)
}

// tickVM and builtVM are tick and built as the VM calls them: they wrap
// every expression and every value a builtin builds, and func(any) any is
// one of expr's typed signatures, called directly, where a function that
// also returns an error is called by reflection (reflect.Value.Call was a
// tenth of the 1,000 x 10 run's CPU, and its deep frames grew the stacks of
// the goroutines that run executions). The error is a panic, which is what
// the VM makes of an error a function returns: the evaluation fails with
// the same error.
func (ev *evaluation) tickVM(v any) any { return mustVM(ev.tick(v)) }

func (ev *evaluation) builtVM(v any) any { return mustVM(ev.built(v)) }

func mustVM(v any, err error) any {
	if err != nil {
		panic(err)
	}
	return v
}

// built checks a value an operation built against the per-value limit and
// adds it to the evaluation's total. Scalars cost nothing: only strings,
// lists and maps can grow.
func (ev *evaluation) built(v any) (any, error) {
	switch v.(type) {
	case nil, bool, int, int64, float64, time.Time, time.Duration:
		return v, nil
	}
	n, exact := sizeOf(v, ev.lim.Value)
	if s, ok := v.(string); ok {
		n, exact = len(s), true
	}
	if n > ev.lim.Value {
		return nil, ev.over(n, exact, describeKind(v))
	}
	return v, ev.spend(n)
}

// over is the error of a value of n bytes going over the per-value limit;
// n is not exact when sizeOf stopped measuring it past the limit.
func (ev *evaluation) over(n int, exact bool, what string) error {
	if !exact {
		n = 0
	}
	return &LimitError{Limit: "value", Max: ev.lim.Value, Got: n, What: what}
}

func (ev *evaluation) spend(n int) error {
	ev.total += n
	if ev.total > ev.lim.Total {
		return &LimitError{Limit: "total", Max: ev.lim.Total, Got: ev.total}
	}
	return nil
}

// rangeOf builds lo..hi, counting its elements as operations.
func (ev *evaluation) rangeOf(a, b any) ([]int, error) {
	lo, hi, err := rangeBounds(a, b)
	if err != nil {
		return nil, err
	}
	if hi >= lo {
		if hi-lo >= ev.lim.Ops-ev.ops {
			return nil, &LimitError{Limit: "ops", Max: ev.lim.Ops, Got: ev.ops + hi - lo + 1, What: fmt.Sprintf("the range %d..%d", lo, hi)}
		}
		ev.ops += hi - lo + 1
	}
	r := make([]int, 0, max(hi-lo+1, 0))
	for i := lo; i <= hi; i++ {
		r = append(r, i)
	}
	return r, nil
}

// call runs the builtin name on args, first refusing the builtins whose
// result can be far larger than their arguments (repeat, replace, join,
// toJSON, string) when it would go over the per-value limit, then checks
// what it returned.
func (ev *evaluation) call(name string, args ...any) (any, error) {
	if n, exact, what := ev.predict(name, args); n > ev.lim.Value {
		return nil, ev.over(n, exact, what)
	}
	out, err := callBuiltin(name, args)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return ev.built(out)
}

// predict returns the size of what builtin name would build from args
// (exact, or a lower bound past the limit), and what it is; 0 when the
// builtin cannot build much more than it is given.
func (ev *evaluation) predict(name string, args []any) (n int, exact bool, what string) {
	limit := ev.lim.Value
	str := func(i int) string {
		if i < len(args) {
			s, _ := args[i].(string)
			return s
		}
		return ""
	}
	// times is a*b, or past the limit when that would overflow.
	times := func(a, b int) (int, bool) {
		if a > 0 && b > (1<<50)/a {
			return limit + 1, false
		}
		return a * b, true
	}
	switch name {
	case "repeat":
		if len(args) == 2 {
			k, _ := toInt(args[1])
			n, exact = times(len(str(0)), max(k, 0))
			return n, exact, "repeat's string"
		}
	case "replace":
		s, old, repl := str(0), str(1), str(2)
		if len(repl) > len(old) {
			k := strings.Count(s, old) // for old == "", the rune count plus one
			n, exact = times(k, len(repl)-len(old))
			return len(s) + n, exact, "replace's string"
		}
	case "join":
		if len(args) >= 1 {
			n, exact = sizeOf(args[0], limit)
			if l, ok := args[0].([]any); ok && len(args) == 2 && exact {
				var g int
				g, exact = times(len(l), len(str(1)))
				n += g
			}
			return n, exact, "join's string"
		}
	case "toJSON", "string":
		if len(args) == 1 {
			n, exact = sizeOf(args[0], limit)
			return n, exact, name + "'s string"
		}
	}
	return 0, true, ""
}

// guardedBuiltins are the builtins whose calls go through evaluation.call:
// those that build strings, lists or maps. Predicates (map, filter, …) are
// checked per element by tick, and their results here.
var guardedBuiltins = map[string]bool{
	"repeat": true, "replace": true, "join": true, "toJSON": true, "string": true,
	"split": true, "splitAfter": true, "concat": true, "flatten": true,
	"fromJSON": true, "toBase64": true, "fromBase64": true, "upper": true, "lower": true,
	"trim": true, "trimPrefix": true, "trimSuffix": true, "fromPairs": true,
	"uniq": true, "reverse": true, "sort": true, "take": true,
}

// builtinIndex finds expr's builtins by name.
var builtinIndex = func() map[string]*builtin.Function {
	m := make(map[string]*builtin.Function, len(builtin.Builtins))
	for _, f := range builtin.Builtins {
		m[f.Name] = f
	}
	return m
}()

// callBuiltin calls expr's own implementation of builtin name.
func callBuiltin(name string, args []any) (any, error) {
	f := builtinIndex[name]
	switch {
	case f == nil:
		return nil, fmt.Errorf("no builtin %s", name)
	case f.Fast != nil && len(args) == 1:
		return f.Fast(args[0]), nil
	case f.Func != nil:
		return f.Func(args...)
	case f.Safe != nil:
		out, _, err := f.Safe(args...)
		return out, err
	case f.Fast != nil:
		return nil, fmt.Errorf("want 1 argument, got %d", len(args))
	}
	return nil, fmt.Errorf("builtin %s cannot be called", name)
}

// describeKind names a value's kind for a LimitError: "a string", "a list".
func describeKind(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case []any:
		return "a list"
	case map[string]any:
		return "a map"
	}
	switch reflect.ValueOf(v).Kind() {
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map:
		return "a map"
	}
	return "a value"
}

// sizeOf is the size of v in bytes of its JSON form, roughly: a string its
// length plus quotes, a scalar 8, a list or map its elements plus their
// separators. A shared element counts each time it appears, as it would in
// the journal. It stops counting past limit (exact false), so its cost is
// bounded by the limit, not by the value.
func sizeOf(v any, limit int) (n int, exact bool) {
	var walk func(v any) bool
	add := func(k int) bool {
		n += k
		return n <= limit
	}
	walk = func(v any) bool {
		switch x := v.(type) {
		case nil, bool, int, int64, float64, int32, float32, uint, uint64, time.Duration:
			return add(8)
		case string:
			return add(len(x) + 2)
		case time.Time:
			return add(37)
		case json.Number:
			return add(len(x))
		case []any:
			if !add(2 + len(x)) {
				return false
			}
			for _, e := range x {
				if !walk(e) {
					return false
				}
			}
			return true
		case map[string]any:
			if !add(2 + len(x)) {
				return false
			}
			for k, e := range x {
				if !add(len(k)+3) || !walk(e) {
					return false
				}
			}
			return true
		}
		rv := reflect.ValueOf(v)
		switch rv.Kind() {
		case reflect.Slice, reflect.Array:
			if !add(2 + rv.Len()) {
				return false
			}
			for i := 0; i < rv.Len(); i++ {
				if !walk(rv.Index(i).Interface()) {
					return false
				}
			}
			return true
		case reflect.Map:
			if !add(2 + rv.Len()) {
				return false
			}
			it := rv.MapRange()
			for it.Next() {
				if !add(len(fmt.Sprint(it.Key().Interface()))+3) || !walk(it.Value().Interface()) {
					return false
				}
			}
			return true
		case reflect.String:
			return add(rv.Len() + 2)
		}
		return add(8)
	}
	if !walk(v) {
		return n, false
	}
	return n, true
}

func toInt(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, true
	case int64:
		return int(n), true
	case int32:
		return int(n), true
	case float64:
		if n == float64(int(n)) {
			return int(n), true
		}
	}
	return 0, false
}

// growing reports whether a node's value can be a string, list or map (its
// type is one of those or unknown), so that building it must be checked.
func growing(n ast.Node) bool {
	t := n.Type()
	if t == nil {
		return true
	}
	switch t.Kind() {
	case reflect.String, reflect.Slice, reflect.Array, reflect.Map, reflect.Interface:
		return true
	}
	return false
}

// rendering checks a value about to be rendered into a template that has
// already n bytes.
func (ev *evaluation) rendering(n int, x any) error {
	k, exact := len(""), true
	if s, ok := x.(string); ok {
		k = len(s)
	} else {
		k, exact = sizeOf(x, ev.lim.Value)
	}
	if n+k > ev.lim.Value {
		return ev.over(n+k, exact, "a template's string")
	}
	return ev.spend(k)
}
