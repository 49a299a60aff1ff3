package loomtest

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/loomwork/loom/definition"
	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal"
	"gopkg.in/yaml.v3"
)

// File is one parsed test file.
type File struct {
	Path string
	// Definition is the catalog the cases run against: the file's
	// `definition:` (relative to the test file), else NAME.yaml next to
	// NAME.test.yaml, else the test file's directory.
	Definition string
	// Workflow is the default workflow of the cases ("" : the catalog's
	// only one).
	Workflow string
	Strict   bool
	Cases    []*Case
}

// Case is one test case.
type Case struct {
	Name     string
	Pos      definition.Pos
	Workflow string
	Input    any
	Clock    time.Time
	Seed     uint64
	// Strict makes a call of a task with no mock fail the case instead of
	// running the binary's task.
	Strict bool
	// TaskMocks and StepMocks are results by task name and by step path.
	TaskMocks map[string]*Mock
	StepMocks map[string]*Mock
	Resumes   []*Resume
	Expect    Expect
}

// Mock is the result, or the sequence of results (one per call; retries
// call again), a mocked task returns.
type Mock struct {
	Pos     definition.Pos
	Results []Result
}

// Result is one mocked outcome: an output, or an error of a type.
type Result struct {
	Output any
	Error  *interpreter.TypedError
}

// Resume is a payload to deliver once the execution pauses.
type Resume struct {
	Pos     definition.Pos
	Pause   string // name or path; "" when only one pause is open
	Payload any
	// Refused, when set, expects the resume to be refused with a message
	// containing it.
	Refused *Check[string]
}

// Check is one expected value and where the test file states it.
type Check[T any] struct {
	Pos  definition.Pos
	Want T
}

// Expect is every assertion of a case; a nil field asserts nothing.
type Expect struct {
	State   *Check[journal.State]
	Output  *Check[any]
	Error   *ErrorCheck
	Pauses  *Check[[]string]
	Ran     []Check[string]
	Skipped []Check[string]
	Calls   []CallCheck
	// Refused expects Run to refuse the input with a message containing it.
	Refused *Check[string]
}

// ErrorCheck asserts the execution's error; empty fields are not checked.
type ErrorCheck struct {
	Pos                 definition.Pos
	Type, Message, Step *Check[string]
}

// CallCheck asserts the calls of one task: their number, and when Inputs is
// set, their inputs (in any order: map items and parallel branches call
// concurrently).
type CallCheck struct {
	Pos    definition.Pos
	Task   string
	Count  int
	Inputs []any // nil: only the count is checked
}

// ParseFile reads and validates a test file. Every problem is reported at
// once, as a definition.ErrorList of file:line:col messages.
func ParseFile(path string) (*File, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, src)
}

// Parse validates a test file's source; name is used in positions and to
// find the default definition.
func Parse(name string, src []byte) (*File, error) {
	p := &parser{file: name}
	f := p.file_(src)
	p.errs.RemoveMultiples()
	if len(p.errs) > 0 {
		return nil, p.errs
	}
	return f, nil
}

type parser struct {
	file string
	errs definition.ErrorList
}

func (p *parser) pos(n *yaml.Node) definition.Pos {
	return definition.Pos{File: p.file, Line: n.Line, Col: n.Column}
}

func (p *parser) errorf(n *yaml.Node, format string, args ...any) {
	p.errs.Add(p.pos(n), fmt.Sprintf(format, args...))
}

