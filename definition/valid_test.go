package definition

import (
	"encoding/json"
	"errors"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/expr-lang/expr"
	"github.com/loomwork/loom/duration"
	"github.com/loomwork/loom/schemas"
)

const orderYAML = `# yaml-language-server: $schema=../schemas/workflow.schema.json
name: order_approval
description: Approve and ship an order
input:
  type: object
  required: [order_id]
  properties: {order_id: {type: string}}
steps:
  - id: order
    task: fetch_order
    with: {id: "${ input.order_id }"}
    retry: {max_attempts: 3, delay: 1s, backoff: 2}
    timeout: 30s
  - id: approval
    pause: wait_for_approval
    schema: {type: object, required: [approved], properties: {approved: {type: boolean}}}
    timeout: 2d
  - if: ${ !steps.approval.output.approved }
    raise: {error: Rejected, message: "order ${ input.order_id } was rejected"}
  - id: stamp
    set: {approved_at: "${ now() }", ticket: "${ uuid4() }"}
  - id: stars
    map:
      items: "${ steps.order.output.lines }"
      as: line
      concurrency: 0
      tolerate: "10%"
      steps:
        - id: fetch
          task: echo
          with: "${ line }"
          compensate: {task: undo, with: "${ steps.fetch.output }"}
        - task: echo
          with: "${ steps.fetch.output } of ${ index }"
  - for: {while: "${ vars.more }", steps: [{set: {more: false}}]}
  - for: {items: [1, 2, "three"], steps: [{task: echo, with: "${ item }"}]}
  - id: both
    parallel:
      a: [{id: x, task: echo}, {task: echo, with: "${ steps.x.output }"}]
      b: [{task: echo, with: "${ steps.order.output }"}]
  - id: route
    switch:
      - when: "${ input.order_id == 'x' }"
        steps: [{task: echo}]
      - default: [{task: echo}]
  - id: guard
    try: [{task: echo}]
    catch: {errors: [Timeout], steps: [{task: log, with: {message: "${ err.message }"}}]}
    finally: [{task: echo}]
  - try: [{task: echo}]
    catch: {as: e, steps: [{task: log, with: "${ e.type }"}]}
  - sleep: 1h30m
  - sleep: {until: "${ date('2030-01-01') }"}
  - id: child
    call: child
    with: [1, "two", {three: 3}]
    fallback: {task: echo, with: "${ err.type }"}
  - return: {ok: true}
output: '${ {order: steps.order.output, ticket: vars.ticket} }'
timeout: 1h
---
name: child
version: 3
steps:
  - task: echo
`

func mustParse(t *testing.T, src string, opts ...Option) *Catalog {
	t.Helper()
	cat, err := Parse("order.yaml", []byte(src), opts...)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return cat
}

