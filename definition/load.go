package definition

import (
	"bytes"
	stdctx "context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/loomwork/loom/secrets"
	"github.com/santhosh-tekuri/jsonschema/v5"
	"gopkg.in/yaml.v3"
)

// Tasks is what definition needs of a task registry: whether a task name
// exists. A value that also has TaskInputSchema(name string) []byte (a JSON
// Schema, or nil) gets literal `with` inputs checked against it, and one
// with TaskNames() []string gets "did you mean" suggestions.
type Tasks interface {
	HasTask(name string) bool
}

type taskInputSchemas interface {
	TaskInputSchema(name string) []byte
}

type taskNames interface {
	TaskNames() []string
}

// Option configures Load and Parse.
type Option func(*options)

type options struct {
	tasks   Tasks
	secrets secrets.Provider
}

// WithTasks makes unknown task names errors.
func WithTasks(t Tasks) Option { return func(o *options) { o.tasks = t } }

// WithSecrets makes a secret("NAME") with a literal name that p does not
// list an error, when p can list its secrets (secrets.Lister).
func WithSecrets(p secrets.Provider) Option { return func(o *options) { o.secrets = p } }

// loader accumulates the workflows and problems of one Load or Parse.
type loader struct {
	opts     options
	errs     ErrorList
	cat      *Catalog
	firstPos map[string]Pos
	refs     []ref
	cache    map[string]*compiled
	// taskSchemas holds the task input schemas compiled so far, by text
	// (nil: it does not compile): each is compiled once per load, not
	// once per step using the task.
	taskSchemas map[string]*jsonschema.Schema
	incomplete  bool // a file could not be read to its end
	files       int
	// single is the file Load was given, "" for a directory or Parse: an
	// unknown call target may be defined in a file beside it.
	single string
}

func newLoader(opts []Option) *loader {
	l := &loader{cat: &Catalog{workflows: map[string]*Workflow{}}, firstPos: map[string]Pos{}, cache: map[string]*compiled{}}
	for _, o := range opts {
		o(&l.opts)
	}
	return l
}

// Parse loads the workflows of one file's contents (one or more YAML
// documents). The error, if any, is an ErrorList.
func Parse(filename string, src []byte, opts ...Option) (*Catalog, error) {
	l := newLoader(opts)
	l.file(filename, src)
	return l.finish(filename)
}

// Load loads a file, or every *.yaml and *.yml file under a directory
// (recursively, skipping hidden directories), as one catalog: workflow
// names are unique across it and call targets resolve within it. A
// definition problem is returned as an ErrorList holding every problem
// found; a path that cannot be read as a plain error.
func Load(path string, opts ...Option) (*Catalog, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	l := newLoader(opts)
	if !info.IsDir() {
		src, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		l.file(path, src)
		l.single = path
		return l.finish(path)
	}
	var files []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			// The go tool's rule: testdata and names starting with "." or
			// "_" are not part of the catalog (a custom binary's own
			// workflows can live there, validated by that binary).
			if n := d.Name(); p != path && (strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_") || n == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if ext := filepath.Ext(p); (ext == ".yaml" || ext == ".yml") && !IsTestFile(p) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		l.file(f, src)
	}
	return l.finish(path)
}

// IsTestFile reports whether a file name is a `loom test` file
// (NAME.test.yaml or NAME.test.yml). A catalog directory leaves these out,
// as the go tool leaves out _test.go files: they hold test cases, not
// workflows.
func IsTestFile(name string) bool {
	base := filepath.Base(name)
	return strings.HasSuffix(base, ".test.yaml") || strings.HasSuffix(base, ".test.yml")
}

// file loads the documents of one file.
func (l *loader) file(name string, src []byte) {
	l.files++
	s := newSource(name, src)
	docs, ok := s.documents(&l.errs)
	if !ok {
		l.incomplete = true
		return
	}
	for _, doc := range docs {
		l.document(s, doc)
	}
}

func (l *loader) document(s *source, doc *yaml.Node) {
	if doc.Kind == yaml.ScalarNode && doc.ShortTag() == "!!null" {
		return // an empty document
	}
	var pre ErrorList
	p := &plainer{s: s, errs: &pre}
	raw := p.value(doc, 0)
	if p.over {
		l.errs = append(l.errs, pre...)
		return
	}
	// The schema check and the builder read the same nodes and share
	// nothing else: run them side by side. A builder problem at a place
	// the schema already reported is dropped, so one mistake reads once.
	schemaErrs := pre
	var local ErrorList
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.validateSchema(doc, raw, &schemaErrs)
	}()
	b := &builder{s: s, errs: &local, cache: l.cache, refs: &l.refs, reported: map[Pos]bool{}}
	wf := b.workflow(doc, raw)
	<-done
	reported := make(map[Pos]bool, len(schemaErrs))
	for _, e := range schemaErrs {
		reported[e.Pos] = true
	}
	built := local
	local = append(ErrorList(nil), schemaErrs...)
	for _, e := range built {
		if !reported[e.Pos] {
			local = append(local, e)
		}
	}
	l.errs = append(l.errs, local...)
	if wf == nil || wf.Name == "" {
		return
	}
	name, _ := lookup(doc, "name")
	at := s.pos(name)
	if first, dup := l.firstPos[wf.Name]; dup {
		l.errs.Add(at, fmt.Sprintf("duplicate workflow name %q (first at %s)", wf.Name, first))
		return
	}
	l.firstPos[wf.Name] = at
	l.cat.workflows[wf.Name] = wf
	l.cat.names = append(l.cat.names, wf.Name)
}

