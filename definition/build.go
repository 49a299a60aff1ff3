package definition

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/loomwork/loom/duration"
	"github.com/loomwork/loom/secrets"
	"github.com/santhosh-tekuri/jsonschema/v5"
	"gopkg.in/yaml.v3"
)

var idRE = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// reserved names cannot be an `as` name: they would hide a name of the
// language.
var reserved = map[string]bool{"input": true, "steps": true, "vars": true, "execution": true, "index": true}

// builder turns one workflow document into a typed Workflow, checking
// meaning as it goes. It stays silent about shapes the schema already
// reported (wrong types, missing keys).
type builder struct {
	s     *source
	errs  *ErrorList
	cache map[string]*compiled
	refs  *[]ref // calls and tasks, for catalog checks

	wf       *Workflow
	ids      map[string]*yaml.Node // every step id of the workflow
	added    []string              // ids in registration order
	pending  []pendingRef
	reported map[Pos]bool
}

// ref is a use of a workflow or a task name, checked against the catalog
// or the task registry once every file is loaded.
type ref struct {
	from   *Workflow
	call   string
	task   string
	secret string // a literal secret("NAME")
	pos    Pos
	with   *yaml.Node // a task's input, for TaskInputSchema
	s      *source
}

type pendingRef struct {
	id  string
	pos Pos
}

// scope is what a step can see: step ids (shared by blocks, fresh for map
// items, for iterations and parallel branches) and extra names.
type scope struct {
	parent *scope
	vis    map[string]bool
	names  []string // sorted
}

func (sc *scope) child(extra ...string) *scope {
	return &scope{parent: sc, vis: map[string]bool{}, names: withNames(sc.names, extra)}
}

func (sc *scope) block(extra ...string) *scope {
	return &scope{parent: sc.parent, vis: sc.vis, names: withNames(sc.names, extra)}
}

func withNames(base, extra []string) []string {
	if len(extra) == 0 {
		return base
	}
	out := append([]string(nil), base...)
	for _, e := range extra {
		found := false
		for _, b := range out {
			if b == e {
				found = true
			}
		}
		if !found {
			out = append(out, e)
		}
	}
	sort.Strings(out)
	return out
}

func (sc *scope) sees(id string) bool {
	for s := sc; s != nil; s = s.parent {
		if s.vis[id] {
			return true
		}
	}
	return false
}

// add reports a problem unless one was already reported at that place.
func (b *builder) add(p Pos, msg string) {
	if b.reported[p] {
		return
	}
	b.reported[p] = true
	b.errs.Add(p, msg)
}

func (b *builder) pos(n *yaml.Node) Pos { return b.s.pos(n) }

func str(n *yaml.Node) (string, bool) {
	n = resolve(n)
	if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		return "", false
	}
	return n.Value, true
}

func intVal(n *yaml.Node) (int, bool) {
	n = resolve(n)
	if n == nil || n.Kind != yaml.ScalarNode {
		return 0, false
	}
	switch n.ShortTag() {
	case "!!int":
		i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
		if err != nil || i > math.MaxInt32*1024 || i < -math.MaxInt32*1024 {
			return 0, false
		}
		return int(i), true
	case "!!float":
		var f float64
		if n.Decode(&f) == nil && f == math.Trunc(f) && math.Abs(f) < 1<<40 {
			return int(f), true
		}
	}
	return 0, false
}

func floatVal(n *yaml.Node) (float64, bool) {
	n = resolve(n)
	if n == nil || n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") {
		return 0, false
	}
	var f float64
	if n.Decode(&f) != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

func boolVal(n *yaml.Node) (bool, bool) {
	n = resolve(n)
	if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
		return false, false
	}
	var v bool
	return v, n.Decode(&v) == nil
}

func strList(n *yaml.Node) []string {
	n = resolve(n)
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil
	}
	var out []string
	for _, c := range n.Content {
		if s, ok := str(c); ok {
			out = append(out, s)
		}
	}
	return out
}

