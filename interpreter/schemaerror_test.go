package interpreter

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

// compileTestSchema compiles a schema given as plain data.
func compileTestSchema(s any) (*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	if err := c.AddResource("test.json", bytes.NewReader(encodeJSON(s))); err != nil {
		return nil, err
	}
	return c.Compile("test.json")
}

// TestSchemaDetails: every failing part at its JSON pointer, sorted; a
// missing required property at the property, whatever its name holds
// (quotes, commas, a slash, a tilde), read back from the library's message.
func TestSchemaDetails(t *testing.T) {
	sch, err := compileTestSchema(map[string]any{
		"type":     "object",
		"required": []any{"it's", `say "hi"`, "a, b", "x/y~z", "ok"},
		"properties": map[string]any{
			"n":    map[string]any{"type": "integer", "minimum": 1},
			"list": map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	verr := sch.Validate(map[string]any{"ok": true, "n": 0.0, "list": []any{"a", 1.0}})
	if verr == nil {
		t.Fatal("the value passed its schema")
	}
	want := []SchemaDetail{
		{"/a, b", "is required"},
		{"/it's", "is required"},
		{"/list/1", "expected string, but got number"},
		{"/n", "must be >= 1 but found 0"},
		{`/say "hi"`, "is required"},
		{"/x~1y~0z", "is required"},
	}
	if got := schemaDetails(verr); !reflect.DeepEqual(got, want) {
		t.Errorf("details\n got %q\nwant %q", got, want)
	}
	// The sentence names the first part by location, every time.
	for range 20 {
		if got := schemaMessage(sch.Validate(map[string]any{"ok": true, "n": 0.0, "list": []any{"a", 1.0}})); got != `at /: missing properties: 'it\'s', 'say "hi"', 'a, b', 'x/y~z'` {
			t.Fatalf("message %q", got)
		}
	}
}
