package interpreter

import (
	"errors"
	"fmt"
	"sync"

	"github.com/loomwork/loom/builtins"
	"github.com/loomwork/loom/definition"
)

func join(prefix, seg string) string {
	if prefix == "" {
		return seg
	}
	return prefix + "/" + seg
}

// evalState catches what a builtin call signalled during one evaluation:
// expr-lang wraps errors returned by functions, so the interpreter's own
// signals (not recorded, non-determinism) travel beside the evaluation.
type evalState struct {
	mu  sync.Mutex
	err error
}

// signalRecorder journals the builtin calls of one path through the walk's
// history (builtins.Recorder) and keeps the interpreter's signals.
type signalRecorder struct {
	h    *history
	path string
	st   *evalState
}

func (r signalRecorder) Record(name string, fresh func() (any, error)) (any, error) {
	v, err := r.h.builtin(r.path, name, fresh)
	var nd *NonDeterminismError
	if err == errNotRecorded || errors.As(err, &nd) {
		r.st.mu.Lock()
		if r.st.err == nil {
			r.st.err = err
		}
		r.st.mu.Unlock()
	}
	return v, err
}

// eval runs fn (an evaluation) with the environment of path and sorts its
// failure into a signal or an ExpressionError.
func (x *exec) eval(sc *scope, path, what string, fn func(env map[string]any) (any, error)) (any, error) {
	env := x.env(sc)
	st := &evalState{}
	for k, f := range builtins.Funcs(signalRecorder{x.h, path, st}, x.d.eng.clock, x.d.eng.rnd) {
		env[k] = f
	}
	env[definition.SecretFunc] = x.secretFunc()
	v, err := fn(env)
	if st.err != nil {
		if st.err == errNotRecorded {
			return nil, errFrontier
		}
		return nil, fatal(st.err)
	}
	if err != nil {
		return nil, exprError(err, path, what)
	}
	n, err := Normalize(v)
	if err != nil {
		return nil, exprError(err, path, what)
	}
	return n, nil
}

func (x *exec) evalValue(v *definition.Value, sc *scope, path, what string) (any, error) {
	if v == nil {
		return nil, nil
	}
	if v.Form == definition.FormLit {
		return Normalize(v.Lit)
	}
	return x.eval(sc, path, what, func(env map[string]any) (any, error) { return v.EvalWithin(env, x.d.eng.limits.Expr) })
}

func (x *exec) evalExpr(e *definition.Expr, sc *scope, path, what string) (any, error) {
	return x.eval(sc, path, what, func(env map[string]any) (any, error) { return e.EvalWithin(env, x.d.eng.limits.Expr) })
}

func (x *exec) evalBool(e *definition.Expr, sc *scope, path, what string) (bool, error) {
	v, err := x.evalExpr(e, sc, path, what)
	if err != nil {
		return false, err
	}
	switch b := v.(type) {
	case bool:
		return b, nil
	case nil:
		return false, nil
	}
	return false, &Error{Type: "ExpressionError", Message: fmt.Sprintf("%s: expected true or false, got %s", what, short(v, 60)), Step: path}
}

func (x *exec) evalList(e *definition.Expr, sc *scope, path, what string) ([]any, error) {
	v, err := x.evalExpr(e, sc, path, what)
	if err != nil {
		return nil, err
	}
	switch l := v.(type) {
	case []any:
		return l, nil
	case nil:
		return nil, nil
	}
	return nil, &Error{Type: "ExpressionError", Message: fmt.Sprintf("%s: expected a list, got %s", what, short(v, 60)), Step: path}
}

// scope is what expressions see of steps and variables at one place.
// Iterations, map items and parallel branches open a scope of their own
// for steps; map items and branches also own a copy of the variables, so
// concurrent items never race on them.
type scope struct {
	parent *scope
	mu     sync.Mutex
	steps  map[string]any // id → {"output": v}
	vars   map[string]any // nil: writes go to the parent's
	names  map[string]any // item, index, err or their `as` names
}

func (s *scope) child(ownVars bool, names map[string]any) *scope {
	c := &scope{parent: s, steps: s.visibleSteps(), names: names}
	if ownVars {
		c.vars = s.allVars()
	}
	return c
}

// block is a scope that shares its parent's steps and vars (try, switch).
func (s *scope) block(names map[string]any) *scope {
	return &scope{parent: s, names: names}
}

// stepsOwner and varsOwner are the scopes whose maps a scope reads and
// writes. A map is written only by the goroutine running that scope's
// steps, and read by it or by goroutines it started and waits for, so
// expressions can see the maps themselves, without copies.
func (s *scope) stepsOwner() *scope {
	for t := s; t != nil; t = t.parent {
		if t.steps != nil {
			return t
		}
	}
	return nil
}

func (s *scope) varsOwner() *scope {
	for t := s; t != nil; t = t.parent {
		if t.vars != nil {
			return t
		}
	}
	return nil
}

func (s *scope) setStep(id string, out any) {
	if t := s.stepsOwner(); t != nil {
		t.mu.Lock()
		t.steps[id] = map[string]any{"output": out}
		t.mu.Unlock()
	}
}

func (s *scope) setVar(name string, v any) {
	if t := s.varsOwner(); t != nil {
		t.mu.Lock()
		t.vars[name] = v
		t.mu.Unlock()
	}
}

// allVars returns a copy of the variables visible here.
func (s *scope) allVars() map[string]any {
	c := map[string]any{}
	if t := s.varsOwner(); t != nil {
		t.mu.Lock()
		for k, v := range t.vars {
			c[k] = v
		}
		t.mu.Unlock()
	}
	return c
}

// visibleSteps returns a copy of the steps visible here: an iteration, map
// item or branch starts with its enclosing steps and adds its own, which
// shadow them.
func (s *scope) visibleSteps() map[string]any {
	c := map[string]any{}
	if t := s.stepsOwner(); t != nil {
		t.mu.Lock()
		for k, v := range t.steps {
			c[k] = v
		}
		t.mu.Unlock()
	}
	return c
}

// env builds the data of the expression environment at a scope; eval adds
// the builtin functions bound to the evaluating path.
func (x *exec) env(sc *scope) map[string]any {
	env := make(map[string]any, 16)
	env["input"] = x.input
	if t := sc.stepsOwner(); t != nil {
		env["steps"] = t.steps
	}
	if t := sc.varsOwner(); t != nil {
		env["vars"] = t.vars
	}
	var parent any
	if x.rec.ParentID != "" {
		parent = x.rec.ParentID
	}
	env["execution"] = map[string]any{"id": x.rec.ID, "workflow": x.rec.Workflow, "version": x.rec.Version, "parent_id": parent}
	var chain []*scope
	for t := sc; t != nil; t = t.parent {
		chain = append(chain, t)
	}
	for i := len(chain) - 1; i >= 0; i-- {
		for k, v := range chain[i].names {
			env[k] = v
		}
	}
	return env
}