// workflow builds the workflow of one document.
func (b *builder) workflow(root *yaml.Node, raw any) *Workflow {
	root = resolve(root)
	if root == nil || root.Kind != yaml.MappingNode {
		return nil
	}
	wf := &Workflow{Version: 1, Pos: b.pos(root), Raw: raw, node: root}
	b.wf = wf
	b.ids = map[string]*yaml.Node{}
	top := &scope{vis: map[string]bool{}}
	m := fields(root)
	if v, ok := str(m["name"]); ok {
		wf.Name = v
	}
	if v, ok := intVal(m["version"]); ok {
		wf.Version = v
	}
	if v, ok := str(m["description"]); ok {
		wf.Description = v
	}
	if n := m["input"]; n != nil {
		if rm, ok := raw.(map[string]any); ok {
			wf.Input = rm["input"]
		}
		wf.InputSchema = b.jsonSchema(n, wf.Input, "input")
	}
	wf.Steps = b.steps(m["steps"], top)
	if n := m["output"]; n != nil {
		wf.Output = b.value(n, top)
	}
	wf.Timeout = b.duration(m["timeout"])
	wf.Schedule = b.schedule(m["schedule"], raw, wf)
	b.resolvePending()
	return wf
}

// fields maps a mapping's keys to their (resolved) values.
func fields(n *yaml.Node) map[string]*yaml.Node {
	ps := pairs(n)
	m := make(map[string]*yaml.Node, len(ps))
	for _, p := range ps {
		if _, dup := m[p.Key.Value]; !dup {
			m[p.Key.Value] = resolve(p.Value)
		}
	}
	return m
}

func keyNode(n *yaml.Node, key string) *yaml.Node {
	_, k := lookup(n, key)
	return k
}

func (b *builder) steps(n *yaml.Node, sc *scope) []*Step {
	n = resolve(n)
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil
	}
	out := make([]*Step, 0, len(n.Content))
	for i, c := range n.Content {
		if st := b.step(resolve(c), i, sc); st != nil {
			out = append(out, st)
		}
	}
	return out
}

func (b *builder) step(n *yaml.Node, index int, sc *scope) *Step {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	m := fields(n)
	st := &Step{Key: "#" + strconv.Itoa(index), Pos: b.pos(n)}
	if id, ok := str(m["id"]); ok && idRE.MatchString(id) {
		st.ID, st.Key = id, id
		if first, dup := b.ids[id]; dup {
			b.add(b.pos(m["id"]), fmt.Sprintf("duplicate step id %q (first at line %d)", id, first.Line))
		} else {
			b.ids[id] = m["id"]
		}
	}
	kinds, kindKeys := stepKinds(n)
	switch len(kinds) {
	case 0:
		allowed := map[string]bool{}
		for _, k := range stepKeys("") {
			allowed[k] = true
		}
		for _, p := range pairs(n) {
			if !allowed[p.Key.Value] {
				return nil // an unknown key, reported by the schema, is likely the kind
			}
		}
		b.add(st.Pos, "step has no kind: it needs one of task, set, pause, call, map, for, parallel, switch, try, sleep, raise or return")
		return nil
	case 1:
	default:
		b.add(b.pos(kindKeys[1]), fmt.Sprintf("step has two kinds, %q and %q: a step has exactly one kind key", kinds[0], kinds[1]))
		return nil
	}
	st.Kind = kinds[0]
	if c := m["if"]; c != nil {
		st.If = b.exprField(c, sc, "if")
	}
	switch st.Kind {
	case KindTask:
		st.Task = b.taskName(m["task"], "task", m["with"])
		if w := m["with"]; w != nil {
			st.With = b.value(w, sc)
		}
	case KindCall:
		st.Call = b.callName(m["call"], "call")
		if w := m["with"]; w != nil {
			st.With = b.value(w, sc)
		}
	case KindSet:
		for _, p := range pairs(m["set"]) {
			st.Set = append(st.Set, Field{Name: p.Key.Value, Value: b.value(p.Value, sc), Pos: b.pos(p.Key)})
		}
	case KindPause:
		if v, ok := str(m["pause"]); ok {
			st.Pause = v
			b.literal(m["pause"], "pause")
		}
		if sn := m["schema"]; sn != nil {
			st.SchemaRaw = b.plain(sn)
			st.Schema = b.jsonSchema(sn, st.SchemaRaw, "schema")
		}
	case KindMap:
		st.Map = b.mapStep(m["map"], sc)
	case KindFor:
		st.For = b.forStep(m["for"], sc)
	case KindParallel:
		for _, p := range pairs(m["parallel"]) {
			st.Parallel = append(st.Parallel, &Branch{Name: p.Key.Value, Steps: b.steps(p.Value, sc.child())})
		}
	case KindSwitch:
		st.Switch = b.switchStep(m["switch"], sc)
	case KindTry:
		st.Try = b.tryStep(m, sc)
	case KindSleep:
		sn := m["sleep"]
		st.Sleep = &Sleep{}
		if sn != nil && sn.Kind == yaml.MappingNode {
			if u := fields(sn)["until"]; u != nil {
				st.Sleep.Until = b.exprField(u, sc, "sleep.until")
			}
		} else {
			st.Sleep.Duration = b.duration(sn)
		}
	case KindRaise:
		rm := fields(m["raise"])
		st.Raise = &Raise{}
		if v, ok := str(rm["error"]); ok {
			st.Raise.Error = v
			b.literal(rm["error"], "raise.error")
		}
		if v := rm["message"]; v != nil {
			st.Raise.Message = b.value(v, sc)
		}
		if v := rm["data"]; v != nil {
			st.Raise.Data = b.value(v, sc)
		}
	case KindReturn:
		st.Return = b.value(m["return"], sc)
	}
	if r := m["retry"]; r != nil {
		st.Retry = b.retry(r)
	}
	st.Timeout = b.duration(m["timeout"])
	if f := m["fallback"]; f != nil {
		st.Fallback = b.action(f, sc.block("err"), "fallback")
	}
	if st.ID != "" {
		sc.vis[st.ID] = true
		b.added = append(b.added, st.ID)
	}
	if c := m["compensate"]; c != nil {
		st.Compensate = b.action(c, sc, "compensate")
	}
	return st
}