// finish runs the catalog-wide checks and returns the catalog or the
// problems.
func (l *loader) finish(path string) (*Catalog, error) {
	sort.Strings(l.cat.names)
	if len(l.cat.names) == 0 && len(l.errs) == 0 {
		what := "file"
		if l.files != 1 {
			what = "path"
		}
		l.errs.Add(Pos{File: path, Line: 1, Col: 1}, fmt.Sprintf("no workflow found in this %s", what))
		if l.files != 1 {
			l.errs[len(l.errs)-1].Pos = Pos{File: path}
		}
	}
	l.checkRefs()
	l.checkCycles()
	if len(l.errs) > 0 {
		l.errs.finish()
		return nil, l.errs
	}
	return l.cat, nil
}

// besideDefiner returns the workflow file in the directory of file (not
// file itself) that defines a workflow named name, or "". It reads only
// each document's name: the file is not checked.
func besideDefiner(file, name string) string {
	if file == "" {
		return ""
	}
	entries, err := os.ReadDir(filepath.Dir(file))
	if err != nil {
		return ""
	}
	for _, e := range entries {
		p := filepath.Join(filepath.Dir(file), e.Name())
		ext := filepath.Ext(p)
		if e.IsDir() || (ext != ".yaml" && ext != ".yml") || IsTestFile(p) || filepath.Clean(p) == filepath.Clean(file) {
			continue
		}
		src, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		dec := yaml.NewDecoder(bytes.NewReader(src))
		for {
			var doc struct {
				Name string `yaml:"name"`
			}
			if err := dec.Decode(&doc); err != nil {
				break
			}
			if doc.Name == name {
				return p
			}
		}
	}
	return ""
}

func (l *loader) checkRefs() {
	l.checkSecrets()
	var known []string
	if tn, ok := l.opts.tasks.(taskNames); ok {
		known = tn.TaskNames()
	}
	for _, r := range l.refs {
		switch {
		case r.call != "":
			if l.cat.workflows[r.call] == nil && !l.incomplete {
				msg := fmt.Sprintf("unknown workflow %q: no workflow of the catalog has this name", r.call)
				if s := suggest(r.call, l.cat.names); s != "" {
					msg = fmt.Sprintf("unknown workflow %q; did you mean %q?", r.call, s)
				}
				if f := besideDefiner(l.single, r.call); f != "" {
					dir := filepath.Dir(l.single) + string(filepath.Separator)
					msg = fmt.Sprintf("unknown workflow %q: %s beside %s defines it, but only %s was loaded; pass the directory %s to load them together",
						r.call, filepath.Base(f), filepath.Base(l.single), filepath.Base(l.single), dir)
				}
				l.errs.Add(r.pos, msg)
			}
		case r.secret != "":
		case r.task != "" && l.opts.tasks != nil:
			if !l.opts.tasks.HasTask(r.task) {
				msg := fmt.Sprintf("unknown task %q", r.task)
				if s := suggest(r.task, known); s != "" {
					msg += fmt.Sprintf("; did you mean %q?", s)
				}
				l.errs.Add(r.pos, msg)
				continue
			}
			l.checkTaskInput(r)
		}
	}
}

// checkSecrets reports the literal secret names the provider does not
// list: a run would fail at the first step that reads one.
func (l *loader) checkSecrets() {
	for _, r := range l.refs {
		if r.secret != "" {
			l.cat.secretRefs = append(l.cat.secretRefs, r)
		}
	}
	if l.opts.secrets != nil {
		l.errs = append(l.errs, secretProblems(l.cat.secretRefs, l.opts.secrets)...)
	}
}

// CheckSecrets reports, as an ErrorList, the literal secret("NAME") names
// of root and of every workflow it can start that p does not provide, when
// p can list its secrets (nil otherwise): what Run would otherwise find
// only at the step that reads one.
func (c *Catalog) CheckSecrets(root string, p secrets.Provider) error {
	reach := c.reachable(root)
	var refs []ref
	for _, r := range c.secretRefs {
		if r.from != nil && reach[r.from.Name] {
			refs = append(refs, r)
		}
	}
	errs := secretProblems(refs, p)
	if len(errs) == 0 {
		return nil
	}
	errs.finish()
	return errs
}