func TestValidTree(t *testing.T) {
	cat := mustParse(t, orderYAML)
	if got := cat.Names(); !reflect.DeepEqual(got, []string{"child", "order_approval"}) {
		t.Fatalf("Names() = %v", got)
	}
	if cat.Workflow("nope") != nil {
		t.Error("Workflow(nope) != nil")
	}
	wf := cat.Workflow("order_approval")
	if wf.Version != 1 || wf.Description != "Approve and ship an order" || wf.Timeout != time.Hour {
		t.Errorf("workflow header: %+v", wf)
	}
	if wf.Pos != (Pos{"order.yaml", 2, 1}) {
		t.Errorf("wf.Pos = %v", wf.Pos)
	}
	if wf.InputSchema == nil || wf.Input == nil {
		t.Error("input schema not compiled")
	}
	if cat.Workflow("child").Version != 3 {
		t.Error("child version")
	}
	keys := []string{}
	for _, s := range wf.Steps {
		keys = append(keys, s.Key+":"+string(s.Kind))
	}
	want := "order:task approval:pause #2:raise stamp:set stars:map #5:for #6:for both:parallel route:switch guard:try #10:try #11:sleep #12:sleep child:call #14:return"
	if got := strings.Join(keys, " "); got != want {
		t.Errorf("steps:\n got %s\nwant %s", got, want)
	}
	st := wf.Steps
	order := st[0]
	if order.Task != "fetch_order" || order.Timeout != 30*time.Second || order.Pos != (Pos{"order.yaml", 9, 5}) {
		t.Errorf("order: %+v", order)
	}
	if r := order.Retry; r == nil || r.MaxAttempts != 3 || r.Delay != time.Second || r.Backoff != 2 || r.MaxDelay != 0 || r.Jitter {
		t.Errorf("order.Retry = %+v", order.Retry)
	}
	if w := order.With; w.Form != FormMap || w.Map[0].Name != "id" || w.Map[0].Value.Form != FormExpr ||
		w.Map[0].Value.Expr.Pos != (Pos{"order.yaml", 11, 19}) {
		t.Errorf("order.With = %+v / %+v", w, w.Map[0].Value.Expr)
	}
	if ap := st[1]; ap.Pause != "wait_for_approval" || ap.Schema == nil || ap.SchemaRaw == nil || ap.Timeout != 48*time.Hour {
		t.Errorf("approval: %+v", ap)
	}
	if r := st[2]; r.If == nil || r.Raise.Error != "Rejected" || r.Raise.Message.Form != FormTemplate || len(r.Raise.Message.Parts) != 3 {
		t.Errorf("raise: %+v", r.Raise)
	}
	if s := st[3]; len(s.Set) != 2 || s.Set[0].Name != "approved_at" || s.Set[1].Name != "ticket" {
		t.Errorf("set: %+v", s.Set)
	}
	m := st[4].Map
	if m.As != "line" || m.Concurrency != 0 || !m.TolerateIsPercent || m.TolerateProportion != 0.1 || len(m.Steps) != 2 || m.Steps[0].Compensate == nil {
		t.Errorf("map: %+v", m)
	}
	if f := st[5].For; f.While == nil || f.Items != nil || f.MaxIterations != 10000 || f.As != "" {
		t.Errorf("for while: %+v", f)
	}
	if f := st[6].For; f.Items == nil || f.As != "item" {
		t.Errorf("for items: %+v", f)
	}
	if p := st[7].Parallel; len(p) != 2 || p[0].Name != "a" || p[1].Name != "b" || len(p[0].Steps) != 2 {
		t.Errorf("parallel: %+v", p)
	}
	if sw := st[8].Switch; len(sw) != 2 || sw[0].Key != "when[0]" || sw[1].Key != "default" || !sw[1].Default || sw[0].When == nil {
		t.Errorf("switch: %+v", sw)
	}
	if tr := st[9].Try; tr.Catch == nil || tr.Catch.As != "err" || !reflect.DeepEqual(tr.Catch.Errors, []string{"Timeout"}) || len(tr.Finally) != 1 {
		t.Errorf("try: %+v", tr)
	}
	if tr := st[10].Try; tr.Catch.As != "e" || tr.Catch.Errors != nil {
		t.Errorf("try 2: %+v", tr.Catch)
	}
	if st[11].Sleep.Duration != 90*time.Minute || st[12].Sleep.Until == nil {
		t.Errorf("sleep: %+v %+v", st[11].Sleep, st[12].Sleep)
	}
	if c := st[13]; c.Call != "child" || c.With.Form != FormList || c.Fallback == nil || c.Fallback.Task != "echo" {
		t.Errorf("call: %+v", c)
	}
	if wf.Output == nil || wf.Output.Form != FormExpr {
		t.Errorf("output: %+v", wf.Output)
	}
}

func TestDefaults(t *testing.T) {
	cat := mustParse(t, `name: d
steps:
  - task: a
    retry: {max_attempts: 2}
  - map: {items: "${ input }", task: a, tolerate: 2}
  - for: {items: "${ input }", steps: [{task: a}]}
  - try: [{task: a}]
    catch: {steps: [{task: b}]}
  - map: {items: "${ input }", call: d2}
---
name: d2
steps: [{task: a}]
`)
	st := cat.Workflow("d").Steps
	if r := st[0].Retry; r.MaxAttempts != 2 || r.Delay != time.Second || r.Backoff != 2 {
		t.Errorf("retry defaults: %+v", r)
	}
	if m := st[1].Map; m.As != "item" || m.Concurrency != 10 || m.TolerateCount != 2 || m.TolerateIsPercent || m.With != nil {
		t.Errorf("map defaults: %+v", m)
	}
	if f := st[2].For; f.As != "item" || f.MaxIterations != 10000 {
		t.Errorf("for defaults: %+v", f)
	}
	if c := st[3].Try.Catch; c.As != "err" {
		t.Errorf("catch defaults: %+v", c)
	}
	if st[0].Key != "#0" || st[3].Key != "#3" {
		t.Errorf("keys: %s %s", st[0].Key, st[3].Key)
	}
}

