package definition

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/checker"
	"github.com/expr-lang/expr/compiler"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/optimizer"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/types"
	"github.com/expr-lang/expr/vm"
	"github.com/loomwork/loom/builtins"
)

// MaxExprNodes bounds an expression's size at compile time; what one
// evaluation may do is bounded by Limits.
const MaxExprNodes = 5000

// The private names Eval adds to the environment.
const (
	tickName  = "__loom_tick"
	rangeName = "__loom_range"
	builtName = "__loom_built"
	callName  = "__loom_call"
)

// ErrExprLimit is returned (wrapped, as a *LimitError) by Eval when an
// evaluation goes past one of its Limits.
var ErrExprLimit = errors.New("expression exceeds its budget")

// Eval evaluates the expression in env within DefaultLimits (see
// Value.Eval). It never panics.
func (e *Expr) Eval(env map[string]any) (any, error) {
	return e.EvalWithin(env, Limits{})
}

// EvalWithin evaluates the expression in env within lim (zero fields take
// their defaults). It never panics.
func (e *Expr) EvalWithin(env map[string]any, lim Limits) (any, error) {
	return e.eval(env, &evaluation{lim: lim.orDefault()})
}

func (e *Expr) eval(env map[string]any, ev *evaluation) (out any, err error) {
	if e == nil || e.Program == nil {
		return nil, fmt.Errorf("expression not compiled")
	}
	if e.ident != "" {
		return env[e.ident], nil // what the program's one load gives
	}
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("expression %s: %v", e.describe(), r)
		}
	}()
	run := env
	if len(e.private) > 0 {
		// The private functions are bound to this evaluation's budget;
		// the caller's env is not changed, unless it is scratch.
		if !ev.scratch || run == nil {
			run = make(map[string]any, len(env)+len(e.private))
			for k, v := range env {
				run[k] = v
			}
		}
		for _, name := range e.private {
			switch name {
			case tickName:
				run[name] = ev.tickVM
			case rangeName:
				run[name] = ev.rangeOf
			case builtName:
				run[name] = ev.builtVM
			case callName:
				run[name] = ev.call
			}
		}
	}
	machine := vms.Get().(*vm.VM)
	out, err = machine.Run(e.Program, run)
	vms.Put(machine) // not reached on a panic: a VM that panicked is dropped
	var le *LimitError
	if errors.As(err, &le) {
		return nil, fmt.Errorf("expression %s: %w", e.describe(), le) // without expr's snippet: the sentence is whole
	}
	if err != nil {
		return nil, fmt.Errorf("expression %s: %w", e.describe(), err)
	}
	return out, nil
}

// vms are idle expr VMs: a VM resets itself at each Run, and reusing one
// saves its allocation and its stack's on every evaluation.
var vms = sync.Pool{New: func() any { return &vm.VM{} }}

func (e *Expr) describe() string {
	s := strings.TrimSpace(e.Source)
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return "${ " + s + " }"
}

func rangeBounds(a, b any) (int, int, error) {
	lo, ok1 := toInt(a)
	hi, ok2 := toInt(b)
	if !ok1 || !ok2 {
		return 0, 0, fmt.Errorf("a range needs integers, got %v..%v", a, b)
	}
	return lo, hi, nil
}

// Eval evaluates every expression in v, in source order, and returns the
// plain value: a map, a list, a scalar, or a template's string. A template
// renders strings as they are, times as RFC 3339 with nanoseconds and other
// values as compact JSON. A nil Value evaluates to nil.
func (v *Value) Eval(env map[string]any) (any, error) {
	return v.EvalWithin(env, Limits{})
}

// EvalScratch is EvalWithin over an environment the caller owns and
// clears after the call (a pooled map): the evaluation binds the private
// functions its programs call (names starting "__loom_") in env itself,
// where EvalWithin copies env first, a map per evaluation.
func (v *Value) EvalScratch(env map[string]any, lim Limits) (any, error) {
	return v.eval(env, &evaluation{lim: lim.orDefault(), scratch: true})
}

// EvalScratch is Value.EvalScratch of one expression.
func (e *Expr) EvalScratch(env map[string]any, lim Limits) (any, error) {
	return e.eval(env, &evaluation{lim: lim.orDefault(), scratch: true})
}

// EvalWithin is Eval within lim (zero fields take their defaults): the
// whole value is one evaluation, whose expressions share its budget.
func (v *Value) EvalWithin(env map[string]any, lim Limits) (any, error) {
	return v.eval(env, &evaluation{lim: lim.orDefault()})
}

