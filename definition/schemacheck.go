package definition

import (
	"fmt"
	"math"
	"regexp"
	"strings"
)

// schemaCheck is one (sub)schema of the workflow schema prepared for a
// plain yes/no validity check. Compiling the workflow schema with
// jsonschema/v5 (which first validates it against the draft-07
// meta-schema) was half of a short `loom run`'s CPU, while almost every
// definition is valid: the loader asks this check first and compiles the
// real schema only to word the errors of a definition it rejects (see
// validateSchema), so every message stays jsonschema/v5's.
//
// It knows the draft-07 keywords the workflow schema uses; newCheck
// refuses a schema with any other keyword (the loader then always
// compiles), so a keyword added to the schema cannot be skipped silently.
// Where it is unsure (a value of a type the plain form never holds) it
// answers "not valid", which costs only the compile. TestSchemaCheckAgrees
// and FuzzSchemaCheck compare it with jsonschema/v5.
type schemaCheck struct {
	always        *bool // a boolean schema: true or false
	ref           *schemaCheck
	types         []string
	enum          []any // strings, booleans or null: compared with ==
	required      []string
	properties    map[string]*schemaCheck
	additional    *schemaCheck // additionalProperties; nil: any
	propertyNames *schemaCheck
	dependencies  map[string]dependency
	items         *schemaCheck
	minItems      int // -1: none
	minProperties int // -1: none
	minimum       *float64
	pattern       *regexp.Regexp
	allOf         []*schemaCheck
	anyOf         []*schemaCheck
	oneOf         []*schemaCheck
	not           *schemaCheck
	cond          *schemaCheck // if
	then          *schemaCheck
	els           *schemaCheck
}

// dependency is one entry of draft-07 "dependencies": the keys a key
// requires, or a schema the whole object must then match.
type dependency struct {
	keys   []string
	schema *schemaCheck
}

// annotations are the keywords that do not constrain a value.
var annotations = map[string]bool{
	"$schema": true, "$id": true, "$comment": true, "title": true, "description": true,
	"definitions": true, "default": true, "examples": true,
	"patternErrorMessage": true, // ours: the message of a pattern
}

// newCheck prepares root (a parsed JSON Schema document) for the check,
// or fails on a keyword or form it does not implement.
func newCheck(root map[string]any) (*schemaCheck, error) {
	b := &checkBuilder{root: root, refs: map[string]*schemaCheck{}}
	c := new(schemaCheck)
	if err := b.fill(c, root, "#"); err != nil {
		return nil, err
	}
	return c, nil
}

type checkBuilder struct {
	root map[string]any
	refs map[string]*schemaCheck // by $ref: shared, and recursion ends
}

func (b *checkBuilder) build(v any, at string) (*schemaCheck, error) {
	c := new(schemaCheck)
	return c, b.fill(c, v, at)
}