// secretProblems checks secret references against p.
func secretProblems(refs []ref, p secrets.Provider) ErrorList {
	if len(refs) == 0 || p == nil {
		return nil
	}
	names := make([]string, 0, len(refs))
	for _, r := range refs {
		names = append(names, r.secret)
	}
	ctx := stdctx.Background()
	unknown, listed, err := secrets.Unknown(ctx, p, names)
	if !listed {
		return nil
	}
	var errs ErrorList
	if err != nil {
		errs.Add(refs[0].pos, fmt.Sprintf("the secrets cannot be listed: %v", err))
		return errs
	}
	missing := map[string]bool{}
	for _, n := range unknown {
		missing[n] = true
	}
	var have []string // lower case, as workflows usually spell them
	if lister, ok := p.(secrets.Lister); ok {
		names, _ := lister.Names(ctx)
		for _, n := range names {
			have = append(have, strings.ToLower(n))
		}
	}
	for _, r := range refs {
		if !missing[r.secret] {
			continue
		}
		_, err := secrets.Resolve(ctx, p, nil, r.secret)
		msg := fmt.Sprintf("unknown secret %q", r.secret)
		if nf := (*secrets.NotFoundError)(nil); errors.As(err, &nf) && len(nf.Where) > 0 {
			msg += ": set " + strings.Join(nf.Where, " or ")
		}
		if s := suggest(r.secret, have); s != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		}
		errs.Add(r.pos, msg)
	}
	return errs
}

// checkTaskInput validates a literal `with` against the task's input schema.
func (l *loader) checkTaskInput(r ref) {
	ts, ok := l.opts.tasks.(taskInputSchemas)
	if !ok || r.with == nil || r.s == nil {
		return
	}
	schema := ts.TaskInputSchema(r.task)
	if len(schema) == 0 {
		return
	}
	b := &builder{s: r.s, errs: new(ErrorList), cache: map[string]*compiled{}, refs: new([]ref), reported: map[Pos]bool{}, ids: map[string]*yaml.Node{}}
	v := b.value(r.with, &scope{vis: map[string]bool{}})
	if v == nil || !v.literal() {
		return
	}
	sch := l.taskSchema(schema)
	if sch == nil {
		return
	}
	in, err := v.Eval(nil)
	if err != nil {
		return
	}
	err = sch.Validate(jsonRoundTrip(in))
	ve, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return
	}
	for len(ve.Causes) > 0 {
		ve = ve.Causes[0]
	}
	at, _ := nodeAt(r.with, splitPointer(ve.InstanceLocation))
	if at == nil {
		at = r.with
	}
	where := ""
	if ve.InstanceLocation != "" {
		where = ve.InstanceLocation + ": "
	}
	l.errs.Add(r.s.pos(at), fmt.Sprintf("input of task %q does not match its schema: %s%s", r.task, where, ve.Message))
}

// taskSchema compiles a task's input schema, once per load; nil when it
// does not compile or accepts every value (it has only annotations, as
// echo's: nothing to check, so nothing to compile).
func (l *loader) taskSchema(schema []byte) *jsonschema.Schema {
	if sch, ok := l.taskSchemas[string(schema)]; ok {
		return sch
	}
	var raw any
	var sch *jsonschema.Schema
	if err := json.Unmarshal(schema, &raw); err == nil && !onlyAnnotations(raw) {
		if s, _, msg := compileSchema(raw); msg == "" {
			sch = s
		}
	}
	if l.taskSchemas == nil {
		l.taskSchemas = map[string]*jsonschema.Schema{}
	}
	l.taskSchemas[string(schema)] = sch
	return sch
}

// onlyAnnotations reports whether a JSON Schema is an object of
// annotations only (title, description, …) or true: it accepts any value.
func onlyAnnotations(schema any) bool {
	switch s := schema.(type) {
	case bool:
		return s
	case map[string]any:
		for k := range s {
			if !annotations[k] {
				return false
			}
		}
		return true
	}
	return false
}

func jsonRoundTrip(v any) any {
	data, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out any
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if d.Decode(&out) != nil {
		return v
	}
	return out
}

// calls returns the workflows wf can start: call, map.call,
// compensate.call and fallback.call targets, each with its position.
func (l *loader) calls() map[string][]ref {
	out := map[string][]ref{}
	for _, r := range l.refs {
		if r.call != "" && r.from != nil {
			out[r.from.Name] = append(out[r.from.Name], r)
		}
	}
	return out
}

