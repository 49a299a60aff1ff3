package definition

import (
	"sort"
	"testing"
)

// stepKeyCases builds, for each key a step may have, a workflow using it
// and checks the loader filled the matching field: a key added to the
// schema without loader support (or the reverse) fails this test.
var stepKeyCases = map[string]struct {
	yaml  string
	check func(*Step) bool
}{
	"id":         {"{id: x, task: t}", func(s *Step) bool { return s.ID == "x" && s.Key == "x" }},
	"if":         {"{if: '${ true }', task: t}", func(s *Step) bool { return s.If != nil }},
	"compensate": {"{task: t, compensate: {task: u, with: 1}}", func(s *Step) bool { return s.Compensate != nil && s.Compensate.Task == "u" && s.Compensate.With != nil }},
	"fallback":   {"{task: t, fallback: {call: w}}", func(s *Step) bool { return s.Fallback != nil && s.Fallback.Call == "w" }},
	"task":       {"{task: t}", func(s *Step) bool { return s.Kind == KindTask && s.Task == "t" }},
	"with":       {"{task: t, with: 1}", func(s *Step) bool { return s.With != nil && s.With.Lit == 1 }},
	"retry": {"{task: t, retry: {max_attempts: 2, delay: 2s, backoff: 3, max_delay: 5s, jitter: true, errors: [E]}}", func(s *Step) bool {
		return s.Retry != nil && s.Retry.MaxAttempts == 2 && s.Retry.Backoff == 3 && s.Retry.MaxDelay > 0 && s.Retry.Jitter && len(s.Retry.Errors) == 1
	}},
	"timeout":  {"{task: t, timeout: 1s}", func(s *Step) bool { return s.Timeout > 0 }},
	"set":      {"{set: {a: 1}}", func(s *Step) bool { return s.Kind == KindSet && len(s.Set) == 1 }},
	"pause":    {"{pause: p}", func(s *Step) bool { return s.Kind == KindPause && s.Pause == "p" }},
	"schema":   {"{pause: p, schema: {type: object}}", func(s *Step) bool { return s.Schema != nil && s.SchemaRaw != nil }},
	"call":     {"{call: w}", func(s *Step) bool { return s.Kind == KindCall && s.Call == "w" }},
	"map":      {"{map: {items: '${ input }', task: t}}", func(s *Step) bool { return s.Kind == KindMap && s.Map != nil && s.Map.Items != nil }},
	"for":      {"{for: {items: [1], steps: [{task: t}]}}", func(s *Step) bool { return s.Kind == KindFor && s.For != nil && len(s.For.Steps) == 1 }},
	"parallel": {"{parallel: {a: [{task: t}]}}", func(s *Step) bool { return s.Kind == KindParallel && len(s.Parallel) == 1 }},
	"switch":   {"{switch: [{default: [{task: t}]}]}", func(s *Step) bool { return s.Kind == KindSwitch && len(s.Switch) == 1 }},
	"try":      {"{try: [{task: t}]}", func(s *Step) bool { return s.Kind == KindTry && s.Try != nil && len(s.Try.Steps) == 1 }},
	"catch":    {"{try: [{task: t}], catch: {steps: [{task: t}]}}", func(s *Step) bool { return s.Try.Catch != nil }},
	"finally":  {"{try: [{task: t}], finally: [{task: t}]}", func(s *Step) bool { return len(s.Try.Finally) == 1 }},
	"sleep":    {"{sleep: 1s}", func(s *Step) bool { return s.Kind == KindSleep && s.Sleep.Duration > 0 }},
	"raise":    {"{raise: {error: E, message: m, data: 1}}", func(s *Step) bool { return s.Kind == KindRaise && s.Raise.Error == "E" && s.Raise.Data != nil }},
	"return":   {"{return: 1}", func(s *Step) bool { return s.Kind == KindReturn && s.Return != nil }},
}

func TestSchemaMatchesLoader(t *testing.T) {
	_, doc := workflowSchema()
	props := propNames(schemaAt(doc, []string{"definitions", "step"}))
	var cases []string
	for k := range stepKeyCases {
		cases = append(cases, k)
	}
	sort.Strings(cases)
	if len(props) != len(cases) {
		t.Errorf("schema step keys %v\nloader cases     %v", props, cases)
	}
	for _, k := range props {
		c, ok := stepKeyCases[k]
		if !ok {
			t.Errorf("schema key %q has no loader case", k)
			continue
		}
		cat, err := Parse("k.yaml", []byte("name: k\nsteps:\n  - "+c.yaml+"\n---\nname: w\nsteps: [{task: t}]\n"))
		if err != nil {
			t.Errorf("%s: %v", k, err)
			continue
		}
		if st := cat.Workflow("k").Steps[0]; !c.check(st) {
			t.Errorf("%s: not loaded: %+v", k, st)
		}
	}
	// Every kind has its branch in the schema, and the schema no other.
	anyOf, _ := schemaAt(doc, []string{"definitions", "step", "anyOf"}).([]any)
	if len(anyOf) != len(kindKeys) {
		t.Errorf("schema has %d kinds, definition %d", len(anyOf), len(kindKeys))
	}
	for _, k := range kindKeys {
		if schemaAt(doc, []string{"definitions", string(k) + "Step"}) == nil {
			t.Errorf("kind %s has no schema branch", k)
		}
		if _, ok := stepKeyCases[string(k)]; !ok {
			t.Errorf("kind %s has no loader case", k)
		}
	}
}