func (v *Value) eval(env map[string]any, ev *evaluation) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch v.Form {
	case FormExpr:
		return v.Expr.eval(env, ev)
	case FormTemplate:
		var b strings.Builder
		for _, p := range v.Parts {
			if p.Expr == nil {
				b.WriteString(p.Text)
				continue
			}
			x, err := p.Expr.eval(env, ev)
			if err != nil {
				return nil, err
			}
			if err := ev.rendering(b.Len(), x); err != nil {
				return nil, fmt.Errorf("expression %s: %w", p.Expr.describe(), err)
			}
			if err := render(&b, x); err != nil {
				return nil, fmt.Errorf("expression %s: %w", p.Expr.describe(), err)
			}
		}
		return b.String(), nil
	case FormMap:
		m := make(map[string]any, len(v.Map))
		for _, f := range v.Map {
			x, err := f.Value.eval(env, ev)
			if err != nil {
				return nil, err
			}
			m[f.Name] = x
		}
		return m, nil
	case FormList:
		l := make([]any, len(v.List))
		for i, e := range v.List {
			x, err := e.eval(env, ev)
			if err != nil {
				return nil, err
			}
			l[i] = x
		}
		return l, nil
	}
	return v.Lit, nil
}

func render(b *strings.Builder, x any) error {
	switch t := x.(type) {
	case string:
		b.WriteString(t)
		return nil
	case time.Time:
		b.WriteString(t.Format(time.RFC3339Nano))
		return nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(x); err != nil {
		return err
	}
	b.Write(bytes.TrimRight(buf.Bytes(), "\n"))
	return nil
}

// segment is a piece of a string: text, or an expression whose source
// starts at rune offset Off of the string.
type segment struct {
	Text   string
	Expr   bool
	Source string
	Off    int
}

// scanError is a problem in a string's ${ … } syntax at rune offset Off.
type scanError struct {
	Off int
	Msg string
}

// hasExpr reports whether s holds "${".
func hasExpr(s string) bool { return strings.Contains(s, "${") }

// splitTemplate splits s into text and "${ … }" expressions. "$${" is a
// literal "${".
func splitTemplate(s string) ([]segment, *scanError) {
	var segs []segment
	var text strings.Builder
	rs := []rune(s)
	for i := 0; i < len(rs); {
		if rs[i] == '$' && i+2 < len(rs) && rs[i+1] == '$' && rs[i+2] == '{' {
			text.WriteString("${")
			i += 3
			continue
		}
		if rs[i] != '$' || i+1 >= len(rs) || rs[i+1] != '{' {
			text.WriteRune(rs[i])
			i++
			continue
		}
		end := closeBrace(rs, i+2)
		if end < 0 {
			if e := unbalanced(rs, i); e != nil {
				return nil, e
			}
			return nil, &scanError{Off: i, Msg: "unclosed ${: an expression needs a closing } (quote strings that hold \" #\" or \": \")"}
		}
		src := string(rs[i+2 : end])
		if strings.TrimSpace(src) == "" {
			return nil, &scanError{Off: i, Msg: "empty expression ${ }"}
		}
		if text.Len() > 0 {
			segs = append(segs, segment{Text: text.String()})
			text.Reset()
		}
		segs = append(segs, segment{Expr: true, Source: src, Off: i + 2})
		i = end + 1
	}
	if text.Len() > 0 {
		segs = append(segs, segment{Text: text.String()})
	}
	return segs, nil
}

// unbalanced explains a "${" that closeBrace found no end for although a
// "}" follows it: the brackets inside do not balance (${ foo( }), so the
// expression's own syntax error, at its column, says what is wrong, not
// "unclosed ${". nil when no "}" follows or the text parses.
func unbalanced(rs []rune, i int) *scanError {
	k := -1
	for j := len(rs) - 1; j > i+1; j-- {
		if rs[j] == '}' {
			k = j
			break
		}
	}
	if k < 0 {
		return nil
	}
	src := string(rs[i+2 : k])
	if _, err := parser.Parse(src); err != nil {
		off, msg := exprErrorOffset(err)
		if off < 0 {
			off = 0
		}
		return &scanError{Off: i + 2 + off, Msg: fmt.Sprintf("%s in ${%s}", msg, src)}
	}
	return nil
}

// closeBrace finds the "}" closing an expression that starts at rs[i],
// skipping nested brackets and string literals; -1 if none.
func closeBrace(rs []rune, i int) int {
	depth := 0
	for ; i < len(rs); i++ {
		switch r := rs[i]; r {
		case '"', '\'', '`':
			for i++; i < len(rs) && rs[i] != r; i++ {
				if rs[i] == '\\' && r != '`' {
					i++
				}
			}
			if i >= len(rs) {
				return -1
			}
		case '{', '[', '(':
			depth++
		case ']', ')':
			depth--
		case '}':
			if depth == 0 {
				return i
			}
			depth--
		}
	}
	return -1
}

// exprEnv is the compile-time environment of one scope shape: the names
// and what the compiler knows of them.
type exprEnv struct {
	key   string
	names types.Map  // every name of the environment, the private ones too
	mu    sync.Mutex // guards config, whose caches the checker fills
	// config is built once per scope shape: expr.Compile would rebuild it
	// (and its table of builtins) for every expression.
	config *conf.Config
}

var (
	envMu    sync.Mutex
	envCache = map[string]*exprEnv{}
	funcs    = builtins.Funcs(nil, nil, nil)
)

// scopeNames are the names every expression sees.
var scopeNames = []string{"input", "steps", "vars", "execution"}

// envFor returns the environment for the extra names (item, index, err or
// their `as` names) in scope.
func envFor(extra []string) *exprEnv {
	key := strings.Join(extra, ",")
	envMu.Lock()
	defer envMu.Unlock()
	if e, ok := envCache[key]; ok {
		return e
	}
	env := types.Map{
		"input":     types.Any,
		"steps":     types.Any,
		"vars":      types.Any,
		"execution": types.Any,
		tickName:    types.TypeOf(func(v any) any { return v }), // evaluation.tickVM
		rangeName:   types.TypeOf(func(a, b any) ([]int, error) { return nil, nil }),
		builtName:   types.TypeOf(func(v any) any { return v }), // evaluation.builtVM
		callName:    types.TypeOf(func(name string, args ...any) (any, error) { return nil, nil }),
	}
	for k, f := range funcs {
		env[k] = types.TypeOf(f)
	}
	env[SecretFunc] = types.TypeOf(func(name string) (string, error) { return "", nil })
	for _, n := range extra {
		env[n] = types.Any
	}
	opts := []expr.Option{
		expr.Env(env),
		expr.DisableBuiltin("now"),
		expr.MaxNodes(MaxExprNodes),
		expr.Function("keys", sortedKeys, new(func(any) []any)),
		expr.Function("values", sortedValues, new(func(any) []any)),
		expr.Function("toPairs", sortedPairs, new(func(any) []any)),
	}
	config := conf.CreateNew()
	for _, op := range opts {
		op(config)
	}
	for name := range config.Disabled {
		delete(config.Builtins, name)
	}
	config.Check()
	e := &exprEnv{key: key, names: env, config: config}
	envCache[key] = e
	return e
}

// mapEntries returns a map's keys (as strings, sorted) and values.
func mapEntries(v any) ([]string, map[string]any, error) {
	if m, ok := v.(map[string]any); ok {
		ks := make([]string, 0, len(m))
		for k := range m {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		return ks, m, nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Map {
		return nil, nil, fmt.Errorf("want a map, got %T", v)
	}
	m := make(map[string]any, rv.Len())
	ks := make([]string, 0, rv.Len())
	for _, k := range rv.MapKeys() {
		s := fmt.Sprint(k.Interface())
		ks = append(ks, s)
		m[s] = rv.MapIndex(k).Interface()
	}
	sort.Strings(ks)
	return ks, m, nil
}

func sortedKeys(args ...any) (any, error) {
	ks, _, err := mapEntries(args[0])
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	out := make([]any, len(ks))
	for i, k := range ks {
		out[i] = k
	}
	return out, nil
}

func sortedValues(args ...any) (any, error) {
	ks, m, err := mapEntries(args[0])
	if err != nil {
		return nil, fmt.Errorf("values: %w", err)
	}
	out := make([]any, len(ks))
	for i, k := range ks {
		out[i] = m[k]
	}
	return out, nil
}

func sortedPairs(args ...any) (any, error) {
	ks, m, err := mapEntries(args[0])
	if err != nil {
		return nil, fmt.Errorf("toPairs: %w", err)
	}
	out := make([]any, len(ks))
	for i, k := range ks {
		out[i] = []any{k, m[k]}
	}
	return out, nil
}

// guard is the patch applied to every expression after it type-checked:
// date() defaults to UTC; predicate bodies and let values pass through the
// operation counter; ranges are built by a counting function; and every
// operation that can build a string, list or map (`+`, literals, builtins)
// has its result checked against the value limit, the builtins that can
// build far more than they are given being refused before they run.
type guard struct{}

func (guard) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.PredicateNode:
		n.Node = tick(n.Node)
	case *ast.VariableDeclaratorNode:
		n.Value = tick(n.Value)
	case *ast.BinaryNode:
		switch {
		case n.Operator == "..":
			c := &ast.CallNode{Callee: &ast.IdentifierNode{Value: rangeName}, Arguments: []ast.Node{n.Left, n.Right}}
			c.SetLocation(n.Location())
			c.Callee.SetLocation(n.Location())
			ast.Patch(node, c)
		case n.Operator == "+" && growing(n):
			wrap(node, builtName)
		}
	case *ast.ArrayNode, *ast.MapNode:
		wrap(node, builtName)
	case *ast.BuiltinNode:
		switch {
		case n.Name == "date":
			loc := &ast.ConstantNode{Value: time.UTC}
			loc.SetLocation(n.Location())
			ast.Patch(node, &ast.BuiltinNode{Name: "date", Arguments: append([]ast.Node{loc}, n.Arguments...)})
		case guardedBuiltins[n.Name]:
			name := &ast.StringNode{Value: n.Name}
			name.SetLocation(n.Location())
			c := &ast.CallNode{Callee: &ast.IdentifierNode{Value: callName}, Arguments: append([]ast.Node{name}, n.Arguments...)}
			c.Callee.SetLocation(n.Location())
			ast.Patch(node, c)
		case growing(n):
			wrap(node, builtName)
		}
	case *ast.CallNode:
		if id, ok := n.Callee.(*ast.IdentifierNode); ok && (id.Value == "keys" || id.Value == "values" || id.Value == "toPairs") {
			wrap(node, builtName)
		}
	}
}

// wrap replaces *node by a call of the private function fn on it.
func wrap(node *ast.Node, fn string) {
	c := &ast.CallNode{Callee: &ast.IdentifierNode{Value: fn}, Arguments: []ast.Node{*node}}
	c.Callee.SetLocation((*node).Location())
	ast.Patch(node, c)
}

func tick(body ast.Node) ast.Node {
	c := &ast.CallNode{Callee: &ast.IdentifierNode{Value: tickName}, Arguments: []ast.Node{body}}
	c.SetLocation(body.Location())
	c.Callee.SetLocation(body.Location())
	return c
}

// stepRef is a "steps.X" in an expression, at rune offset Off of its
// source; Member is what follows ("output"), "" when nothing does.
type stepRef struct {
	ID     string
	Off    int
	Member string
	MemOff int
}

// compiled is one compiled expression source, shared by identical sources
// in the same scope shape.
type compiled struct {
	program *vm.Program
	refs    []stepRef
	secrets []secretRef
	// names are the environment's names the program reads (Expr.Names);
	// private are the private functions it calls.
	names, private []string
	// ident is the variable the program only reads, "" for any other
	// program (Expr.ident).
	ident string
	err   error
}

// secretRef is a secret("NAME") with a literal name, at rune offset Off
// of its source (the name's).
type secretRef struct {
	Name string
	Off  int
}

// compile compiles src in env and collects its step references.
func compile(env *exprEnv, src string) *compiled {
	c := &compiled{}
	func() {
		defer func() {
			if r := recover(); r != nil {
				c.program, c.err = nil, fmt.Errorf("%v", r)
			}
		}()
		c.program, c.err = env.compile(src)
	}()
	if c.err == nil {
		c.refs = findRefs(c.program.Node())
		c.secrets = findSecrets(c.program.Node())
		c.names, c.private = env.namesIn(c.program.Node())
		if id, ok := c.program.Node().(*ast.IdentifierNode); ok && len(c.private) == 0 && env.isVariable(id.Value) {
			c.ident = id.Value
		}
	}
	return c
}

// namesIn returns the names of env that the (patched) tree reads, sorted:
// the public ones and the private ones apart. A name the tree declares
// itself (let) is not env's unless env has it too: it is harmless there.
func (env *exprEnv) namesIn(root ast.Node) (names, private []string) {
	seen := map[string]bool{}
	var add func(name string)
	add = func(name string) {
		if name == "$env" {
			// The whole environment as a value: it needs every name.
			for n := range env.names {
				add(n)
			}
			return
		}
		if _, ok := env.names[name]; !ok || seen[name] {
			return
		}
		seen[name] = true
		if strings.HasPrefix(name, "__loom_") {
			private = append(private, name)
		} else {
			names = append(names, name)
		}
	}
	ast.Walk(&root, identVisitor(add))
	sort.Strings(names)
	sort.Strings(private)
	return names, private
}

type identVisitor func(name string)

func (v identVisitor) Visit(node *ast.Node) {
	if id, ok := (*node).(*ast.IdentifierNode); ok {
		v(id.Value)
	}
}

// isVariable reports whether name is one of the environment's values (input,
// steps, an item's name, …), not a function.
func (env *exprEnv) isVariable(name string) bool {
	if _, fn := funcs[name]; fn || name == SecretFunc || strings.HasPrefix(name, "__loom_") {
		return false
	}
	_, ok := env.names[name]
	return ok
}

// compile does what expr.Compile does, with the environment's config.
func (env *exprEnv) compile(src string) (*vm.Program, error) {
	env.mu.Lock()
	defer env.mu.Unlock()
	// Check the expression as written, so type errors speak of what the
	// user wrote, then patch it (guard) and check it again for the compiler.
	tree, err := parser.ParseWithConfig(src, env.config)
	if err != nil {
		return nil, err
	}
	if _, err := checker.Check(tree, env.config); err != nil {
		return nil, err
	}
	ast.Walk(&tree.Node, guard{})
	if _, err := checker.Check(tree, env.config); err != nil {
		return nil, err
	}
	if env.config.Optimize {
		if err := optimizer.Optimize(&tree.Node, env.config); err != nil {
			var fe *file.Error
			if errors.As(err, &fe) {
				return nil, fe.Bind(tree.Source)
			}
			return nil, err
		}
	}
	return compiler.Compile(tree, env.config)
}

func findRefs(root ast.Node) []stepRef {
	var refs []stepRef
	v := &refVisitor{refs: &refs}
	ast.Walk(&root, v)
	sort.Slice(refs, func(i, j int) bool { return refs[i].Off < refs[j].Off })
	return refs
}

type refVisitor struct{ refs *[]stepRef }

// SecretFunc is the name of the expression function that reads a secret;
// the interpreter binds it to the engine's provider at run time.
const SecretFunc = "secret"

func findSecrets(root ast.Node) []secretRef {
	var out []secretRef
	ast.Walk(&root, secretVisitor(func(n *ast.CallNode) {
		id, ok := n.Callee.(*ast.IdentifierNode)
		if !ok || id.Value != SecretFunc || len(n.Arguments) != 1 {
			return
		}
		if s, ok := n.Arguments[0].(*ast.StringNode); ok {
			out = append(out, secretRef{Name: s.Value, Off: s.Location().From})
		}
	}))
	sort.Slice(out, func(i, j int) bool { return out[i].Off < out[j].Off })
	return out
}

type secretVisitor func(*ast.CallNode)

func (v secretVisitor) Visit(node *ast.Node) {
	if c, ok := (*node).(*ast.CallNode); ok {
		v(c)
	}
}

func (v *refVisitor) Visit(node *ast.Node) {
	m, ok := (*node).(*ast.MemberNode)
	if !ok {
		return
	}
	// steps.X.Y: record X with Y.
	if inner, ok := m.Node.(*ast.MemberNode); ok {
		if id, ok := stepsMember(inner); ok {
			if p, ok := m.Property.(*ast.StringNode); ok {
				for i := range *v.refs {
					r := &(*v.refs)[i]
					if r.ID == id && r.Off == inner.Property.Location().From && r.Member == "" {
						r.Member, r.MemOff = p.Value, p.Location().From
					}
				}
			}
		}
	}
	if id, ok := stepsMember(m); ok {
		*v.refs = append(*v.refs, stepRef{ID: id, Off: m.Property.Location().From})
	}
}

func stepsMember(m *ast.MemberNode) (string, bool) {
	id, ok := m.Node.(*ast.IdentifierNode)
	if !ok || id.Value != "steps" {
		return "", false
	}
	p, ok := m.Property.(*ast.StringNode)
	if !ok {
		return "", false
	}
	return p.Value, true
}

// exprErrorOffset returns the rune offset of a compile error inside the
// expression source, or -1.
func exprErrorOffset(err error) (int, string) {
	var fe *file.Error
	if errors.As(err, &fe) {
		return fe.From, fe.Message
	}
	return -1, err.Error()
}
