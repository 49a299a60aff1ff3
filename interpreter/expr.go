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

// builtinNames are the journaled functions of builtins.Funcs.
var builtinNames = func() map[string]bool {
	m := map[string]bool{}
	for k := range builtins.Funcs(nil, nil, nil) {
		m[k] = true
	}
	return m
}()

// envs are cleared environment maps for reuse: nothing keeps an env after
// its evaluation (a result that is the env itself, $env, is copied by
// Normalize).
var envs = sync.Pool{New: func() any { return make(map[string]any, 4) }}

// eval runs fn (an evaluation) with the environment of path and sorts its
// failure into a signal or an ExpressionError. The environment holds only
// names, the names the evaluation reads (Expr.Names): most expressions
// read one or two, so an evaluation costs no copy of the scope and binds
// no builtin it does not call.
func (x *exec) eval(sc *scope, names []string, path, what string, fn func(env map[string]any) (any, error)) (any, error) {
	var env map[string]any
	if len(names) > 0 {
		env = envs.Get().(map[string]any)
		defer func() {
			clear(env)
			envs.Put(env)
		}()
	}
	var st *evalState
	var funcs map[string]any
	for _, name := range names {
		switch {
		case name == definition.SecretFunc:
			env[name] = x.secretFunc()
		case builtinNames[name]:
			if funcs == nil {
				st = &evalState{}
				funcs = builtins.Funcs(signalRecorder{x.h, path, st}, x.d.eng.clock, x.d.eng.rnd)
			}
			env[name] = funcs[name]
		default:
			if v, ok := x.lookup(sc, name); ok {
				env[name] = v
			}
		}
	}
	v, err := fn(env)
	if st != nil && st.err != nil {
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
	return x.eval(sc, v.Names(), path, what, func(env map[string]any) (any, error) { return v.EvalScratch(env, x.d.eng.limits.Expr) })
}

func (x *exec) evalExpr(e *definition.Expr, sc *scope, path, what string) (any, error) {
	return x.eval(sc, e.Names(), path, what, func(env map[string]any) (any, error) { return e.EvalScratch(env, x.d.eng.limits.Expr) })
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
	// steps maps id → {"output": v}. A scope that owns its steps (ownSteps)
	// but has written none yet reads its parent's: it copies them on its
	// first write, so an iteration or item without step ids costs no copy.
	steps    map[string]any
	ownSteps bool
	vars     map[string]any // nil: writes go to the parent's
	names    bindings
}

// bindings are the names a scope adds (item, index, err or their `as`
// names), at most two, kept inline: a for loop opens a scope per
// iteration.
type bindings struct {
	n    int
	name [2]string
	val  [2]any
}

// bind returns the bindings of one name.
func bind(name string, v any) bindings {
	return bindings{n: 1, name: [2]string{name}, val: [2]any{v}}
}

// and adds a second name; it wins over the first if they are the same.
func (b bindings) and(name string, v any) bindings {
	b.name[b.n], b.val[b.n] = name, v
	b.n++
	return b
}

func (b *bindings) get(name string) (any, bool) {
	for i := b.n - 1; i >= 0; i-- {
		if b.name[i] == name {
			return b.val[i], true
		}
	}
	return nil, false
}

func (s *scope) child(ownVars bool, names bindings) *scope {
	c := &scope{parent: s, ownSteps: true, names: names}
	if ownVars {
		c.vars = s.allVars()
	}
	return c
}

// block is a scope that shares its parent's steps and vars (try, switch).
func (s *scope) block(names bindings) *scope {
	return &scope{parent: s, names: names}
}

// stepsOwner and varsOwner are the scopes whose maps a scope writes. A
// map is written only by the goroutine running that scope's steps, and
// read by it or by goroutines it started and waits for, so expressions can
// see the maps themselves, without copies.
func (s *scope) stepsOwner() *scope {
	for t := s; t != nil; t = t.parent {
		if t.ownSteps || t.steps != nil {
			return t
		}
	}
	return nil
}

// visible is the scope whose steps map is visible at s: the nearest one
// written.
func (s *scope) visible() *scope {
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
	t := s.stepsOwner()
	if t == nil {
		return
	}
	if t.steps == nil {
		// The first write of an iteration, item or branch: it starts with
		// its enclosing steps and adds its own, which shadow them.
		// Nothing writes the parent's map while this scope runs.
		c := map[string]any{}
		if v := t.parent.visible(); v != nil {
			v.mu.Lock()
			for k, o := range v.steps {
				c[k] = o
			}
			v.mu.Unlock()
		}
		t.mu.Lock()
		t.steps = c
		t.mu.Unlock()
	}
	t.mu.Lock()
	t.steps[id] = map[string]any{"output": out}
	t.mu.Unlock()
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

// lookup returns the value of name at a scope: an item's, index's or
// error's name (the innermost scope's first), else input, steps, vars or
// execution.
func (x *exec) lookup(sc *scope, name string) (any, bool) {
	for t := sc; t != nil; t = t.parent {
		if v, ok := t.names.get(name); ok {
			return v, true
		}
	}
	switch name {
	case "input":
		return x.input, true
	case "steps":
		if t := sc.visible(); t != nil {
			return t.steps, true
		}
	case "vars":
		if t := sc.varsOwner(); t != nil {
			return t.vars, true
		}
	case "execution":
		var parent any
		if x.rec.ParentID != "" {
			parent = x.rec.ParentID
		}
		return map[string]any{"id": x.rec.ID, "workflow": x.rec.Workflow, "version": x.rec.Version, "parent_id": parent}, true
	}
	return nil, false
}