func (b *checkBuilder) fill(c *schemaCheck, v any, at string) error {
	c.minItems, c.minProperties = -1, -1
	if x, ok := v.(bool); ok {
		c.always = &x
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("%s: a schema is an object or a boolean", at)
	}
	if r, ok := m["$ref"]; ok {
		// Draft 7: a $ref's siblings are ignored.
		s, _ := r.(string)
		ref, err := b.resolve(s)
		c.ref = ref
		return err
	}
	var err error
	sub := func(k string) *schemaCheck {
		var s *schemaCheck
		if err == nil {
			s, err = b.build(m[k], at+"/"+k)
		}
		return s
	}
	subs := func(k string) []*schemaCheck {
		l, _ := m[k].([]any)
		if len(l) == 0 && err == nil {
			err = fmt.Errorf("%s/%s: not a non-empty list", at, k)
		}
		out := make([]*schemaCheck, len(l))
		for i, x := range l {
			if err == nil {
				out[i], err = b.build(x, fmt.Sprintf("%s/%s/%d", at, k, i))
			}
		}
		return out
	}
	count := func(k string) int {
		f, ok := m[k].(float64)
		if (!ok || f < 0 || f != math.Trunc(f) || f > 1<<31) && err == nil {
			err = fmt.Errorf("%s/%s: not a count", at, k)
		}
		return int(f)
	}
	strs := func(k string, l any) []string {
		xs, ok := l.([]any)
		out := make([]string, len(xs))
		for i, x := range xs {
			out[i], ok = x.(string)
			if !ok {
				break
			}
		}
		if !ok && err == nil {
			err = fmt.Errorf("%s/%s: not a list of strings", at, k)
		}
		return out
	}
	for k, x := range m {
		switch k {
		case "type":
			if s, ok := x.(string); ok {
				c.types = []string{s}
			} else {
				c.types = strs(k, x)
			}
			for _, t := range c.types {
				if !strings.Contains(" null boolean object array number string integer ", " "+t+" ") && err == nil {
					err = fmt.Errorf("%s/type: unknown type %q", at, t)
				}
			}
		case "enum":
			l, _ := x.([]any)
			for _, e := range l {
				switch e.(type) {
				case string, bool, nil:
				default:
					if err == nil {
						err = fmt.Errorf("%s/enum: only strings, booleans and null are compared", at)
					}
				}
			}
			c.enum = l
		case "required":
			c.required = strs(k, x)
		case "properties":
			props, _ := x.(map[string]any)
			c.properties = make(map[string]*schemaCheck, len(props))
			for name, p := range props {
				if err == nil {
					c.properties[name], err = b.build(p, at+"/properties/"+name)
				}
			}
		case "additionalProperties":
			c.additional = sub(k)
		case "propertyNames":
			c.propertyNames = sub(k)
		case "dependencies":
			deps, _ := x.(map[string]any)
			c.dependencies = make(map[string]dependency, len(deps))
			for name, d := range deps {
				if l, ok := d.([]any); ok {
					c.dependencies[name] = dependency{keys: strs(k, l)}
				} else if err == nil {
					var s *schemaCheck
					s, err = b.build(d, at+"/dependencies/"+name)
					c.dependencies[name] = dependency{schema: s}
				}
			}
		case "items":
			if _, tuple := x.([]any); tuple && err == nil {
				err = fmt.Errorf("%s/items: a list of item schemas is not implemented", at)
			}
			c.items = sub(k)
		case "minItems":
			c.minItems = count(k)
		case "minProperties":
			c.minProperties = count(k)
		case "minimum":
			// Only an integer bound: a float64 comparison with it is
			// exact for the int and float64 values the plain form holds.
			f, ok := x.(float64)
			if (!ok || f != math.Trunc(f) || math.Abs(f) > 1<<52) && err == nil {
				err = fmt.Errorf("%s/minimum: only an integer bound is implemented", at)
			}
			c.minimum = &f
		case "pattern":
			s, _ := x.(string)
			if c.pattern, err = regexp.Compile(s); err != nil {
				err = fmt.Errorf("%s/pattern: %v", at, err)
			}
		case "allOf":
			c.allOf = subs(k)
		case "anyOf":
			c.anyOf = subs(k)
		case "oneOf":
			c.oneOf = subs(k)
		case "not":
			c.not = sub(k)
		case "if":
			c.cond = sub(k)
		case "then":
			c.then = sub(k)
		case "else":
			c.els = sub(k)
		default:
			if !annotations[k] && err == nil {
				err = fmt.Errorf("%s: keyword %q is not implemented", at, k)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// resolve returns the schema a local $ref ("#" or "#/json/pointer")
// points at.
func (b *checkBuilder) resolve(ref string) (*schemaCheck, error) {
	if c, ok := b.refs[ref]; ok {
		return c, nil
	}
	if ref != "#" && !strings.HasPrefix(ref, "#/") {
		return nil, fmt.Errorf("$ref %q: only a local reference is implemented", ref)
	}
	target := schemaAt(b.root, splitPointer(strings.TrimPrefix(ref, "#")))
	if target == nil {
		return nil, fmt.Errorf("$ref %q: nothing there", ref)
	}
	c := new(schemaCheck)
	b.refs[ref] = c // before filling: a recursive reference finds it
	return c, b.fill(c, target, ref)
}

// valid reports whether v, a plain value (nil, bool, int, float64, string,
// []any, map[string]any), matches the schema.
func (c *schemaCheck) valid(v any) bool {
	if c.always != nil {
		return *c.always
	}
	if c.ref != nil {
		return c.ref.valid(v)
	}
	if len(c.types) > 0 && !typeIn(c.types, v) {
		return false
	}
	if c.enum != nil && !enumHas(c.enum, v) {
		return false
	}
	switch x := v.(type) {
	case nil, bool:
	case map[string]any:
		if !c.validObject(x) {
			return false
		}
	case []any:
		if c.minItems >= 0 && len(x) < c.minItems {
			return false
		}
		if c.items != nil {
			for _, e := range x {
				if !c.items.valid(e) {
					return false
				}
			}
		}
	case string:
		if c.pattern != nil && !c.pattern.MatchString(x) {
			return false
		}
	case int:
		if c.minimum != nil && float64(x) < *c.minimum {
			return false
		}
	case float64:
		if c.minimum != nil && x < *c.minimum {
			return false
		}
	default:
		return false // not a plain value: let jsonschema/v5 say it
	}
	for _, s := range c.allOf {
		if !s.valid(v) {
			return false
		}
	}
	if c.anyOf != nil {
		any := false
		for _, s := range c.anyOf {
			if s.valid(v) {
				any = true
				break
			}
		}
		if !any {
			return false
		}
	}
	if c.oneOf != nil {
		n := 0
		for _, s := range c.oneOf {
			if s.valid(v) {
				n++
			}
		}
		if n != 1 {
			return false
		}
	}
	if c.not != nil && c.not.valid(v) {
		return false
	}
	if c.cond != nil {
		if c.cond.valid(v) {
			return c.then == nil || c.then.valid(v)
		}
		return c.els == nil || c.els.valid(v)
	}
	return true
}

func (c *schemaCheck) validObject(x map[string]any) bool {
	if c.minProperties >= 0 && len(x) < c.minProperties {
		return false
	}
	for _, k := range c.required {
		if _, ok := x[k]; !ok {
			return false
		}
	}
	for k, v := range x {
		if p, ok := c.properties[k]; ok {
			if !p.valid(v) {
				return false
			}
		} else if c.additional != nil && !c.additional.valid(v) {
			return false
		}
		if c.propertyNames != nil && !c.propertyNames.valid(k) {
			return false
		}
		if d, ok := c.dependencies[k]; ok {
			for _, r := range d.keys {
				if _, ok := x[r]; !ok {
					return false
				}
			}
			if d.schema != nil && !d.schema.valid(x) {
				return false
			}
		}
	}
	return true
}

// typeIn reports whether v has one of the JSON types ("integer": a number
// without a fraction, as draft 7 and jsonschema/v5 read it).
func typeIn(types []string, v any) bool {
	for _, t := range types {
		switch x := v.(type) {
		case nil:
			if t == "null" {
				return true
			}
		case bool:
			if t == "boolean" {
				return true
			}
		case int:
			if t == "number" || t == "integer" {
				return true
			}
		case float64:
			if t == "number" || (t == "integer" && x == math.Trunc(x)) {
				return true
			}
		case string:
			if t == "string" {
				return true
			}
		case []any:
			if t == "array" {
				return true
			}
		case map[string]any:
			if t == "object" {
				return true
			}
		}
	}
	return false
}

// enumHas reports whether v is one of enum's scalars (newCheck admits only
// strings, booleans and null, so == is JSON equality here).
func enumHas(enum []any, v any) bool {
	switch v.(type) {
	case string, bool, nil:
		for _, e := range enum {
			if e == v {
				return true
			}
		}
	}
	return false
}
