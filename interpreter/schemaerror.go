package interpreter

import (
	"cmp"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

// SchemaError is a value its JSON Schema refused: a run's input or a
// resume's payload. Err is the one-sentence refusal (it wraps
// ErrInvalidInput); Details says where and why for each failing part, so
// that a client can show each message next to its field (the API's
// invalid_input and invalid_payload details, SPEC §6).
type SchemaError struct {
	Err     error
	Details []SchemaDetail
}

// SchemaDetail is one failing part of a value.
type SchemaDetail struct {
	// Location is a JSON pointer into the value: "" for the whole value,
	// "/reason" for its reason property. A missing required property is
	// located at the property it lacks, not at the object.
	Location string `json:"location"`
	// Message is the schema's message for that part.
	Message string `json:"message"`
}

func (e *SchemaError) Error() string { return e.Err.Error() }

// Unwrap gives the refusal, so errors.Is(err, ErrInvalidInput) holds.
func (e *SchemaError) Unwrap() error { return e.Err }

// schemaRefusal is refusal (which wraps ErrInvalidInput) with the details
// of verr, the schema's validation error.
func schemaRefusal(refusal, verr error) error {
	return &SchemaError{Err: refusal, Details: schemaDetails(verr)}
}

// schemaDetails lists every leaf of a jsonschema validation error, sorted
// by location (the library meets properties in map order), one detail per
// missing required property.
func schemaDetails(err error) []SchemaDetail {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []SchemaDetail{{Location: "", Message: err.Error()}}
	}
	var out []SchemaDetail
	var walk func(v *jsonschema.ValidationError)
	walk = func(v *jsonschema.ValidationError) {
		if len(v.Causes) > 0 {
			for _, c := range v.Causes {
				walk(c)
			}
			return
		}
		if names, ok := missingProperties(v); ok {
			for _, n := range names {
				out = append(out, SchemaDetail{Location: v.InstanceLocation + "/" + pointerToken(n), Message: "is required"})
			}
			return
		}
		out = append(out, SchemaDetail{Location: v.InstanceLocation, Message: v.Message})
	}
	walk(ve)
	slices.SortStableFunc(out, func(a, b SchemaDetail) int {
		return cmp.Or(strings.Compare(a.Location, b.Location), strings.Compare(a.Message, b.Message))
	})
	return slices.Compact(out)
}

// firstLeaf is the failing part of ve that comes first by (location,
// message): a leaf, which has no causes.
func firstLeaf(ve *jsonschema.ValidationError) *jsonschema.ValidationError {
	if len(ve.Causes) == 0 {
		return ve
	}
	var best *jsonschema.ValidationError
	for _, c := range ve.Causes {
		l := firstLeaf(c)
		if best == nil || cmp.Or(strings.Compare(l.InstanceLocation, best.InstanceLocation), strings.Compare(l.Message, best.Message)) < 0 {
			best = l
		}
	}
	return best
}

// missingProperties reads the property names of a failed "required"
// keyword out of its message, which jsonschema v5 writes as
// missing properties: 'a', 'b' (each name quoted as Go quotes a string,
// with single quotes, and ' escaped); the library has no other place for
// them. ok is false for any other error, or a message in another form.
func missingProperties(v *jsonschema.ValidationError) (names []string, ok bool) {
	rest, found := strings.CutPrefix(v.Message, "missing properties: ")
	if !found || !strings.HasSuffix(v.KeywordLocation, "/required") {
		return nil, false
	}
	for rest != "" {
		if rest[0] != '\'' {
			return nil, false
		}
		// The closing quote is the first ' not escaped by a backslash.
		end, esc := -1, false
		for i := 1; i < len(rest); i++ {
			switch {
			case esc:
				esc = false
			case rest[i] == '\\':
				esc = true
			case rest[i] == '\'':
				end = i
			}
			if end > 0 {
				break
			}
		}
		if end < 0 {
			return nil, false
		}
		inner := strings.ReplaceAll(rest[1:end], `\'`, `'`)
		name, err := strconv.Unquote(`"` + strings.ReplaceAll(inner, `"`, `\"`) + `"`)
		if err != nil {
			return nil, false
		}
		names = append(names, name)
		rest = strings.TrimPrefix(rest[end+1:], ", ")
	}
	return names, len(names) > 0
}

// pointerToken escapes a property name as a JSON pointer token (RFC 6901).
func pointerToken(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}
