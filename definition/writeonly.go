package definition

import (
	"encoding/json"
	"sort"
)

// WriteOnlyMask replaces a write-only input value wherever it is printed.
const WriteOnlyMask = "***"

// writeOnlyPaths lists the places of the input schema's properties marked
// `writeOnly: true` (JSON Schema's word for a value that is given but
// never read back): property names, with "*" for list items and
// additionalProperties. A write-only object makes everything under it so.
func writeOnlyPaths(schema any) [][]string {
	var out [][]string
	var walk func(s any, at []string, depth int)
	walk = func(s any, at []string, depth int) {
		m, ok := s.(map[string]any)
		if !ok || depth > 32 {
			return
		}
		if wo, _ := m["writeOnly"].(bool); wo {
			out = append(out, append([]string(nil), at...))
			return
		}
		if props, ok := m["properties"].(map[string]any); ok {
			names := make([]string, 0, len(props))
			for k := range props {
				names = append(names, k)
			}
			sort.Strings(names)
			for _, k := range names {
				walk(props[k], append(at, k), depth+1)
			}
		}
		for _, k := range []string{"items", "additionalProperties"} {
			walk(m[k], append(at, "*"), depth+1)
		}
		for _, k := range []string{"allOf", "anyOf", "oneOf"} {
			if l, ok := m[k].([]any); ok {
				for _, sub := range l {
					walk(sub, at, depth+1)
				}
			}
		}
	}
	walk(schema, nil, 0)
	return out
}

// HasWriteOnlyInput reports whether the input schema marks any property
// `writeOnly: true`.
func (wf *Workflow) HasWriteOnlyInput() bool { return len(writeOnlyPaths(wf.Input)) > 0 }

// WriteOnlyFields names the input's write-only properties, as dotted paths
// ("card.number", "tokens.*").
func (wf *Workflow) WriteOnlyFields() []string {
	var out []string
	for _, p := range writeOnlyPaths(wf.Input) {
		s := ""
		for i, k := range p {
			if i > 0 {
				s += "."
			}
			s += k
		}
		out = append(out, s)
	}
	return out
}

// WriteOnlyValues returns the values the input holds at its write-only
// places, as text (a string as it is, anything else as JSON), so that they
// can be masked wherever the engine journals or prints them.
func (wf *Workflow) WriteOnlyValues(input any) []string {
	var out []string
	for _, p := range writeOnlyPaths(wf.Input) {
		visit(input, p, func(v any) any {
			collectText(v, &out)
			return v
		})
	}
	return out
}

// MaskInput returns a copy of input with every write-only value replaced
// by WriteOnlyMask.
func (wf *Workflow) MaskInput(input any) any {
	paths := writeOnlyPaths(wf.Input)
	if len(paths) == 0 {
		return input
	}
	out := deepCopy(input)
	for _, p := range paths {
		out = visit(out, p, func(any) any { return WriteOnlyMask })
	}
	return out
}

// visit calls fn on each value at path p in v and stores what it returns.
func visit(v any, p []string, fn func(any) any) any {
	if len(p) == 0 {
		if v == nil {
			return nil
		}
		return fn(v)
	}
	switch x := v.(type) {
	case map[string]any:
		if p[0] == "*" {
			for k, e := range x {
				x[k] = visit(e, p[1:], fn)
			}
		} else if e, ok := x[p[0]]; ok {
			x[p[0]] = visit(e, p[1:], fn)
		}
	case []any:
		if p[0] == "*" {
			for i, e := range x {
				x[i] = visit(e, p[1:], fn)
			}
		}
	}
	return v
}

func collectText(v any, out *[]string) {
	switch x := v.(type) {
	case nil:
	case string:
		*out = append(*out, x)
	case map[string]any:
		for _, e := range x {
			collectText(e, out)
		}
	case []any:
		for _, e := range x {
			collectText(e, out)
		}
	default:
		b, err := json.Marshal(x)
		if err == nil {
			*out = append(*out, string(b))
		}
	}
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = deepCopy(e)
		}
		return l
	}
	return v
}
