package definition

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

// plainDocuments returns the plain form of every document of src that
// the loader would validate (nil if the YAML does not parse).
func plainDocuments(src []byte) []any {
	s := newSource("f.yaml", src)
	docs, ok := s.documents(new(ErrorList))
	if !ok {
		return nil
	}
	var out []any
	for _, doc := range docs {
		p := &plainer{s: s, errs: new(ErrorList)}
		if raw := p.value(doc, 0); !p.over {
			out = append(out, raw)
		}
	}
	return out
}

// agree fails t when the quick check and jsonschema/v5 disagree on raw;
// it returns jsonschema/v5's answer.
func agree(t testing.TB, sch *jsonschema.Schema, check *schemaCheck, raw any, what string) bool {
	t.Helper()
	want := sch.Validate(raw) == nil
	if got := check.valid(raw); got != want {
		b, _ := json.Marshal(raw)
		t.Fatalf("%s: quick check says valid=%v, jsonschema/v5 valid=%v, for\n%s", what, got, want, b)
	}
	return want
}

// alternatives replace a value, one at a time, in TestSchemaCheckAgrees:
// each JSON type, the edges of the schema's minimums and patterns.
var alternatives = []any{
	nil, true, false, 0, 1, -1, 2.5, 1e300, "", "x", "Bad Name", "${ 1 }", "1s", "1h30m", "skip", "Timeout",
	map[string]any{}, []any{}, map[string]any{"task": "t"}, []any{map[string]any{"task": "t"}},
}

// TestSchemaCheckAgrees compares the quick check with jsonschema/v5 on the
// examples and every testdata definition, and on each variant of a valid
// one with one value replaced (by each of alternatives) or one key or item
// removed or one key added.
func TestSchemaCheckAgrees(t *testing.T) {
	check := workflowCheck()
	if check == nil {
		t.Fatal("the workflow schema uses a keyword the quick check does not implement: every load compiles it")
	}
	sch, _ := workflowSchema()
	var docs, valid, invalid int
	for _, src := range definitionSources() {
		for _, raw := range plainDocuments(src) {
			docs++
			if !agree(t, sch, check, raw, "document") {
				continue // an invalid one's variants are invalid alike: no news
			}
			variants(raw, func(what string) {
				if agree(t, sch, check, raw, what) {
					valid++
				} else {
					invalid++
				}
			})
		}
	}
	t.Logf("%d documents, %d valid and %d invalid variants", docs, valid, invalid)
	if docs < 100 || valid < 1000 || invalid < 1000 {
		t.Errorf("too few cases to mean anything: %d documents, %d valid and %d invalid variants", docs, valid, invalid)
	}
}

// freeForm are the keys whose values the workflow schema does not look
// into (a task's input, a JSON Schema, an output): varying inside them
// would only repeat the same check.
var freeForm = map[string]bool{"with": true, "input": true, "schema": true, "output": true, "return": true, "data": true}

// variants changes v in place, one change at a time, calls visit after
// each change and undoes it.
func variants(v any, visit func(what string)) {
	try := func(set func(any), old any, name string) {
		for _, alt := range alternatives {
			set(alt)
			visit(fmt.Sprintf("%s replaced by %v", name, alt))
		}
		if l, ok := old.([]any); ok && len(l) > 0 {
			set(l[1:])
			visit(name + "[0] removed")
		}
		set(old)
		variants(old, visit)
	}
	switch x := v.(type) {
	case map[string]any:
		x["zz_unknown"] = 1
		visit("key added")
		delete(x, "zz_unknown")
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			old := x[k]
			delete(x, k)
			visit(k + " removed")
			if freeForm[k] {
				// Its content is not the workflow schema's: only the key and
				// the value as a whole are varied.
				for _, alt := range alternatives {
					x[k] = alt
					visit(fmt.Sprintf("%s replaced by %v", k, alt))
				}
				x[k] = old
				continue
			}
			try(func(a any) { x[k] = a }, old, k)
		}
	case []any:
		for i, old := range x {
			try(func(a any) { x[i] = a }, old, fmt.Sprintf("[%d]", i))
		}
	}
}

// FuzzSchemaCheck compares the quick check with jsonschema/v5 on
// generated definitions.
func FuzzSchemaCheck(f *testing.F) {
	for _, src := range definitionSources() {
		f.Add(src)
	}
	check := workflowCheck()
	sch, _ := workflowSchema()
	f.Fuzz(func(t *testing.T, src []byte) {
		if check == nil {
			t.Skip("no quick check")
		}
		for _, raw := range plainDocuments(src) {
			agree(t, sch, check, raw, strings.TrimSpace(string(src)))
		}
	})
}
