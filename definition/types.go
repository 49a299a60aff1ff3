package definition

import (
	"slices"
	"sort"
	"time"

	"github.com/expr-lang/expr/vm"
	"github.com/santhosh-tekuri/jsonschema/v5"
	"gopkg.in/yaml.v3"
)

// Pos is a place in a definition file. Line and Col are 1-based; a zero Pos
// means the place is unknown (a pinned definition re-read from the journal).
type Pos struct {
	File string
	Line int
	Col  int
}

// Catalog is every workflow loaded from one file or directory, by name. It is
// immutable once returned by Load or Parse and safe for concurrent use.
type Catalog struct {
	workflows  map[string]*Workflow
	names      []string // sorted
	secretRefs []ref    // literal secret("NAME") uses, for CheckSecrets
}

// Workflow is one checked workflow definition.
type Workflow struct {
	Name        string
	Version     int // default 1
	Description string
	Pos         Pos // of the document's first key

	// Input is the run input's JSON Schema as written (nil when absent) and
	// InputSchema its compiled form.
	Input       any
	InputSchema *jsonschema.Schema

	Steps []*Step

	// Output is the workflow's output; nil means "the last step's output".
	Output *Value
	// Timeout bounds the whole execution; 0 means none.
	Timeout time.Duration
	// Schedule is when `loom serve` starts the workflow by itself (nil:
	// only when asked).
	Schedule *Schedule

	// Raw is the document as plain data (maps, lists, scalars): the source of
	// the canonical form that the journal pins.
	Raw any

	node *yaml.Node // the document, for the key order of the canonical form
}

// Kind is a step's kind: the one kind key it has.
type Kind string

// The step kinds of SPEC §2.
const (
	KindTask     Kind = "task"
	KindSet      Kind = "set"
	KindPause    Kind = "pause"
	KindCall     Kind = "call"
	KindMap      Kind = "map"
	KindFor      Kind = "for"
	KindParallel Kind = "parallel"
	KindSwitch   Kind = "switch"
	KindTry      Kind = "try"
	KindSleep    Kind = "sleep"
	KindRaise    Kind = "raise"
	KindReturn   Kind = "return"
)

// Step is one step. Exactly the fields of its Kind are set.
type Step struct {
	ID   string // "" when the step has none
	Key  string // its journal path segment: ID, or "#N" (index in its list)
	Kind Kind
	Pos  Pos // of the step mapping

	If         *Expr         // nil: always runs
	Retry      *Retry        // task, call, map (per item)
	Timeout    time.Duration // task/call/map: per attempt; pause: the deadline
	Compensate *Action       // recorded when the step completes
	Fallback   *Action       // shorthand for try/catch around the step

	Task string // KindTask: the registered task name
	Call string // KindCall: the workflow name
	With *Value // KindTask, KindCall: the input; nil means null

	Set []Field // KindSet, in source order

	Pause     string             // KindPause: the pause point's name
	Schema    *jsonschema.Schema // KindPause: the resume payload's schema, or nil
	SchemaRaw any                // KindPause: that schema as written

	Map      *Map
	For      *For
	Parallel []*Branch // in source order
	Switch   []*Case   // in source order; a default case is last
	Try      *Try
	Sleep    *Sleep
	Raise    *Raise
	Return   *Value
}

// Field is one named value of a mapping, kept in source order so evaluation
// order (and so the order of journaled builtin calls) is stable.
type Field struct {
	Name  string
	Value *Value
	Pos   Pos
}

// Retry is a step's retry policy (SPEC §2).
type Retry struct {
	MaxAttempts int           // default 1; counts the first try
	Delay       time.Duration // default 1s
	Backoff     float64       // default 2
	MaxDelay    time.Duration // 0: no cap
	Jitter      bool
	Errors      []string // error types retried; empty: all
}

// Action is a compensation or fallback: a task or a call, with its input.
type Action struct {
	Task string
	Call string
	With *Value
	Pos  Pos
}