// literal reports an expression where a literal name is needed.
func (b *builder) literal(n *yaml.Node, what string) {
	if v, ok := str(n); ok && hasExpr(v) {
		b.add(b.pos(n), fmt.Sprintf("%s must be a literal name: expressions are not allowed here", what))
	}
}

func (b *builder) taskName(n *yaml.Node, what string, with *yaml.Node) string {
	v, ok := str(n)
	if !ok {
		return ""
	}
	b.literal(n, what)
	*b.refs = append(*b.refs, ref{from: b.wf, task: v, pos: b.pos(n), with: resolve(with), s: b.s})
	return v
}

func (b *builder) callName(n *yaml.Node, what string) string {
	v, ok := str(n)
	if !ok || !nameRE.MatchString(v) {
		return ""
	}
	*b.refs = append(*b.refs, ref{from: b.wf, call: v, pos: b.pos(n)})
	return v
}

func (b *builder) action(n *yaml.Node, sc *scope, what string) *Action {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	m := fields(n)
	a := &Action{Pos: b.pos(n)}
	if m["task"] != nil {
		a.Task = b.taskName(m["task"], what+".task", m["with"])
	} else if m["call"] != nil {
		a.Call = b.callName(m["call"], what+".call")
	}
	if w := m["with"]; w != nil {
		a.With = b.value(w, sc)
	}
	return a
}

func (b *builder) asName(n *yaml.Node, def, what string) string {
	v, ok := str(n)
	if !ok || !idRE.MatchString(v) {
		return def
	}
	if reserved[v] || funcs[v] != nil {
		b.add(b.pos(n), fmt.Sprintf("%s: %q is a reserved name; choose another", what, v))
		return def
	}
	return v
}