func (p *parser) file_(src []byte) *File {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		line := 1
		var msg = err.Error()
		if m := regexp.MustCompile(`^yaml: line (\d+): (.*)$`).FindStringSubmatch(msg); m != nil {
			fmt.Sscan(m[1], &line)
			msg = m[2]
		}
		p.errs.Add(definition.Pos{File: p.file, Line: line, Col: 1}, "YAML: "+strings.TrimPrefix(msg, "yaml: "))
		return nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		p.errs.Add(definition.Pos{File: p.file, Line: 1, Col: 1}, "empty test file: expected a mapping with cases")
		return nil
	}
	root := doc.Content[0]
	f := &File{Path: p.file}
	fields := p.fields(root, "a test file", []string{"definition", "workflow", "strict", "cases"}, "cases")
	if fields == nil {
		return nil
	}
	if n := fields["definition"]; n != nil {
		f.Definition = p.str(n, "definition")
	}
	if n := fields["workflow"]; n != nil {
		f.Workflow = p.str(n, "workflow")
	}
	if n := fields["strict"]; n != nil {
		f.Strict = p.boolean(n, "strict")
	}
	if n := fields["cases"]; n != nil {
		if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
			p.errorf(n, "cases must be a non-empty list of cases")
			return f
		}
		names := map[string]bool{}
		for _, cn := range n.Content {
			c := p.case_(cn, f.Strict)
			if c == nil {
				continue
			}
			if names[c.Name] {
				p.errs.Add(c.Pos, fmt.Sprintf("case %q is defined twice", c.Name))
			}
			names[c.Name] = true
			f.Cases = append(f.Cases, c)
		}
	}
	return f
}

// defaultClock is every case's clock unless it sets one: a fixed instant,
// so now() is the same on every run.
var defaultClock = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func (p *parser) case_(n *yaml.Node, strict bool) *Case {
	fields := p.fields(n, "a case", []string{"name", "workflow", "input", "clock", "seed", "strict", "mock", "resume", "expect"}, "name", "expect")
	if fields == nil {
		return nil
	}
	c := &Case{Pos: p.pos(n), Clock: defaultClock, Strict: strict, TaskMocks: map[string]*Mock{}, StepMocks: map[string]*Mock{}}
	if v := fields["name"]; v != nil {
		c.Name = p.str(v, "name")
		if c.Name == "" && v.Kind == yaml.ScalarNode {
			p.errorf(v, "name must not be empty")
		}
	}
	if v := fields["workflow"]; v != nil {
		c.Workflow = p.str(v, "workflow")
	}
	if v := fields["input"]; v != nil {
		c.Input = p.value(v, "input")
	}
	if v := fields["clock"]; v != nil {
		s := p.str(v, "clock")
		if s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				p.errorf(v, "clock must be an RFC 3339 time such as 2026-01-01T09:00:00Z, got %q", s)
			}
			c.Clock = t.UTC()
		}
	}
	if v := fields["seed"]; v != nil {
		var seed uint64
		if v.Kind != yaml.ScalarNode || v.Tag != "!!int" || v.Decode(&seed) != nil {
			p.errorf(v, "seed must be a non-negative integer")
		}
		c.Seed = seed
	}
	if v := fields["strict"]; v != nil {
		c.Strict = p.boolean(v, "strict")
	}
	if v := fields["mock"]; v != nil {
		mf := p.fields(v, "mock", []string{"tasks", "steps"})
		for key, dst := range map[string]map[string]*Mock{"tasks": c.TaskMocks, "steps": c.StepMocks} {
			m := mf[key]
			if m == nil {
				continue
			}
			if m.Kind != yaml.MappingNode {
				p.errorf(m, "mock.%s must be a mapping of %s to results", key, map[string]string{"tasks": "task names", "steps": "step paths"}[key])
				continue
			}
			for i := 0; i+1 < len(m.Content); i += 2 {
				k, val := m.Content[i], m.Content[i+1]
				if key == "steps" && !validPath(k.Value) {
					p.errorf(k, "%q is not a step path (such as charge, stars[2]/fetch or stars[*]/fetch)", k.Value)
				}
				if mk := p.mock(val, "mock."+key+"."+k.Value); mk != nil {
					dst[k.Value] = mk
				}
			}
		}
	}
	if v := fields["resume"]; v != nil {
		if v.Kind != yaml.SequenceNode {
			p.errorf(v, "resume must be a list of {pause, payload}")
		} else {
			for _, rn := range v.Content {
				rf := p.fields(rn, "a resume", []string{"pause", "payload", "refused"})
				if rf == nil {
					continue
				}
				r := &Resume{Pos: p.pos(rn)}
				if x := rf["pause"]; x != nil {
					r.Pause = p.str(x, "pause")
				}
				if x := rf["payload"]; x != nil {
					r.Payload = p.value(x, "payload")
				}
				if x := rf["refused"]; x != nil {
					r.Refused = &Check[string]{p.pos(x), p.str(x, "refused")}
				}
				c.Resumes = append(c.Resumes, r)
			}
		}
	}
	if v := fields["expect"]; v != nil {
		p.expect(v, &c.Expect)
	}
	return c
}