func TestEval(t *testing.T) {
	cat := mustParse(t, `name: e
steps:
  - id: a
    task: echo
    with:
      typed: "${ input.n * 2 }"
      text: "n=${ input.n }, list=${ input.list }, s=${ input.s }, nil=${ input.none }"
      t: "at ${ date('2024-05-01T10:00:00Z') }"
      keys: "${ keys(input.m) }"
      values: "${ values(input.m) }"
      pairs: "${ toPairs(input.m) }"
      lit: [1, 2.5, true, null, "x"]
      escaped: "$${ not an expression }"
      range: "${ sum(1..10) }"
      block: >
        ${ input.n + 1 }
`)
	env := map[string]any{"input": map[string]any{"n": 21, "list": []any{1, "a"}, "s": "str", "m": map[string]any{"b": 2, "a": 1, "c": 3}}}
	got, err := cat.Workflow("e").Steps[0].With.Eval(env)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"typed":   42,
		"text":    `n=21, list=[1,"a"], s=str, nil=null`,
		"t":       "at 2024-05-01T10:00:00Z",
		"keys":    []any{"a", "b", "c"},
		"values":  []any{1, 2, 3},
		"pairs":   []any{[]any{"a", 1}, []any{"b", 2}, []any{"c", 3}},
		"lit":     []any{1, 2.5, true, nil, "x"},
		"escaped": "${ not an expression }",
		"range":   55,
		"block":   22,
	}
	if !reflect.DeepEqual(got, want) {
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(want)
		t.Errorf("Eval:\n got %s\nwant %s", gj, wj)
	}
	if len(env) != 1 {
		t.Errorf("Eval changed the caller's env: %v", env)
	}
	var nilValue *Value
	if v, err := nilValue.Eval(env); v != nil || err != nil {
		t.Errorf("nil Value: %v, %v", v, err)
	}
}

func TestEvalLimits(t *testing.T) {
	cat := mustParse(t, `name: l
steps:
  - set:
      loop: "${ all(1..1000, all(1..1000, all(1..10, true))) }"
      big: "${ 1..100000000 }"
      grow: "${ reduce(1..40, #acc + #acc, 'xy') }"
      lets: "${ let a = 'xxxxxxxxxxxxxxxx'; let b = a+a+a+a+a+a+a+a; let c = b+b+b+b+b+b+b+b; let d = c+c+c+c+c+c+c+c; let e = d+d+d+d+d+d+d+d; let f = e+e+e+e+e+e+e+e; let g = f+f+f+f+f+f+f+f; len(g) }"
      fail: "${ input.x.y.z }"
      div: "${ 1 / input.zero }"
      ok: "${ count(1..1000, # % 2 == 0) }"
`)
	for _, f := range cat.Workflow("l").Steps[0].Set {
		v, err := f.Value.Eval(map[string]any{"input": map[string]any{"zero": 0}})
		switch f.Name {
		case "ok":
			if err != nil || v != 500 {
				t.Errorf("ok: %v, %v", v, err)
			}
		case "div":
			// 1/0 is +Inf in expr: not an error, but no panic either.
		case "fail":
			if err == nil {
				t.Errorf("fail: no error")
			}
		default:
			if !errors.Is(err, ErrExprLimit) && (err == nil || !strings.Contains(err.Error(), "memory budget")) {
				t.Errorf("%s: want a budget error, got %v, %v", f.Name, truncate(v), err)
			}
		}
	}
}

func truncate(v any) string {
	s, _ := json.Marshal(v)
	if len(s) > 80 {
		s = s[:80]
	}
	return string(s)
}

func TestPin(t *testing.T) {
	cat := mustParse(t, `name: root
steps:
  - call: a
  - task: x
    compensate: {call: c}
---
name: a
steps:
  - map: {items: [1], call: b}
---
name: b
steps: [{task: "y", with: {html: "<a & b>", n: 1.5, big: 10000000000}}]
---
name: c
steps: [{task: z}]
---
name: unrelated
steps: [{task: z}]
`)
	src, hash, err := cat.Pin("root")
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(src), "\n---\n")
	if len(docs) != 4 || !strings.Contains(docs[0], `"name":"a"`) || !strings.Contains(docs[3], `"name":"root"`) {
		t.Fatalf("pinned:\n%s", src)
	}
	if !strings.Contains(string(src), `"<a & b>"`) {
		t.Errorf("HTML escaped: %s", src)
	}
	if len(hash) != 64 {
		t.Errorf("hash %q", hash)
	}
	again, err := Parse("pinned", src)
	if err != nil {
		t.Fatalf("Parse(pinned): %v\n%s", err, src)
	}
	src2, hash2, err := again.Pin("root")
	if err != nil || hash2 != hash || string(src2) != string(src) {
		t.Errorf("re-pinned differs:\n%s\n%s", src, src2)
	}
	if !reflect.DeepEqual(again.Names(), []string{"a", "b", "c", "root"}) {
		t.Errorf("pinned names %v", again.Names())
	}
	if _, _, err := cat.Pin("nope"); err == nil {
		t.Error("Pin(nope): no error")
	}
}