func (b *builder) mapStep(n *yaml.Node, sc *scope) *Map {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	m := fields(n)
	mp := &Map{As: "item", Concurrency: 10}
	mp.As = b.asName(m["as"], "item", "map.as")
	if it := m["items"]; it != nil {
		mp.Items = b.items(it, sc, "map.items")
	}
	if c, ok := intVal(m["concurrency"]); ok && c >= 0 {
		mp.Concurrency = c
	}
	if c, ok := intVal(m["max_items"]); ok && c >= 1 {
		mp.MaxItems = c
	}
	isc := sc.child(mp.As, "index")
	switch {
	case m["call"] != nil:
		mp.Call = b.callName(m["call"], "map.call")
	case m["task"] != nil:
		mp.Task = b.taskName(m["task"], "map.task", m["with"])
	case m["steps"] != nil:
		mp.Steps = b.steps(m["steps"], isc)
	}
	if w := m["with"]; w != nil {
		mp.With = b.value(w, isc)
	}
	if t := m["tolerate"]; t != nil {
		b.tolerate(t, mp)
	}
	return mp
}

func (b *builder) tolerate(t *yaml.Node, mp *Map) {
	if c, ok := intVal(t); ok {
		if c >= 0 {
			mp.TolerateCount = c
		}
		return
	}
	s, ok := str(t)
	if !ok || !strings.HasSuffix(s, "%") {
		return
	}
	p, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil {
		return
	}
	if p < 0 || p > 100 {
		b.add(b.pos(t), fmt.Sprintf("map.tolerate %q is out of range: a percentage goes from 0%% to 100%%", s))
		return
	}
	mp.TolerateIsPercent = true
	mp.TolerateProportion = p / 100
}

func (b *builder) forStep(n *yaml.Node, sc *scope) *For {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	m := fields(n)
	f := &For{As: "item", MaxIterations: 10000}
	if it := m["items"]; it != nil {
		f.As = b.asName(m["as"], "item", "for.as")
		f.Items = b.items(it, sc, "for.items")
		f.Steps = b.steps(m["steps"], sc.child(f.As, "index"))
		return f
	}
	f.As = ""
	isc := sc.child("index")
	if w := m["while"]; w != nil {
		f.While = b.exprField(w, isc, "for.while")
	}
	if c, ok := intVal(m["max_iterations"]); ok && c >= 1 {
		f.MaxIterations = c
	}
	f.Steps = b.steps(m["steps"], isc)
	return f
}

func (b *builder) switchStep(n *yaml.Node, sc *scope) []*Case {
	n = resolve(n)
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil
	}
	var cases []*Case
	mark := len(b.added)
	var armIDs []string
	for i, cn := range n.Content {
		cn = resolve(cn)
		if cn == nil || cn.Kind != yaml.MappingNode {
			continue
		}
		m := fields(cn)
		c := &Case{Key: fmt.Sprintf("when[%d]", i)}
		if d := m["default"]; d != nil {
			c.Default, c.Key = true, "default"
			if i != len(n.Content)-1 {
				b.add(b.pos(keyNode(cn, "default")), "the default case must be the last case of a switch")
			}
		} else if w := m["when"]; w != nil {
			c.When = b.exprField(w, sc, "when")
		}
		body := m["steps"]
		if c.Default {
			body = m["default"]
		}
		c.Steps = b.steps(body, sc.block())
		// The arms exclude each other: an arm cannot see another's steps.
		for _, id := range b.added[mark:] {
			delete(sc.vis, id)
			armIDs = append(armIDs, id)
		}
		b.added = b.added[:mark]
		cases = append(cases, c)
	}
	for _, id := range armIDs {
		sc.vis[id] = true
	}
	b.added = append(b.added, armIDs...)
	return cases
}

func (b *builder) tryStep(m map[string]*yaml.Node, sc *scope) *Try {
	t := &Try{Steps: b.steps(m["try"], sc.block())}
	if cn := m["catch"]; cn != nil && cn.Kind == yaml.MappingNode {
		cm := fields(cn)
		c := &Catch{Errors: strList(cm["errors"])}
		c.As = b.asName(cm["as"], "err", "catch.as")
		c.Steps = b.steps(cm["steps"], sc.block(c.As))
		t.Catch = c
	}
	if f := m["finally"]; f != nil {
		t.Finally = b.steps(f, sc.block())
	}
	return t
}