var pathRE = regexp.MustCompile(`^([a-z_][a-z0-9_]*|#[0-9]+|#compensate|#fallback|when\[[0-9]+\]|default|try|catch|finally)(\[([0-9]+|\*)\])?(/([a-z_][a-z0-9_]*|#[0-9]+|#compensate|#fallback|when\[[0-9]+\]|default|try|catch|finally)(\[([0-9]+|\*)\])?)*$`)

func validPath(s string) bool { return pathRE.MatchString(s) }

func (p *parser) mock(n *yaml.Node, what string) *Mock {
	m := &Mock{Pos: p.pos(n)}
	if n.Kind == yaml.SequenceNode {
		if len(n.Content) == 0 {
			p.errorf(n, "%s must list at least one result", what)
			return nil
		}
		for _, rn := range n.Content {
			if r, ok := p.result(rn, what); ok {
				m.Results = append(m.Results, r)
			}
		}
		return m
	}
	r, ok := p.result(n, what)
	if !ok {
		return nil
	}
	m.Results = []Result{r}
	return m
}

func (p *parser) result(n *yaml.Node, what string) (Result, bool) {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s must be {output: VALUE} or {error: TYPE}, or a list of them", what)
		return Result{}, false
	}
	f := p.fields(n, what, []string{"output", "error"})
	if f == nil {
		return Result{}, false
	}
	switch {
	case f["output"] != nil && f["error"] != nil:
		p.errorf(n, "%s has both output and error; a result is one of them", what)
		return Result{}, false
	case f["output"] != nil:
		return Result{Output: p.value(f["output"], what+".output")}, true
	case f["error"] != nil:
		e := f["error"]
		te := &interpreter.TypedError{}
		if e.Kind == yaml.ScalarNode {
			te.Type = p.str(e, what+".error")
		} else {
			ef := p.fields(e, what+".error", []string{"type", "message", "data"}, "type")
			if ef == nil {
				return Result{}, false
			}
			if x := ef["type"]; x != nil {
				te.Type = p.str(x, what+".error.type")
			}
			if x := ef["message"]; x != nil {
				te.Message = p.str(x, what+".error.message")
			}
			if x := ef["data"]; x != nil {
				te.Data = p.value(x, what+".error.data")
			}
		}
		if te.Message == "" {
			te.Message = "mocked " + te.Type
		}
		return Result{Error: te}, true
	}
	p.errorf(n, "%s must have output or error", what)
	return Result{}, false
}

var states = []journal.State{journal.Running, journal.Paused, journal.Waiting, journal.Completed, journal.Failed, journal.Cancelled}

