package cli

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
)

func init() {
	register(&command{name: "tasks", usage: "tasks [--json]", minArgs: 0, maxArgs: 0, local: true,
		summary: "list the tasks this binary registers, with their input schemas",
		help: `Lists the tasks a workflow's task steps can name in this binary: the standard
ones (echo, log, exec, http) and, in a custom binary, its own. Each is shown
with the JSON Schema of its with value where the binary knows it (the
standard tasks publish theirs). --json prints [{name, input_schema}].`,
		flags: []flagSpec{flagJSON}, run: (*app).tasksCmd})
}

// taskInfo is one task of loom tasks --json.
type taskInfo struct {
	Name        string          `json:"name"`
	InputSchema json.RawMessage `json:"input_schema"`
}

func (a *app) tasksCmd() error {
	schemas, _ := a.tasks.(interface{ TaskInputSchema(string) []byte })
	var out []taskInfo
	for _, name := range a.tasks.TaskNames() {
		ti := taskInfo{Name: name, InputSchema: json.RawMessage("null")}
		if schemas != nil {
			if s := schemas.TaskInputSchema(name); len(s) > 0 {
				ti.InputSchema = s
			}
		}
		out = append(out, ti)
	}
	if a.p.has("json") {
		if out == nil {
			out = []taskInfo{}
		}
		return a.printJSON(out)
	}
	if len(out) == 0 {
		fmt.Fprintf(a.stderr, "%s: this binary registers no task\n", a.prog())
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tINPUT")
	for _, ti := range out {
		fmt.Fprintf(tw, "%s\t%s\n", safe(ti.Name), describeSchema(ti.InputSchema))
	}
	tw.Flush()
	fmt.Fprintf(a.stdout, "\n`%s tasks --json` prints each input schema; `%s docs tasks` describes the standard tasks.\n", a.prog(), a.prog())
	return nil
}

// describeSchema sums a task's input schema up in one line: its keys, the
// required ones first, or "any value".
func describeSchema(raw json.RawMessage) string {
	var s map[string]any
	if json.Unmarshal(raw, &s) != nil || s == nil {
		return "(not published)"
	}
	obj := s
	if e, ok := s["else"].(map[string]any); ok { // the standard tasks accept an expression, else an object
		obj = e
	}
	props, _ := obj["properties"].(map[string]any)
	if len(props) == 0 {
		if d, ok := s["description"].(string); ok {
			return d
		}
		return "any value"
	}
	req := map[string]bool{}
	if r, ok := obj["required"].([]any); ok {
		for _, k := range r {
			if ks, ok := k.(string); ok {
				req[ks] = true
			}
		}
	}
	var required, optional []string
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if req[k] {
			required = append(required, k)
		} else {
			optional = append(optional, k+"?")
		}
	}
	return "{" + strings.Join(append(required, optional...), ", ") + "}"
}