func (b *builder) retry(n *yaml.Node) *Retry {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	m := fields(n)
	r := &Retry{MaxAttempts: 1, Delay: time.Second, Backoff: 2}
	if v, ok := intVal(m["max_attempts"]); ok && v >= 1 {
		r.MaxAttempts = v
	}
	if m["delay"] != nil {
		r.Delay = b.duration(m["delay"])
	}
	if v, ok := floatVal(m["backoff"]); ok && v >= 1 {
		r.Backoff = v
	}
	if m["max_delay"] != nil {
		r.MaxDelay = b.duration(m["max_delay"])
		if isDurationNode(m["max_delay"]) && r.MaxDelay < r.Delay {
			b.add(b.pos(m["max_delay"]), fmt.Sprintf("retry.max_delay (%s) is shorter than retry.delay (%s)", r.MaxDelay, r.Delay))
		}
	}
	if v, ok := boolVal(m["jitter"]); ok {
		r.Jitter = v
	}
	r.Errors = strList(m["errors"])
	return r
}

func isDurationNode(n *yaml.Node) bool {
	s, ok := str(n)
	if !ok {
		return false
	}
	_, err := duration.Parse(s)
	return err == nil
}

// duration parses a duration node; nil is 0. The schema reports a
// malformed one, so only what it cannot see is reported here.
func (b *builder) duration(n *yaml.Node) time.Duration {
	s, ok := str(n)
	if !ok || !duration.Match(s) {
		return 0
	}
	d, err := duration.Parse(s)
	if err != nil {
		b.add(b.pos(n), err.Error())
		return 0
	}
	return d
}

// plain converts a node to plain data, without reporting (the document
// pass did).
func (b *builder) plain(n *yaml.Node) any {
	p := &plainer{s: b.s, errs: new(ErrorList)}
	return p.value(n, 0)
}

// jsonSchema compiles a JSON Schema written in the definition; a problem is
// reported at the place inside it.
func (b *builder) jsonSchema(n *yaml.Node, raw any, what string) *jsonschema.Schema {
	n = resolve(n)
	if n == nil || (n.Kind != yaml.MappingNode && n.ShortTag() != "!!bool") {
		return nil
	}
	sch, inst, msg := compileSchema(raw)
	if msg == "" {
		return sch
	}
	at, _ := nodeAt(n, splitPointer(inst))
	if at == nil {
		at = n
	}
	b.add(b.pos(at), fmt.Sprintf("%s is not a valid JSON Schema: %s", what, msg))
	return nil
}

// compileSchema compiles a JSON Schema given as plain data. On failure it
// returns the instance location of the problem and a message.
func compileSchema(raw any) (sch *jsonschema.Schema, inst, msg string) {
	data, err := json.Marshal(raw)
	if err != nil {
		return nil, "", err.Error()
	}
	c := jsonschema.NewCompiler()
	c.LoadURL = func(s string) (io.ReadCloser, error) {
		return nil, fmt.Errorf("external $ref %s is not supported: keep schemas self-contained", s)
	}
	const url = "loom:///schema.json"
	if err := c.AddResource(url, bytes.NewReader(data)); err != nil {
		return nil, "", err.Error()
	}
	defer func() {
		if r := recover(); r != nil {
			sch, inst, msg = nil, "", fmt.Sprint(r)
		}
	}()
	sch, err = c.Compile(url)
	if err == nil {
		return sch, "", ""
	}
	if se, ok := err.(*jsonschema.SchemaError); ok {
		if ve, ok := se.Err.(*jsonschema.ValidationError); ok {
			for len(ve.Causes) > 0 {
				ve = ve.Causes[0]
			}
			m := ve.Message
			if ve.InstanceLocation != "" {
				m = ve.InstanceLocation + ": " + m
			}
			return nil, ve.InstanceLocation, m
		}
		if se.Err != nil {
			return nil, "", strings.TrimPrefix(strings.ReplaceAll(se.Err.Error(), url, "schema"), "jsonschema: ")
		}
	}
	return nil, "", strings.ReplaceAll(err.Error(), url, "schema")
}