func (p *parser) expect(n *yaml.Node, e *Expect) {
	f := p.fields(n, "expect", []string{"state", "output", "error", "pauses", "ran", "skipped", "calls", "refused"})
	if f == nil {
		return
	}
	if v := f["state"]; v != nil {
		s := journal.State(p.str(v, "expect.state"))
		ok := false
		for _, st := range states {
			ok = ok || st == s
		}
		if !ok && v.Kind == yaml.ScalarNode {
			p.errorf(v, "expect.state must be one of RUNNING, PAUSED, WAITING, COMPLETED, FAILED, CANCELLED, got %q", s)
		}
		e.State = &Check[journal.State]{p.pos(v), s}
	}
	if v := f["output"]; v != nil {
		e.Output = &Check[any]{p.pos(v), p.value(v, "expect.output")}
	}
	if v := f["refused"]; v != nil {
		e.Refused = &Check[string]{p.pos(v), p.str(v, "expect.refused")}
		if len(f) > 1 {
			p.errorf(v, "expect.refused cannot be combined with other expectations: a refused run has no outcome")
		}
	}
	if v := f["error"]; v != nil {
		ec := &ErrorCheck{Pos: p.pos(v)}
		if v.Kind == yaml.ScalarNode {
			ec.Type = &Check[string]{p.pos(v), p.str(v, "expect.error")}
		} else if ef := p.fields(v, "expect.error", []string{"type", "message", "step"}); ef != nil {
			for k, dst := range map[string]**Check[string]{"type": &ec.Type, "message": &ec.Message, "step": &ec.Step} {
				if x := ef[k]; x != nil {
					*dst = &Check[string]{p.pos(x), p.str(x, "expect.error."+k)}
				}
			}
		}
		e.Error = ec
	}
	if v := f["pauses"]; v != nil {
		e.Pauses = &Check[[]string]{p.pos(v), p.strings(v, "expect.pauses")}
	}
	for key, dst := range map[string]*[]Check[string]{"ran": &e.Ran, "skipped": &e.Skipped} {
		v := f[key]
		if v == nil {
			continue
		}
		if v.Kind != yaml.SequenceNode {
			p.errorf(v, "expect.%s must be a list of step paths", key)
			continue
		}
		for _, x := range v.Content {
			s := p.str(x, "expect."+key)
			if s != "" && !validPath(s) {
				p.errorf(x, "%q is not a step path", s)
			}
			*dst = append(*dst, Check[string]{p.pos(x), s})
		}
	}
	if v := f["calls"]; v != nil {
		if v.Kind != yaml.MappingNode {
			p.errorf(v, "expect.calls must map task names to a count or a list of inputs")
			return
		}
		for i := 0; i+1 < len(v.Content); i += 2 {
			k, x := v.Content[i], v.Content[i+1]
			cc := CallCheck{Pos: p.pos(x), Task: k.Value}
			switch {
			case x.Kind == yaml.ScalarNode && x.Tag == "!!int":
				if err := x.Decode(&cc.Count); err != nil || cc.Count < 0 {
					p.errorf(x, "expect.calls.%s must be a count (0 or more) or a list of inputs", k.Value)
				}
			case x.Kind == yaml.SequenceNode:
				cc.Inputs = []any{}
				for _, in := range x.Content {
					cc.Inputs = append(cc.Inputs, p.value(in, "expect.calls."+k.Value))
				}
				cc.Count = len(cc.Inputs)
			default:
				p.errorf(x, "expect.calls.%s must be a count (0 or more) or a list of inputs", k.Value)
				continue
			}
			e.Calls = append(e.Calls, cc)
		}
	}
}

// fields checks that n is a mapping with only allowed keys (each once) and
// every required one, and returns its values by key; nil if n is not a
// mapping.
func (p *parser) fields(n *yaml.Node, what string, allowed []string, required ...string) map[string]*yaml.Node {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s must be a mapping", what)
		return nil
	}
	out := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if !contains(allowed, k.Value) {
			msg := fmt.Sprintf("unknown key %q in %s", k.Value, what)
			if s := definition.Suggest(k.Value, allowed); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			} else {
				msg += fmt.Sprintf(" (allowed: %s)", strings.Join(allowed, ", "))
			}
			p.errorf(k, "%s", msg)
			continue
		}
		if out[k.Value] != nil {
			p.errorf(k, "key %q is repeated in %s", k.Value, what)
			continue
		}
		out[k.Value] = n.Content[i+1]
	}
	for _, r := range required {
		if out[r] == nil {
			p.errorf(n, "%s needs %q", what, r)
		}
	}
	return out
}

func (p *parser) str(n *yaml.Node, what string) string {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" || n.Tag == "!!map" {
		p.errorf(n, "%s must be a string", what)
		return ""
	}
	return n.Value
}

func (p *parser) strings(n *yaml.Node, what string) []string {
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "%s must be a list of strings", what)
		return nil
	}
	out := []string{}
	for _, x := range n.Content {
		out = append(out, p.str(x, what))
	}
	sort.Strings(out)
	return out
}

func (p *parser) boolean(n *yaml.Node, what string) bool {
	var b bool
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&b) != nil {
		p.errorf(n, "%s must be true or false", what)
	}
	return b
}

// value decodes a YAML value into its normalised JSON form, as the engine
// sees values.
func (p *parser) value(n *yaml.Node, what string) any {
	var v any
	if err := n.Decode(&v); err != nil {
		p.errorf(n, "%s: %v", what, err)
		return nil
	}
	nv, err := interpreter.Normalize(v)
	if err != nil {
		p.errorf(n, "%s is not a JSON value: %v", what, err)
		return nil
	}
	return nv
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
