package definition

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/loomwork/loom/schemas"
	"github.com/santhosh-tekuri/jsonschema/v5"
	"gopkg.in/yaml.v3"
)

// workflowDoc is schemas.Workflow as published, parsed: error messages
// consult it (allowed keys, required keys, pattern messages).
var workflowDoc = sync.OnceValue(func() map[string]any {
	var doc map[string]any
	if err := json.Unmarshal(schemas.Workflow, &doc); err != nil {
		panic("definition: schemas.Workflow: " + err.Error())
	}
	return doc
})

// workflowCheck is the quick validity check of the runtime schema, or nil
// if the schema uses a keyword schemaCheck does not implement.
var workflowCheck = sync.OnceValue(func() *schemaCheck {
	c, err := newCheck(runtimeDoc(workflowDoc()))
	if err != nil {
		return nil
	}
	return c
})

// workflowSchema is the runtime schema compiled by jsonschema/v5 and the
// published document: compiled only for a definition the quick check
// rejects, to word its errors.
func workflowSchema() (*jsonschema.Schema, map[string]any) {
	return compiledWorkflow(), workflowDoc()
}

var compiledWorkflow = sync.OnceValue(func() *jsonschema.Schema {
	runtime, err := json.Marshal(runtimeDoc(workflowDoc()))
	if err != nil {
		panic("definition: schemas.Workflow: " + err.Error())
	}
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft7
	if err := c.AddResource(schemas.WorkflowID, bytes.NewReader(runtime)); err != nil {
		panic("definition: schemas.Workflow: " + err.Error())
	}
	s, err := c.Compile(schemas.WorkflowID)
	if err != nil {
		panic("definition: schemas.Workflow: " + err.Error())
	}
	return s
})

// runtimeDoc is the published schema less the step's anyOf ("one of the
// kind keys is required"): editors show that hint from the published
// file, but here the builder reports a step without a kind itself (and
// schemaError drops the anyOf's report), while jsonschema/v5 evaluating a
// twelve-branch anyOf on every step was 40% of loading a large workflow.
// The maps on the way to what it drops are copies: published is shared.
func runtimeDoc(published map[string]any) map[string]any {
	doc := maps.Clone(published)
	defs, _ := doc["definitions"].(map[string]any)
	defs = maps.Clone(defs)
	doc["definitions"] = defs
	if step, _ := defs["step"].(map[string]any); step != nil {
		step = maps.Clone(step)
		delete(step, "anyOf")
		defs["step"] = step
	}
	// Likewise "cron or every": the builder says which one is missing or
	// doubled, in one sentence, where a oneOf report would list both
	// branches.
	if sched, _ := defs["schedule"].(map[string]any); sched != nil {
		sched = maps.Clone(sched)
		delete(sched, "oneOf")
		defs["schedule"] = sched
	}
	return doc
}

// kindKeys are the step kinds in the order of SPEC §2.
var kindKeys = []Kind{KindTask, KindSet, KindPause, KindCall, KindMap, KindFor, KindParallel, KindSwitch, KindTry, KindSleep, KindRaise, KindReturn}

func isKind(k string) bool {
	for _, x := range kindKeys {
		if string(x) == k {
			return true
		}
	}
	return false
}

// schemaAt returns the schema JSON at a pointer (segments) of the document.
func schemaAt(doc map[string]any, segs []string) any {
	var cur any = doc
	for _, s := range segs {
		switch c := cur.(type) {
		case map[string]any:
			cur = c[s]
		case []any:
			i, err := strconv.Atoi(s)
			if err != nil || i < 0 || i >= len(c) {
				return nil
			}
			cur = c[i]
		default:
			return nil
		}
	}
	return cur
}