// items builds a map/for items: an expression, or a literal list.
func (b *builder) items(n *yaml.Node, sc *scope, what string) *Expr {
	n = resolve(n)
	if n != nil && n.Kind == yaml.SequenceNode {
		v := b.value(n, sc)
		if v != nil && !v.literal() {
			b.add(b.pos(n), what+": a literal list cannot hold expressions; write one expression instead, like \"${ [a, b] }\"")
			return nil
		}
		src, err := exprLiteral(b.plain(n))
		if err != nil {
			b.add(b.pos(n), what+": "+err.Error())
			return nil
		}
		e := b.compileExpr(n, segment{Expr: true, Source: src, Off: -1}, sc)
		if e != nil {
			e.Pos = b.pos(n)
		}
		return e
	}
	return b.exprField(n, sc, what)
}

// literal reports whether v holds no expression.
func (v *Value) literal() bool {
	switch v.Form {
	case FormExpr, FormTemplate:
		return false
	case FormMap:
		for _, f := range v.Map {
			if !f.Value.literal() {
				return false
			}
		}
	case FormList:
		for _, e := range v.List {
			if !e.literal() {
				return false
			}
		}
	}
	return true
}

// exprLiteral writes plain data as expr-lang source.
func exprLiteral(v any) (string, error) {
	var sb strings.Builder
	var w func(any) error
	w = func(v any) error {
		switch x := v.(type) {
		case nil:
			sb.WriteString("nil")
		case bool, int:
			fmt.Fprint(&sb, x)
		case float64:
			sb.WriteString(strconv.FormatFloat(x, 'g', -1, 64))
			if x == math.Trunc(x) && !strings.ContainsAny(sb.String(), "e.") {
				sb.WriteString(".0")
			}
		case string:
			sb.WriteString(strconv.Quote(x))
		case []any:
			sb.WriteByte('[')
			for i, e := range x {
				if i > 0 {
					sb.WriteString(", ")
				}
				if err := w(e); err != nil {
					return err
				}
			}
			sb.WriteByte(']')
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			sb.WriteByte('{')
			for i, k := range keys {
				if i > 0 {
					sb.WriteString(", ")
				}
				sb.WriteString(strconv.Quote(k))
				sb.WriteString(": ")
				if err := w(x[k]); err != nil {
					return err
				}
			}
			sb.WriteByte('}')
		default:
			return fmt.Errorf("unsupported value %T", v)
		}
		return nil
	}
	err := w(v)
	return sb.String(), err
}

// exprField builds a field that must be one expression (or a boolean, for
// if).
func (b *builder) exprField(n *yaml.Node, sc *scope, what string) *Expr {
	n = resolve(n)
	if v, ok := boolVal(n); ok && what == "if" {
		return b.compileExpr(n, segment{Expr: true, Source: strconv.FormatBool(v), Off: -1}, sc)
	}
	s, ok := str(n)
	if !ok {
		return nil
	}
	segs, serr := splitTemplate(s)
	if serr != nil {
		b.add(b.s.scalarPos(n, serr.Off), serr.Msg)
		return nil
	}
	var one *segment
	for i := range segs {
		if segs[i].Expr {
			if one != nil {
				b.add(b.pos(n), fmt.Sprintf("%s must be one expression ${ … }, not a template", what))
				return nil
			}
			one = &segs[i]
		} else if strings.TrimSpace(segs[i].Text) != "" {
			one = nil
			break
		}
	}
	if one == nil {
		b.add(b.pos(n), fmt.Sprintf("%s must be one expression ${ … }", what))
		return nil
	}
	return b.compileExpr(n, *one, sc)
}

// value builds a Value from any node.
func (b *builder) value(n *yaml.Node, sc *scope) *Value {
	v := b.valueForm(n, sc)
	if v != nil {
		v.collectNames()
	}
	return v
}