// The workflow schema checks durations with the one grammar Parse reads.
func TestSchemaDurationsAreTheDurationGrammar(t *testing.T) {
	var n int
	for _, m := range regexp.MustCompile(`"pattern": "(.*(?:ms\|s\|m\|h).*)"`).FindAllSubmatch(schemas.Workflow, -1) {
		var p string
		if err := json.Unmarshal([]byte(`"`+string(m[1])+`"`), &p); err != nil {
			t.Fatal(err)
		}
		if p != duration.Pattern {
			t.Errorf("workflow.schema.json has the duration pattern %s, want duration.Pattern %s", p, duration.Pattern)
		}
		n++
	}
	if n == 0 {
		t.Fatal("no duration pattern found in workflow.schema.json")
	}
}

func TestErrorList(t *testing.T) {
	var l ErrorList
	for i := 0; i < MaxErrors+5; i++ {
		l.Add(Pos{"f", MaxErrors + 5 - i, 1}, "m")
	}
	l.Add(Pos{"f", 1, 1}, "m")
	l.finish()
	if len(l) != MaxErrors+1 || l[0].Pos.Line != 1 || !strings.HasPrefix(l[MaxErrors].Msg, "too many errors (5 more") {
		t.Errorf("finish: %d %v", len(l), l[MaxErrors])
	}
	if (ErrorList{}).Err() != nil {
		t.Error("empty Err() != nil")
	}
	if got := (Error{Pos{"a.yaml", 3, 4}, "bad"}).Error(); got != "a.yaml:3:4: bad" {
		t.Error(got)
	}
}

// Names lists what an evaluation's env needs: the names the expressions
// read, functions included, and every name for $env.
func TestNamesAreWhatTheExpressionsRead(t *testing.T) {
	cat, err := Parse("n.yaml", []byte(`name: n
steps:
  - id: s
    task: t
  - task: t
    with: {a: "${ input.a + steps.s.output }", b: "x ${ now() }", c: 1}
  - task: t
    with: ${ $env.input }
  - task: t
    with: {plain: [1, 2]}
`))
	if err != nil {
		t.Fatal(err)
	}
	steps := cat.Workflow("n").Steps
	if got, want := steps[1].With.Names(), []string{"input", "now", "steps"}; !slices.Equal(got, want) {
		t.Errorf("Names = %q, want %q", got, want)
	}
	if got := steps[2].With.Names(); !slices.Contains(got, "input") || !slices.Contains(got, "steps") || !slices.Contains(got, "execution") {
		t.Errorf("Names of ${ $env.input } = %q, want every name", got)
	}
	if got := steps[3].With.Names(); got != nil {
		t.Errorf("Names of a value without expressions = %q, want none", got)
	}
}

// TestIdentExpression: an expression that is one variable (`${ n }`) is
// read from the environment without running its program, and gives what
// the program gives, whether the name is bound or not.
func TestIdentExpression(t *testing.T) {
	cat, err := Parse("w.yaml", []byte(`name: w
steps:
  - for: {items: [1], as: n, steps: [{task: t, with: '${ n }'}]}
  - {task: t, with: '${ input }'}
  - {task: t, with: '${ input ?? 1 }'}
`))
	if err != nil {
		t.Fatal(err)
	}
	steps := cat.Workflow("w").Steps
	for i, c := range []struct {
		e     *Expr
		ident string
	}{
		{steps[0].For.Steps[0].With.Expr, "n"},
		{steps[1].With.Expr, "input"},
		{steps[2].With.Expr, ""},
	} {
		if c.e.ident != c.ident {
			t.Errorf("%d: ident %q, want %q", i, c.e.ident, c.ident)
		}
		for _, env := range []map[string]any{{"n": []any{1.5, "x"}, "input": map[string]any{"a": 1}}, {}} {
			got, err := c.e.Eval(env)
			want, werr := expr.Run(c.e.Program, env)
			if err != nil || werr != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("%s in %v: %v (%v), the program gives %v (%v)", c.e.Source, env, got, err, want, werr)
			}
		}
	}
}