// checkCycles reports call cycles: a depth-first search over the call
// graph (workflows in name order, calls in source order) reports each
// call that closes a cycle, at that call, with the cycle's path. Each
// workflow is searched once, so the check is linear in the graph.
func (l *loader) checkCycles() {
	edges := l.calls()
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	var dfs func(n string)
	dfs = func(n string) {
		color[n] = grey
		stack = append(stack, n)
		for _, r := range edges[n] {
			if l.cat.workflows[r.call] == nil {
				continue
			}
			switch color[r.call] {
			case white:
				dfs(r.call)
			case grey:
				i := len(stack) - 1
				for stack[i] != r.call {
					i--
				}
				cyc := append(append([]string{}, stack[i:]...), r.call)
				l.errs.Add(r.pos, "call cycle: "+strings.Join(cyc, " → "))
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
	}
	for _, n := range l.cat.names {
		if color[n] == white {
			dfs(n)
		}
	}
}

// Workflow returns the named workflow, or nil.
func (c *Catalog) Workflow(name string) *Workflow { return c.workflows[name] }

// Names returns the workflow names, sorted.
func (c *Catalog) Names() []string { return append([]string(nil), c.names...) }

// reachable is root and every workflow it can start, transitively.
func (c *Catalog) reachable(root string) map[string]bool {
	reach := map[string]bool{}
	var visit func(string)
	visit = func(name string) {
		if reach[name] {
			return
		}
		wf := c.workflows[name]
		if wf == nil {
			return
		}
		reach[name] = true
		for _, t := range wf.Targets() {
			visit(t)
		}
	}
	visit(root)
	return reach
}

// Pin returns the canonical form of root and every workflow it can start
// (through call, map.call, compensate.call and fallback.call): each
// workflow as JSON in its source's key order (see canonical), ordered by name and joined with
// "\n---\n", and the hex SHA-256 of those bytes. Parse("pinned", src) loads
// it back.
func (c *Catalog) Pin(root string) (src []byte, hash string, err error) {
	if c.workflows[root] == nil {
		return nil, "", fmt.Errorf("pin: no workflow %q in the catalog", root)
	}
	var out bytes.Buffer
	for i, n := range sortedNames(c.reachable(root)) {
		if i > 0 {
			out.WriteString("\n---\n")
		}
		b, err := canonical(c.workflows[n])
		if err != nil {
			return nil, "", fmt.Errorf("pin %s: %w", n, err)
		}
		out.Write(b)
	}
	sum := sha256.Sum256(out.Bytes())
	return out.Bytes(), hex.EncodeToString(sum[:]), nil
}

// TasksOf returns the names of the tasks root and every workflow it can
// start use, sorted: what a binary must register to drive root.
func (c *Catalog) TasksOf(root string) []string {
	set := map[string]bool{}
	for n := range c.reachable(root) {
		for _, t := range c.workflows[n].Tasks() {
			set[t] = true
		}
	}
	return sortedNames(set)
}

// Targets returns the names of the workflows wf can start (call, map.call,
// compensate.call, fallback.call), sorted and without repeats.
func (wf *Workflow) Targets() []string {
	_, calls := wf.uses()
	return calls
}

// Tasks returns the names of the tasks wf's steps run (task, map.task,
// compensate.task, fallback.task), sorted and without repeats.
func (wf *Workflow) Tasks() []string {
	tasks, _ := wf.uses()
	return tasks
}

// uses returns the tasks and the workflows wf's steps name.
func (wf *Workflow) uses() (tasks, calls []string) {
	ts, cs := map[string]bool{}, map[string]bool{}
	var walk func([]*Step)
	action := func(a *Action) {
		if a == nil {
			return
		}
		if a.Call != "" {
			cs[a.Call] = true
		}
		if a.Task != "" {
			ts[a.Task] = true
		}
	}
	walk = func(steps []*Step) {
		for _, st := range steps {
			if st == nil {
				continue
			}
			if st.Call != "" {
				cs[st.Call] = true
			}
			if st.Task != "" {
				ts[st.Task] = true
			}
			action(st.Compensate)
			action(st.Fallback)
			if st.Map != nil {
				if st.Map.Call != "" {
					cs[st.Map.Call] = true
				}
				if st.Map.Task != "" {
					ts[st.Map.Task] = true
				}
				walk(st.Map.Steps)
			}
			if st.For != nil {
				walk(st.For.Steps)
			}
			for _, br := range st.Parallel {
				walk(br.Steps)
			}
			for _, c := range st.Switch {
				walk(c.Steps)
			}
			if st.Try != nil {
				walk(st.Try.Steps)
				if st.Try.Catch != nil {
					walk(st.Try.Catch.Steps)
				}
				walk(st.Try.Finally)
			}
		}
	}
	walk(wf.Steps)
	return sortedNames(ts), sortedNames(cs)
}

func sortedNames(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