func propNames(s any) []string {
	m, _ := s.(map[string]any)
	props, _ := m["properties"].(map[string]any)
	out := make([]string, 0, len(props))
	for k := range props {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// stepKeys returns the keys a step of kind k may have, in schema order.
func stepKeys(k Kind) []string {
	doc := workflowDoc()
	all := propNames(schemaAt(doc, []string{"definitions", "step"}))
	if k == "" {
		return orderStepKeys(all)
	}
	forbid, _ := schemaAt(doc, []string{"definitions", string(k) + "Step", "properties"}).(map[string]any)
	var out []string
	for _, a := range all {
		if _, no := forbid[a]; !no {
			out = append(out, a)
		}
	}
	return orderStepKeys(out)
}

// orderStepKeys puts step keys in a reading order: common keys, the kind,
// its options.
func orderStepKeys(keys []string) []string {
	order := []string{"id", "if", "task", "set", "pause", "call", "map", "for", "parallel", "switch", "try", "catch", "finally", "sleep", "raise", "return", "with", "schema", "retry", "timeout", "compensate", "fallback"}
	rank := map[string]int{}
	for i, k := range order {
		rank[k] = i + 1
	}
	sort.SliceStable(keys, func(i, j int) bool {
		ri, rj := rank[keys[i]], rank[keys[j]]
		if ri == 0 {
			ri = 1000
		}
		if rj == 0 {
			rj = 1000
		}
		if ri != rj {
			return ri < rj
		}
		return keys[i] < keys[j]
	})
	return keys
}

// stepKinds returns the kind keys present in a step mapping, in source
// order, with their key nodes.
func stepKinds(n *yaml.Node) (kinds []Kind, keys []*yaml.Node) {
	for _, p := range pairs(n) {
		if isKind(p.Key.Value) && !slices.Contains(kinds, Kind(p.Key.Value)) {
			kinds = append(kinds, Kind(p.Key.Value))
			keys = append(keys, p.Key)
		}
	}
	return kinds, keys
}

// validateSchema checks raw (the plain form of root) against the workflow
// schema and adds one readable error per problem, positioned from the
// YAML nodes. The quick check answers for a valid definition; only one it
// rejects pays for compiling the schema (see schemaCheck).
func (s *source) validateSchema(root *yaml.Node, raw any, errs *ErrorList) {
	if c := workflowCheck(); c != nil && c.valid(raw) {
		return
	}
	sch, doc := workflowSchema()
	err := sch.Validate(raw)
	if err == nil {
		return
	}
	ve, ok := err.(*jsonschema.ValidationError)
	if !ok {
		errs.Add(s.pos(root), err.Error())
		return
	}
	var units []*jsonschema.ValidationError
	var walk func(*jsonschema.ValidationError)
	walk = func(v *jsonschema.ValidationError) {
		if len(v.Causes) == 0 || strings.HasSuffix(v.KeywordLocation, "/anyOf") {
			units = append(units, v)
			return
		}
		for _, c := range v.Causes {
			walk(c)
		}
	}
	walk(ve)
	for _, u := range units {
		s.schemaError(root, doc, u, errs)
	}
}

func splitPointer(p string) []string {
	p = strings.TrimPrefix(p, "/")
	if p == "" {
		return nil
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = strings.NewReplacer("~1", "/", "~0", "~").Replace(s)
	}
	return segs
}

// nodeAt finds the value (and, for a mapping entry, the key) at an
// instance location.
func nodeAt(root *yaml.Node, segs []string) (v, k *yaml.Node) {
	v = resolve(root)
	for _, s := range segs {
		if v == nil {
			return nil, nil
		}
		switch v.Kind {
		case yaml.MappingNode:
			v, k = lookup(v, s)
		case yaml.SequenceNode:
			i, err := strconv.Atoi(s)
			if err != nil || i < 0 || i >= len(v.Content) {
				return nil, nil
			}
			v, k = resolve(v.Content[i]), nil
		default:
			return nil, nil
		}
	}
	return v, k
}

// valueName names the value at an instance location for messages:
// "retry.max_attempts", "task", "steps[2]".
func valueName(segs []string) string {
	if len(segs) == 0 {
		return "the workflow"
	}
	last := segs[len(segs)-1]
	if _, err := strconv.Atoi(last); err == nil {
		if len(segs) >= 2 {
			return segs[len(segs)-2] + "[" + last + "]"
		}
		return "[" + last + "]"
	}
	if len(segs) >= 2 {
		if _, err := strconv.Atoi(segs[len(segs)-2]); err != nil {
			return segs[len(segs)-2] + "." + last
		}
	}
	return last
}

// context names the object a schema keyword applies to ("a task step",
// "retry", "a switch case") from the schema path and the instance.
func context(schemaPath []string, instSegs []string, obj *yaml.Node) string {
	if n := len(schemaPath); n >= 2 && schemaPath[n-2] == "properties" {
		return schemaPath[n-1]
	}
	if len(schemaPath) < 2 || schemaPath[0] != "definitions" {
		return "the workflow"
	}
	def := schemaPath[1]
	switch {
	case def == "step" || strings.HasSuffix(def, "Step"):
		kinds, _ := stepKinds(obj)
		if len(kinds) == 1 {
			return "a " + string(kinds[0]) + " step"
		}
		return "a step"
	case def == "case":
		return "a switch case"
	case def == "action":
		if len(instSegs) > 0 {
			return instSegs[len(instSegs)-1]
		}
	}
	return def
}

func (s *source) schemaError(root *yaml.Node, doc map[string]any, u *jsonschema.ValidationError, errs *ErrorList) {
	inst := splitPointer(u.InstanceLocation)
	abs := u.AbsoluteKeywordLocation
	if i := strings.IndexByte(abs, '#'); i >= 0 {
		abs = abs[i+1:]
	}
	absSegs := splitPointer(abs)
	node, key := nodeAt(root, inst)
	at := s.pos(node)
	if node == nil {
		at = s.pos(root)
	}
	sv := schemaAt(doc, absSegs)
	if b, isBool := sv.(bool); isBool && !b && len(absSegs) >= 2 && absSegs[len(absSegs)-2] == "properties" {
		s.falseSchema(root, doc, absSegs, inst, key, errs)
		return
	}
	if len(absSegs) == 0 {
		errs.Add(at, u.Message)
		return
	}
	kw := absSegs[len(absSegs)-1]
	parentPath := absSegs[:len(absSegs)-1]
	parent, _ := schemaAt(doc, parentPath).(map[string]any)
	name := valueName(inst)
	switch kw {
	case "additionalProperties":
		ctx := context(parentPath, inst, node)
		var allowed []string
		if len(parentPath) == 2 && parentPath[1] == "step" {
			kinds, _ := stepKinds(node)
			if len(kinds) == 1 {
				allowed = stepKeys(kinds[0])
			} else {
				allowed = stepKeys("")
			}
		} else {
			allowed = propNames(parent)
		}
		props, _ := parent["properties"].(map[string]any)
		for _, p := range pairs(node) {
			if _, ok := props[p.Key.Value]; ok || isMergeKey(p.Key) {
				continue
			}
			errs.Add(s.pos(p.Key), unknownKey(p.Key.Value, ctx, allowed))
		}
	case "anyOf":
		if len(parentPath) == 2 && parentPath[1] == "step" {
			return // the builder reports a step without a kind
		}
		var alts []string
		branches, _ := sv.([]any)
		for _, b := range branches {
			bm, _ := b.(map[string]any)
			req, _ := bm["required"].([]any)
			for _, r := range req {
				alts = append(alts, fmt.Sprint(r))
			}
		}
		errs.Add(at, fmt.Sprintf("%s needs %s", context(parentPath, inst, node), orList(alts)))
	case "required":
		var missing []string
		req, _ := sv.([]any)
		for _, r := range req {
			if v, _ := lookup(node, fmt.Sprint(r)); v == nil && !hasKey(node, fmt.Sprint(r)) {
				missing = append(missing, fmt.Sprint(r))
			}
		}
		ctx := context(parentPath, inst, node)
		if ctx == "a switch case" {
			errs.Add(at, "a switch case needs when and steps, or default")
			return
		}
		if len(missing) == 0 {
			errs.Add(at, u.Message)
			return
		}
		word := "key"
		if len(missing) > 1 {
			word = "keys"
		}
		errs.Add(at, fmt.Sprintf("%s is missing required %s %s", ctx, word, andList(missing)))
	case "type":
		want := typeWords(sv)
		if isYAML11Bool(node) && strings.Contains(want, "boolean") {
			errs.Add(at, yaml11Message(name, node.Value))
			return
		}
		if len(inst) >= 1 && len(parentPath) == 2 && parentPath[1] == "step" {
			errs.Add(at, fmt.Sprintf("a step must be a mapping with one kind key (task, set, call, …), got %s", kindName(node)))
			return
		}
		errs.Add(at, fmt.Sprintf("%s must be %s, got %s", name, want, kindName(node)))
	case "pattern":
		if isYAML11Bool(node) && strings.Contains(typeWords(parent["type"]), "boolean") {
			errs.Add(at, yaml11Message(name, node.Value))
			return
		}
		why, _ := parent["patternErrorMessage"].(string)
		if why == "" {
			why = fmt.Sprintf("must match %v", sv)
		}
		errs.Add(at, fmt.Sprintf("%s %s %s", name, quoteValue(node), why))
	case "minimum":
		errs.Add(at, fmt.Sprintf("%s must be at least %v, got %s", name, sv, node.Value))
	case "minItems", "minProperties":
		errs.Add(at, fmt.Sprintf("%s must not be empty", name))
	default:
		errs.Add(at, fmt.Sprintf("%s: %s", name, u.Message))
	}
}

func hasKey(n *yaml.Node, k string) bool {
	for _, p := range pairs(n) {
		if p.Key.Value == k {
			return true
		}
	}
	return false
}

// falseSchema reports a key the schema forbids where it is.
func (s *source) falseSchema(root *yaml.Node, doc map[string]any, absSegs, inst []string, key *yaml.Node, errs *ErrorList) {
	if len(inst) == 0 || key == nil {
		return
	}
	k := inst[len(inst)-1]
	objSegs := inst[:len(inst)-1]
	obj, _ := nodeAt(root, objSegs)
	at := s.pos(key)
	// .../definitions/D/properties/K or .../definitions/D/allOf/i/then/properties/K
	if len(absSegs) >= 2 && absSegs[0] == "definitions" && strings.HasSuffix(absSegs[1], "Step") {
		if isKind(k) {
			return // two kinds in one step: the builder reports it once
		}
		kinds, _ := stepKinds(obj)
		ctx := "a step"
		if len(kinds) == 1 {
			ctx = "a " + string(kinds[0]) + " step"
			errs.Add(at, fmt.Sprintf("%q is not allowed in %s (its keys: %s)", k, ctx, strings.Join(stepKeys(kinds[0]), ", ")))
			return
		}
		return
	}
	ctx := context(absSegs[:2], objSegs, obj)
	// Find the dependency (or the "if") that forbids k: it names the key k
	// clashes with.
	for i := len(absSegs) - 1; i >= 0; i-- {
		if absSegs[i] == "dependencies" && i+1 < len(absSegs) {
			errs.Add(at, fmt.Sprintf("%q cannot be used with %q in %s", k, absSegs[i+1], ctx))
			return
		}
		if absSegs[i] == "then" {
			cond, _ := schemaAt(doc, append(append([]string{}, absSegs[:i]...), "if")).(map[string]any)
			req, _ := cond["required"].([]any)
			if len(req) > 0 {
				errs.Add(at, fmt.Sprintf("%q cannot be used with %q in %s", k, fmt.Sprint(req[0]), ctx))
				return
			}
		}
	}
	errs.Add(at, fmt.Sprintf("%q is not allowed in %s", k, ctx))
}

func yaml11Message(name, v string) string {
	return fmt.Sprintf("%s: %s is a string, not a boolean: Loom reads YAML 1.2, where booleans are only true and false", name, v)
}

func quoteValue(n *yaml.Node) string {
	if n == nil {
		return ""
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:37] + "..."
	}
	return strconv.Quote(v)
}

func typeWords(t any) string {
	var ts []string
	switch x := t.(type) {
	case string:
		ts = []string{x}
	case []any:
		for _, e := range x {
			ts = append(ts, fmt.Sprint(e))
		}
	}
	words := map[string]string{"object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer", "number": "a number", "boolean": "a boolean", "null": "null"}
	for i, x := range ts {
		if w, ok := words[x]; ok {
			ts[i] = w
		}
	}
	return orList(ts)
}

func orList(xs []string) string  { return joinList(xs, "or") }
func andList(xs []string) string { return joinList(xs, "and") }

func joinList(xs []string, word string) string {
	switch len(xs) {
	case 0:
		return ""
	case 1:
		return xs[0]
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " " + word + " " + xs[len(xs)-1]
}

// unknownKey words an unknown key, with a suggestion when one is close.
func unknownKey(key, ctx string, allowed []string) string {
	if s := suggest(key, allowed); s != "" {
		return fmt.Sprintf("unknown key %q in %s; did you mean %q?", key, ctx, s)
	}
	return fmt.Sprintf("unknown key %q in %s (allowed: %s)", key, ctx, strings.Join(allowed, ", "))
}

// Suggest returns the candidate closest to s when it is close enough to be
// a typo of it, else "": the "did you mean" of every unknown-name message,
// here and in the files other packages validate (loomtest).
func Suggest(s string, candidates []string) string { return suggest(s, candidates) }

// suggest returns the candidate closest to s, if close enough to be a typo.
func suggest(s string, candidates []string) string {
	best, bestD := "", 1<<30
	for _, c := range candidates {
		d := editDistance(strings.ToLower(s), c)
		if d < bestD {
			best, bestD = c, d
		}
	}
	limit := 1
	if len(s) >= 4 {
		limit = 2
	}
	if len(s) >= 8 {
		limit = 3
	}
	if bestD <= limit && bestD < len(s) {
		return best
	}
	return ""
}

func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		return 1 << 20
	}
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