// Map is a map step: Items evaluated to a list, each item run by exactly one
// of Call, Task or Steps.
type Map struct {
	Items       *Expr
	As          string // default "item"
	Concurrency int    // default 10; 0 means no limit
	// MaxItems lowers the engine's map item limit for this step (0: the
	// engine's, 100,000 by default).
	MaxItems int
	Call     string
	Task     string
	Steps    []*Step
	With     *Value // input of Call/Task per item; nil means the item itself
	// Tolerate: failed items allowed. TolerateCount when TolerateIsPercent is
	// false, else TolerateProportion of the total (0..1].
	TolerateCount      int
	TolerateProportion float64
	TolerateIsPercent  bool
}

// For is a sequential loop over Items, or while While holds.
type For struct {
	Items         *Expr // nil for a while loop
	As            string
	While         *Expr
	MaxIterations int // default 10000
	Steps         []*Step
}

// Branch is one named branch of a parallel step.
type Branch struct {
	Name  string
	Steps []*Step
}

// Case is one arm of a switch. A default arm has When == nil and Default set.
type Case struct {
	When    *Expr
	Default bool
	Steps   []*Step
	Key     string // path segment: "when[i]" or "default"
}

// Try is a try/catch/finally step.
type Try struct {
	Steps   []*Step
	Catch   *Catch // nil: no catch
	Finally []*Step
}

// Catch handles errors of a try.
type Catch struct {
	Errors []string // empty: all
	As     string   // default "err"
	Steps  []*Step
}

// Sleep is a durable timer: a fixed Duration or Until a time expression.
type Sleep struct {
	Duration time.Duration
	Until    *Expr
}

// Raise fails the workflow with a typed error.
type Raise struct {
	Error   string
	Message *Value
	Data    *Value
}

// Expr is one compiled expression: the text between "${" and "}".
type Expr struct {
	Source  string
	Pos     Pos
	Program *vm.Program

	names, private []string // see Names; the private functions it calls
	// ident is the name when the expression is one variable (`${ item }`):
	// its value is the environment's, read without running the program
	// (the most common expression in a loop body).
	ident string
}

// Names returns the names of the environment the expression reads (input,
// steps, an item's name, a function such as now or secret), sorted: an
// evaluation's env needs no others, so a caller may build only these.
func (e *Expr) Names() []string {
	if e == nil {
		return nil
	}
	return e.names
}

// Value is a YAML value whose strings may hold expressions. Exactly one of
// the forms is set: Expr (a string that is exactly one "${ … }"), Parts (a
// string template), Map, List, or Lit (any other scalar, already plain data).
type Value struct {
	Pos   Pos
	Lit   any
	Expr  *Expr
	Parts []Part
	Map   []Field
	List  []*Value
	// Kind tells which form is set, so a null Lit is told from "no value".
	Form ValueForm

	names []string // see Names
}

// Names returns the names of the environment the value's expressions read,
// sorted (see Expr.Names): none for a value without expressions.
func (v *Value) Names() []string {
	if v == nil {
		return nil
	}
	return v.names
}

// collectNames sets v.names from its expressions and its parts' names.
func (v *Value) collectNames() {
	var all []string
	add := func(names []string) { all = append(all, names...) }
	switch v.Form {
	case FormExpr:
		add(v.Expr.Names())
	case FormTemplate:
		for _, p := range v.Parts {
			add(p.Expr.Names())
		}
	case FormMap:
		for _, f := range v.Map {
			add(f.Value.Names())
		}
	case FormList:
		for _, e := range v.List {
			add(e.Names())
		}
	}
	if len(all) == 0 {
		return
	}
	sort.Strings(all)
	v.names = slices.Compact(all)
}

// ValueForm tells which field of a Value holds it.
type ValueForm int

// The forms of a Value.
const (
	FormLit ValueForm = iota
	FormExpr
	FormTemplate
	FormMap
	FormList
)

// Part is a piece of a string template: literal text or an expression.
type Part struct {
	Text string
	Expr *Expr
}
