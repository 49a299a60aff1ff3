package builtins

import (
	"encoding/json"

	"github.com/loomwork/loom/duration"
)

// The input schemas describe the `with` value a task receives at run time.
// Validation sees the definition before any expression is evaluated, so
// every place that takes a value also takes a string holding `${`: its value
// is known only when the step runs, and the task checks it then.

// orExpr accepts a string holding an expression, else s.
func orExpr(s map[string]any) map[string]any {
	return map[string]any{
		"if":   map[string]any{"type": "string", "pattern": `\$\{`},
		"else": s,
	}
}

// object is a mapping with exactly the given properties (each may be an
// expression), of which required must be present.
func object(props map[string]map[string]any, required ...string) map[string]any {
	p := map[string]any{}
	for k, v := range props {
		p[k] = orExpr(v)
	}
	o := map[string]any{"type": "object", "properties": p, "additionalProperties": false}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

// scalarMap is a mapping of names to strings (numbers and booleans are
// rendered as text).
func scalarMap() map[string]any {
	return map[string]any{
		"type":                 "object",
		"additionalProperties": map[string]any{"type": []string{"string", "number", "boolean"}},
	}
}

var inputSchemas = func() map[string][]byte {
	schemas := map[string]map[string]any{
		"echo": {
			"title":       "echo",
			"description": "Any value; the task returns it.",
		},
		"log": orExpr(object(map[string]map[string]any{
			"message": {"description": "The text to write; other values are written as JSON."},
			"level":   {"type": "string", "enum": logLevels, "default": "info"},
		}, "message")),
		"exec": orExpr(object(map[string]map[string]any{
			"command": {
				"description": "The program and its arguments.",
				"type":        "array",
				"minItems":    1,
				"items":       map[string]any{"type": []string{"string", "number", "boolean"}},
			},
			"input": {"description": "Written to stdin as JSON; without it stdin is empty."},
			"env":   scalarMap(),
			"dir":   {"type": "string"},
		}, "command")),
		"http": orExpr(object(map[string]map[string]any{
			"method":  {"type": "string", "pattern": `^[A-Za-z]+$`, "default": "GET"},
			"url":     {"type": "string", "pattern": `^[Hh][Tt][Tt][Pp][Ss]?://`},
			"headers": scalarMap(),
			"body":    {"description": "A string is sent as it is; any other value as JSON."},
			"timeout": {"type": "string", "pattern": duration.Pattern, "minLength": 1, "default": "30s"},
		}, "url")),
	}
	out := map[string][]byte{}
	for name, s := range schemas {
		s["$schema"] = "http://json-schema.org/draft-07/schema#"
		s["title"] = name
		b, err := json.Marshal(s)
		if err != nil {
			panic(err) // the literals above are JSON
		}
		out[name] = b
	}
	return out
}()
