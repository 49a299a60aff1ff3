package schemas_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/loomwork/loom/schemas"
	"github.com/santhosh-tekuri/jsonschema/v5"
)

// TestWorkflowCompiles checks the embedded schema is valid draft-07 JSON
// Schema with the declared $id.
func TestWorkflowCompiles(t *testing.T) {
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft7
	if err := c.AddResource(schemas.WorkflowID, bytes.NewReader(schemas.Workflow)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Compile(schemas.WorkflowID); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(schemas.Workflow, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["$id"] != schemas.WorkflowID || doc["$schema"] != "http://json-schema.org/draft-07/schema#" {
		t.Errorf("$id %v, $schema %v", doc["$id"], doc["$schema"])
	}
}

// TestClosedObjects checks every object schema with properties forbids
// other keys, so a typo is always reported.
func TestClosedObjects(t *testing.T) {
	var doc any
	if err := json.Unmarshal(schemas.Workflow, &doc); err != nil {
		t.Fatal(err)
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if _, ok := x["properties"]; ok && !strings.HasSuffix(path, "Step") && !strings.Contains(path, "/then") && !strings.Contains(path, "/if") && !strings.Contains(path, "/dependencies") {
				if ap, ok := x["additionalProperties"]; !ok || ap != false {
					t.Errorf("%s: properties without additionalProperties: false", path)
				}
			}
			for k, e := range x {
				walk(path+"/"+k, e)
			}
		case []any:
			for _, e := range x {
				walk(path+"/[]", e)
			}
		}
	}
	walk("#", doc)
}

// TestNoYAML11Keywords checks no key of the language is a word YAML 1.1
// reads as a boolean.
func TestNoYAML11Keywords(t *testing.T) {
	var doc any
	if err := json.Unmarshal(schemas.Workflow, &doc); err != nil {
		t.Fatal(err)
	}
	bad := map[string]bool{"yes": true, "no": true, "on": true, "off": true, "y": true, "n": true, "true": true, "false": true}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if props, ok := x["properties"].(map[string]any); ok {
				for k := range props {
					if bad[strings.ToLower(k)] {
						t.Errorf("keyword %q reads as a boolean in YAML 1.1", k)
					}
				}
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(doc)
}