func (b *builder) valueForm(n *yaml.Node, sc *scope) *Value {
	n = resolve(n)
	if n == nil {
		return nil
	}
	v := &Value{Pos: b.pos(n)}
	switch n.Kind {
	case yaml.MappingNode:
		v.Form = FormMap
		for _, p := range pairs(n) {
			v.Map = append(v.Map, Field{Name: p.Key.Value, Value: b.value(p.Value, sc), Pos: b.pos(p.Key)})
		}
		return v
	case yaml.SequenceNode:
		v.Form = FormList
		v.List = make([]*Value, len(n.Content))
		for i, c := range n.Content {
			v.List[i] = b.value(c, sc)
		}
		return v
	}
	s, isStr := str(n)
	if !isStr || !hasExpr(s) {
		v.Form = FormLit
		p := &plainer{s: b.s, errs: new(ErrorList)}
		v.Lit = p.scalar(n)
		return v
	}
	segs, serr := splitTemplate(s)
	if serr != nil {
		b.add(b.s.scalarPos(n, serr.Off), serr.Msg)
		v.Form, v.Lit = FormLit, s
		return v
	}
	exprs, text := 0, false
	for _, sg := range segs {
		if sg.Expr {
			exprs++
		} else if strings.TrimSpace(sg.Text) != "" {
			text = true
		}
	}
	if exprs == 1 && !text {
		for _, sg := range segs {
			if sg.Expr {
				v.Form = FormExpr
				v.Expr = b.compileExpr(n, sg, sc)
			}
		}
		return v
	}
	v.Form = FormTemplate
	for _, sg := range segs {
		if sg.Expr {
			v.Parts = append(v.Parts, Part{Expr: b.compileExpr(n, sg, sc)})
		} else {
			v.Parts = append(v.Parts, Part{Text: sg.Text})
		}
	}
	if exprs == 0 {
		v.Form, v.Lit, v.Parts = FormLit, segs[0].Text, nil
	}
	return v
}

// compileExpr compiles one expression of scalar n in scope sc and checks
// its step references. Off < 0 means the source is generated (a literal
// list or boolean): positions are the scalar's.
func (b *builder) compileExpr(n *yaml.Node, sg segment, sc *scope) *Expr {
	env := envFor(sc.names)
	key := env.key + "\x00" + sg.Source
	c, ok := b.cache[key]
	if !ok {
		c = compile(env, sg.Source)
		b.cache[key] = c
	}
	at := func(off int) Pos {
		if sg.Off < 0 || off < 0 {
			return b.s.scalarPos(n, max(sg.Off, 0))
		}
		return b.s.scalarPos(n, sg.Off+off)
	}
	e := &Expr{Source: sg.Source, Pos: at(0), Program: c.program, names: c.names, private: c.private, ident: c.ident}
	if c.err != nil {
		off, msg := exprErrorOffset(c.err)
		if strings.HasPrefix(msg, "unknown name ") {
			msg += " (in scope: " + strings.Join(append(append([]string{}, scopeNames...), sc.names...), ", ") + " and functions)"
		}
		b.add(at(off), fmt.Sprintf("%s in %s", msg, e.describe()))
		return nil
	}
	for _, sr := range c.secrets {
		if err := secrets.CheckName(sr.Name); err != nil {
			b.add(at(sr.Off), err.Error())
			continue
		}
		*b.refs = append(*b.refs, ref{from: b.wf, secret: sr.Name, pos: at(sr.Off)})
	}
	for _, r := range c.refs {
		if !sc.sees(r.ID) {
			b.pending = append(b.pending, pendingRef{id: r.ID, pos: at(r.Off)})
			continue
		}
		if r.Member != "" && r.Member != "output" {
			b.add(at(r.MemOff), fmt.Sprintf("steps.%s has only output: write steps.%s.output.%s", r.ID, r.ID, r.Member))
		}
	}
	return e
}

// resolvePending reports step references that are not in scope, now that
// every id of the workflow is known.
func (b *builder) resolvePending() {
	for _, p := range b.pending {
		if _, ok := b.ids[p.id]; ok {
			b.add(p.pos, fmt.Sprintf("step %q does not run before this expression in its scope", p.id))
			continue
		}
		ids := make([]string, 0, len(b.ids))
		for id := range b.ids {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		msg := fmt.Sprintf("unknown step %q", p.id)
		if s := suggest(p.id, ids); s != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		}
		b.add(p.pos, msg)
	}
	b.pending = nil
}
